"""阶段: 立项, 推进 (the phase gate), 暂停 and 恢复.

The gate: a project leaves its current phase only when every required deliverable of it (and of a phase running
alongside it, like 监控 beside 执行) is submitted or waived; recurring records (日志, 周报, per-cycle and per-event
documents) never hold a gate. Leaving the first phase (启动) also needs the 立项: status 已立项 or 进行中.

Approvals (OA): with ``[approvals] mode = "off"`` 立项 and 暂停 take effect at once. Otherwise the command starts the
approval through ``domain.approval_flow`` (项目立项申请, 项目进度变更单 for the 变更 entry it records) and the project
waits; on the final approval event ``domain.approval_flow`` calls ``apply_initiation_decision`` or ``apply_pause``
(``domain.lifecycle``), in the event's unit of work.
"""

from __future__ import annotations

from bot.args import Param
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.roles import PROJECT_MANAGER, only
from bot.router import Router
from domain import approval_flow
from domain.changes import (
    change_context,
    ensure_not_closed,
    ensure_running,
    lock_project,
    record_change,
)
from domain.errors import Conflict
from domain.labels import project_label
from domain.lifecycle import (
    PAUSE_KIND,
    advance_to_next_phase,
    apply_initiation_decision,
    apply_pause,
    resume_project,
)
from domain.replies import Reply
from handlers._project import project_middleware
from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    ApprovalKind,
    ProjectStatus,
    RegisterKind,
    RegisterStatus,
)
from storage.repo import add_register_entry

router = Router("phases", title="阶段与状态")

# ---- 立项 -------------------------------------------------------------------------------------------------------


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
async def initiate(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    if project.status in ACTIVE_PROJECT_STATUSES or project.status in (ProjectStatus.PAUSED, ProjectStatus.ACCEPTED):
        raise Conflict(f"项目 {project_label(project)}已经立项（当前状态：{project.status}）。")
    if project.status == ProjectStatus.PENDING_APPROVAL:
        raise Conflict(f"项目 {project_label(project)}的立项正在审批中，请等待审批结果。")
    if approval_flow.approvals_enabled(ctx.config):
        # 项目立项申请 in DingTalk: 待立项审批 now; the final approval event calls apply_initiation_decision().
        return await approval_flow.submit_initiation(ctx, project, note=ctx.args.text("说明"))
    await apply_initiation_decision(ctx.session, project, approved=True, today=ctx.today(), **change_context(ctx))
    return (f"项目 {project_label(project)}已立项（未启用钉钉审批，直接生效）。"
            "完成启动阶段的交付物后，发送「推进」进入下一阶段。")


# ---- 推进 -------------------------------------------------------------------------------------------------------


@router.command(
    "推进",
    aliases=("进入下一阶段", "next"),
    summary="进入下一阶段：本阶段必交的交付物都已提交或豁免才放行，否则列出缺什么",
    examples=("推进",),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="推进阶段",
)
async def advance_phase(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    return await advance_to_next_phase(ctx, project)


# ---- 暂停 / 恢复 ---------------------------------------------------------------------------------------------------


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
async def pause(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    if project.status == ProjectStatus.PAUSED:
        raise Conflict(f"项目 {project_label(project)}已经暂停了。问题解决后发送「恢复」。")
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
        return (f"项目 {project_label(project)}已暂停（变更#{entry.seq}，项目进度变更单）。暂停期间不再提醒、不发周报；"
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
async def resume(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    return await resume_project(ctx, project)


feature = Feature("phases", router=router, middleware=(project_middleware,))

__all__ = [
    "feature",
    "advance_phase",
    "initiate",
    "pause",
    "resume",
    "router",
]
