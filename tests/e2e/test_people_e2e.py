"""People as DingTalk knows them, end to end: the real App (Stream client, inbox, the contacts walk at start, outbox
relay) against the emulator's world, whose client group holds the client's people (another organization, no
staffId) and whose company has two 张伟.

* A client contact in the client group is one by default, sees the overview and the client weekly preview, never the
  internal ones; the PM removes and adds one back by @ there.
* A PM creates a project in a 1:1 chat naming people without @; an ambiguous name lists the candidates; a mobile
  of nobody and someone who left get their answers, and nothing changes.
* Approvals, documents and the archive show names, not ids, for people who never wrote to the bot.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from docx import Document
from e2e_support import FAST, kernel_config, wait_emulator
from lifecycle_chat import CLIENT, INTERNAL, MONDAY, PM, LifecycleChat
from sqlmodel import select

from bot.app import App
from bot.context import FrozenClock
from domain.archive_service import archive_command
from handlers.features import FEATURES
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.models import Approval, ProjectMember

pytestmark = [pytest.mark.timeout(120)]
# Imported now, not inside the fixture: importing every feature is no work for the event loop the test watches.
CODE = re.compile(r"已新建项目 (XM-\d{4}-\d{3})")


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    return EmulatorConfig.for_tests(timeout_fault_max_hold=1.0)


@pytest.fixture
async def chat(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[LifecycleChat]:
    """Every feature, approvals through the emulator's workflow, leaders 刘强 and 周敏; the day's contacts walk has
    run (at start) before the test speaks. Tests take ``loop_watch`` after this fixture: what they do is watched,
    not the start-up jobs of every feature (their first statements compile)."""
    config = kernel_config(
        sandbox, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", tmp_path / "files",
        dingtalk={"corp_id": sandbox.world.corp_id},
        approvals={"mode": "auto", "reconcile_after_minutes": 30},
        organization={"leaders": ["liuqiang", "zhoumin"], "project_admins": ["sunli"]},
    )
    app = App(config, options=FAST, clock=FrozenClock(MONDAY, tz=config.tz), features=FEATURES)
    await app.start()
    try:
        await app.stream.wait_for_status(lambda s: s.connected, timeout=10)
        await asyncio.wait_for(app.scheduler.wait_idle(), 60)
        await app.relay.wait_idle(15)
        yield LifecycleChat(sandbox, app, tmp_path / "files")
    finally:
        await asyncio.wait_for(app.stop(), 30)


async def new_project(chat: LifecycleChat, name: str = "智慧工厂MES") -> str:
    answer = await chat.ask(PM, INTERNAL, f"新建项目 {name} 客户:华东某制造集团 类型:软件 经理:@{PM}")
    code = CODE.search(answer.text).group(1)  # type: ignore[union-attr]
    await chat.ask(PM, INTERNAL, f"绑定 {code} 内部群")
    bound = await chat.ask(PM, CLIENT, f"绑定 {code} 客户群")
    assert "群里其他单位的成员默认是客户联系人" in bound.text and "本群不显示内部内容" in bound.text
    await asyncio.wait_for(chat.app.scheduler.wait_idle(), 30)  # the client group's members, read at once
    return code


async def test_a_client_contact_in_the_client_group_sees_the_client_view(chat: LifecycleChat, loop_watch) -> None:
    code = await new_project(chat)
    await chat.ask(PM, INTERNAL, "风险 新增 甲方付款可能延迟 概率:中 影响:高 应对:规避")
    overview = await chat.ask("黄蕾", CLIENT, "项目")
    assert f"#### {code} 智慧工厂MES" in overview.text and "客户群由本机器人送达" in overview.text
    assert "群：内部群" not in overview.text and "商务合同" not in overview.text
    preview = await chat.ask("黄蕾", CLIENT, "周报 预览", replies=2)
    report, chart = preview.messages
    assert "客户项目周报" in (report.title or "") and "内部事项" not in report.text and chart.msgtype == "image"
    assert "甲方付款可能延迟" not in report.text
    internal = await chat.ask("黄蕾", CLIENT, "周报 预览 内部")
    assert "不能在客户群预览" in internal.text
    help_ = await chat.ask("黄蕾", CLIENT, "帮助")
    assert "客户联系人可用的命令" in help_.text and "**立项**" not in help_.text
    risks = await chat.ask(PM, CLIENT, "风险 列表")
    assert "客户群里不显示内部内容" in risks.text and "甲方付款" not in risks.text

    # The PM takes 高翔 away and adds him back, by @ in the client group (he arrives with a dingtalkId only).
    removed = await chat.ask(PM, CLIENT, "成员 移除 @高翔", mentions=["gaoxiang"])
    assert "已移除 高翔 的角色：客户" in removed.text
    assert "无（不是本项目成员）" in (await chat.ask("高翔", CLIENT, "交付物")).text
    added = await chat.ask(PM, CLIENT, "成员 添加 @高翔 客户联系人", mentions=["gaoxiang"])
    assert "已把 高翔 加入项目" in added.text
    deliverables = await chat.ask("高翔", CLIENT, "交付物")
    assert "会议记录表" in deliverables.text and "商务合同" not in deliverables.text
    members = await chat.ask(PM, INTERNAL, "成员")
    assert re.search(r"\*\*客户\*\*：.*黄蕾（华东某制造集团）", members.text), members.text
    assert "许晴" in members.text  # a personal DingTalk user in the client group: a client contact too
    # Nothing ever went 1:1 to someone of another organization.
    async with chat.app.database.read() as session:
        clients = (await session.exec(select(ProjectMember).where(ProjectMember.role == "客户"))).all()
    assert {m.user_id.startswith("ext:") for m in clients} == {True} and len(clients) == 3


async def test_a_pm_works_in_a_private_chat_naming_people_without_at(chat: LifecycleChat, loop_watch,
                                                                    sandbox: Sandbox) -> None:
    created = await chat.ask(PM, None, "新建项目 仓储RFID二期 客户:某某物流 类型:软件 经理:王建国")
    code = CODE.search(created.text).group(1)  # type: ignore[union-attr]
    assert "项目经理：王建国" in created.text
    added = await chat.ask(PM, None, f"成员 添加 李明 赵磊 实施工程师 项目:{code}")
    assert "已把 李明、赵磊 加入项目" in added.text
    ambiguous = await chat.ask(PM, None, f"成员 添加 张伟 质控 项目:{code}")
    assert "「张伟」对应 2 个人" in ambiguous.text
    assert "张伟（测试组·测试工程师）" in ambiguous.text and "张伟（销售部·售前顾问）" in ambiguous.text
    assert re.search(r"请写 名字\(部门\)，例如 张伟\((测试组|销售部)\)；或写手机号", ambiguous.text)
    picked = await chat.ask(PM, None, f"成员 添加 张伟(测试组) 质控 项目:{code}")
    assert "已把 张伟 加入项目" in picked.text
    by_mobile = await chat.ask(PM, None, f"成员 添加 13800010010 拓展 项目:{code}")
    assert "已把 张伟 加入项目" in by_mobile.text and "拓展/业务负责人" in by_mobile.text
    nobody = await chat.ask(PM, None, f"成员 添加 13999999999 拓展 项目:{code}")
    assert "通讯录里没有手机号为 13999999999 的人" in nobody.text

    # 赵磊 leaves the company; the next night's walk notices it.
    await sandbox.update_user("zhaolei", active=False)
    [walk] = await chat.app.scheduler.run_due(MONDAY + timedelta(days=1), jobs=["directory_sync"])
    assert walk.outcome == "done"
    left = await chat.ask(PM, None, f"成员 添加 赵磊 售后 项目:{code}")
    assert "赵磊 已离职，不能指定为「成员」" in left.text
    listed = await chat.ask(PM, None, f"成员 项目:{code}")
    assert "赵磊（已离职）" in listed.text
    async with chat.app.database.read() as session:
        project_members = {(m.user_id, m.role) for m in (await session.exec(select(ProjectMember))).all()}
    assert project_members >= {("liming", "实施工程师"), ("zhaolei", "实施工程师"), ("zhangwei", "质控"),
                               ("zhangwei.sales", "拓展/业务负责人")}
    assert ("zhaolei", "售后") not in project_members  # the refused ones changed nothing


async def test_approvals_documents_and_the_archive_show_names(chat: LifecycleChat, loop_watch, sandbox: Sandbox,
                                                              tmp_path: Path) -> None:
    code = await new_project(chat)
    submitted = await chat.ask(PM, INTERNAL, "立项 内部启动会已开", replies=2)
    assert "审批人：刘强 → 周敏" in submitted.text and "liuqiang" not in submitted.text
    form = submitted.files[0]
    text = "\n".join(p.text for p in Document(io.BytesIO(form.file_bytes)).paragraphs)
    text += "\n".join(c.text for t in Document(io.BytesIO(form.file_bytes)).tables for r in t.rows for c in r.cells)
    assert "王建国" in text and "wangjianguo" not in text
    await wait_emulator(sandbox, lambda em: em.workflow.instances or None)
    [instance_id] = await sandbox.instance_ids()
    for approver in ("刘强", "周敏"):
        await sandbox.approve(instance_id, approver, "同意")
    await wait_emulator(sandbox, lambda em: any("立项审批通过" in (m.text or "") for m in em.recorder.sent(
        sandbox.conversation_id(INTERNAL))) or None, 15)
    decided = next(m for m in sandbox.sent(INTERNAL) if "立项审批通过" in (m.text or ""))
    assert "刘强" in decided.text and "周敏" in decided.text and "zhoumin" not in decided.text
    async with chat.app.database.read() as session:
        assert (await session.exec(select(Approval))).one().status == "已完成"

    out = tmp_path / "archive.zip"
    assert await archive_command(chat.app.config, code, out, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    with zipfile.ZipFile(out) as archive:
        [log_name] = [n for n in archive.namelist() if n.endswith(".csv")]
        rows = list(csv.reader(io.StringIO(archive.read(log_name).decode("utf-8-sig"))))
    actors = {row[1] for row in rows[1:]}
    # Names, with the id beside them for the auditor; never a bare id.
    assert "王建国（wangjianguo）" in actors and not actors & {"wangjianguo", "liuqiang", "zhoumin"}, actors


async def test_a_group_with_outsiders_bound_as_internal_answers_nothing_internal(chat: LifecycleChat, loop_watch) -> None:
    answer = await chat.ask(PM, INTERNAL, f"新建项目 智慧工厂MES 客户:华东某制造集团 类型:软件 经理:@{PM}")
    code = CODE.search(answer.text).group(1)  # type: ignore[union-attr]
    # Nobody of the client has spoken in the client group yet: binding it as the internal group goes through, and
    # the member list read right after shows who else is in it.
    bound = await chat.ask(PM, CLIENT, f"绑定 {code} 内部群")
    assert "已把本群绑定为项目" in bound.text
    await asyncio.wait_for(chat.app.scheduler.wait_idle(), 30)
    await chat.app.relay.wait_idle(15)
    notice = chat.sandbox.sent(CLIENT)[-1]
    assert f"本群有其他单位的成员，已不再是项目 {code} 的内部群" in (notice.text or "")
    assert (await chat.project(code)).internal_conversation_id is None  # nothing internal is pushed there
    refused = await chat.ask(PM, CLIENT, f"风险 列表 项目:{code}")
    assert "客户群里不显示内部内容" in refused.text
    again = await chat.ask(PM, CLIENT, f"绑定 {code} 内部群")
    assert "不能作为内部群" in again.text
    assert "群：内部群" not in (await chat.ask(PM, CLIENT, f"项目 {code}")).text  # the client's view there
