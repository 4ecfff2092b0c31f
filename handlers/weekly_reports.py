"""客户项目周报: ``周报 预览``, ``周报 发送`` and the weekly job that sends every running project's report.

Once per project and ISO week, whoever gets there first (the Friday job, a catch-up after downtime, or the PM's
``周报 发送``): the client group receives the markdown message and the .docx, the internal group the internal variant
(with the 审核报告 material: overdue deliverables, risks, approvals, workload). ``周报 发送`` answers at once and
requests the on-demand job ``weekly_report_send`` (key ``XM-2026-001:2026-W48``), which renders and queues the report
right after the command commits: rendering inside the command's write transaction would hold the database (on SQLite
the only write lock) for the whole render. Three things keep it once:

* the scheduler's run keys (job ``weekly_report``, period ``2026-W48``; ``weekly_report_send`` per project and week);
* ``weekly_reports.sent_at``: a project whose report of the week already went out is skipped (the PM sent it);
* the outbox keys ``weekly:{project}:{week}:msg`` / ``:docx`` (and ``weekly-internal:…``): a re-run stores nothing.

Paused and closed projects get no report (only 已立项 and 进行中 ones do). Unlike the reminders, the report also
goes out when Friday is a holiday: it is the week's record (the archive keeps every week), not a nudge. Rendering runs off the event loop: in a
thread for one project, in a process pool for many (created for the run and shut down when it ends, so the app
never keeps idle worker processes between Fridays).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.args import Param
from bot.context import Context
from bot.errors import Conflict, UserError
from bot.incoming import Incoming
from bot.jobs import JobRegistry, JobRunContext, weekly
from bot.outbox import enqueue, group_target
from bot.replies import File, Image, Markdown, Reply
from bot.roles import MEMBERS, PROJECT_MANAGER, only
from bot.router import Router
from bot.scheduler import request_job
from handlers.report_data import gather_project_report, gather_project_reports, issue_window_start, to_local
from reports.archive import safe_component
from reports.model import ProjectReportData, WeeklyPeriod
from reports.pool import WeeklyBundle, render_off_loop, render_weekly_bundle
from storage.models import ACTIVE_PROJECT_STATUSES, Project, ReportVariant
from storage.repo import list_projects, record_weekly_report, write_audit
from storage.repo.report_queries import sent_weekly_reports

log = logging.getLogger(__name__)

router = Router("weekly_reports", title="周报")
router.group("周报", summary="客户项目周报：预览本周周报，或立即发送（每周一次）", aliases=("客户周报",))
jobs = JobRegistry()

# A report more than this late is not sent any more: next week's replaces it. Long enough to cover a weekend of
# downtime (Friday 17:00 -> Monday 17:00), short enough that a fresh install does not send last week's reports.
WEEKLY_MISFIRE = timedelta(days=3)
POOL_MIN_PROJECTS = 4  # fewer projects render faster in one thread than it takes to start worker processes
BATCH_PROJECTS = 32  # projects loaded and rendered together: bounded memory with 10,000 projects
REPORTS_FOLDER = "reports/weekly"

CLIENT_VERSION = "客户"
INTERNAL_VERSION = "内部"
VERSION_PARAM = Param.choice("版本", (CLIENT_VERSION, INTERNAL_VERSION), positional=True,
                             help="客户版（默认）或内部版（含逾期、风险、审批等内部事项）")


# ---- keys and files -------------------------------------------------------------------------------------------


def outbox_key(project_code: str, period: WeeklyPeriod, part: str, *, internal: bool = False) -> str:
    """``weekly:XM-2026-001:2026-W48:msg``; the internal variant's keys start with ``weekly-internal``."""
    return f"{'weekly-internal' if internal else 'weekly'}:{project_code}:{period.key}:{part}"


def _write_files(folder: Path, bundle: WeeklyBundle) -> tuple[Path, Path | None]:
    folder.mkdir(parents=True, exist_ok=True)
    client = folder / safe_component(bundle.docx_name)
    client.write_bytes(bundle.docx)
    internal = None
    if bundle.internal_docx is not None:
        internal = folder / safe_component(bundle.internal_docx_name)
        internal.write_bytes(bundle.internal_docx)
    return client, internal


def _relative(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


async def store_and_queue_weekly_report(
    session: Any, *, config: Any, project: Project, bundle: WeeklyBundle, period: WeeklyPeriod, now_utc: datetime,
    actor_user_id: str | None = None,
) -> bool:
    """Write the .docx files under ``storage.files_dir``, record both variants as sent and queue the messages, in the
    caller's transaction. Returns whether anything new was queued (False: the outbox keys were already there)."""
    root = Path(config.storage.files_dir)
    folder = root / REPORTS_FOLDER / safe_component(project.code)
    client_path, internal_path = await asyncio.to_thread(_write_files, folder, bundle)
    to_client = bool(project.client_conversation_id)
    to_internal = bool(project.internal_conversation_id)
    await record_weekly_report(
        session=session, project_id=project.id, iso_year=period.iso_year, iso_week=period.iso_week,
        content_md=bundle.markdown, variant=ReportVariant.CLIENT, file_path=_relative(client_path, root),
        sent_at=now_utc if to_client else None, now=now_utc,
    )
    if bundle.internal_markdown:  # rendered only for a project with an internal group
        await record_weekly_report(
            session=session, project_id=project.id, iso_year=period.iso_year, iso_week=period.iso_week,
            content_md=bundle.internal_markdown, variant=ReportVariant.INTERNAL,
            file_path=_relative(internal_path, root), sent_at=now_utc if to_internal else None, now=now_utc,
        )
    queued = False
    if to_client:
        target = group_target(project.client_conversation_id)
        queued |= await enqueue(session, outbox_key(project.code, period, "msg"), target,
                                Markdown(bundle.title, bundle.markdown))
        queued |= await enqueue(session, outbox_key(project.code, period, "docx"), target,
                                File(bundle.docx_name, path=client_path))
    if to_internal:
        target = group_target(project.internal_conversation_id)
        queued |= await enqueue(session, outbox_key(project.code, period, "msg", internal=True), target,
                                Markdown(bundle.internal_title, bundle.internal_markdown))
        if internal_path is not None:
            queued |= await enqueue(session, outbox_key(project.code, period, "docx", internal=True), target,
                                    File(bundle.internal_docx_name, path=internal_path))
    if queued:
        await write_audit(session=session, action="weekly_report.send", actor_user_id=actor_user_id,
                          project_id=project.id, entity="weekly_report", entity_id=period.key,
                          after={"client": to_client, "internal": to_internal}, at=now_utc)
    return queued


# ---- rendering off the loop -------------------------------------------------------------------------------------


def render_preview(data: ProjectReportData, internal: bool) -> tuple[str, str, bytes]:
    """Markdown and the phase timeline of a project's week: the chat preview (no .docx, so it stays quick)."""
    from reports.charts import phase_timeline_png
    from reports.weekly import render_weekly_markdown

    title, markdown = render_weekly_markdown(data, internal=internal)
    return title, markdown, phase_timeline_png(data.phases, data.today)


def _warm_worker() -> int:
    # Importing matplotlib and python-docx is most of a worker's start-up: do it before the first real render.
    import reports.charts  # noqa: F401
    import reports.weekly  # noqa: F401

    return os.getpid()


def _start_pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: this process has threads (the database driver's, the default executor's), and a forked child
    # of a threaded process can inherit a held lock and hang.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        # Start every worker here, in a worker thread: submitting from the loop would start processes on the loop.
        concurrent.futures.wait([pool.submit(_warm_worker) for _ in range(workers)])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool


async def open_render_pool(projects: int) -> Executor | None:
    """A process pool sized for ``projects`` renders, or None when a thread is the better choice."""
    cores = os.cpu_count() or 1
    if projects < POOL_MIN_PROJECTS or cores < 2:
        return None
    return await asyncio.to_thread(_start_pool, min(cores, projects))


async def close_render_pool(pool: Executor | None) -> None:
    if pool is not None:
        await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


async def render_bundles(items: Sequence[tuple[ProjectReportData, bool]],
                         pool: Executor | None) -> list[WeeklyBundle | BaseException]:
    """Render each ``(data, internal)`` bundle: in parallel on the pool, else one after the other in a thread
    (matplotlib is not meant for concurrent threads). ``internal`` is whether the internal variant is wanted: a
    third of the rendering time, wasted for a project without a bound internal group."""
    if pool is not None:
        tasks = [render_off_loop(render_weekly_bundle, data, internal, executor=pool) for data, internal in items]
        return list(await asyncio.gather(*tasks, return_exceptions=True))
    results: list[WeeklyBundle | BaseException] = []
    for data, internal in items:
        try:
            results.append(await render_off_loop(render_weekly_bundle, data, internal))
        except Exception as exc:  # one project's failure does not sink the others
            results.append(exc)
    return results


# ---- the weekly job -------------------------------------------------------------------------------------------------

SEND_JOB = "weekly_report_send"


def _due_projects(projects: Sequence[Project], sent: dict[int, datetime], scheduled_utc: datetime) -> list[Project]:
    return [
        p for p in projects
        if p.id not in sent
        and (p.client_conversation_id or p.internal_conversation_id)
        # A project created after the fire time (a late catch-up) has no week to report yet.
        and (p.created_at is None or p.created_at <= scheduled_utc)
    ]


async def _still_due(session: Any, project_id: int, period: WeeklyPeriod) -> bool:
    current = await session.get(Project, project_id)
    if current is None or current.status not in ACTIVE_PROJECT_STATUSES:
        return False
    sent = await sent_weekly_reports(session=session, iso_year=period.iso_year, iso_week=period.iso_week,
                                     project_ids=[project_id])
    return project_id not in sent


@jobs.scheduled(
    "weekly_report",
    weekly(day=lambda cfg: cfg.schedule.weekly_report_day, at=lambda cfg: cfg.schedule.weekly_report_time),
    misfire=WEEKLY_MISFIRE,
)
async def weekly_report_job(run: JobRunContext) -> None:
    """Every 已立项/进行中 project with a group: this week's report, unless it already went out."""
    services = run.services
    config = run.config
    period = WeeklyPeriod.containing(run.scheduled_at.date())
    scheduled_utc = run.scheduled_at.astimezone(UTC).replace(tzinfo=None)
    async with services.database.read() as session:
        projects = await list_projects(session=session, statuses=ACTIVE_PROJECT_STATUSES)
        sent = await sent_weekly_reports(session=session, iso_year=period.iso_year, iso_week=period.iso_week)
    due = _due_projects(projects, sent, scheduled_utc)
    run.log.info("%d running projects, %d already sent, %d to send", len(projects), len(sent), len(due))
    if not due:
        return
    failed: list[str] = []
    sent_now = 0
    pool = await open_render_pool(len(due))
    try:
        batch_size = max(BATCH_PROJECTS, 4 * (os.cpu_count() or 1))  # keeps every worker busy
        for start in range(0, len(due), batch_size):
            batch = due[start:start + batch_size]
            async with services.database.read() as session:
                gathered = await gather_project_reports(
                    session=session, projects=batch, today=run.today, calendar=services.calendar, tz=config.tz,
                    period=period, registers_since=issue_window_start(period, config.tz),
                )
            bundles = await render_bundles([(gathered[p.id], bool(p.internal_conversation_id)) for p in batch], pool)
            for project, bundle in zip(batch, bundles):
                if isinstance(bundle, BaseException):
                    run.log.error("weekly report of %s failed to render", project.code, exc_info=bundle)
                    failed.append(project.code)
                    continue
                if await _queue_if_still_due(run, project, bundle, period):
                    sent_now += 1
    finally:
        await close_render_pool(pool)
    run.log.info("weekly reports queued for %d projects", sent_now)
    if failed:
        # Recorded on the run for the operator; the PM can still send these with 周报 发送.
        raise RuntimeError(f"weekly report failed for {len(failed)} projects: {', '.join(failed[:50])}")


async def _queue_if_still_due(run: JobRunContext, project: Project, bundle: WeeklyBundle, period: WeeklyPeriod,
                              actor_user_id: str | None = None) -> bool:
    """Store and queue a rendered report in one short write, unless it is no longer due."""
    async with run.services.outbox.unit_of_work() as work:
        # Rendering took a while: the report may have gone out (the other path) or the project been paused meanwhile.
        if not await _still_due(work.session, project.id, period):
            return False
        return await store_and_queue_weekly_report(work.session, config=run.config, project=project, bundle=bundle,
                                                   period=period, now_utc=run.now_utc, actor_user_id=actor_user_id)


@jobs.on_demand(SEND_JOB, timeout=600)
async def weekly_report_send_job(run: JobRunContext) -> None:
    """One project's report of one week, as 周报 发送 asked (``run.params``: project id, the week's Monday, who)."""
    params = run.params
    period = WeeklyPeriod.containing(date.fromisoformat(params["monday"]))
    async with run.database.read() as session:
        project = await session.get(Project, params["project_id"])
        if project is None or not await _still_due(session, project.id, period):
            return  # sent meanwhile (the Friday job), paused or deleted: nothing to do
        data = await gather_project_report(session=session, project=project, today=run.today,
                                           calendar=run.calendar, tz=run.config.tz, period=period, weekly=True)
    bundle = await render_off_loop(render_weekly_bundle, data, bool(project.internal_conversation_id))
    await _queue_if_still_due(run, project, bundle, period, params.get("requested_by"))


# ---- commands -------------------------------------------------------------------------------------------------------


def _fmt_sent(sent_at: datetime, tz: Any) -> str:
    local = to_local(sent_at, tz)
    return local.strftime("%m-%d %H:%M") if local else ""


def _this_week(ctx: Context) -> tuple[WeeklyPeriod, date]:
    today = ctx.today()
    return WeeklyPeriod.containing(today), today


@router.command(
    "周报 预览",
    summary="在聊天中预览本周的客户项目周报（含阶段进度图），不会发送给客户",
    examples=("周报 预览", "周报 预览 内部"),
    params=(VERSION_PARAM,),
    roles=MEMBERS,
    needs_project=True,
)
async def preview_weekly_report(incoming: Incoming, ctx: Context) -> Reply:
    internal = ctx.args.text("版本") == INTERNAL_VERSION
    project = ctx.project
    if internal and incoming.conversation_id and incoming.conversation_id == project.client_conversation_id:
        raise UserError("内部版周报含内部事项，不能在客户群预览。请在项目内部群或单聊中发送「周报 预览 内部」。")
    period, today = _this_week(ctx)
    data = await gather_project_report(session=ctx.session, project=project, today=today,
                                       calendar=ctx.services.calendar, tz=ctx.config.tz, period=period, weekly=True)
    title, markdown, timeline = await render_off_loop(render_preview, data, internal)
    await ctx.reply(Markdown(f"【预览】{title}", markdown))
    return Image(png=timeline)


@router.command(
    "周报 发送",
    summary="立即生成本周周报并发到客户群（含 Word 附件）；每周只发一次，之后定时任务不再重复发送",
    examples=("周报 发送",),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="发送周报",
)
async def send_weekly_report(incoming: Incoming, ctx: Context) -> str:
    project: Project = ctx.project
    period, _ = _this_week(ctx)
    if project.status not in ACTIVE_PROJECT_STATUSES:
        raise Conflict(f"项目当前状态为「{project.status}」，只有已立项或进行中的项目发送周报。")
    if not project.client_conversation_id:
        raise Conflict("本项目还没有绑定客户群，无法发送客户项目周报。请先在客户群里绑定项目。")
    sent = await sent_weekly_reports(session=ctx.session, iso_year=period.iso_year, iso_week=period.iso_week,
                                     project_ids=[project.id])
    if project.id in sent:
        return (f"本周（{period.label}）周报已于 {_fmt_sent(sent[project.id], ctx.config.tz)} 发送，"
                "每周只发送一次。可用「周报 预览」查看内容。")
    where = "客户群" + ("，内部版发到内部群" if project.internal_conversation_id else "")
    requested = await request_job(ctx.session, SEND_JOB, f"{project.code}:{period.key}", {
        "project_id": project.id, "monday": period.monday.isoformat(), "requested_by": incoming.sender_id or None,
    }, now=ctx.clock.now())
    if not requested:
        return f"本周（{period.label}）周报正在生成，完成后会发到{where}，请稍候。"
    return (f"正在生成本周（{period.label}）周报，完成后发到{where}（含 Word 附件）。"
            "本周的定时周报将不再重复发送。")


__all__ = [
    "jobs",
    "open_render_pool",
    "outbox_key",
    "render_bundles",
    "render_preview",
    "router",
    "store_and_queue_weekly_report",
    "weekly_report_job",
    "weekly_report_send_job",
]
