"""Project state transitions: 立项 decided, paused, accepted (验收), and the guards that say when each may happen.

Plain functions of the session (or of a command's `CommandScope`), so a command, an approval event and a job reach
the same rule: 立项 and 暂停 take effect here when approvals are off and when their approval completes.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from domain.changes import change_context, ensure_not_closed, record_change
from domain.errors import Conflict
from domain.file_store import StagedFile
from domain.labels import fmt_day, project_label
from domain.ports import CommandScope
from domain.submissions import file_generated, flagged_deliverable, submit_deliverable, submitted_text
from storage.models import ACTIVE_PROJECT_STATUSES, Deliverable, Phase, Project, ProjectStatus, RegisterEntry, RegisterStatus
from storage.repo import list_deliverables, list_phases
from storage.templates import DeliverableFlag

PAUSE_KIND = "暂停"  # RegisterEntry.extra["类型"] of the 项目进度变更单 entries
ACCEPTANCE, ARCHIVE = "acceptance", "archive"


def sequential(phases: list[Phase]) -> list[Phase]:
    return [p for p in phases if p.parallel_with is None]


def status_after_resume(project: Project, phases: list[Phase]) -> ProjectStatus:
    """进行中 once the first phase is behind; in the first phase the project is 已立项 (pausing needs that)."""
    first = sequential(phases)[0]
    return ProjectStatus.APPROVED if project.current_phase == first.name else ProjectStatus.IN_PROGRESS


# ---- 立项 -------------------------------------------------------------------------------------------------------


async def apply_initiation_decision(
    session: Any, project: Project, *, approved: bool, today: date, actor: str | None = None,
    actor_name: str | None = None, origin_conversation: str | None = None, remark: str | None = None,
) -> None:
    """The effect of the 立项 decision: 已立项 (work may start) or 已驳回. Called by 立项 itself when approvals are
    off, and by the approvals feature when the 项目立项申请 instance completes."""
    before = {"status": str(project.status)}
    project.status = ProjectStatus.APPROVED if approved else ProjectStatus.REJECTED
    if approved:
        project.actual_start = project.actual_start or today
        phases = await list_phases(session=session, project_id=project.id)
        first = sequential(phases)[0]
        if first.actual_start is None:
            first.actual_start = today
            session.add(first)
    session.add(project)
    summary = "项目已立项，可以正式开展实施" if approved else "项目立项未通过" + (f"：{remark}" if remark else "")
    await record_change(
        session, project, action="project.initiation_approved" if approved else "project.initiation_rejected",
        summary=summary, key=f"project-initiation:{project.code}:{'approved' if approved else 'rejected'}",
        entity="project", entity_id=project.id, before=before, after={"status": str(project.status)},
        actor=actor, actor_name=actor_name, origin_conversation=origin_conversation,
    )


# ---- 暂停 ---------------------------------------------------------------------------------------------------------


async def apply_pause(
    session: Any, project: Project, entry: RegisterEntry, *, now: datetime, actor: str | None = None,
    actor_name: str | None = None, origin_conversation: str | None = None, link: str | None = None,
) -> None:
    """Pause the project (the effect of an approved 项目进度变更单 ``entry``): its clock stops, so reminders and
    weekly reports stop (they only run for 已立项/进行中 projects) until 恢复. The approved request is the
    项目进度变更单 deliverable's next version (``link``: its approval in DingTalk, when it went through one)."""
    before = {"status": str(project.status)}
    project.status = ProjectStatus.PAUSED
    project.paused_at = now
    session.add(project)
    entry.status = RegisterStatus.APPROVED
    session.add(entry)
    form = await flagged_deliverable(session, project, DeliverableFlag.PAUSE_REQUEST)
    if form is not None:
        await file_generated(session, files_dir=None, project=project, deliverable=form,
                             submitted_by=entry.created_by, now=now, link=link,
                             note=f"变更#{entry.seq} 项目暂停：{entry.content or entry.title}")
    await record_change(
        session, project, action="project.pause", summary=f"项目暂停：{entry.content or entry.title}",
        key=f"project-paused:{project.code}:{entry.seq}", entity="project", entity_id=project.id, before=before,
        after={"status": str(project.status), "change": entry.seq}, actor=actor, actor_name=actor_name,
        origin_conversation=origin_conversation,
    )


# ---- 验收 ---------------------------------------------------------------------------------------------------------


async def flagged_deliverables(ctx: CommandScope, project: Project, flag: str) -> list[Deliverable]:
    return [d for d in await list_deliverables(session=ctx.session, project_id=project.id) if d.has_flag(flag)]


async def ensure_in_last_phase(ctx: CommandScope, project: Project, doing: str) -> None:
    phases = sequential(await list_phases(session=ctx.session, project_id=project.id))
    last = phases[-1].name
    if project.current_phase != last:
        raise Conflict(f"项目当前在「{project.current_phase}」阶段，{doing}要在「{last}」阶段进行：请先「推进」到{last}阶段。")


async def ensure_acceptable(ctx: CommandScope, project: Project) -> None:
    ensure_not_closed(project)
    if project.status == ProjectStatus.ACCEPTED:
        raise Conflict(f"项目 {project_label(project)} 已经验收了。接下来：「复盘 总结」「交接 @售后」「归档」。")
    if project.status == ProjectStatus.PAUSED:
        raise Conflict(f"项目 {project_label(project)} 已暂停，请先「恢复」再验收。")
    if project.status not in ACTIVE_PROJECT_STATUSES:
        raise Conflict(f"项目 {project_label(project)} 尚未立项（{project.status}），不能验收。")
    await ensure_in_last_phase(ctx, project, "验收")


def ensure_accepted(project: Project, doing: str) -> None:
    ensure_not_closed(project)
    if project.status != ProjectStatus.ACCEPTED:
        raise Conflict(f"项目 {project_label(project)} 还没有验收（{project.status}），{doing}要在验收之后："
                       "请先发送客户签字盖章的《项目验收确认单》，再发送「验收」。")


async def accept_with_file(ctx: CommandScope, project: Project, staged: StagedFile | None, *, note: str | None = None) -> str:
    """Make the project 已验收, storing ``staged`` as the signed acceptance form (also reached from the file intake
    when 「验收」 came first)."""
    await ensure_acceptable(ctx, project)
    forms = await flagged_deliverables(ctx, project, ACCEPTANCE)
    submitted = ""
    if forms and staged is not None:
        version = await submit_deliverable(ctx, project, forms[0], staged=staged, note=note)
        submitted = submitted_text(forms[0], version)
    today = ctx.today()
    before = {"status": str(project.status)}
    project.status = ProjectStatus.ACCEPTED
    project.actual_end = today
    ctx.session.add(project)
    await record_change(
        ctx.session, project, action="project.accept", summary="项目通过验收，正式结束实施",
        key=f"project-accepted:{project.code}", entity="project", entity_id=project.id, before=before,
        after={"status": str(project.status), "actual_end": today.isoformat()}, **change_context(ctx),
    )
    return (f"{submitted}项目 {project_label(project)} 已验收（{fmt_day(today)}）。"
            "接下来：「复盘 总结」、「交接 @售后」、「归档」。")
