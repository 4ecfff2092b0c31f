"""阶段: 立项, 推进 (the phase gate), 暂停 and 恢复.

The gate: a project leaves its current phase only when every required deliverable of it (and of a phase running
alongside it, like 监控 beside 执行) is submitted or waived; recurring records (日志, 周报, per-cycle and per-event
documents) never hold a gate. Leaving the first phase (启动) also needs the 立项: status 已立项 or 进行中.

Approvals (OA): with ``[approvals] mode = "off"`` 立项 and 暂停 take effect at once. Otherwise the command starts the
approval through ``handlers.approval_flow`` (项目立项申请, 项目进度变更单 for the 变更 entry it records) and the project
waits; on the final approval event the approvals feature calls ``apply_initiation_decision`` or ``apply_pause`` here,
in the event's unit of work. Both are plain functions of the session, so the event handler needs no message context.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.args import Param
from bot.context import Context
from bot.errors import Conflict
from bot.incoming import Incoming
from bot.replies import Reply
from bot.roles import PROJECT_MANAGER, only
from bot.router import Router
from handlers import approval_flow
from handlers._common import (
    GATED_RECURRENCES,
    calendar_caveat,
    change_context,
    ensure_not_closed,
    ensure_running,
    fmt_day,
    lock_project,
    names_of,
    project_command,
    project_label,
    record_change,
    who,
)
from handlers._submit import file_generated, flagged_deliverable
from handlers.report_data import local_date
from handlers.schedule_moves import move_remaining
from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    ApprovalKind,
    DeliverableStatus,
    Phase,
    Project,
    ProjectStatus,
    RegisterEntry,
    RegisterKind,
    RegisterStatus,
)
from storage.repo import add_register_entry, list_deliverables, list_phases, list_register_entries
from storage.templates import DeliverableFlag

router = Router("phases", title="阶段与状态")

PAUSE_KIND = "暂停"  # RegisterEntry.extra["类型"] of the 项目进度变更单 entries


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


@router.command(
    "立项",
    aliases=("initiate",),
    summary="项目立项：审批关闭时直接生效，否则提交公司领导审批；立项后才能离开启动阶段",
    examples=("立项", "立项 内部启动会已开，合同已签"),
    params=(Param.text("说明", max_length=500, help="立项说明，随审批一起提交"),),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="申请立项",
)
@project_command
async def initiate(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    if project.status in ACTIVE_PROJECT_STATUSES or project.status in (ProjectStatus.PAUSED, ProjectStatus.ACCEPTED):
        raise Conflict(f"项目 {project_label(project)} 已经立项（当前状态：{project.status}）。")
    if project.status == ProjectStatus.PENDING_APPROVAL:
        raise Conflict(f"项目 {project_label(project)}的立项正在审批中，请等待审批结果。")
    if approval_flow.approvals_enabled(ctx.config):
        # 项目立项申请 in DingTalk: 待立项审批 now; the final approval event calls apply_initiation_decision().
        return await approval_flow.submit_initiation(ctx, project, note=ctx.args.text("说明"))
    await apply_initiation_decision(ctx.session, project, approved=True, today=ctx.today(), **change_context(ctx))
    return (f"项目 {project_label(project)} 已立项（未启用钉钉审批，直接生效）。"
            "完成启动阶段的交付物后，发送「推进」进入下一阶段。")


# ---- 推进 -------------------------------------------------------------------------------------------------------


def _first_phase_gate(project: Project) -> None:
    if project.status == ProjectStatus.PENDING_APPROVAL:
        raise Conflict("立项审批尚未通过，不能离开启动阶段。审批通过后再发送「推进」。")
    if project.status == ProjectStatus.REJECTED:
        raise Conflict("立项未通过审批，不能离开启动阶段。请调整后重新发送「立项」。")
    if project.status not in ACTIVE_PROJECT_STATUSES:
        raise Conflict("项目尚未立项，不能离开启动阶段。请项目经理先发送「立项」（内部启动会后提交公司领导审批）。")


@router.command(
    "推进",
    aliases=("进入下一阶段", "next"),
    summary="进入下一阶段：本阶段必交的交付物都已提交或豁免才放行，否则列出缺什么",
    examples=("推进",),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="推进阶段",
)
@project_command
async def advance_phase(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    if project.status == ProjectStatus.PAUSED:
        raise Conflict(f"项目 {project_label(project)} 已暂停，请先发送「恢复」再推进阶段。")
    if project.status == ProjectStatus.ACCEPTED:
        raise Conflict("项目已验收，处于收尾阶段：接下来是「复盘」「交接 @售后」「归档」。")
    phases = await list_phases(session=ctx.session, project_id=project.id)
    order = sequential(phases)
    current = next((p for p in order if p.name == project.current_phase), order[0])
    index = order.index(current)
    if index == len(order) - 1:
        raise Conflict(f"「{current.name}」已是最后一个阶段：请完成「验收」「复盘」「交接 @售后」「归档」。")
    if index == 0:
        _first_phase_gate(project)
    gate = [current, *(p for p in phases if p.parallel_with == current.name)]
    deliverables = await list_deliverables(session=ctx.session, project_id=project.id, phase_ids=[p.id for p in gate])
    missing = [d for d in deliverables if d.required and d.recurrence in GATED_RECURRENCES
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
        phase.gate_passed_by = incoming.sender_id
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


# ---- 暂停 / 恢复 ---------------------------------------------------------------------------------------------------


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


@router.command(
    "暂停",
    aliases=("pause",),
    summary="暂停项目（项目进度变更单）：提醒和周报停止，恢复时未完成的截止日期顺延",
    examples=("暂停 原因:客户机房改造，预计一个月",),
    params=(Param.text("原因", required=True, max_length=500, help="为什么暂停、预计多久"),),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="暂停项目",
)
@project_command
async def pause(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    if project.status == ProjectStatus.PAUSED:
        raise Conflict(f"项目 {project_label(project)} 已经暂停了。问题解决后发送「恢复」。")
    ensure_running(project, "暂停")
    reason = ctx.args.text("原因") or ""
    entry = await add_register_entry(
        session=ctx.session, project_id=project.id, kind=RegisterKind.CHANGE, title=f"项目暂停：{reason}"[:255],
        content=reason, created_by=incoming.sender_id, status=RegisterStatus.AWAITING_APPROVAL,
        extra={"类型": PAUSE_KIND, "影响": "暂停期间提醒与周报停止，恢复后未完成交付物顺延"}, now=ctx.clock.now(),
    )
    request = await approval_flow.request_approval(
        ctx, project, kind=ApprovalKind.SCHEDULE_CHANGE, entry=entry,
        form_values={"原因": reason, "影响": (entry.extra or {}).get("影响")},
    )
    if request is None:  # approvals off: the 项目进度变更单 takes effect at once
        await apply_pause(ctx.session, project, entry, now=ctx.clock.now(), **change_context(ctx))
        return (f"项目 {project_label(project)} 已暂停（变更#{entry.seq}，项目进度变更单）。暂停期间不再提醒、不发周报；"
                "问题解决后发送「恢复」，未完成交付物的截止日期会按暂停的工作日顺延。")
    # The final approval event calls apply_pause() for this entry.
    await record_change(
        ctx.session, project, action="project.pause_requested", summary=f"申请暂停项目：{reason}",
        key=f"project-pause-requested:{project.code}:{entry.seq}", entity="register", entity_id=entry.id,
        after={"change": entry.seq, "reason": reason, "instance": request.instance_id}, **change_context(ctx),
    )
    return request.reply(f"已提交暂停申请：{project.code}（变更#{entry.seq}）", "审批通过后项目暂停，结果会在内部群通知。")


@router.command(
    "恢复",
    aliases=("resume",),
    summary="恢复暂停的项目：未完成交付物的截止日期按暂停的工作日顺延",
    examples=("恢复",),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="恢复项目",
)
@project_command
async def resume(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    if project.status != ProjectStatus.PAUSED or project.paused_at is None:
        raise Conflict(f"项目 {project_label(project)} 没有暂停（当前状态：{project.status}），无需恢复。")
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
    return (f"项目 {project_label(project)} 已恢复（{project.status}）。暂停了 {days} 个工作日，"
            f"{shifted} 项未完成交付物的截止日期已顺延；计划完成日期现为 {fmt_day(project.planned_end, today)}。"
            + (f"\n{caveat}" if caveat else ""))


__all__ = [
    "advance_phase",
    "apply_initiation_decision",
    "apply_pause",
    "initiate",
    "pause",
    "resume",
    "router",
    "status_after_resume",
]
