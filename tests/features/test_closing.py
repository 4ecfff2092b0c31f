"""验收, 复盘, 交接, 归档: the closing phase, in the standard's order."""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

from bot.scheduler import RunOutcome
from domain import archive_service
from storage.models import (
    Deliverable,
    DeliverableStatus,
    DeliverableVersion,
    MemberRole,
    OutboxMessage,
    ProjectMember,
    ProjectStatus,
    RegisterEntry,
    RegisterKind,
)

from .conftest import PEOPLE, Chat, Said, complete_current_phase, new_project

SIGNED = b"\xff\xd8\xff\xe0 signed and stamped acceptance form"


async def to_closing_phase(chat: Chat) -> str:
    code = await new_project(chat)
    await chat.say("pm", "立项")
    for _ in range(3):
        await complete_current_phase(chat)
        assert (await chat.say("pm", "推进")).outcome == "ok"
    assert (await chat.project()).current_phase == "收尾"
    return code


async def test_acceptance_needs_the_closing_phase(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    early = await chat.say("pm", "验收")
    assert early.outcome == "conflict" and "验收要在「收尾」阶段进行：请先「推进」到收尾阶段" in early.text


async def test_the_closing_phase_from_acceptance_to_archive(chat: Chat) -> None:
    code = await to_closing_phase(chat)
    await chat.send_file("pm", "验收确认单-签字盖章.jpg", SIGNED)
    accepted = await chat.say("pm", "验收 客户已签字盖章")
    assert accepted.outcome == "ok"
    assert accepted.text.startswith("已提交《项目验收确认单》第 1 版（文件《验收确认单-签字盖章.jpg》")
    assert "已验收（3月2日(周一)）。接下来：「复盘 总结」、「交接 @售后」、「归档」。" in accepted.text
    project = await chat.project()
    assert project.status == ProjectStatus.ACCEPTED and project.actual_end == date(2026, 3, 2)
    form = (await chat.rows(Deliverable, Deliverable.name == "项目验收确认单"))[0]
    [version] = await chat.rows(DeliverableVersion, DeliverableVersion.deliverable_id == form.id)
    assert (chat.files_dir / version.file_path).read_bytes() == SIGNED
    assert (await chat.say("pm", "验收")).outcome == "conflict"

    reviewed = await chat.say("pm", "复盘 接口联调晚了两周；经验：立项时把接口文档列入客户义务")
    assert reviewed.outcome == "ok" and "已记录项目复盘（会议记录#1），并作为《复盘记录》提交" in reviewed.text
    record = (await chat.rows(Deliverable, Deliverable.name == "复盘记录"))[0]
    assert record.status == DeliverableStatus.SUBMITTED
    [meeting] = await chat.rows(RegisterEntry, RegisterEntry.kind == RegisterKind.MEETING)
    assert meeting.meeting_type == "复盘会"

    not_yet = await chat.say("pm", "归档")
    assert not_yet.outcome == "conflict" and "请先「交接 @售后」" in not_yet.text
    handed = await chat.say("pm", "交接 @孙售后", mentions=["after_sales"])
    assert handed.outcome == "ok"
    checklist, document = handed.replies
    assert "接收人：孙售后（售后）" in checklist.text
    assert "- ✓ **项目验收确认单**：项目验收确认单：验收确认单-签字盖章.jpg（第1版）" in checklist.text
    # 客户通讯录 comes from the project's client contacts (陈客户 is one), so it is not a dead end any more.
    assert "- ✓ **客户通讯录**：客户联系人：陈客户" in checklist.text
    assert "- ✗ **系统升级记录表**：缺失，请补充：「提交 升级记录表」或「升级 〈版本〉 …」" in checklist.text
    assert "共 13 项，已具备 12 项，缺失 1 项。" in checklist.text
    assert "《项目交接清单》已作为《内部交接会议记录》第 1 版提交。" in checklist.text
    assert document.name == f"项目交接清单_{code}.docx"
    with zipfile.ZipFile(io.BytesIO(document.data)) as docx:
        assert "项目交接清单" in docx.read("word/document.xml").decode("utf-8")
    roles = await chat.rows(ProjectMember, ProjectMember.user_id == PEOPLE["after_sales"].user_id)
    assert [m.role for m in roles] == [MemberRole.AFTER_SALES]

    # 归档 first checks that nothing required is missing, and says what provides each gap.
    gaps = await chat.say("pm", "归档")
    assert gaps.outcome == "conflict" and gaps.text.startswith("项目还不能归档：有 2 项必交交付物既未提交也未豁免：")
    assert "实施过程文档（收尾）：「提交 实施过程文档」" in gaps.text and "纸质资料存档（收尾）：「提交 纸质资料存档」" in gaps.text
    assert "「归档 豁免 原因:…」" in gaps.text and (await chat.project()).status == ProjectStatus.ACCEPTED
    assert (await chat.say("pm", "提交 实施过程文档 https://docs.example.com/process")).outcome == "ok"
    assert (await chat.say("pm", "豁免 纸质资料存档 原因:客户只要电子版")).outcome == "ok"
    archived = await chat.say("admin", "归档", group=None, mentions=[])
    assert archived.outcome == "user_error"  # the project administrator in a private chat must name the project
    archived = await chat.say("admin", f"归档 项目:{code}", group=None)
    assert archived.outcome == "ok"
    # Answered at once; the archive is built right after the command, outside its transaction, and arrives as a
    # follow-up in the chat that asked.
    assert "已归档并关闭，不能再修改。正在生成归档包" in archived.text and "完成后发到这里，并发送给项目管理员" in archived.text
    assert [(r.job, r.outcome) for r in archived.followups] == [("project_archive", RunOutcome.DONE)]
    sent = {r.idempotency_key: r for r in await chat.outbox()}
    summary, bundle = sent[f"archive:{code}:summary"], sent[f"archive:{code}:file"]
    assert summary.target_ids == bundle.target_ids == [PEOPLE["admin"].user_id]
    summary_text = summary.params["msgParam"]["text"]
    assert f"项目 {code} 已归档并关闭" in summary_text and "已发送给项目管理员（1 人）" in summary_text
    zip_path = Path(bundle.attachment_path)
    assert zip_path.is_relative_to(chat.files_dir) and zip_path.suffix == ".zip"
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    assert any(n.endswith("验收确认单-签字盖章.jpg") and n.startswith("05-收尾/") for n in names)
    assert "索引.md" in names and "项目管理记录/操作日志.csv" in names
    project = await chat.project()
    assert project.status == ProjectStatus.CLOSED
    electronic = (await chat.rows(Deliverable, Deliverable.name == "电子资料存档"))[0]
    assert electronic.status == DeliverableStatus.SUBMITTED
    [to_admins] = [r for r in await chat.rows(OutboxMessage) if r.idempotency_key == f"archive:{code}"]
    assert to_admins.target_ids == [PEOPLE["admin"].user_id] and to_admins.attachment_path == str(zip_path)
    assert [a for a in await chat.audit_actions() if a.startswith("project.")][-4:] == [
        "project.accept", "project.handover", "project.archive", "project.archive_built"]
    # A closed project changes no more.
    closed = await chat.say("engineer", "日志 还想记一笔")
    assert closed.outcome == "conflict" and "已归档关闭，不能再修改" in closed.text
    assert (await chat.say("pm", "交付物")).outcome == "ok"  # still readable


async def test_acceptance_first_then_the_signed_form(chat: Chat) -> None:
    await to_closing_phase(chat)
    waiting = await chat.say("pm", "验收")
    assert "请在 30 分钟内在这里发送客户签字盖章的《项目验收确认单》" in waiting.text
    assert (await chat.project()).status == ProjectStatus.IN_PROGRESS
    done = await chat.send_file("pm", "scan.pdf", b"%PDF signed")
    assert done.outcome == "ok" and "已验收" in done.text
    assert (await chat.project()).status == ProjectStatus.ACCEPTED


async def test_closing_steps_are_for_the_pm_and_after_acceptance(chat: Chat) -> None:
    await to_closing_phase(chat)
    assert (await chat.say("engineer", "验收")).outcome == "denied"
    review_early = await chat.say("pm", "复盘 还没验收")
    assert review_early.outcome == "conflict" and "复盘要在验收之后" in review_early.text
    handover_early = await chat.say("pm", "交接 @孙售后", mentions=["after_sales"])
    assert handover_early.outcome == "conflict"
    nobody = await chat.say("pm", "交接")
    assert nobody.outcome == "usage_error" and "例如：交接 @孙八" in nobody.text


async def test_other_commands_are_answered_while_the_archive_is_built(chat: Chat, monkeypatch) -> None:
    code = await to_closing_phase(chat)
    await chat.send_file("pm", "验收确认单.jpg", SIGNED)
    assert (await chat.say("pm", "验收")).outcome == "ok"
    assert (await chat.say("pm", "交接 @孙售后", mentions=["after_sales"])).outcome == "ok"
    loop = asyncio.get_running_loop()
    answered: list[Said] = []
    real_build = archive_service.build_archive

    def build_while_someone_else_asks(*args: Any, **kwargs: Any) -> Any:
        # A command from another user while the zip is being written (this runs in the build thread): were the
        # build inside 归档's write transaction, that command would wait for it, and the build for the command.
        answered.append(asyncio.run_coroutine_threadsafe(chat.say("engineer", "交付物"), loop).result(timeout=10))
        return real_build(*args, **kwargs)

    monkeypatch.setattr(archive_service, "build_archive", build_while_someone_else_asks)
    archived = await chat.say("pm", "归档 豁免 原因:过程文档与纸质资料已线下移交")
    assert archived.outcome == "ok" and [r.outcome for r in archived.followups] == [RunOutcome.DONE]
    [other] = answered
    assert other.outcome == "ok" and "交付物" in other.text
    # The archive arrives once, however often its run is started again (a restart, a sweep).
    assert (await chat.scheduler.run_requested("project_archive", code)).outcome == RunOutcome.ALREADY_CLAIMED
    assert [r.idempotency_key for r in await chat.outbox() if r.idempotency_key.startswith("archive:")] == [
        f"archive:{code}", f"archive:{code}:summary", f"archive:{code}:file"]
    assert len(list((chat.files_dir / "archives").rglob("*.zip"))) == 1
