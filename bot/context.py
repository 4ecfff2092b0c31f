"""What a handler is given besides the message: ``(incoming, ctx)``.

``Services`` is built once in the app lifecycle (config, database, DingTalk client, clock, templates, work calendar,
outbox relay, download links). ``Context`` belongs to one message: the command, its parsed arguments, the project
(set by the project middleware), the sender's roles in it, ``reply(...)`` (answers are collected in ``replies``,
the kernel queues them), a trace id, and ``work``: the message's ``UnitOfWork``, the one write transaction in which
the command's changes, audit rows, outbox rows and the inbox done-mark commit together. The dispatcher is handed the
unit of work explicitly (``run_message(route, work)``); it is also bound to the running task
(``bind_unit_of_work``), so the outbox and the lookups reach the same transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.args import Args
from bot.config import Config
from bot.incoming import ApprovalEvent, Incoming
from domain.replies import Reply, as_reply

if TYPE_CHECKING:
    from bot.card_catalog import CardCatalog
    from bot.card_press import CardAnswer
    from bot.dingtalk import DingTalkClient
    from bot.downloads import DownloadLinks
    from bot.outbox import OutboxRelay
    from bot.router import Command, CommandTable
    from storage.db import Database
    from storage.models import OutboxMessage, Project
    from storage.templates import TemplateRegistry
    from storage.workdays import WorkCalendar

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    """Time as the bot sees it; tests pass a ``FrozenClock``."""

    def now(self) -> datetime:
        """The current instant, naive UTC, like ``Incoming`` timestamps and the database columns."""
        ...

    def today(self) -> date:
        """Today's date in the configured timezone: what 今天 and 明天 mean to the user."""
        ...


@dataclass(frozen=True, slots=True)
class SystemClock:
    tz: tzinfo = DEFAULT_TZ

    def now(self) -> datetime:
        return datetime.now(timezone.utc).replace(tzinfo=None)

    def today(self) -> date:
        return datetime.now(self.tz).date()


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime, tz: tzinfo = DEFAULT_TZ) -> None:
        self._now = now.astimezone(timezone.utc).replace(tzinfo=None) if now.tzinfo else now
        self.tz = tz

    def now(self) -> datetime:
        return self._now

    def today(self) -> date:
        return self._now.replace(tzinfo=timezone.utc).astimezone(self.tz).date()

    def advance(self, delta: timedelta) -> None:
        self._now += delta


@dataclass(frozen=True, slots=True)
class Services:
    """Built once at start and shared by every message. Tests give only what the code under test uses."""

    config: Config
    clock: Clock
    database: Database | None = None  # storage: the engine and its session factories
    # transport: OpenAPI on the shared aiohttp session; tests pass a fake with the few calls they exercise
    dingtalk: DingTalkClient | None = None
    templates: TemplateRegistry | None = None  # process templates by project type
    calendar: WorkCalendar | None = None  # statutory holidays and 调休 make-up workdays
    # the outbox relay: ``services.outbox.unit_of_work()`` opens a write transaction whose outbox rows are sent right
    # after it commits (scheduled jobs use it; commands already run inside one)
    outbox: OutboxRelay | None = None
    links: DownloadLinks | None = None  # signed download links to generated reports
    cards: CardCatalog | None = None  # the interactive cards this deployment can send


DeferredWrite = Callable[[AsyncSession], Awaitable[None]]


class NoUnitOfWork(RuntimeError):
    """Database access was attempted outside a unit of work (a command, an event, or ``outbox.unit_of_work()``)."""


@dataclass(eq=False)
class UnitOfWork:
    """One write transaction: a command's (or an event's, or a job's) state changes, audit rows, outbox rows and
    the inbox row's done-mark all commit together, or none of them does.

    The kernel opens it, binds it to the running task (``current_unit_of_work()``), and after the commit sends the
    outbox rows written in it (the fast path). Handlers reach it as ``ctx.session`` / ``ctx.work``; repository
    functions take ``session=ctx.session``; ``bot.outbox.enqueue(ctx.session, key, target, message)`` queues a
    message in it.
    """

    session: AsyncSession  # inside the write transaction (a read one for a read-only command)
    worker: str = ""  # this process's claim owner name; empty: outbox rows are left to the relay's poll
    outbox_lease_seconds: float = 120.0
    spool_dir: Path | None = None  # where in-memory attachments (File.data, Image.png) are written before queuing
    claimed_outbox: list[OutboxMessage] = field(default_factory=list)  # rows this worker sends right after the commit
    queued_outbox: int = 0  # rows left to the relay (a later not_before): wake it after the commit
    requested_runs: list[tuple[str, str]] = field(default_factory=list)  # on-demand (job, key): run after the commit
    # A read-only command's work (``Command.reads_only``): ``session`` is a read session, and the writes it may
    # still make (``write_after``) run in the write transaction that queues its answer.
    read_only: bool = False
    deferred_writes: list[DeferredWrite] = field(default_factory=list)
    # A press on an interactive card: what the command changes on that card (bot.card_press.CardAnswer), answered
    # in the callback's ACK.
    card_answer: CardAnswer | None = None

    async def write_after(self, write: DeferredWrite) -> None:
        """Run ``await write(session)`` in this unit of work's write transaction: now, or for a read-only command
        in the one that queues its answer (bookkeeping such as the sender's last project, not the command's own
        changes)."""
        if self.read_only:
            self.deferred_writes.append(write)
        else:
            await write(self.session)


_current_work: ContextVar[UnitOfWork | None] = ContextVar("dingpm_unit_of_work", default=None)


def current_unit_of_work() -> UnitOfWork | None:
    """The unit of work of the running task, if any."""
    return _current_work.get()


@contextmanager
def bind_unit_of_work(work: UnitOfWork) -> Iterator[UnitOfWork]:
    """Make ``work`` the current unit of work of this task (and of tasks it creates) for the block."""
    token = _current_work.set(work)
    try:
        yield work
    finally:
        _current_work.reset(token)


def _require_work() -> UnitOfWork:
    work = _current_work.get()
    if work is None:
        raise NoUnitOfWork("no unit of work is active: handlers run inside one; jobs use services.outbox.unit_of_work()")
    return work


# The app wires these from the storage and transport layers.
RoleLookup = Callable[[str, "Project | None"], Awaitable[frozenset[str]]]  # (sender key, project or None) -> roles
AudienceCheck = Callable[[Incoming], Awaitable[bool]]  # (message) -> it comes from a client conversation


@dataclass(slots=True)
class Context:
    """One message's context, handed to the handler with the ``Incoming``."""

    services: Services
    incoming: Incoming
    command: Command
    args: Args
    commands: CommandTable  # every registered command, for help
    trace_id: str
    work: UnitOfWork  # the command's unit of work (its write transaction, or a read one for a reads_only command)
    # The project the message is about (the bound group's, the one named by 项目:编号, in a 1:1 chat the sender's
    # last one), set by the project middleware of handlers/ (``handlers._project``); None when there is none.
    project: Project | None = None
    roles: frozenset[str] = frozenset()  # the sender's roles in that project, plus organisation roles
    # The message comes from a client conversation (any project's bound client group, or a group with external
    # members): nothing internal may be answered here, whatever the project.
    client_conversation: bool = False
    replies: list[Reply] = field(default_factory=list, repr=False)  # the answers so far, in order

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def clock(self) -> Clock:
        return self.services.clock

    def today(self) -> date:
        return self.services.clock.today()

    @property
    def session(self) -> AsyncSession:
        """The command's database session, inside its one write transaction (a read transaction for a
        ``reads_only`` command): never commit it yourself."""
        return self.work.session

    async def reply(self, reply: Reply | str) -> None:
        """Answer (progress, or several messages); a handler may instead just return its reply.

        Replies are queued in the command's transaction and sent right after it commits, in order: a command that
        fails sends only its error message, and a crash or a redelivered frame never loses or repeats an answer.
        """
        self.replies.append(as_reply(reply))


ApprovalEventHandler = Callable[[ApprovalEvent, "EventContext"], Awaitable[None]]


@dataclass(slots=True)
class EventContext:
    """What an approval-event handler gets besides the event: the services and the event's unit of work."""

    services: Services
    event: ApprovalEvent
    trace_id: str

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def work(self) -> UnitOfWork:
        return _require_work()

    @property
    def session(self) -> AsyncSession:
        return _require_work().session
