"""When the app's robot cannot be in the client group (the emulator's switch refuses app robots in groups with
outsiders), the weekly report still reaches it through the custom robot an administrator registered with
``dingpm client-robot``: signed, paced under the robot's 20 messages a minute, as markdown with a signed, expiring
link to the .docx served by the bot's own HTTP server; the link works as sent and fails when expired or altered.
The robot's refusals dead-letter the message with an operator's explanation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import aiohttp
import pytest
from e2e_support import FAST, kernel_config, wait_emulator
from lifecycle_chat import CLIENT, INTERNAL, MONDAY, PM, LifecycleChat
from sqlmodel import select

from bot.app import App
from bot.cli import main as dingpm
from bot.context import FrozenClock
from bot.dingtalk.custom_robot import CustomRobotSender
from bot.dingtalk.pacing import Pacer
from bot.outbox import custom_robot_target, enqueue
from domain.replies import Markdown
from handlers.features import FEATURES
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.models import OutboxMessage, OutboxState

pytestmark = [pytest.mark.timeout(120)]
LINK = re.compile(r"\[下载 Word 版周报\]\((http://[^)]+)\)")


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    return EmulatorConfig.for_tests(timeout_fault_max_hold=1.0, app_robots_in_external_groups=False)


@pytest.fixture
async def chat(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[LifecycleChat]:
    config = kernel_config(sandbox, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", tmp_path / "files",
                           dingtalk={"corp_id": sandbox.world.corp_id}, approvals={"mode": "off"},
                           organization={"leaders": ["liuqiang"]})
    app = App(config, options=FAST, clock=FrozenClock(MONDAY, tz=config.tz), features=FEATURES)
    await app.start()
    try:
        await app.stream.wait_for_status(lambda s: s.connected, timeout=10)
        await asyncio.wait_for(app.scheduler.wait_idle(), 60)
        yield LifecycleChat(sandbox, app, tmp_path / "files")
    finally:
        await asyncio.wait_for(app.stop(), 30)


async def register_robot(sandbox: Sandbox, app: App, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the administrator does: add a custom robot (加签) to the client group, give it to the bot by CLI."""
    robot = await sandbox.add_custom_robot(CLIENT, "项目周报")
    monkeypatch.setenv("DINGPM_CLIENT_ROBOT_WEBHOOK", robot.webhook)
    monkeypatch.setenv("DINGPM_CLIENT_ROBOT_SECRET", robot.secret)
    status = await asyncio.to_thread(dingpm, ["client-robot", "set", code, "--url", app.config.database.url])
    assert status == 0


async def test_the_weekly_report_reaches_the_client_group_through_its_custom_robot(
    chat: LifecycleChat, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # Not under loop_watch: rendering the report (charts, Word) in a thread holds the GIL in long stretches, as in
    # tests/e2e/test_reports_e2e.py.
    created = await chat.ask(PM, INTERNAL, f"新建项目 智慧工厂MES 客户:华东某制造集团 类型:软件 经理:@{PM}")
    code = re.search(r"已新建项目 (XM-\d{4}-\d{3})", created.text).group(1)  # type: ignore[union-attr]
    await chat.ask(PM, INTERNAL, f"绑定 {code} 内部群")
    await chat.ask(PM, INTERNAL, "立项")
    # The app's robot is not in the client group: a message there never reaches it.
    refused = await sandbox.say(PM, CLIENT, f"绑定 {code} 客户群")
    assert not refused.delivered
    unreached = await chat.ask(PM, INTERNAL, "周报 发送")
    assert "还没有绑定客户群" in unreached.text and "dingpm client-robot" in unreached.text

    await register_robot(sandbox, chat.app, code, monkeypatch)
    printed = capsys.readouterr()
    assert "已登记项目" in printed.out and "SEC" not in printed.out + printed.err
    overview = await chat.ask(PM, INTERNAL, "项目")
    assert "客户群由自定义机器人单向推送" in overview.text
    asked = await chat.ask(PM, INTERNAL, "周报 发送")
    assert "由自定义机器人推送，附 Word 下载链接" in asked.text
    [report] = await wait_emulator(sandbox, lambda em: [m for m in em.recorder.sent(sandbox.conversation_id(CLIENT))
                                                        if m.via == "custom_robot"] or None, 30)
    assert report.msgtype == "markdown" and "客户项目周报" in report.text and "内部事项" not in report.text
    await chat.app.relay.wait_idle(15)
    internal = [m for m in sandbox.sent(INTERNAL) if "项目内部周报" in (m.title or m.text or "")]
    assert internal, "the internal group gets the internal variant as before"

    # The link: works as sent, fails when altered or expired; the answers are pages, never the file.
    link = LINK.search(report.text).group(1)  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as http:
        async with http.get(link) as resp:
            assert resp.status == 200 and (await resp.read()).startswith(b"PK")
            assert "attachment" in resp.headers["Content-Disposition"]
        parts = urlsplit(link)
        query = dict(parse_qsl(parts.query))
        tampered = [link.replace(f"sig={query['sig']}", f"sig={query['sig'][::-1]}"),
                    link.replace(f"exp={query['exp']}", f"exp={int(query['exp']) + 3600}"),
                    link.replace(parts.path, parts.path.replace(code, "XM-2026-999"))]
        for altered in tampered:
            async with http.get(altered) as resp:
                assert resp.status == 403 and "下载链接无效" in await resp.text()
        relative = parts.path.removeprefix("/files/")
        expired = chat.app.links.url(chat.files_dir / unquote(relative), expires=int(query["exp"]) - 10 ** 7)
        async with http.get(expired) as resp:
            assert resp.status == 410 and "下载链接已过期" in await resp.text()


async def test_custom_robot_sends_are_paced_and_its_refusals_dead_lettered(
    chat: LifecycleChat, loop_watch, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await chat.ask(PM, INTERNAL, f"新建项目 智慧工厂MES 客户:华东某制造集团 类型:软件 经理:@{PM}")
    code = re.search(r"已新建项目 (XM-\d{4}-\d{3})", created.text).group(1)  # type: ignore[union-attr]
    await register_robot(sandbox, chat.app, code, monkeypatch)
    # The robot's minute passes on the emulator's clock: the bot's pacing waits by moving that clock on, so 25
    # messages take no real minute.
    clock = lambda: sandbox.now_ms() / 1000  # noqa: E731
    chat.app.relay.custom_robots = CustomRobotSender(chat.app.dingtalk, pacer=Pacer(18 / 60, clock=clock,
                                                                                    sleep=sandbox.advance))
    async with chat.app.relay.unit_of_work() as work:
        for n in range(25):
            await enqueue(work.session, f"burst:{n}", custom_robot_target(code), Markdown(f"第 {n} 条", f"消息 {n}"))
    await wait_emulator(sandbox, lambda em: len([m for m in em.recorder.sent(sandbox.conversation_id(CLIENT))
                                                 if m.via == "custom_robot"]) >= 25 or None, 60)
    sends = sorted(r.at for r in sandbox.call_log("robot.send"))
    assert len(sends) == 25 and all(r.error is None for r in sandbox.call_log("robot.send"))
    assert max(sum(1 for t in sends if start <= t < start + 60_000) for start in sends) <= 19
    assert sends[-1] - sends[0] >= 24 * 60_000 / 18 - 1000  # spread at 18 a minute, not in a burst

    # The administrator removes the robot: the next message is dead-lettered with what to do, not retried.
    robots = await sandbox.call(lambda: list(sandbox.emulator.custom_robots.values()))
    await sandbox.remove_custom_robot(robots[0].robot_id)
    async with chat.app.relay.unit_of_work() as work:
        await enqueue(work.session, "after-removal", custom_robot_target(code), Markdown("周报", "本周周报"))
    await chat.app.relay.wait_idle(15)
    async with chat.app.database.read() as session:
        row = (await session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == "after-removal"))).one()
    assert row.state == OutboxState.DEAD and row.attempts == 1
    assert "300005" in row.last_error and "重新添加并登记新的 webhook" in row.last_error
    assert robots[0].token not in row.last_error and robots[0].secret not in row.last_error
