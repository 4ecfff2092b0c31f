"""验收, 复盘, 交接, 归档: the closing phase, in the standard's order."""

from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path

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

from .conftest import PEOPLE, Chat, complete_current_phase, new_project

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
    assert "- ✗ **客户通讯录**：缺失，请补充" in checklist.text
    assert "- ✗ **系统升级记录表**：缺失，请补充" in checklist.text
    assert "共 13 项，已具备 11 项，缺失 2 项。" in checklist.text
    assert document.name == f"项目交接清单_{code}.docx"
    with zipfile.ZipFile(io.BytesIO(document.data)) as docx:
        assert "项目交接清单" in docx.read("word/document.xml").decode("utf-8")
    roles = await chat.rows(ProjectMember, ProjectMember.user_id == PEOPLE["after_sales"].user_id)
    assert [m.role for m in roles] == [MemberRole.AFTER_SALES]

    archived = await chat.say("admin", "归档", group=None, mentions=[])
    assert archived.outcome == "user_error"  # the project administrator in a private chat must name the project
    archived = await chat.say("admin", f"归档 项目:{code}", group=None)
    assert archived.outcome == "ok"
    summary, bundle = archived.replies
    assert f"项目 {code} 已归档并关闭" in summary.text and "已发送给项目管理员（1 人）" in summary.text
    zip_path = Path(bundle.path)
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
    assert [a for a in await chat.audit_actions() if a.startswith("project.")][-3:] == [
        "project.accept", "project.handover", "project.archive"]
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
