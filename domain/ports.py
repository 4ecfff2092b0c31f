"""What the domain services need from the layers above them, as Protocols.

The services run inside a chat command, an approval event, a scheduled job or a web request; they take what they
need as these small interfaces instead of importing the kernel (``bot/``), so the import arrow stays one-way and a
test can hand them a double. ``bot.context.Context`` satisfies `CommandScope`; ``bot.dingtalk.DingTalkClient``
satisfies `WorkflowClient`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo
from typing import Any, Protocol

from domain.replies import Reply


class Clock(Protocol):
    def now(self) -> datetime:
        """Naive UTC, as stored."""
        ...

    def today(self) -> date:
        """Today in the configured timezone."""
        ...


class Settings(Protocol):
    """The sections of ``bot.config.Config`` the services read."""

    @property
    def approvals(self) -> Any: ...  # mode, approvers, process codes

    @property
    def organization(self) -> Any: ...  # company name, leaders

    @property
    def storage(self) -> Any: ...  # files_dir, templates_dir

    @property
    def dingtalk(self) -> Any: ...  # corp_id, agent_id (links into DingTalk)

    @property
    def tz(self) -> tzinfo: ...


class ServiceSet(Protocol):
    """What the process built once at start, as the services read it (``bot.context.Services``)."""

    @property
    def config(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def calendar(self) -> Any: ...  # storage.workdays.WorkCalendar

    @property
    def templates(self) -> Any: ...  # storage.templates.TemplateRegistry

    @property
    def dingtalk(self) -> Any: ...  # the DingTalk client: a WorkflowClient for the approval services


class MessageOrigin(Protocol):
    """Who asked, and where: what a change records as its actor and where it is not announced again."""

    @property
    def sender_id(self) -> str: ...

    @property
    def sender_nick(self) -> str: ...

    @property
    def conversation_id(self) -> str: ...

    @property
    def is_group(self) -> bool: ...

    @property
    def files(self) -> Sequence[Any]: ...


class CommandArgs(Protocol):
    """A command's parsed arguments, by parameter name (``bot.args.Args``)."""

    def text(self, name: str) -> str | None: ...


class CommandScope(Protocol):
    """One command's unit of work as the services see it: its session, clock, config and sender, and a way to
    answer before the command ends (progress, a second message)."""

    @property
    def session(self) -> Any: ...  # the unit of work's AsyncSession

    @property
    def services(self) -> ServiceSet: ...

    @property
    def config(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def incoming(self) -> MessageOrigin: ...

    @property
    def trace_id(self) -> str: ...

    def today(self) -> date: ...

    async def reply(self, reply: Reply | str) -> None: ...


class WorkflowClient(Protocol):
    """DingTalk's OA approval (workflow) API, as the approval services use it (reference part 1 §8). Failures are
    ``domain.errors.RemoteError`` (``RemoteRefusal`` when the request itself was refused)."""

    async def process_code_by_name(self, name: str) -> str | None: ...

    async def create_form(self, name: str, form_components: Sequence[Mapping[str, Any]], *,
                          description: str | None = None, **extra: Any) -> str: ...

    async def get_form_schema(self, process_code: str) -> dict[str, Any]: ...

    async def create_process_instance(self, process_code: str, originator_user_id: str,
                                      form_values: Mapping[str, str] | Sequence[Mapping[str, Any]], *,
                                      approvers: Sequence[str] | None = None, **options: Any) -> str: ...
