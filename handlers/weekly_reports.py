"""客户项目周报: ``周报 预览``, ``周报 发送`` and the weekly jobs that render and send every running project's report.

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
goes out when Friday is a holiday: it is the week's record (the archive keeps every week), not a nudge. Rendering
runs off the event loop: in a thread for a few projects, in a process pool for many (created for the run and shut
down when it ends, so the app never keeps idle worker processes between Fridays).

Rendering (~0.25 s of CPU a project) would make the push slower than the rate limit allows (2 group messages a
project at 20/s), so the job ``weekly_report_prerender`` renders every due project
``schedule.weekly_report_prerender_minutes`` (60) before the push, in one low-priority worker process, and keeps each
bundle with the fingerprint of its data (``domain.weekly_render``). The push and ``周报 发送`` gather the data again
and reuse a kept bundle only when the fingerprint is unchanged: a project that got a log or an issue after the
pre-render is rendered again, so what goes out is always current. The pre-render never queues anything: the three
guarantees above stay with the push and ``周报 发送``, whether the pre-render ran, overlapped them, or was missed
(then they render everything, as before). ``周报 预览`` renders on its own: one chart and the markdown, quick enough.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.args import Param
from bot.client_robots import (
    CUSTOM_ROBOT,
    UNREACHED,
    client_reach,
    client_robot,
    with_client_robots,
)
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.jobs import JobRegistry, JobRunContext, weekly
from bot.outbox import (
    conversation_target,
    custom_robot_target,
    enqueue,
    group_target,
    target_params,
)
from bot.roles import MEMBERS_AND_CLIENTS, PROJECT_MANAGER, only
from bot.router import Router
from bot.scheduler import request_job
from domain.changes import ensure_not_closed
from domain.errors import Conflict, PermissionDenied
from domain.replies import File, Image, Markdown, Reply
from domain.report_data import (
    gather_project_report,
    gather_project_reports,
    issue_window_start,
    to_local,
)
from domain.submissions import file_generated, flagged_deliverable
from domain.weekly_render import (
    BundleRenderer,
    Wanted,
    forget_renders_before,
    reusable_bundles,
    store_renders,
)
from handlers._common import client_view
from handlers._project import project_middleware
from reports.archive import safe_component
from reports.charts import phase_timeline_png
from reports.model import ProjectReportData, WeeklyPeriod
from reports.pool import (
    WeeklyBundle,
    bundle_fingerprint,
    render_off_loop,
    render_weekly_bundle,
)
from reports.weekly import render_weekly_markdown
from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    Project,
    ReportVariant,
    WeeklyReportRender,
)
from storage.repo import (
    list_projects,
    record_weekly_report,
    weekly_renders,
    write_audit,
)
from storage.repo.report_queries import sent_weekly_reports
from storage.templates import DeliverableFlag

log = logging.getLogger(__name__)

router = Router("weekly_reports", title="周报")
router.group("周报", summary="客户项目周报：预览本周周报，或立即发送（每周一次）", aliases=("客户周报",))
jobs = JobRegistry()

# A report more than this late is not sent any more: next week's replaces it. Long enough to cover a weekend of
# downtime (Friday 17:00 -> Monday 17:00), short enough that a fresh install does not send last week's reports.
WEEKLY_MISFIRE = timedelta(days=3)
BATCH_PROJECTS = 32  # projects loaded and rendered together: bounded memory with 10,000 projects
# The pre-render has its lead time (an hour) for ~4 minutes of rendering at 1,000 projects: one worker process (bot
# and worker measured 237 MB together; a second worker would add ~100 MB) at a lower CPU priority than the bot's.
PRERENDER_WORKERS = 1
PRERENDER_NICENESS = 10
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
    session: AsyncSession, *, config: Any, project: Project, bundle: WeeklyBundle, period: WeeklyPeriod, now_utc: datetime,
    actor_user_id: str | None = None, links: Any = None,
) -> bool:
    """Write the .docx files under ``storage.files_dir``, record both variants as sent and queue the messages, in the
    caller's transaction. Returns whether anything new was queued (False: the outbox keys were already there).

    A client group with a custom robot (``bot.client_robots``) gets the markdown with a signed download link to the
    .docx (``links``: ``bot.downloads.DownloadLinks``), since a custom robot can send no file."""
    root = Path(config.storage.files_dir)
    folder = root / REPORTS_FOLDER / safe_component(project.code)
    client_path, internal_path = await asyncio.to_thread(_write_files, folder, bundle)
    robot = await client_robot(session, config, project) if links is not None else None
    to_client = bool(project.client_conversation_id) or robot is not None
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
    if robot is not None:
        link = links.url(client_path)
        days = config.server.download_link_hours // 24
        valid = f"{days} 天" if days else f"{config.server.download_link_hours} 小时"
        text = f"{bundle.markdown}\n\n[下载 Word 版周报]({link})（{valid}内有效）"
        queued |= await enqueue(session, outbox_key(project.code, period, "msg"), custom_robot_target(project.code),
                                Markdown(bundle.title, text))
    elif to_client:
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
    form = await flagged_deliverable(session, project, DeliverableFlag.WEEKLY_REPORT) if queued and to_client else None
    if form is not None:  # each week's report sent to the client is a version of the 客户项目周报 deliverable
        await file_generated(session, files_dir=root, project=project, deliverable=form, submitted_by=actor_user_id,
                             now=now_utc, stored_path=_relative(client_path, root), file_name=bundle.docx_name,
                             note=f"{period.label}周报，已发到客户群")
    return queued


# ---- rendering off the loop -------------------------------------------------------------------------------------


def render_preview(data: ProjectReportData, internal: bool) -> tuple[str, str, bytes]:
    """Markdown and the phase timeline of a project's week: the chat preview (no .docx, so it stays quick)."""
    title, markdown = render_weekly_markdown(data, internal=internal)
    return title, markdown, phase_timeline_png(data.phases, data.today)


# ---- the weekly jobs ------------------------------------------------------------------------------------------------

SEND_JOB = "weekly_report_send"
PRERENDER_JOB = "weekly_report_prerender"


def _due_projects(projects: Sequence[Project], sent: dict[int, datetime], scheduled_utc: datetime,
                  robots: set[int] = frozenset()) -> list[Project]:  # type: ignore[assignment]
    return [
        p for p in projects
        if p.id not in sent
        and (p.client_conversation_id or p.internal_conversation_id or p.id in robots)
        # A project created after the fire time (a late catch-up) has no week to report yet.
        and (p.created_at is None or p.created_at <= scheduled_utc)
    ]


async def _still_due(session: AsyncSession, project_id: int, period: WeeklyPeriod) -> bool:
    current = await session.get(Project, project_id)
    if current is None or current.status not in ACTIVE_PROJECT_STATUSES:
        return False
    sent = await sent_weekly_reports(session=session, iso_year=period.iso_year, iso_week=period.iso_week,
                                     project_ids=[project_id])
    return project_id not in sent


def _wants_internal(project: Project) -> bool:
    # The internal variant is a third of the rendering time: wasted for a project without an internal group.
    return bool(project.internal_conversation_id)


async def _list_due(run: JobRunContext, period: WeeklyPeriod, push_at: datetime) -> list[Project]:
    async with run.database.read() as session:
        projects = await list_projects(session=session, statuses=ACTIVE_PROJECT_STATUSES)
        sent = await sent_weekly_reports(session=session, iso_year=period.iso_year, iso_week=period.iso_week)
        robots = await with_client_robots(session, run.config, [p for p in projects if p.id not in sent])
    due = _due_projects(projects, sent, push_at.astimezone(UTC).replace(tzinfo=None), robots)
    run.log.info("%d running projects, %d already sent, %d due", len(projects), len(sent), len(due))
    return due


def _batches(projects: Sequence[Project]) -> Iterator[Sequence[Project]]:
    size = max(BATCH_PROJECTS, 4 * (os.cpu_count() or 1))  # keeps every worker busy
    for start in range(0, len(projects), size):
        yield projects[start:start + size]


async def _gather(run: JobRunContext, batch: Sequence[Project], period: WeeklyPeriod,
                  today: date) -> tuple[Wanted, dict[int, WeeklyReportRender]]:
    """The batch's report data now with its fingerprints, and the renders kept for it, in one read."""
    async with run.database.read() as session:
        gathered = await gather_project_reports(
            session=session, projects=batch, today=today, calendar=run.calendar, tz=run.config.tz, period=period,
            registers_since=issue_window_start(period, run.config.tz),
            company_name=run.config.organization.company_name,
        )
        stored = await weekly_renders(session=session, iso_year=period.iso_year, iso_week=period.iso_week,
                                      project_ids=[p.id for p in batch])
    wanted = {p.id: (gathered[p.id], bundle_fingerprint(gathered[p.id], _wants_internal(p))) for p in batch}
    return wanted, stored


@jobs.scheduled(
    PRERENDER_JOB,
    weekly(day=lambda cfg: cfg.schedule.weekly_prerender_at[0], at=lambda cfg: cfg.schedule.weekly_prerender_at[1]),
    # Worth running (a catch-up after a restart) only until the push it prepares.
    misfire=lambda cfg: timedelta(minutes=cfg.schedule.weekly_report_prerender_minutes),
)
async def weekly_report_prerender_job(run: JobRunContext) -> None:
    """Render the coming push's reports ahead of it and keep them (nothing is queued here)."""
    lead = timedelta(minutes=run.config.schedule.weekly_report_prerender_minutes)
    if not lead:
        return  # switched off: the push renders everything
    push_at = run.scheduled_at + lead
    period = WeeklyPeriod.containing(push_at.date())
    # By the push's clock: past it, the push renders whatever is left (rendering both would only slow it down).
    stop_at = time.monotonic() + (push_at - run.now).total_seconds()
    root = Path(run.config.storage.files_dir)
    await forget_renders_before(run.database, root=root, period=period)
    due = await _list_due(run, period, push_at)
    rendered = unchanged = 0
    failed: list[str] = []
    async with BundleRenderer(max_workers=PRERENDER_WORKERS, niceness=PRERENDER_NICENESS) as renderer:
        for batch in _batches(due):
            if time.monotonic() >= stop_at:
                run.log.warning("the push is due: it renders the %d projects not rendered yet",
                                len(due) - rendered - unchanged - len(failed))
                break
            wanted, stored = await _gather(run, batch, period, push_at.date())
            # A run taken over after a failure keeps what its predecessor rendered.
            todo = [p for p in batch if p.id not in stored or stored[p.id].fingerprint != wanted[p.id][1]]
            unchanged += len(batch) - len(todo)
            bundles = await renderer.render([(wanted[p.id][0], _wants_internal(p)) for p in todo])
            keep = []
            for project, bundle in zip(todo, bundles):
                if isinstance(bundle, BaseException):
                    run.log.error("weekly report of %s failed to render ahead", project.code, exc_info=bundle)
                    failed.append(project.code)  # the push tries again, and raises if it fails there too
                else:
                    keep.append((project.id, wanted[project.id][1], bundle))
            rendered += await store_renders(run.database, root=root, period=period, now_utc=run.now_utc,
                                            renders=keep)
    run.log.info("weekly reports of %s rendered ahead: %d, unchanged since an earlier run: %d, failed: %d",
                 period.key, rendered, unchanged, len(failed))


@jobs.scheduled(
    "weekly_report",
    weekly(day=lambda cfg: cfg.schedule.weekly_report_day, at=lambda cfg: cfg.schedule.weekly_report_time),
    misfire=WEEKLY_MISFIRE,
)
async def weekly_report_job(run: JobRunContext) -> None:
    """Every 已立项/进行中 project with a group: this week's report, unless it already went out."""
    period = WeeklyPeriod.containing(run.scheduled_at.date())
    due = await _list_due(run, period, run.scheduled_at)
    if not due:
        return
    root = Path(run.config.storage.files_dir)
    failed: list[str] = []
    sent_now = reused = 0
    async with BundleRenderer(max_workers=os.cpu_count() or 1) as renderer:
        for batch in _batches(due):
            wanted, stored = await _gather(run, batch, period, run.today)
            ready = await reusable_bundles(root, stored, wanted)
            reused += len(ready)
            # The reports rendered ahead go first: their messages are on their way while the others render.
            for project in batch:
                if project.id in ready:
                    sent_now += await _queue_if_still_due(run, project, ready[project.id], period)
            todo = [p for p in batch if p.id not in ready]
            bundles = await renderer.render([(wanted[p.id][0], _wants_internal(p)) for p in todo])
            for project, bundle in zip(todo, bundles):
                if isinstance(bundle, BaseException):
                    run.log.error("weekly report of %s failed to render", project.code, exc_info=bundle)
                    failed.append(project.code)
                    continue
                sent_now += await _queue_if_still_due(run, project, bundle, period)
    run.log.info("weekly reports queued for %d projects (%d rendered ahead and unchanged, %d rendered now)",
                 sent_now, reused, len(due) - reused - len(failed))
    # This week's renders have served (a project still due renders again, as without them).
    await forget_renders_before(run.database, root=root, period=period.next())
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
                                                   period=period, now_utc=run.now_utc, actor_user_id=actor_user_id,
                                                   links=run.services.links)


@jobs.on_demand(SEND_JOB, timeout=600, doing="生成并发送本周周报")
async def weekly_report_send_job(run: JobRunContext) -> None:
    """One project's report of one week, as 周报 发送 asked (``run.params``: project id, the week's Monday, who)."""
    params = run.params
    period = WeeklyPeriod.containing(date.fromisoformat(params["monday"]))
    async with run.database.read() as session:
        project = await session.get(Project, params["project_id"])
        if project is None or not await _still_due(session, project.id, period):
            return  # sent meanwhile (the Friday job), paused or deleted: nothing to do
        data = await gather_project_report(session=session, project=project, today=run.today,
                                           calendar=run.calendar, tz=run.config.tz, period=period, weekly=True,
                                           company_name=run.config.organization.company_name)
        stored = await weekly_renders(session=session, iso_year=period.iso_year, iso_week=period.iso_week,
                                      project_ids=[project.id])
    internal = _wants_internal(project)
    wanted = {project.id: (data, bundle_fingerprint(data, internal))}
    ready = await reusable_bundles(Path(run.config.storage.files_dir), stored, wanted)
    bundle = ready.get(project.id) or await render_off_loop(render_weekly_bundle, data, internal)
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
    roles=MEMBERS_AND_CLIENTS,  # clients: the client version only
    needs_project=True,
)
async def preview_weekly_report(incoming: Incoming, ctx: Context) -> Reply:
    internal = ctx.args.text("版本") == INTERNAL_VERSION
    project = ctx.project
    if internal and (ctx.client_conversation or incoming.conversation_id == project.client_conversation_id):
        raise PermissionDenied("内部版周报含内部事项，不能在客户群预览。请在项目内部群或单聊中发送「周报 预览 内部」。")
    if internal and client_view(ctx):
        raise PermissionDenied("内部版周报只给项目组看。客户联系人可以发送「周报 预览」查看客户版周报。")
    period, today = _this_week(ctx)
    data = await gather_project_report(session=ctx.session, project=project, today=today,
                                       calendar=ctx.services.calendar, tz=ctx.config.tz, period=period, weekly=True,
                                       company_name=ctx.config.organization.company_name)
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
    client_group=True,  # its answer says only when the report goes out
)
async def send_weekly_report(incoming: Incoming, ctx: Context) -> str:
    project: Project = ctx.project
    period, _ = _this_week(ctx)
    ensure_not_closed(project)
    if project.status not in ACTIVE_PROJECT_STATUSES:
        raise Conflict(f"项目当前状态为「{project.status}」，只有已立项或进行中的项目发送周报。")
    reach = await client_reach(ctx.session, ctx.config, project)
    if reach == UNREACHED:
        raise Conflict("本项目还没有绑定客户群，无法发送客户项目周报。请先在客户群里绑定项目"
                       "（或由管理员用 dingpm client-robot 登记客户群的自定义机器人）。")
    sent = await sent_weekly_reports(session=ctx.session, iso_year=period.iso_year, iso_week=period.iso_week,
                                     project_ids=[project.id])
    if project.id in sent:
        return (f"本周（{period.label}）周报已于 {_fmt_sent(sent[project.id], ctx.config.tz)} 发送，"
                "每周只发送一次。可用「周报 预览」查看内容。")
    where = ("客户群（由自定义机器人推送，附 Word 下载链接）" if reach == CUSTOM_ROBOT else "客户群") + (
        "，内部版发到内部群" if project.internal_conversation_id else "")
    requested = await request_job(ctx.session, SEND_JOB, f"{project.code}:{period.key}", {
        "project_id": project.id, "monday": period.monday.isoformat(), "requested_by": incoming.sender_id or None,
        "target": target_params(conversation_target(incoming)),  # told there if the run fails
    }, now=ctx.clock.now())
    if not requested:
        return f"本周（{period.label}）周报正在生成，完成后会发到{where}，请稍候。"
    return (f"正在生成本周（{period.label}）周报，完成后发到{where}（含 Word 附件）。"
            "本周的定时周报将不再重复发送。")


feature = Feature("weekly_reports", router=router, middleware=(project_middleware,), jobs=jobs)

__all__ = [
    "feature",
    "jobs",
    "outbox_key",
    "render_preview",
    "router",
    "store_and_queue_weekly_report",
    "weekly_report_job",
    "weekly_report_prerender_job",
    "weekly_report_send_job",
]
