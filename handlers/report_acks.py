"""The client's acknowledgement of each weekly report (周报确认): evidence that the report was delivered and read.

With cards on, the weekly report goes to the client group as a card (summary, the .docx beside it) with 「确认已阅」
and 「有疑问」 (a text input). A press runs the same command a client may type instead, which the card invites
(clicks by another organization's people may produce no callback, reference part 2 §1.8): ``已阅`` or
``有疑问 问题``. Either way the answer is recorded once per person and report (``report_acks``), the card shows it,
the internal group is told, and the next internal weekly report lists it. A report nobody acknowledged after
``cards.ack_remind_after_days`` working days makes the bot remind the PM, once.
"""

from __future__ import annotations

from sqlmodel import col, select

from bot.args import Param, clip
from bot.card_press import CardAction, answer_on_card
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.jobs import JobRegistry, JobRunContext, daily
from bot.outbox import enqueue, group_target, users_target
from bot.roles import MEMBERS_AND_CLIENTS
from bot.router import Router
from domain.changes import ensure_not_closed
from domain.errors import NotFound
from domain.labels import names_of
from domain.replies import Markdown, Reply
from domain.report_acks import LABELS, TEMPLATE, latest_client_report, week_key, weekly_out_track_id
from handlers._project import project_middleware
from reports.user_text import md_literal, text_literal
from storage.models import Project, ProjectStatus, ReportAck, utcnow
from storage.repo.cards import record_report_ack, report_acks

router = Router("report_acks", title="周报确认")
jobs = JobRegistry()

async def _acknowledge(ctx: Context, status: str, question: str | None) -> Reply | None:
    project = ctx.project
    ensure_not_closed(project)
    report = await latest_client_report(ctx.session, project.id)
    if report is None:
        raise NotFound("本项目还没有发给客户的周报。")
    week = week_key(report)
    name = ctx.incoming.sender_nick or await _name_of(ctx, ctx.incoming.sender_key)
    now = ctx.clock.now()
    via = "card" if ctx.work.card_answer is not None else "reply"
    recorded = await record_report_ack(session=ctx.session, ack=ReportAck(
        project_id=project.id, week=week, person_key=ctx.incoming.sender_key, person_name=clip(name, 100),
        status=status, question=question, via=via, at=utcnow()))
    label, colour = LABELS[status]
    local = now.astimezone(ctx.config.tz)
    if recorded:
        by = f"{name}，{local:%m-%d %H:%M}"
        await answer_on_card(ctx.session, weekly_out_track_id(project.code, week),
                             group_target(project.client_conversation_id), {
                                 "ackStatus": status, "ackLabel": label, "ackColor": colour,
                                 "ackBy": text_literal(by), "question": text_literal(question or "")},
                             key=f"card:{weekly_out_track_id(project.code, week)}:ack:{ctx.incoming.sender_key}"[:255])
        if project.internal_conversation_id:
            said = f"有疑问：{md_literal(clip(question or '', 300))}" if status == "question" else "已确认已阅"
            text = (f"#### 【{project.code}】{week} 周报客户反馈\n\n{md_literal(name)} {local:%m-%d %H:%M} {said}"
                    + ("\n\n请项目经理尽快答复。" if status == "question" else ""))
            await enqueue(ctx.session, f"report-ack:{project.code}:{week}:{ctx.incoming.sender_key}"[:255],
                          group_target(project.internal_conversation_id),
                          Markdown(f"【{project.code}】周报客户反馈", text))
    if via == "card":
        return None  # the card itself shows it
    if not recorded:
        return f"您已反馈过 {week} 周报，谢谢。"
    return (f"已记录您对 {week} 周报的确认，谢谢！" if status == "acked"
            else f"已记录您对 {week} 周报的疑问，项目经理会尽快答复。")


async def _name_of(ctx: Context, key: str) -> str:
    return (await names_of(ctx.session, [key])).get(key, "客户")


@router.command(
    "已阅",
    aliases=("确认已阅",),
    summary="客户确认已阅本周周报（周报卡片上的「确认已阅」按钮也一样）",
    examples=("已阅",),
    roles=MEMBERS_AND_CLIENTS,
    needs_project=True,
    action="确认周报",
)
async def acknowledge_report(incoming: Incoming, ctx: Context) -> Reply | None:
    return await _acknowledge(ctx, "acked", None)


@router.command(
    "有疑问",
    summary="对本周周报提出疑问（周报卡片上的「有疑问」按钮也一样），项目经理会答复",
    examples=("有疑问 第三周的测试计划为什么推迟了？",),
    params=(Param.text("问题", required=True, max_length=500, help="您的疑问"),),
    roles=MEMBERS_AND_CLIENTS,
    needs_project=True,
    action="对周报提问",
)
async def question_report(incoming: Incoming, ctx: Context) -> Reply | None:
    return await _acknowledge(ctx, "question", ctx.args.text("问题"))


@jobs.scheduled("report_ack_reminders", daily(at=lambda cfg: cfg.schedule.reminder_time, workdays_only=True))
async def report_ack_reminder_job(run: JobRunContext) -> None:
    """Remind the PM of client reports nobody acknowledged after ``cards.ack_remind_after_days`` working days."""
    if not (run.services.cards and run.services.cards.get(TEMPLATE)):
        return
    days = run.config.cards.ack_remind_after_days
    today = run.today
    async with run.services.outbox.unit_of_work() as work:
        session = work.session
        projects = (await session.exec(select(Project).where(
            col(Project.status).in_([ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS]),
            col(Project.client_conversation_id).is_not(None)))).all()
        for project in projects:
            report = await latest_client_report(session, project.id)
            if report is None or report.sent_at is None:
                continue
            week = week_key(report)
            waited = run.calendar.workdays_between(report.sent_at.date(), today)
            if waited < days or await report_acks(session=session, project_id=project.id, week=week):
                continue
            await enqueue(session, f"report-ack-remind:{project.code}:{week}", users_target(project.pm_user_id),
                          Markdown(f"【{project.code}】周报未确认",
                                   f"【{project.code}】{md_literal(project.name)} 的 {week} 周报已发出 {waited} 个工作日，"
                                   "客户还没有确认。请跟进客户，或在客户群提醒对方点「确认已阅」。"))


# The weekly report card's buttons are the commands a client may type.
feature = Feature("report_acks", router=router, jobs=jobs, middleware=(project_middleware,), card_actions=(
    CardAction("ack", "已阅"),
    CardAction("question", lambda press: f"有疑问 {press.params.get('question') or ''}".strip()),
))
