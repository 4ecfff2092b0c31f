"""Project state transitions: 立项 decided, 推进 (the phase gate), paused, resumed, accepted (验收), and the guards
that say when each may happen.

Plain functions of the session (or of a command's `CommandScope`), so a command, an approval event and a job reach
the same rule: 立项 and 暂停 take effect here when approvals are off and when their approval completes.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.changes import change_context, ensure_not_closed, record_change
from domain.errors import Conflict
from domain.file_store import StagedFile
from domain.labels import calendar_caveat, fmt_day, names_of, project_label, who
from domain.ports import CommandScope
from domain.report_data import PROGRESS_RECURRENCES, counts_toward_progress, local_date
from domain.schedule_moves import move_remaining
from domain.submissions import (
    end_waits,
    file_generated,
    flagged_deliverable,
    mark_waived,
    submit_deliverable,
    submitted_text,
)
from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    AuditLog,
    Deliverable,
    DeliverableStatus,
    Phase,
    Project,
    ProjectStatus,
    RegisterEntry,
    RegisterKind,
    RegisterStatus,
)
from storage.repo import (
    list_deliverables,
    list_phases,
    list_register_entries,
    write_audit,
)
from storage.templates import DeliverableFlag

PAUSE_KIND = "暂停"  # RegisterEntry.extra["类型"] of the 项目进度变更单 entries
HANDOVER_ACTION = "project.handover"
MAX_GAPS_LISTED = 15


def sequential(phases: list[Phase]) -> list[Phase]:
    return [p for p in phases if p.parallel_with is None]


def status_after_resume(project: Project, phases: list[Phase]) -> ProjectStatus:
    """进行中 once the first phase is behind; in the first phase the project is 已立项 (pausing needs that)."""
    first = sequential(phases)[0]
    return ProjectStatus.APPROVED if project.current_phase == first.name else ProjectStatus.IN_PROGRESS


# ---- 立项 -------------------------------------------------------------------------------------------------------


async def apply_initiation_decision(
    session: AsyncSession, project: Project, *, approved: bool, today: date, actor: str | None = None,
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


# ---- 推进 ---------------------------------------------------------------------------------------------------------


def first_phase_gate(project: Project) -> None:
    if project.status == ProjectStatus.PENDING_APPROVAL:
        raise Conflict("立项审批尚未通过，不能离开启动阶段。审批通过后再发送「推进」。")
    if project.status == ProjectStatus.REJECTED:
        raise Conflict("立项未通过审批，不能离开启动阶段。请调整后重新发送「立项」。")
    if project.status not in ACTIVE_PROJECT_STATUSES:
        raise Conflict("项目尚未立项，不能离开启动阶段。请项目经理先发送「立项」（内部启动会后提交公司领导审批）。")


async def advance_to_next_phase(ctx: CommandScope, project: Project) -> str:
    """推进: leave the current phase for the next once its gate is open (every required deliverable of the phase and
    of the phases alongside it submitted or waived; 立项 done for the first phase); ``Conflict`` listing what is
    missing otherwise. ``project`` is locked by the caller."""
    ensure_not_closed(project)
    if project.status == ProjectStatus.PAUSED:
        raise Conflict(f"项目 {project_label(project)}已暂停，请先发送「恢复」再推进阶段。")
    if project.status == ProjectStatus.ACCEPTED:
        raise Conflict("项目已验收，处于收尾阶段：接下来是「复盘」「交接 @售后」「归档」。")
    phases = await list_phases(session=ctx.session, project_id=project.id)
    order = sequential(phases)
    current = next((p for p in order if p.name == project.current_phase), order[0])
    index = order.index(current)
    if index == len(order) - 1:
        raise Conflict(f"「{current.name}」已是最后一个阶段：请完成「验收」「复盘」「交接 @售后」「归档」。")
    if index == 0:
        first_phase_gate(project)
    gate = [current, *(p for p in phases if p.parallel_with == current.name)]
    deliverables = await list_deliverables(session=ctx.session, project_id=project.id, phase_ids=[p.id for p in gate])
    # The gate counts exactly what the progress figure counts (one definition, in report_data).
    missing = [d for d in deliverables if d.required and d.recurrence in PROGRESS_RECURRENCES
               and d.status == DeliverableStatus.PENDING]
    today = ctx.today()
    if missing:
        names = await names_of(ctx.session, [d.owner_user_id for d in missing])
        lines = [f"「{current.name}」阶段还有 {len(missing)} 项必交的交付物未完成，暂不能推进："]
        lines += [f"- #{d.seq} {d.name}：{who(names, d.owner_user_id)}，截止 {fmt_day(d.due_date, today)}"
                  for d in missing[:15]]
        if len(missing) > 15:
            lines.append(f"……另有 {len(missing) - 15} 项，发送「交付物」查看。")
        lines.append("提交它们（「提交 交付物名称」），或由项目经理「豁免 交付物名称 原因:…」后再推进。")
        raise Conflict("\n".join(lines))
    following = order[index + 1]
    now = ctx.clock.now()
    for phase in gate:
        phase.actual_end = today
        phase.gate_passed_by = ctx.incoming.sender_id
        phase.gate_passed_at = now
        ctx.session.add(phase)
    for phase in (following, *(p for p in phases if p.parallel_with == following.name)):
        phase.actual_start = phase.actual_start or today
        ctx.session.add(phase)
    before = {"phase": current.name, "status": str(project.status)}
    project.current_phase = following.name
    project.status = ProjectStatus.IN_PROGRESS
    ctx.session.add(project)
    await record_change(
        ctx.session, project, action="phase.advance", summary=f"「{current.name}」阶段完成，进入「{following.name}」阶段",
        key=f"phase-advanced:{project.code}:{current.seq}", entity="phase", entity_id=following.id, before=before,
        after={"phase": following.name, "status": str(project.status)}, **change_context(ctx),
    )
    next_items = await list_deliverables(session=ctx.session, project_id=project.id, phase_ids=[following.id])
    return (f"「{current.name}」阶段完成，已进入「{following.name}」阶段（计划 {fmt_day(following.planned_start, today)}"
            f" 至 {fmt_day(following.planned_end, today)}，{len(next_items)} 项交付物）。发送「交付物」查看。")


# ---- 暂停 ---------------------------------------------------------------------------------------------------------


async def apply_pause(
    session: AsyncSession, project: Project, entry: RegisterEntry, *, now: datetime, actor: str | None = None,
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


# ---- 恢复 ---------------------------------------------------------------------------------------------------------


async def resume_project(ctx: CommandScope, project: Project) -> str:
    """恢复: the clock runs again and the pending deliverables and open phases move by the working days the pause
    lasted; the approved 暂停 change entry is closed with what happened. ``project`` is locked by the caller."""
    ensure_not_closed(project)
    if project.status != ProjectStatus.PAUSED or project.paused_at is None:
        raise Conflict(f"项目 {project_label(project)}没有暂停（当前状态：{project.status}），无需恢复。")
    calendar, today = ctx.services.calendar, ctx.today()
    paused_on = local_date(project.paused_at, ctx.config.tz)
    assert paused_on is not None
    days = max(0, calendar.workdays_between(paused_on, today))
    before = {"status": str(project.status), "planned_end": str(project.planned_end)}
    moved = await move_remaining(ctx.session, calendar, project, days=days, since=paused_on)
    shifted = sum(1 for m in moved if not m.is_phase)
    phases = await list_phases(session=ctx.session, project_id=project.id)
    project.status = status_after_resume(project, phases)
    project.paused_workdays += days
    project.paused_at = None
    ctx.session.add(project)
    pauses = [e for e in await list_register_entries(session=ctx.session, project_id=project.id,
                                                     kind=RegisterKind.CHANGE, statuses=[RegisterStatus.APPROVED])
              if (e.extra or {}).get("类型") == PAUSE_KIND]
    resolution = f"{today.isoformat()} 恢复，暂停 {days} 个工作日，未完成交付物顺延 {days} 个工作日"
    if pauses:
        pauses[-1].status = RegisterStatus.CLOSED
        pauses[-1].resolution = resolution
        pauses[-1].closed_at = ctx.clock.now()
        ctx.session.add(pauses[-1])
    await record_change(
        ctx.session, project, action="project.resume", summary=f"项目恢复：{resolution}",
        key=f"project-resumed:{project.code}:{project.paused_workdays}:{ctx.trace_id}", entity="project",
        entity_id=project.id, before=before,
        after={"status": str(project.status), "planned_end": str(project.planned_end), "shifted_days": days},
        **change_context(ctx),
    )
    caveat = calendar_caveat(calendar, today, project.planned_end)
    return (f"项目 {project_label(project)}已恢复（{project.status}）。暂停了 {days} 个工作日，"
            f"{shifted} 项未完成交付物的截止日期已顺延；计划完成日期现为 {fmt_day(project.planned_end, today)}。"
            + (f"\n{caveat}" if caveat else ""))


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
        raise Conflict(f"项目 {project_label(project)}已经验收了。接下来：「复盘 总结」「交接 @售后」「归档」。")
    if project.status == ProjectStatus.PAUSED:
        raise Conflict(f"项目 {project_label(project)}已暂停，请先「恢复」再验收。")
    if project.status not in ACTIVE_PROJECT_STATUSES:
        raise Conflict(f"项目 {project_label(project)}尚未立项（{project.status}），不能验收。")
    await ensure_in_last_phase(ctx, project, "验收")


def ensure_accepted(project: Project, doing: str) -> None:
    ensure_not_closed(project)
    if project.status != ProjectStatus.ACCEPTED:
        raise Conflict(f"项目 {project_label(project)}还没有验收（{project.status}），{doing}要在验收之后："
                       "请先发送客户签字盖章的《项目验收确认单》，再发送「验收」。")


async def accept_with_file(ctx: CommandScope, project: Project, staged: StagedFile | None, *, note: str | None = None) -> str:
    """Make the project 已验收, storing ``staged`` as the signed acceptance form (also reached from the file intake
    when 「验收」 came first)."""
    await ensure_acceptable(ctx, project)
    forms = await flagged_deliverables(ctx, project, DeliverableFlag.ACCEPTANCE)
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
    return (f"{submitted}项目 {project_label(project)}已验收（{fmt_day(today)}）。"
            "接下来：「复盘 总结」、「交接 @售后」、「归档」。")


# ---- 归档 ---------------------------------------------------------------------------------------------------------


async def handed_over(ctx: CommandScope, project: Project) -> bool:
    query = select(AuditLog.id).where(AuditLog.project_id == project.id, AuditLog.action == HANDOVER_ACTION).limit(1)
    return (await ctx.session.exec(query)).first() is not None


def built_by_archive(deliverable: Deliverable) -> bool:
    """The 电子资料存档: the archive zip itself is its submission (``_record_archive``)."""
    return deliverable.has_flag(DeliverableFlag.ARCHIVE) and "电子" in deliverable.name


async def archive_gaps(ctx: CommandScope, project: Project) -> list[Deliverable]:
    """The required deliverables (one-off documents and final registers) neither submitted nor waived, except the
    one the archive itself provides."""
    return [d for d in await list_deliverables(session=ctx.session, project_id=project.id)
            if counts_toward_progress(d) and d.status == DeliverableStatus.PENDING and not built_by_archive(d)]


async def _refuse_gaps(ctx: CommandScope, project: Project, gaps: list[Deliverable]) -> None:
    phases = {p.id: p.name for p in await list_phases(session=ctx.session, project_id=project.id)}
    lines = [f"项目还不能归档：有 {len(gaps)} 项必交交付物既未提交也未豁免："]
    lines += [f"- #{d.seq} {d.name}（{phases.get(d.phase_id, '')}）：「提交 {d.name}」" for d in gaps[:MAX_GAPS_LISTED]]
    if len(gaps) > MAX_GAPS_LISTED:
        lines.append(f"……另有 {len(gaps) - MAX_GAPS_LISTED} 项，发送「交付物 全部」查看。")
    lines.append("提交它们，或逐项「豁免 名称 原因:…」；确认都不再需要时，发送「归档 豁免 原因:…」把它们一并豁免并归档。")
    raise Conflict("\n".join(lines))


async def _waive_gaps(ctx: CommandScope, project: Project, gaps: list[Deliverable], reason: str) -> None:
    for deliverable in gaps:
        await end_waits(ctx, deliverable=deliverable)
        mark_waived(ctx.session, deliverable, f"归档时豁免：{reason}", ctx.incoming.sender_id or None)
        await write_audit(session=ctx.session, action="deliverable.waive", actor_user_id=ctx.incoming.sender_id or None,
                          project_id=project.id, entity="deliverable", entity_id=deliverable.id, at=ctx.clock.now(),
                          before={"status": str(DeliverableStatus.PENDING)},
                          after={"status": str(DeliverableStatus.WAIVED), "reason": deliverable.waiver_reason})


def waived_note(gaps: list[Deliverable], reason: str) -> str:
    return f"（归档时豁免 {len(gaps)} 项：{'、'.join(d.name for d in gaps)}；原因：{reason}）" if gaps else ""


async def close_project(ctx: CommandScope, project: Project, *, waive_reason: str | None) -> list[Deliverable]:
    """归档: close an accepted, handed-over project for good. Required deliverables still pending refuse it (listed,
    ``Conflict``) unless ``waive_reason`` waives them all; returns the ones waived. ``project`` is locked by the
    caller, who then has the archive built outside the transaction."""
    ensure_accepted(project, "归档")
    if not await handed_over(ctx, project):
        raise Conflict("项目还没有交接给售后：请先「交接 @售后」，再归档。")
    gaps = await archive_gaps(ctx, project)
    if gaps and not waive_reason:
        await _refuse_gaps(ctx, project, gaps)
    reason = waive_reason or ""
    await _waive_gaps(ctx, project, gaps, reason)
    before = {"status": str(project.status)}
    project.status = ProjectStatus.CLOSED
    ctx.session.add(project)
    await record_change(
        ctx.session, project, action="project.archive",
        summary=f"项目已归档并关闭{waived_note(gaps, reason)}，正在生成归档包",
        key=f"project-archived:{project.code}", entity="project", entity_id=project.id, before=before,
        after={"status": str(project.status), "waived": [d.name for d in gaps], "reason": reason or None},
        **change_context(ctx),
    )
    return gaps
