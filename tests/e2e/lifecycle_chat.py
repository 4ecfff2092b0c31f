"""Driving a whole project through the sandbox: people of the default world type commands in the project's groups
and send files; the real App (Stream client, inbox, unit of work, outbox relay) answers through the emulator.

``LifecycleChat.ask`` sends one message and waits for its answers in that conversation (each command answers there:
text through the session webhook, files through the OpenAPI), then for the relay to go idle, so that announcements
a command queued for the internal group are out before the next message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from e2e_support import FAST, kernel_config, wait_emulator
from sqlmodel import select

from bot.app import App
from bot.context import FrozenClock
from bot.feature import Feature
from handlers import (
    approvals,
    closing,
    deliverables,
    documents,
    help,
    members,
    phases,
    projects,
    registers,
    weekly_reports,
)
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.models import Deliverable, DeliverableStatus, Phase, Project, Recurrence

INTERNAL = "【智慧工厂MES项目】内部群"
CLIENT = "【智慧工厂MES项目】客户沟通群"
PM, ENGINEER, ENGINEER_2, SALES = "王建国", "李明", "赵磊", "陈静"
LEADER, VP, AFTER_SALES, ADMIN = "刘强", "周敏", "吴涛", "孙丽"
LIFECYCLE_FEATURES = (projects.feature, members.feature, deliverables.feature, phases.feature, registers.feature,
                      closing.feature, help.feature)
# Monday 2 November 2026, 10:00 in Shanghai: no scheduled job is due, so only our commands speak.
MONDAY = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
_CODE = re.compile(r"已新建项目 (XM-\d{4}-\d{3})")


def emulator_config() -> EmulatorConfig:
    # DingTalk delivers files sent in groups only to some bots; the lifecycle sends signed forms in the project group.
    return EmulatorConfig.for_tests(timeout_fault_max_hold=1.0, allow_group_files=True)


# With OA approvals: 立项, 暂停 and 变更 go to the leaders in the emulator, who decide there; and the features those
# need (the approval events, the weekly report, documents, the registers' export).
APPROVING_FEATURES = (*LIFECYCLE_FEATURES, approvals.feature, weekly_reports.feature, documents.feature)


async def start_lifecycle_app(sandbox: Sandbox, tmp_path: Path, features: Sequence[Feature] | None = None, *,
                              approvals: bool = False) -> App:
    config = kernel_config(
        sandbox, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", tmp_path / "files",
        approvals={"mode": "auto", "approvers": ["liuqiang", "zhoumin"]} if approvals else {"mode": "off"},
        organization={"leaders": ["liuqiang", "zhoumin"] if approvals else ["liuqiang"], "project_admins": ["sunli"],
                      "company_name": "示例数智科技有限公司"},
        dingtalk={"corp_id": sandbox.world.corp_id},
    )
    app = App(config, options=FAST, clock=FrozenClock(MONDAY, tz=config.tz),
              features=features or (APPROVING_FEATURES if approvals else LIFECYCLE_FEATURES))
    await app.start()
    if app.stream is not None:
        await app.stream.wait_for_status(lambda s: s.connected, timeout=10)
    return app


@dataclass
class Answer:
    messages: list[Any]

    @property
    def text(self) -> str:
        return "\n".join(m.text or m.title or "" for m in self.messages)

    @property
    def files(self) -> list[Any]:
        return [m for m in self.messages if m.msgtype == "file"]


@dataclass
class LifecycleChat:
    sandbox: Sandbox
    app: App
    files_dir: Path
    sent_files: dict[str, bytes] = field(default_factory=dict)

    async def ask(self, user: str, conversation: str | None, text: str, *, replies: int = 1,
                  mentions: Sequence[str] = ()) -> Answer:
        where = conversation if conversation is not None else user
        after = self.last_seq(where)
        await self.sandbox.say(user, conversation, text, mentions=mentions)
        return await self.answers(where, after, replies, text)

    async def upload(self, user: str, conversation: str | None, name: str, data: bytes) -> Answer:
        where = conversation if conversation is not None else user
        after = self.last_seq(where)
        await self.sandbox.send_file(user, conversation, data, name)
        return await self.answers(where, after, 1, name)

    async def wait_for(self, where: str, text: str, *, after: int = 0, timeout: float = 15) -> Any:
        """The first message in ``where`` (after seq ``after``) containing ``text``, waiting for it: what approvals
        and jobs send arrives on their own time."""
        cid = self.sandbox.conversation_id(where)

        def found(em: Any) -> Any:
            return next((m for m in em.recorder.sent(cid)
                         if m.seq > after and (text in (m.text or "") or text in (m.title or ""))), None)

        try:
            message = await wait_emulator(self.sandbox, found, timeout=timeout)
        except TimeoutError:
            last = [(m.seq, (m.text or m.title or "")[:200]) for m in self.sandbox.sent(where)][-3:]
            raise TimeoutError(f"no message with {text!r} in {where} after {after}; the last ones: {last}") from None
        await self.app.relay.wait_idle(15)
        return message

    def last_seq(self, where: str) -> int:
        sent = self.sandbox.sent(where)
        return sent[-1].seq if sent else 0

    def since(self, where: str, after: int) -> list[Any]:
        return [m for m in self.sandbox.sent(where) if m.seq > after]

    async def answers(self, where: str, after: int, count: int, what: str) -> Answer:
        cid = self.sandbox.conversation_id(where)
        await wait_emulator(self.sandbox, lambda em: len([m for m in em.recorder.sent(cid) if m.seq > after]) >= count,
                            timeout=15)
        await self.app.relay.wait_idle(15)  # announcements for other chats, and any reply too many, are out now
        messages = self.since(where, after)
        assert len(messages) == count, f"{what!r}: expected {count} answers, got {[m.text for m in messages]}"
        return Answer(messages)

    # ---- the database, read directly --------------------------------------------------------------------------

    async def project(self, code: str) -> Project:
        async with self.app.database.read() as session:
            return (await session.exec(select(Project).where(Project.code == code))).one()

    async def required_pending(self, code: str) -> list[Deliverable]:
        """The required one-off deliverables (and final registers) of the whole project still pending."""
        project = await self.project(code)
        async with self.app.database.read() as session:
            rows = (await session.exec(
                select(Deliverable).where(Deliverable.project_id == project.id).order_by(Deliverable.seq))).all()
        return [d for d in rows if d.required and d.status == DeliverableStatus.PENDING
                and d.recurrence in (Recurrence.NONE, Recurrence.CONTINUOUS)]

    async def gate_items(self, code: str) -> list[Deliverable]:
        """The required one-off deliverables of the current phase (and a phase beside it) still pending."""
        project = await self.project(code)
        async with self.app.database.read() as session:
            phases = (await session.exec(select(Phase).where(Phase.project_id == project.id))).all()
            gate = {p.id for p in phases if project.current_phase in (p.name, p.parallel_with)}
            rows = (await session.exec(
                select(Deliverable).where(Deliverable.project_id == project.id).order_by(Deliverable.seq))).all()
        return [d for d in rows if d.phase_id in gate and d.required and d.status == DeliverableStatus.PENDING
                and d.recurrence in (Recurrence.NONE, Recurrence.CONTINUOUS)]


async def create_project(chat: LifecycleChat, kind: str, name: str) -> str:
    answer = await chat.ask(PM, INTERNAL, f"新建项目 {name} 客户:华东某制造集团 类型:{kind} 经理:@{PM}")
    found = _CODE.search(answer.text)
    assert found, answer.text
    code = found.group(1)
    assert "本群已是" not in (await chat.ask(PM, INTERNAL, f"绑定 {code} 内部群")).text
    assert "客户群" in (await chat.ask(PM, CLIENT, f"绑定 {code} 客户群")).text
    team = await chat.ask(PM, INTERNAL, f"成员 添加 @{ENGINEER} @{ENGINEER_2} 实施工程师")
    assert f"已把 {ENGINEER}、{ENGINEER_2} 加入项目 {code}" in team.text
    assert "拓展/业务负责人" in (await chat.ask(PM, INTERNAL, f"成员 添加 @{SALES} 拓展")).text
    return code


async def work_through_phases(chat: LifecycleChat, code: str) -> list[str]:
    """Each phase but the last: the first pending document as a file sent in the group (then 「提交」), the others
    as links, then 「推进」. Returns the names of the files sent."""
    sent: list[str] = []
    while True:
        project = await chat.project(code)
        async with chat.app.database.read() as session:
            sequential = [p.name for p in (await session.exec(
                select(Phase).where(Phase.project_id == project.id, Phase.parallel_with.is_(None))  # type: ignore
                .order_by(Phase.seq))).all()]
        if project.current_phase == sequential[-1]:
            return sent
        items = await chat.gate_items(code)
        blocked = await chat.ask(PM, INTERNAL, "推进") if items else None
        if blocked is not None:
            assert "暂不能推进" in blocked.text and items[0].name in blocked.text
        for index, item in enumerate(items):
            submitter = ENGINEER if item.owner_role == "实施工程师" else PM
            if index == 0:
                file_name = f"{item.name}-终版.docx"
                asked = await chat.upload(submitter, INTERNAL, file_name, f"PK\x03\x04 {item.name}".encode())
                assert f"1. 提交 {item.name}" in asked.text, asked.text  # the best guess comes first
                done = await chat.ask(submitter, INTERNAL, f"提交 {item.name}")
                assert f"已提交《{item.name}》第 1 版（文件《{file_name}》" in done.text, done.text
                sent.append(file_name)
            else:
                done = await chat.ask(submitter, INTERNAL, f"提交 #{item.seq} https://space.dingtalk.com/s/{item.seq}")
                assert f"已提交《{item.name}》第 1 版（链接" in done.text, done.text
        moved = await chat.ask(PM, INTERNAL, "推进")
        assert "阶段完成，已进入" in moved.text, moved.text


async def close_project(chat: LifecycleChat, code: str, *, form_first: bool) -> Path:
    """验收 (with the signed form, sent before or after the command), 复盘, 交接, 归档; returns the archive path."""
    signed = b"%PDF-1.7 signed and stamped by the client"
    if form_first:
        await chat.upload(PM, INTERNAL, "验收确认单-客户签字盖章.pdf", signed)
        accepted = await chat.ask(PM, INTERNAL, "验收")
    else:
        waiting = await chat.ask(PM, INTERNAL, "验收 客户已签字")
        assert "请在 30 分钟内在这里发送客户签字盖章的" in waiting.text
        accepted = await chat.upload(PM, INTERNAL, "验收确认单-客户签字盖章.pdf", signed)
    assert "已验收" in accepted.text, accepted.text
    reviewed = await chat.ask(PM, INTERNAL, "复盘 进度总体受控；经验：设备到货要提前两周确认")
    assert "已记录项目复盘" in reviewed.text
    handed = await chat.ask(PM, INTERNAL, f"交接 @{AFTER_SALES}", replies=2)
    checklist, document = handed.messages
    assert f"接收人：{AFTER_SALES}（售后）" in (checklist.text or "") and document.msgtype == "file"
    assert document.file_name == f"项目交接清单_{code}.docx" and document.file_bytes.startswith(b"PK")
    # 归档 first lists the required documents still missing, each with the command that provides it.
    missing = [d.name for d in await chat.required_pending(code) if d.name != "电子资料存档"]
    if missing:
        refused = await chat.ask(ADMIN, INTERNAL, "归档")
        assert refused.text.startswith("项目还不能归档") and "「归档 豁免 原因:…」" in refused.text, refused.text
        assert re.findall(r"「提交 (\S+?)」", refused.text) == missing
        for name in missing:
            done = await chat.ask(PM, INTERNAL, f"提交 {name} https://space.dingtalk.com/s/closing")
            assert f"已提交《{name}》" in done.text, done.text
    admin_chat = chat.last_seq(ADMIN)
    # Answered at once; the archive is built after the command and follows in the same chat.
    archived = await chat.ask(ADMIN, INTERNAL, "归档", replies=3)
    ack, summary, bundle = archived.messages
    assert "正在生成归档包" in (ack.text or "")
    assert f"项目 {code} 已归档并关闭" in (summary.text or "") and bundle.msgtype == "file"
    assert bundle.file_name.endswith(".zip")
    # The archive also goes to the project administrator's 1:1 chat.
    [to_admin] = chat.since(ADMIN, admin_chat)
    assert to_admin.msgtype == "file" and to_admin.file_bytes == bundle.file_bytes
    closed = await chat.project(code)
    assert closed.status == "已关闭"
    zips = list((chat.files_dir / "archives").rglob("*.zip"))
    assert len(zips) == 1
    return zips[0]


async def introduce_leaders(chat: LifecycleChat, code: str) -> None:
    """The leaders look at the project once, so the bot knows their names (until issue 12's directory does)."""
    for leader in (LEADER, VP):
        assert code in (await chat.ask(leader, None, f"项目 {code}")).text


async def running_instance(chat: LifecycleChat) -> str:
    [instance] = [i for i in await chat.sandbox.instance_ids()
                  if (await chat.sandbox.instance(i))["status"] == "RUNNING"]
    return instance


async def approve(chat: LifecycleChat, what: str, remarks: tuple[str, str]) -> Any:
    """Both leaders agree to the one running instance in the emulator; returns the announcement saying ``what``."""
    after = chat.last_seq(INTERNAL)
    instance = await running_instance(chat)
    await chat.sandbox.approve(instance, LEADER, remarks[0])
    await chat.wait_for(INTERNAL, f"{LEADER} 已同意", after=after)
    await chat.sandbox.approve(instance, VP, remarks[1])
    return await chat.wait_for(INTERNAL, what, after=after)


async def approved_project(chat: LifecycleChat, *, facts: str | None = None) -> str:
    """A 软件 project whose 立项 both leaders approved (its 立项 facts set first with ``facts``); returns its code."""
    code = await create_project(chat, "软件", "智慧工厂MES")
    await introduce_leaders(chat, code)
    if facts:
        assert "已设置项目" in (await chat.ask(PM, INTERNAL, facts)).text
    submitted = await chat.ask(PM, INTERNAL, "立项 内部启动会已开", replies=2)
    assert "已提交立项申请" in submitted.text and submitted.files[0].file_name == f"项目立项申请表_{code}.docx"
    await approve(chat, "立项审批通过", ("同意立项", "预算内，同意"))
    assert (await chat.project(code)).status == "已立项"
    return code
