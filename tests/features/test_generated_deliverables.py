"""What the bot produces counts as its deliverable's submission: each week's 客户项目周报 sent to the client is a
version, an approved pause is the 项目进度变更单, 交接's 项目交接清单 the handover record, an 升级通知单 its form
(a form the client must sign is not: only the signed one counts)."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.models import Deliverable, DeliverableStatus, DeliverableVersion, ProjectStatus
from tests.docx_text import docx_text

from .conftest import Chat, new_project
from .test_approvals_support import add_project, make_world, only_instance
from .test_closing import SIGNED, to_closing_phase


async def _form(chat_or_world, name: str) -> tuple[Deliverable, list[DeliverableVersion]]:
    [form] = await chat_or_world.rows(Deliverable, Deliverable.name == name)
    return form, await chat_or_world.rows(DeliverableVersion, DeliverableVersion.deliverable_id == form.id)


async def test_each_weekly_report_sent_is_a_version(chat: Chat) -> None:
    code = await new_project(chat)
    await chat.say("pm", "立项")
    first = await chat.say("pm", "周报 发送")
    assert first.outcome == "ok" and [r.outcome.value for r in first.followups] == ["done"]
    form, [v1] = await _form(chat, "客户项目周报")
    assert form.status == DeliverableStatus.SUBMITTED
    assert v1.original_name == f"客户项目周报_{code}_2026-W10.docx" and v1.note == "2026年第10周周报，已发到客户群"
    assert (chat.files_dir / v1.file_path).read_bytes().startswith(b"PK")
    # The report does not list itself as work done: it is a record, not the week's work.
    assert "提交《客户项目周报》" not in (await chat.say("pm", "周报 预览")).text
    chat.clock.advance(timedelta(days=7))
    await chat.say("pm", "周报 发送")
    _, versions = await _form(chat, "客户项目周报")
    assert [(v.version, v.original_name) for v in versions] == [
        (1, f"客户项目周报_{code}_2026-W10.docx"), (2, f"客户项目周报_{code}_2026-W11.docx")]


async def test_a_pause_in_effect_is_the_schedule_change_form(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    assert (await chat.say("pm", "暂停 原因:客户机房改造，预计一个月")).outcome == "ok"
    form, [version] = await _form(chat, "项目进度变更单")
    assert form.status == DeliverableStatus.SUBMITTED
    assert version.note == "变更#1 项目暂停：客户机房改造，预计一个月" and version.link is None


@pytest.fixture
async def sandbox():
    async with Sandbox(config=EmulatorConfig.for_tests(), seed=5) as sb:
        yield sb


async def test_an_approved_pause_links_its_approval(sandbox, sqlite_db, tmp_path) -> None:
    async with aiohttp.ClientSession() as http:
        world = await make_world(sandbox, sqlite_db, http, tmp_path)
        await add_project(world, status=ProjectStatus.IN_PROGRESS)
        assert (await world.say("pm", "暂停 客户机房改造")).outcome == "ok"
        await world.feed()
        pending, _ = await _form(world, "项目进度变更单")
        assert pending.status == DeliverableStatus.PENDING  # not before it is approved
        instance_id = only_instance(await sandbox.instance_ids())
        await sandbox.approve(instance_id, "刘强", "同意暂停")
        await world.feed()
        form, [version] = await _form(world, "项目进度变更单")
    assert (await world.project()).status == ProjectStatus.PAUSED
    assert form.status == DeliverableStatus.SUBMITTED and f"procInstId={instance_id}" in version.link
    assert version.note.startswith("变更#1 项目暂停：客户机房改造")


async def test_the_handover_list_is_the_handover_record(chat: Chat) -> None:
    code = await to_closing_phase(chat)
    await chat.send_file("pm", "验收确认单.jpg", SIGNED)
    await chat.say("pm", "验收")
    await chat.say("pm", "交接 @孙售后", mentions=["after_sales"])
    form, [version] = await _form(chat, "内部交接会议记录")
    assert form.status == DeliverableStatus.SUBMITTED and version.original_name == f"项目交接清单_{code}.docx"
    assert "需要交接的项目资料" in docx_text((chat.files_dir / version.file_path).read_bytes())


async def test_an_upgrade_notice_is_filed_a_confirmation_waits_for_the_signature(chat: Chat) -> None:
    code = await new_project(chat)
    notice = await chat.say("engineer", "升级 v2.4.0 常规性能优化")
    assert "已作为《系统升级通知单》第 1 版提交。" in notice.text
    form, [version] = await _form(chat, "系统升级通知单")
    assert form.status == DeliverableStatus.SUBMITTED and version.original_name == f"系统升级通知单_{code}_v2.4.0.docx"
    confirmation = await chat.say("engineer", "升级 v2.3.1 修复报表导出乱码 确认")
    assert "已作为" not in confirmation.text and "请把确认单交客户签字后" in confirmation.text
    form, versions = await _form(chat, "系统升级确认单")
    assert form.status == DeliverableStatus.PENDING and versions == []
