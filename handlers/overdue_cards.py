"""Overdue reminders as cards (逾期提醒卡片) in the internal group, one per overdue deliverable, with 「提交」 (asks for
the file or link) and 「申请延期」 (a new date and a reason). An extension request posts a card for the PM with
「同意」 (re-plans the deliverable: the same ``计划`` command, the PM's alone) and 「拒绝」.

Every button is a command that can also be typed: ``提交 #3``, ``申请延期 #3 日期:2026-11-20 原因:…``,
``计划 #3 截止:2026-11-20``, ``拒绝延期 #3``. The cards come from the daily reminder run (``overdue_cards`` job, at
the reminders' time; ``handlers.reminders`` then leaves the group digest to them) and their 逾期 figure is brought
up to date once a day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.args import Param, clip
from bot.card_press import CardAction, answer_on_card
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.jobs import JobRegistry, JobRunContext, daily
from bot.outbox import CardWrite, card_values, enqueue, group_target
from bot.roles import MEMBERS, PROJECT_MANAGER, only
from bot.router import Router
from domain.changes import change_context, ensure_not_closed, lock_project, record_change
from domain.errors import Conflict, PermissionDenied, UsageError
from domain.labels import fmt_day, names_of, who
from domain.matching import match_deliverable
from domain.replies import Reply
from handlers._common import overdue_days
from handlers._project import project_middleware
from reports.user_text import text_literal
from storage.models import ACTIVE_PROJECT_STATUSES, Deliverable, DeliverableStatus, Project
from storage.repo import list_deliverables
from storage.repo.outbox import get_outbox_by_key

router = Router("overdue_cards", title="延期")
jobs = JobRegistry()

TEMPLATE = "overdue_reminder"
DECISION_TEMPLATE = "extension_request"
QUOTES = str.maketrans({"“": "", "”": "", '"': ""})


def overdue_out_track_id(project: Project, deliverable: Deliverable) -> str:
    due = deliverable.due_date.strftime("%Y%m%d") if deliverable.due_date else "nodate"
    return f"dpm-overdue-{project.code}-{deliverable.seq}-{due}"


def extension_out_track_id(project: Project, deliverable: Deliverable, new_date: date) -> str:
    return f"dpm-ext-{project.code}-{deliverable.seq}-{new_date:%Y%m%d}"


def cards_for_overdue(services: Any) -> bool:
    """Whether overdue deliverables are shown as cards (then the reminders' group digest is left to them)."""
    return bool(services.cards and services.cards.get(TEMPLATE))


# ---- the daily run ----------------------------------------------------------------------------------------------


@jobs.scheduled("overdue_cards", daily(at=lambda cfg: cfg.schedule.reminder_time, workdays_only=True))
async def overdue_cards_job(run: JobRunContext) -> None:
    services = run.services
    template = services.cards.get(TEMPLATE) if services.cards else None
    if template is None or not services.calendar.is_workday(run.today):
        return
    today = run.today
    async with services.outbox.unit_of_work() as work:
        session = work.session
        projects = (await session.exec(select(Project).where(
            col(Project.status).in_(list(ACTIVE_PROJECT_STATUSES)),
            col(Project.internal_conversation_id).is_not(None)))).all()
        queued = 0
        for project in projects:
            late = [(d, days) for d in await list_deliverables(session=session, project_id=project.id)
                    if (days := overdue_days(d, today, services.calendar)) > 0]
            names = await names_of(session, [d.owner_user_id for d, _ in late])
            for deliverable, days in late:
                queued += await _card(session, template.template_id, project, deliverable, days, names, today)
    run.log.info("overdue cards: %d card writes queued", queued)


async def _card(session: AsyncSession, template_id: str, project: Project, deliverable: Deliverable, days: int,
                names: dict[str, str], today: date) -> int:
    out_track_id = overdue_out_track_id(project, deliverable)
    group = project.internal_conversation_id or ""
    create_key = f"card:{out_track_id}:create"
    if await get_outbox_by_key(session=session, key=create_key) is None:
        data = card_values({
            "projectId": project.code, "itemId": f"#{deliverable.seq}", "item": text_literal(deliverable.name),
            "owner": text_literal(who(names, deliverable.owner_user_id)),
            "due": deliverable.due_date.isoformat() if deliverable.due_date else "", "daysLate": str(days),
            "state": "", "stateLabel": ""})
        return int(await enqueue(session, create_key, group_target(group), CardWrite(
            "create", out_track_id, template_id=template_id, data=data, group=group,
            preview=f"{project.code} 逾期：{clip(deliverable.name, 20)}")))
    # The card is there: today's lateness, the rest as the people left it.
    return int(await enqueue(session, f"card:{out_track_id}:{today.isoformat()}", group_target(group),
                             CardWrite("update", out_track_id, data={"daysLate": str(days)}, by_key=True)))


# ---- 申请延期 / 拒绝延期 ---------------------------------------------------------------------------------------------


@router.command(
    "申请延期",
    summary="为逾期或将到期的交付物申请延期：写明新日期和原因，项目经理同意后计划随之调整",
    examples=("申请延期 #3 日期:2026-11-20 原因:客户资料晚到一周",),
    params=(
        Param.word("交付物", positional=True, required=True, max_length=128, example="交付物名称或#编号"),
        Param.date("日期", required=True, help="申请的新截止日期"),
        Param.text("原因", required=True, max_length=200, help="延期原因"),
    ),
    roles=MEMBERS,
    needs_project=True,
    action="申请延期",
)
async def request_extension(incoming: Incoming, ctx: Context) -> Reply | None:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    deliverable = match_deliverable(await list_deliverables(session=ctx.session, project_id=project.id),
                                    ctx.args.text("交付物") or "", example="申请延期 #3 日期:2026-11-20 原因:…")
    new_date, reason = ctx.args.date("日期"), (ctx.args.text("原因") or "").strip()
    if deliverable.status != DeliverableStatus.PENDING:
        raise Conflict(f"《{deliverable.name}》已{deliverable.status}，无需延期。")
    if deliverable.owner_user_id not in (ctx.incoming.sender_key, None) and PROJECT_MANAGER not in ctx.roles:
        raise PermissionDenied(f"只有《{deliverable.name}》的负责人或项目经理可以为它申请延期。")
    earliest = max(ctx.today(), deliverable.due_date or ctx.today())
    if new_date is None or new_date <= earliest:
        example = ctx.services.calendar.next_workday(earliest).isoformat()
        raise UsageError(f"新日期应晚于原计划（{fmt_day(deliverable.due_date, ctx.today())}）和今天，例如 日期:{example}")
    await record_change(
        ctx.session, project, action="deliverable.extension_request",
        summary=f"申请《{deliverable.name}》延期到 {new_date.isoformat()}：{reason}",
        key=f"extension-requested:{project.code}:{deliverable.id}:{new_date.isoformat()}", entity="deliverable",
        entity_id=deliverable.id, after={"due": new_date.isoformat(), "reason": reason}, **change_context(ctx),
    )
    group = project.internal_conversation_id
    template = ctx.services.cards.get(DECISION_TEMPLATE) if ctx.services.cards else None
    if group and template is not None:
        names = await names_of(ctx.session, [ctx.incoming.sender_key])
        await enqueue(ctx.session, f"card:{extension_out_track_id(project, deliverable, new_date)}:create",
                      group_target(group), CardWrite(
                          "create", extension_out_track_id(project, deliverable, new_date),
                          template_id=template.template_id, group=group,
                          preview=f"{project.code} 延期申请：{clip(deliverable.name, 20)}", data=card_values({
                              "projectId": project.code, "itemId": f"#{deliverable.seq}",
                              "item": text_literal(deliverable.name),
                              "requester": text_literal(who(names, ctx.incoming.sender_key)),
                              "oldDate": deliverable.due_date.isoformat() if deliverable.due_date else "",
                              "newDate": new_date.isoformat(), "reason": text_literal(reason),
                              "decision": "", "decisionLabel": "待项目经理审批"})))
        await answer_on_card(ctx.session, overdue_out_track_id(project, deliverable), group_target(group),
                             {"state": "extension_requested", "stateLabel": f"已申请延期到 {new_date.isoformat()}"},
                             key=f"card:{overdue_out_track_id(project, deliverable)}:extension:{new_date}")
    if ctx.work.card_answer is not None:
        return None  # the card says it, and the PM's card is in the group
    return f"已提交《{deliverable.name}》的延期申请（新日期 {new_date.isoformat()}），等待项目经理审批。"


@router.command(
    "拒绝延期",
    summary="项目经理拒绝交付物的延期申请（计划不变）",
    examples=("拒绝延期 #3",),
    params=(Param.word("交付物", positional=True, required=True, max_length=128, example="交付物名称或#编号"),),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="审批延期",
)
async def refuse_extension(incoming: Incoming, ctx: Context) -> Reply:
    project = ctx.project
    ensure_not_closed(project)
    deliverable = match_deliverable(await list_deliverables(session=ctx.session, project_id=project.id),
                                    ctx.args.text("交付物") or "", example="拒绝延期 #3")
    await record_change(
        ctx.session, project, action="deliverable.extension_refuse", summary=f"拒绝《{deliverable.name}》的延期申请",
        key=f"extension-refused:{project.code}:{deliverable.id}:{ctx.trace_id}", entity="deliverable",
        entity_id=deliverable.id, **change_context(ctx),
    )
    return f"已拒绝《{deliverable.name}》的延期申请，计划不变（截止 {fmt_day(deliverable.due_date, ctx.today())}）。"


def _quoted(value: Any) -> str:
    # Typed into the card: quoted, so that nothing in it reads as another parameter (项目:…).
    return "“" + str(value or "").translate(QUOTES).strip() + "”"


feature = Feature("overdue_cards", router=router, jobs=jobs, middleware=(project_middleware,), card_actions=(
    CardAction("submit", lambda p: f"提交 {p.params.get('itemId', '')} 项目:{p.params.get('projectId', '')}"),
    CardAction("extend", lambda p: (
        f"申请延期 {p.params.get('itemId', '')} 项目:{p.params.get('projectId', '')} "
        f"日期:{str(p.params.get('newDate') or '').strip() or '（未填）'} 原因:{_quoted(p.params.get('reason'))}")),
    CardAction("approve_extension", lambda p: (
        f"计划 {p.params.get('itemId', '')} 截止:{p.params.get('newDate', '')} 项目:{p.params.get('projectId', '')}"),
        on_ok={"decision": "approved", "decisionLabel": "已同意，计划已调整"}),
    CardAction("refuse_extension", lambda p: (
        f"拒绝延期 {p.params.get('itemId', '')} 项目:{p.params.get('projectId', '')}"),
        on_ok={"decision": "refused", "decisionLabel": "已拒绝"}),
))

