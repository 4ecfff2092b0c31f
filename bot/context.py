"""What a handler is given besides the message: ``(incoming, ctx)``.

``Services`` is built once in the app lifecycle (config, database, DingTalk client, clock, templates, work calendar,
file store). ``Context`` belongs to one message: the command, its parsed arguments, the bound project, the sender's
roles in it, ``reply(...)`` and a trace id. The callbacks the dispatcher needs from the storage and transport
layers are plain async callables, so the dispatcher can be tested with fakes and never imports a database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from bot.args import Args
from bot.config import Config
from bot.incoming import Incoming
from bot.replies import Reply, as_reply

if TYPE_CHECKING:
    from bot.router import Command, CommandTable

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
    """Built once at start and shared by every message. The ``Any`` ones are typed by the layers that own them."""

    config: Config
    clock: Clock
    database: Any = None  # storage: the Database (engine + session factory)
    dingtalk: Any = None  # transport: the DingTalkClient (OpenAPI on the shared aiohttp session)
    templates: Any = None  # storage: process templates by project type
    calendar: Any = None  # the work calendar (statutory holidays and 调休 make-up workdays)
    files: Any = None  # the file store for submitted deliverables and generated reports


# The app wires these from the storage and transport layers.
ReplySender = Callable[[Incoming, Reply], Awaitable[None]]  # session webhook fast path, OpenAPI fallback
RoleLookup = Callable[[str, Any], Awaitable[frozenset[str]]]  # (sender userId, project or None) -> roles
ProjectResolver = Callable[[Incoming, "str | None"], Awaitable[Any]]  # (message, code given or None) -> project


@dataclass(slots=True)
class Context:
    """One message's context, handed to the handler with the ``Incoming``."""

    services: Services
    incoming: Incoming
    command: Command
    args: Args
    commands: CommandTable  # every registered command, for help
    trace_id: str
    project: Any = None  # the bound project, or the one named by 项目:编号
    roles: frozenset[str] = frozenset()  # the sender's roles in that project, plus organisation roles
    _send: Callable[[Reply], Awaitable[None]] | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def clock(self) -> Clock:
        return self.services.clock

    def today(self) -> date:
        return self.services.clock.today()

    async def reply(self, reply: Reply | str) -> None:
        """Answer now (progress, or several messages); a handler may instead just return its reply."""
        if self._send is None:
            raise RuntimeError("this context has no reply channel")
        await self._send(as_reply(reply))
