"""The dispatcher: routes a message once and runs its command once; the one error boundary of the bot.

``route(incoming)`` decides, from the text alone and before any transaction opens, which command a message is for
and whether it only reads. ``run_message(route, work)`` runs it inside the given unit of work: parse the arguments,
the features' middleware (project resolution lives in ``handlers/``), the role and audience checks, the handler.
It returns a ``Handled``: the replies and an ``Outcome`` that knows whether the work must roll back. A typed
``UserError`` becomes a friendly Chinese reply; anything else is logged with its traceback and answered with an
apology carrying a trace id. ``run_message`` never raises (except on cancellation). ``bot.kernel.answer`` wraps it
in the transactions; the inbox, the tests and the bench all go through that.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.args import UserFinder, normalize_text, parse_args
from bot.context import (
    AudienceCheck,
    Context,
    RoleLookup,
    Services,
    UnitOfWork,
    bind_unit_of_work,
)
from bot.incoming import Incoming
from bot.router import (
    Command,
    CommandTable,
    Group,
    Match,
    Router,
    group_text,
    unknown_command_text,
)
from domain.errors import PermissionDenied, UsageError, UserError
from domain.replies import Reply, Text, as_reply

logger = logging.getLogger("dingpm.dispatch")

MAX_MESSAGE_CHARS = 10_000
GREETING = "你好，我是项目实施助手。发送「帮助」查看我能做的事，发送「帮助 命令名」查看某个命令的用法。"
APOLOGY = "抱歉，处理时出错了（追踪号 {trace_id}），已记录，请稍后重试或联系管理员。"
DONE = "已完成。"
_LEADING_MENTIONS = re.compile(r"^(?:@\S+\s*)+")


class Outcome(enum.StrEnum):
    """What happened to one message. A ``str``: the log line and the inbox show its value."""

    OK = "ok"
    GREETING = "greeting"
    UNKNOWN_COMMAND = "unknown_command"
    GROUP_HELP = "group_help"
    USAGE_ERROR = "usage_error"
    DENIED = "denied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    USER_ERROR = "user_error"
    ERROR = "error"

    @property
    def rolls_back(self) -> bool:
        """A user mistake or an unexpected error: the command's changes are discarded, only its answer is kept."""
        return self not in _KEPT

    @property
    def failed(self) -> bool:
        """Unexpected: the inbox row is marked failed with the error."""
        return self is Outcome.ERROR


_KEPT = frozenset({Outcome.OK, Outcome.GREETING, Outcome.UNKNOWN_COMMAND, Outcome.GROUP_HELP})


@dataclass(frozen=True, slots=True)
class Route:
    """Where one message goes, decided once from its text before any transaction opens."""

    incoming: Incoming  # after the features' rewrites
    command: Command | None  # None: there is nothing to run, ``answer`` is the reply
    arguments: str = ""  # the text after the command's name; parsed inside the unit of work (names, @-mentions)
    reads_only: bool = True  # run in a read transaction, outside the write lock
    name: str | None = None  # the command's or the group's name, for the log line
    answer: Reply | None = None
    outcome: Outcome = Outcome.OK


@dataclass(frozen=True, slots=True)
class Handled:
    """What running one message gave: its replies, its outcome, and the fields of its one log line."""

    message_id: str
    trace_id: str
    sender_id: str
    command: str | None
    outcome: Outcome
    duration_ms: float
    replies: tuple[Reply, ...] = ()  # when ``outcome.rolls_back``, only the final answer
    error: str | None = None  # for ``Outcome.ERROR``: what went wrong (recorded on the inbox row)


def log_handled(handled: Handled) -> None:
    """One structured line per message. Never the text: it may carry anything the user pasted."""
    logger.info(
        "message handled message_id=%s command=%s sender=%s outcome=%s duration_ms=%.1f replies=%d trace_id=%s",
        handled.message_id,
        handled.command,
        handled.sender_id,
        handled.outcome,
        handled.duration_ms,
        len(handled.replies),
        handled.trace_id,
        extra={
            "event": "message_handled",
            "message_id": handled.message_id,
            "command": handled.command,
            "sender_id": handled.sender_id,
            "outcome": str(handled.outcome),
            "duration_ms": round(handled.duration_ms, 1),
            "replies": len(handled.replies),
            "trace_id": handled.trace_id,
            "error": handled.error,
        },
    )


def new_trace_id() -> str:
    return uuid.uuid4().hex[:12]


def command_text(text: str) -> str:
    """The text as a command: normalised, without the leading ``/`` some users type out of habit."""
    return normalize_text(text).lstrip("/／").strip()


async def _org_roles_only(user_id: str, project: object) -> frozenset[str]:
    return frozenset()


async def _internal_audience(incoming: Incoming) -> bool:
    return False


def client_conversation_refusal(command: Command) -> str:
    """What an internal command answers in a client conversation: that it is refused here, and where to ask."""
    return f"客户群里不显示内部内容（本群是客户群或有外部成员），「{command.name}」请在项目内部群或与我的单聊中发送。"


Answer = Reply | str | None
Preparer = Callable[[Incoming, Services], Awaitable[Incoming]]
Rewrite = Callable[[Incoming], Incoming]
# ``async def middleware(incoming, ctx, call_next) -> answer``: around every command, after its arguments are parsed
# and before the role check and the handler (``call_next()`` runs those). It may set ``ctx.project``/``ctx.roles``,
# raise a ``UserError``, or change the answer.
Middleware = Callable[[Incoming, Context, Callable[[], Awaitable[Answer]]], Awaitable[Answer]]


class Dispatcher:
    """Built once in the app lifecycle; ``run_message`` may run for many messages at once (no shared state).

    Wiring, in the app::

        dispatcher = Dispatcher(
            services,
            roles_of=role_lookup,              # async (user_id, None) -> organisation roles
            find_user=user_finder,             # async (text) -> User | None: a name, mobile or userId typed
            client_audience=audience_check,    # async (incoming) -> bool: a client conversation (client view)
            middleware=[...],                  # the features' middleware, outermost first
        )
        dispatcher.include_routers(projects.router, registers.router, help.router)
        route = dispatcher.route(await dispatcher.prepare(incoming))
        handled = await dispatcher.run_message(route, work)  # never raises; bot.kernel.answer does the rest
    """

    def __init__(
        self,
        services: Services,
        *,
        roles_of: RoleLookup = _org_roles_only,
        find_user: UserFinder | None = None,
        client_audience: AudienceCheck = _internal_audience,
        max_chars: int = MAX_MESSAGE_CHARS,
        rewrites: Sequence[Rewrite] = (),
        preparers: Sequence[Preparer] = (),
        middleware: Sequence[Middleware] = (),
    ) -> None:
        self.services = services
        self.commands = CommandTable()
        self._roles_of = roles_of
        self._find_user = find_user
        self._client_audience = client_audience
        self._max_chars = max_chars
        # Feature modules may turn a message into a command before matching (e.g. a bare file -> 「暂存文件」).
        self._rewrites = tuple(rewrites)
        self._preparers = tuple(preparers)
        self._middleware: list[Middleware] = list(middleware)

    def include_routers(self, *routers: Router) -> None:
        self.commands.include(*routers)

    def middleware(self, fn: Middleware) -> Middleware:
        """Run ``fn`` around every command (inside the ones registered before it). Usable as a decorator."""
        self._middleware.append(fn)
        return fn

    async def prepare(self, incoming: Incoming) -> Incoming:
        """The slow, transaction-free part of a message, done before its unit of work opens (e.g. downloading the
        files it carries). A preparer that fails leaves the message as it was: the command then does the work."""
        for preparer in self._preparers:
            try:
                incoming = await preparer(incoming, self.services)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("preparing message_id=%s failed; the command does it itself", incoming.message_id)
        return incoming

    # ---- 1. route once ---------------------------------------------------------------------------------------

    def route(self, incoming: Incoming) -> Route:
        """Match the command once. A message without a command to run (too long, empty, unknown, a group alone)
        gets its answer here and only reads."""
        for rewrite in self._rewrites:
            incoming = rewrite(incoming)
        if len(incoming.text) > self._max_chars:
            text = f"消息太长（{len(incoming.text)} 字），请控制在 {self._max_chars} 字以内；长内容请写成文档后发送文件。"
            return Route(incoming, None, answer=Text(text), outcome=Outcome.USER_ERROR)
        text = command_text(incoming.text)
        if not text:
            return Route(incoming, None, answer=Text(GREETING), outcome=Outcome.GREETING)
        found = self._match(text)
        if found is None:
            suggestion = unknown_command_text(text, self.commands.suggest(text))
            return Route(incoming, None, answer=Text(suggestion), outcome=Outcome.UNKNOWN_COMMAND)
        if isinstance(found.target, Group):
            return Route(incoming, None, name=found.target.name, outcome=Outcome.GROUP_HELP,
                         answer=Text(group_text(self.commands, found.target, found.rest)))
        command = found.target
        return Route(incoming, command, found.rest, reads_only=command.reads_only, name=command.name)

    def _match(self, text: str) -> Match | None:
        # richText keeps the bot's own @name in front of the command; drop leading mentions when nothing matched.
        return self.commands.match(text) or self.commands.match(_LEADING_MENTIONS.sub("", text))

    # ---- 2. run it once, in the given unit of work -------------------------------------------------------------

    async def run_message(self, route: Route, work: UnitOfWork) -> Handled:
        """Run ``route`` with ``work``'s session; the replies and the outcome come back, nothing is sent here."""
        started = time.perf_counter()
        trace_id = new_trace_id()
        incoming = route.incoming
        replies: list[Reply] = []
        outcome, error = route.outcome, None
        with bind_unit_of_work(work):
            try:
                if route.command is None:
                    assert route.answer is not None
                    replies.append(route.answer)
                else:
                    result = await self._run(route, route.command, work, trace_id, replies)
                    if result is not None:
                        replies.append(as_reply(result))
                    elif not replies:
                        # Every message gets an answer: a handler that replied nothing still says it is done.
                        replies.append(Text(DONE))
            except UserError as exc:
                outcome = Outcome(exc.outcome)
                if isinstance(exc, UsageError) and route.command is not None:
                    exc = exc.with_usage(route.command.usage, route.command.examples)
                replies.append(Text(exc.reply_text()))
            except Exception as exc:  # the error boundary: whatever a handler, a middleware or a lookup throws
                outcome, error = Outcome.ERROR, type(exc).__name__
                logger.exception("message failed message_id=%s command=%s trace_id=%s", incoming.message_id,
                                 route.name, trace_id)
                replies.append(Text(APOLOGY.format(trace_id=trace_id)))
        return Handled(
            message_id=incoming.message_id,
            trace_id=trace_id,
            sender_id=incoming.sender_key,
            command=route.name,
            outcome=outcome,
            duration_ms=(time.perf_counter() - started) * 1000,
            replies=tuple(replies[-1:] if outcome.rolls_back else replies),
            error=error,
        )

    async def _run(self, route: Route, command: Command, work: UnitOfWork, trace_id: str,
                   replies: list[Reply]) -> Answer:
        incoming = route.incoming
        args = await parse_args(
            command.all_params,
            route.arguments,
            today=self.services.clock.today(),
            mentions=incoming.mentioned_keys,
            find_user=self._find_user,
        )
        ctx = Context(
            services=self.services,
            incoming=incoming,
            command=command,
            args=args,
            commands=self.commands,
            trace_id=trace_id,
            work=work,
            roles=await self._roles_of(incoming.sender_key, None),
            replies=replies,
        )

        async def checked_handler() -> Answer:
            if not command.roles.allows(ctx.roles):
                raise PermissionDenied(command.roles.refusal(command.action, ctx.roles))
            # Whoever asks, and for whichever project: an internal command answers nothing in a client conversation.
            ctx.client_conversation = await self._client_audience(incoming)
            if ctx.client_conversation and not command.in_client_groups:
                raise PermissionDenied(client_conversation_refusal(command))
            return await command.handler(incoming, ctx)

        call = checked_handler
        for middleware in reversed(self._middleware):
            call = _wrap(middleware, incoming, ctx, call)
        return await call()


def _wrap(middleware: Middleware, incoming: Incoming, ctx: Context,
          call_next: Callable[[], Awaitable[Answer]]) -> Callable[[], Awaitable[Answer]]:
    async def call() -> Answer:
        return await middleware(incoming, ctx, call_next)

    return call
