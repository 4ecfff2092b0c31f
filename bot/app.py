"""The app lifecycle: everything a bot process runs, built once from the ``Config`` and closed with it.

Start order (each step needs the ones before it; frames are taken last, when everything can handle them):

1. the database schema: an empty or outdated SQLite database is upgraded in place; a server database that is not at
   the latest revision stops the start with a one-line "run ``dingpm db upgrade``";
2. one ``Database`` (engine), one ``aiohttp.ClientSession``, one ``DingTalkClient`` on it, the process templates and
   the work calendar (file reads, off the loop; then the official schedules imported into the database, kept up to
   date by ``CalendarSync``), ``Services``;
3. the dispatcher with every feature's router and middleware (``handlers.features.FEATURES``, or a test's list);
4. the scheduler, built but not started (every process runs the on-demand jobs its commands request, right after
   they commit), the outbox relay (sends what a previous run left), the inbox pipeline (runs what a previous run
   left);
5. leader election, which starts the scheduler's triggers and sweep (one process of several runs the schedule);
6. the HTTP server: /healthz and the signed download links (``bot.downloads``); the 看板 (``web``) on its own host and
   port when ``dashboard.enabled``;
7. the Stream connection.

Shutdown (SIGTERM/SIGINT, or ``stop()``) goes the other way: stop taking frames, let in-flight commands finish
(bounded), stop the scheduler and the relay (bounded), close the health server and the 看板, the HTTP session and
the engine.

``bot/app.py`` is the only module of the kernel that knows the features (it imports ``handlers.features`` for the
default). To add a feature, write ``handlers/<name>.py`` ending in ``feature = Feature(...)`` (``bot.feature``) and
add it to ``handlers.features.FEATURES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from bot.calendar_sync import CalendarSync
from bot.card_catalog import CardCatalog
from bot.card_refresher import CardRefresher
from bot.client_robots import client_robot_by_code
from bot.config import Config
from bot.context import ApprovalEventHandler, Clock, Services, SystemClock
from bot.dingtalk import DingTalkClient, RetryPolicy
from bot.dingtalk.custom_robot import CustomRobotSender
from bot.dispatcher import Dispatcher, Middleware
from bot.downloads import ROUTE as DOWNLOAD_ROUTE
from bot.downloads import DownloadLinks
from bot.feature import Feature
from bot.health import HealthServer, database_report
from bot.inbox import InboxOptions, InboxPipeline
from bot.leader import LeaderElection
from bot.lookups import find_user, role_lookup
from bot.outbox import OutboxRelay, RelayOptions
from bot.people import in_client_conversation, people_identifier
from bot.scheduler import Scheduler
from bot.stream import DingTalkStream, StreamOptions
from bot.todo_relay import TodoRelay, TodoRelayOptions
from bot.transactions import Transactions
from storage.db import Database, url_family
from web.server import DashboardServer

if TYPE_CHECKING:
    from storage.templates import TemplateRegistry
    from storage.workdays import WorkCalendar

log = logging.getLogger("dingpm.app")

class StartupError(Exception):
    """The bot cannot start; the message is one line for the operator (Chinese, says what to do)."""


@dataclass(frozen=True)
class KernelOptions:
    """Timings of the kernel. The defaults suit production; tests shrink them."""

    inbox: InboxOptions = field(default_factory=InboxOptions)
    relay: RelayOptions = field(default_factory=RelayOptions)
    todo_relay: TodoRelayOptions = field(default_factory=TodoRelayOptions)
    stream: StreamOptions = field(default_factory=StreamOptions)
    retry: RetryPolicy | None = None  # the DingTalk client's inline retries; None: its default
    leader_retry_seconds: float = 5.0  # a follower tries to become the scheduler leader this often
    leader_check_seconds: float = 5.0
    scheduler_sweep_seconds: float | None = 300.0  # catch-up sweep of missed job runs
    scheduler_stop_grace_seconds: float = 30.0
    stream_stop_seconds: float = 15.0
    connect_stream: bool = True  # False: no Stream connection (kernel tests that feed frames themselves)
    serve_health: bool = True


def new_worker_id() -> str:
    """``host:pid:random``: names this process's inbox/outbox claims; unique even when a pid is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:64]


class App:
    """One bot process. ``async with App(config) as app:`` or ``await app.start()`` … ``await app.stop()``;
    ``await app.run()`` serves until SIGTERM/SIGINT."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        features: Sequence[Feature] | None = None,
        options: KernelOptions | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock(config.tz)
        self.options = options or KernelOptions()
        self.worker = worker_id or new_worker_id()
        if features is None:
            # Imported now so that a broken module or a clashing command fails before anything is opened. Cheap:
            # declarations only, the rendering libraries (python-docx, matplotlib, openpyxl) load in the render
            # threads; ``run_app`` even builds the App before the loop runs.
            from handlers.features import FEATURES

            features = FEATURES
        self.features: tuple[Feature, ...] = tuple(features)
        self._approval_handlers: list[ApprovalEventHandler] = [h for f in self.features for h in f.on_event]
        self.database: Database | None = None
        self.transactions: Transactions | None = None
        self.http: aiohttp.ClientSession | None = None
        self.dingtalk: DingTalkClient | None = None
        self.services: Services | None = None
        self.links: DownloadLinks | None = None
        self.dispatcher: Dispatcher | None = None
        self.relay: OutboxRelay | None = None
        self.todo_relay: TodoRelay | None = None
        self.calendar_sync: CalendarSync | None = None
        self.inbox: InboxPipeline | None = None
        self.scheduler: Scheduler | None = None
        self.leader: LeaderElection | None = None
        self.health_server: HealthServer | None = None
        self.dashboard: DashboardServer | None = None
        self.stream: DingTalkStream | None = None
        self.card_refresher: CardRefresher | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = asyncio.Event()
        self._stop_requested: asyncio.Event | None = None

    def on_approval_event(self, handler: ApprovalEventHandler) -> ApprovalEventHandler:
        """Register ``async def handler(event, ctx)`` for every approval event (in the event's unit of work), beside
        the features' ``on_event``. Until one is registered, events are stored in the inbox and marked done."""
        self._approval_handlers.append(handler)
        if self.inbox is not None:
            self.inbox.register(handler)
        return handler

    async def _lead(self) -> None:
        """Elected: this process runs the schedule and sends the 待办 calls."""
        if self.scheduler is not None:
            await self.scheduler.start()
        if self.todo_relay is not None:
            await self.todo_relay.start()

    async def _follow(self) -> None:
        if self.todo_relay is not None:
            await self.todo_relay.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()

    def _todo_detail_url(self, project_code: str) -> str:
        """Where a 待办 opens: the project's page on the 看板 when it runs, else the chat with the bot."""
        if self.dashboard is not None:
            return f"{self.dashboard.url.rstrip('/')}/p/{quote(project_code)}"
        return self.config.todo.chat_url

    # ---- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("App.start() called twice")
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.stop()  # whatever did start is stopped in order, whatever was opened is closed
            raise

    async def _start(self) -> None:
        config = self.config
        await ensure_database_ready(config.database.url)
        # Commands in flight, plus frames being stored, sends being settled and a job beside them.
        self.database = Database(config.database.url, concurrency=config.pacing.max_concurrent_messages + 4)
        self.transactions = Transactions(self.database)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.pacing.http_timeout_seconds))
        self.dingtalk = DingTalkClient(config, session=self.http, retry_policy=self.options.retry)
        templates, calendar, cards = await asyncio.gather(
            asyncio.to_thread(_load_templates, config.storage.templates_dir),
            asyncio.to_thread(_load_calendar, config, self.clock.today().year),
            asyncio.to_thread(CardCatalog.load, config.cards),
        )
        self.relay = OutboxRelay(transactions=self.transactions, client=self.dingtalk, config=config,
                                 worker=self.worker, options=self.options.relay,
                                 spool_dir=Path(config.storage.files_dir) / "outbox",
                                 custom_robots=CustomRobotSender(self.dingtalk),
                                 find_custom_robot=lambda session, code: client_robot_by_code(session, config, code))
        self.todo_relay = TodoRelay(transactions=self.transactions, client=self.dingtalk, worker=self.worker,
                                    max_attempts=config.pacing.outbox_max_attempts, detail_url=self._todo_detail_url,
                                    options=self.options.todo_relay) if config.todo.enabled else None
        self.links = DownloadLinks(config)
        self.services = Services(config=config, clock=self.clock, database=self.database, dingtalk=self.dingtalk,
                                 templates=templates, calendar=calendar, outbox=self.relay,
                                 links=self.links, cards=cards)
        services = self.services
        for wrapper in (w for f in self.features for w in f.around_work):
            self.relay.wrap_work(lambda work, wrapper=wrapper: wrapper(work, services))
        self.dispatcher = build_dispatcher(self.services, self.features)
        self.inbox = InboxPipeline(services=self.services, dispatcher=self.dispatcher, relay=self.relay,
                                   transactions=self.transactions, worker=self.worker,
                                   max_concurrent=config.pacing.max_concurrent_messages, options=self.options.inbox)
        for handler in self._approval_handlers:
            self.inbox.register(handler)
        for feature in self.features:
            for card_action in feature.card_actions:
                self.inbox.card_actions.add(card_action)

        # Built before the inbox runs a command: a command may request an on-demand job, started on its commit.
        self.scheduler = Scheduler(
            self.services, [f.jobs for f in self.features if f.jobs is not None], owner=self.worker,
            stop_grace=self.options.scheduler_stop_grace_seconds,
            sweep_interval=(None if self.options.scheduler_sweep_seconds is None
                            else timedelta(seconds=self.options.scheduler_sweep_seconds)),
        )
        scheduler = self.scheduler
        self.relay.on_commit(lambda work: scheduler.start_requested(work.requested_runs))
        todo_relay = self.todo_relay
        if todo_relay is not None:
            self.relay.on_commit(lambda work: todo_relay.wake() if work.queued_outbox else None)

        # The imported official schedules, before the first command plans a date; then kept up to date.
        self.calendar_sync = CalendarSync(self.database, calendar, interval_seconds=config.calendar.refresh_seconds)
        await self.calendar_sync.start()
        await self.relay.start()
        refreshes = [refresh for f in self.features for refresh in f.card_refreshes]
        if refreshes and cards:
            self.card_refresher = CardRefresher(self.services, refreshes,
                                                coalesce_seconds=config.cards.coalesce_seconds)
            self.relay.on_commit(self.card_refresher.poke)
            await self.card_refresher.start()
        await self.inbox.start()

        self.leader = LeaderElection(self.database, on_elected=self._lead, on_lost=self._follow,
                                     retry_interval=self.options.leader_retry_seconds,
                                     check_interval=self.options.leader_check_seconds)
        await self.leader.start()

        if self.options.serve_health:
            self.health_server = HealthServer(config.server.health_host, config.server.health_port, self.health,
                                              routes=[(DOWNLOAD_ROUTE, self.links.handle)])
            try:
                await self.health_server.start()
                self.links.use_base(self.health_server.base_url)
            except OSError as exc:
                self.health_server = None
                raise StartupError(
                    f"无法在 {config.server.health_host}:{config.server.health_port} 提供健康检查（{exc.strerror or exc}），"
                    "请修改 server.health_port"
                ) from None

        if config.dashboard.enabled:
            self.dashboard = DashboardServer(config, database=self.database, dingtalk=self.dingtalk,
                                             calendar=calendar, clock=self.clock, templates=templates)
            try:
                await self.dashboard.start()
            except OSError as exc:
                self.dashboard = None
                raise StartupError(
                    f"无法在 {config.dashboard.host}:{config.dashboard.port} 提供项目看板（{exc.strerror or exc}），"
                    "请修改 dashboard.port"
                ) from None

        if self.options.connect_stream:
            self.stream = DingTalkStream(config, self.inbox.on_frame, session=self.http, options=self.options.stream,
                                         on_card_press=self.inbox.on_card_press if cards else None)
            self._stream_task = asyncio.create_task(self.stream.start(), name="dingtalk-stream")
            self._stream_task.add_done_callback(_log_stream_end)
        log.info("dingpm started worker=%s database=%r commands=%d jobs=%s health=%s dashboard=%s", self.worker,
                 self.database, len(self.dispatcher.commands.commands), self.scheduler.job_names or "none",
                 self.health_server.url if self.health_server else "off",
                 self.dashboard.url if self.dashboard else "off")
        # What start built lives as long as the process: take it out of the cyclic GC's generations, so that a full
        # collection (several per 10,000-project scan) no longer traverses the whole app (BENCHMARKS.md, "Scans").
        gc.freeze()

    async def stop(self) -> None:
        """Graceful shutdown; safe to call twice and after a failed start."""
        if not self._started or self._stopped.is_set():
            return
        if self.database is not None:  # a start that failed before opening anything has nothing to report
            log.info("dingpm stopping worker=%s", self.worker)
        if self.stream is not None:
            # First: no new frames. Frames being persisted get the stream's own grace and are acked.
            try:
                await asyncio.wait_for(self.stream.stop(), self.options.stream_stop_seconds)
            except asyncio.TimeoutError:
                log.warning("the Stream connection did not stop in time; cancelling it")
        if self._stream_task is not None:
            if not self._stream_task.done():
                self._stream_task.cancel()
            await asyncio.gather(self._stream_task, return_exceptions=True)
        if self.inbox is not None:
            await self.inbox.stop()
        if self.leader is not None:
            await self.leader.stop()  # steps down: stops the scheduler, frees the lock for a follower at once
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.card_refresher is not None:
            await self.card_refresher.stop()
        if self.todo_relay is not None:
            await self.todo_relay.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.calendar_sync is not None:
            await self.calendar_sync.stop()
        await self._close_resources()
        gc.unfreeze()  # what start froze is garbage now (a process may start another App: tests, the sandbox)
        self._stopped.set()
        if self.database is not None:
            log.info("dingpm stopped worker=%s", self.worker)

    async def _close_resources(self) -> None:
        """Close what was opened (the health server, the 看板, the HTTP session, the engine), whatever state start
        reached."""
        if self.health_server is not None:
            with contextlib.suppress(Exception):
                await self.health_server.stop()
        if self.dashboard is not None:
            with contextlib.suppress(Exception):
                await self.dashboard.stop()
        if self.http is not None and not self.http.closed:
            await self.http.close()
        if self.database is not None:
            await self.database.close()

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Start, serve until SIGTERM/SIGINT (or ``request_stop()``), then shut down gracefully."""
        self._stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.request_stop)
                    installed.append(sig)
        try:
            await self.start()
            await self._stop_requested.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.stop()

    def request_stop(self) -> None:
        if self._stop_requested is not None:
            self._stop_requested.set()

    # ---- health --------------------------------------------------------------------------------------------

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, report) for /healthz: Stream connected, database answering, scheduler running on the leader."""
        stream = self.stream.status.as_dict() if self.stream is not None else None
        db = await database_report(self.database) if self.database is not None else {"ok": False}
        leader = self.leader.is_leader if self.leader is not None else False
        scheduler_running = self.scheduler.running if self.scheduler is not None else False
        scheduler = {"leader": leader, "running": scheduler_running,
                     "jobs": self.scheduler.job_names if self.scheduler is not None else []}
        inbox_rows = db.get("inbox", {})
        outbox_rows = db.get("outbox", {})
        report = {
            "worker": self.worker,
            "stream": stream,
            "database": {k: v for k, v in db.items() if k not in ("inbox", "outbox")},
            "scheduler": scheduler,
            "inbox": {
                "backlog": inbox_rows.get("pending", 0) + inbox_rows.get("processing", 0),
                "failed": inbox_rows.get("failed", 0),
                "in_flight": self.inbox.in_flight if self.inbox is not None else 0,
                "running": self.inbox.running if self.inbox is not None else False,
                **(self.inbox.stats.as_dict() if self.inbox is not None else {}),
            },
            "outbox": {
                "pending": outbox_rows.get("pending", 0) + outbox_rows.get("sending", 0),
                "dead": outbox_rows.get("dead", 0),
                "in_flight": self.relay.in_flight if self.relay is not None else 0,
                "running": self.relay.running if self.relay is not None else False,
                **(self.relay.stats.as_dict() if self.relay is not None else {}),
            },
        }
        stream_ok = stream is not None and bool(stream.get("connected")) if self.options.connect_stream else True
        # A follower is healthy without running the scheduler; the leader must be running it.
        scheduler_ok = scheduler_running or not leader
        loops_ok = bool(report["inbox"]["running"]) and bool(report["outbox"]["running"])
        healthy = stream_ok and bool(db.get("ok")) and scheduler_ok and loops_ok
        report["status"] = "ok" if healthy else "unhealthy"
        return healthy, report


def build_dispatcher(services: Services, features: Sequence[Feature], *, identify_people: bool = True) -> Dispatcher:
    """The dispatcher of ``features``, as every process (and the tests that run messages) builds it."""
    # A middleware several features declare (project resolution) runs once, where it first appears.
    middleware: list[Middleware] = []
    for feature in features:
        middleware.extend(m for m in feature.middleware if m not in middleware)
    # Who the sender and the people named are comes first: every other preparer and the command use it.
    preparers = [people_identifier()] if identify_people else []
    preparers += [p for f in features for p in f.preparers]
    dispatcher = Dispatcher(services, roles_of=role_lookup(services.config), find_user=find_user,
                            client_audience=in_client_conversation, middleware=middleware,
                            rewrites=[r for f in features for r in f.rewrites], preparers=preparers)
    dispatcher.include_routers(*(f.router for f in features if f.router is not None))
    return dispatcher


async def ensure_database_ready(url: str) -> None:
    """SQLite: create or upgrade the schema in place. Server databases: refuse to start unless at the head."""
    from storage.migrations import SchemaError, current_revision, ensure_schema, head_revision

    try:
        if url_family(url) == "sqlite":
            if await ensure_schema(url):
                log.info("database schema created or upgraded to the latest version")
            return
        head = await asyncio.to_thread(head_revision)
        current = await current_revision(url)
    except SchemaError as exc:
        raise StartupError(f"数据库结构错误：{exc}") from None
    except Exception as exc:  # noqa: BLE001 - unreachable server, bad credentials, missing driver
        raise StartupError(f"无法连接数据库（{type(exc).__name__}: {str(exc)[:200]}），请检查 database.url") from None
    if current != head:
        raise StartupError(
            f"数据库结构不是最新版本（当前 {current or '空库'}，需要 {head}）：请先运行 dingpm db upgrade"
        )


def _load_templates(templates_dir: Path | None) -> TemplateRegistry:
    from storage.templates import load_templates

    return load_templates(templates_dir)


def _load_calendar(config: Config, this_year: int) -> WorkCalendar:
    from storage.workdays import WorkCalendar

    calendar = config.calendar
    # The years plans reach, computed here in the start-up thread rather than by the first command on the loop.
    return WorkCalendar(calendar.extra_holidays, calendar.extra_workdays, calendar.data_file).prepare(
        range(this_year - 1, this_year + 6))


def _log_stream_end(task: asyncio.Task[None]) -> None:
    # The Stream loop only ends through stop(); anything else leaves the bot deaf, so say so loudly (and /healthz
    # reports 503 from then on).
    if not task.cancelled() and task.exception() is not None:
        log.critical("the DingTalk Stream connection loop crashed; no messages are received", exc_info=task.exception())


def run_app(config: Config, **app_options: Any) -> None:
    """``dingpm run``: one App until a signal.

    The App is built before the event loop starts: building it imports every feature module, work that has no
    business blocking a running loop (the renderers' heavy libraries are loaded later, by the render threads).
    """
    app = App(config, **app_options)
    asyncio.run(app.run())


__all__ = ["App", "KernelOptions", "build_dispatcher", "StartupError", "ensure_database_ready", "new_worker_id",
           "run_app"]
