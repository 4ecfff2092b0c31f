"""The dispatcher: one message in, exactly one answer out, and the one error boundary of the bot.

Steps: normalise the text -> match the command -> parse its arguments -> resolve the project -> check the sender's
role -> call the handler with ``(incoming, ctx)`` -> send what it returns. A typed ``UserError`` becomes a friendly
Chinese reply; anything else is logged with its traceback and answered with an apology carrying a trace id.
``handle`` never raises (except on cancellation), so the inbox can mark the message done whatever happened.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.args import UserFinder, normalize_text, parse_args
from bot.context import AudienceCheck, Context, ProjectResolver, ReplySender, RoleLookup, Services
from bot.incoming import Incoming
from bot.router import (
    PROJECT_PARAM,
    Command,
    CommandTable,
    Group,
    Match,
    Router,
    group_text,
    unknown_command_text,
)
from domain.errors import NotFound, PermissionDenied, UsageError, UserError
from domain.replies import Reply, Text, as_reply
from reports.user_text import clip

logger = logging.getLogger("dingpm.dispatch")

MAX_MESSAGE_CHARS = 10_000
GREETING = "你好，我是项目实施助手。发送「帮助」查看我能做的事，发送「帮助 命令名」查看某个命令的用法。"
APOLOGY = "抱歉，处理时出错了（追踪号 {trace_id}），已记录，请稍后重试或联系管理员。"
DONE = "已完成。"
_LEADING_MENTIONS = re.compile(r"^(?:@\S+\s*)+")


@dataclass(frozen=True, slots=True)
class Handled:
    """What happened to one message: the fields of its log line, and what the inbox records."""

    message_id: str
    trace_id: str
    sender_id: str
    command: str | None
    outcome: str  # ok | greeting | unknown_command | group_help | usage_error | denied | not_found | conflict
    #               | user_error | error | send_failed
    duration_ms: float
    replies: int
    error: str | None = None  # exception class, for error and send_failed


def log_handled(handled: Handled) -> None:
    """One structured line per message. Never the text: it may carry anything the user pasted."""
    logger.info(
        "message handled message_id=%s command=%s sender=%s outcome=%s duration_ms=%.1f replies=%d trace_id=%s",
        handled.message_id,
        handled.command,
        handled.sender_id,
        handled.outcome,
        handled.duration_ms,
        handled.replies,
        handled.trace_id,
        extra={
            "event": "message_handled",
            "message_id": handled.message_id,
            "command": handled.command,
            "sender_id": handled.sender_id,
            "outcome": handled.outcome,
            "duration_ms": round(handled.duration_ms, 1),
            "replies": handled.replies,
            "trace_id": handled.trace_id,
            "error": handled.error,
        },
    )


def new_trace_id() -> str:
    return uuid.uuid4().hex[:12]


def command_text(text: str) -> str:
    """The text as a command: normalised, without the leading ``/`` some users type out of habit."""
    return normalize_text(text).lstrip("/／").strip()


@dataclass(slots=True)
class _Progress:
    """Bookkeeping for one message while it is handled."""

    trace_id: str
    command: Command | None = None
    command_name: str | None = None
    outcome: str = "ok"
    replies: int = 0
    error: str | None = None


async def _no_project(incoming: Incoming, code: str | None) -> None:
    return None


async def _no_roles(user_id: str, project: object) -> frozenset[str]:
    return frozenset()


async def _internal_audience(incoming: Incoming) -> bool:
    return False


def client_conversation_refusal(command: Command) -> str:
    """What an internal command answers in a client conversation: that it is refused here, and where to ask."""
    return f"客户群里不显示内部内容（本群是客户群或有外部成员），「{command.name}」请在项目内部群或与我的单聊中发送。"


Preparer = Callable[[Incoming, Services], Awaitable[Incoming]]


class Dispatcher:
    """Built once in the app lifecycle; ``handle`` may run for many messages at once (it keeps no shared state).

    Wiring, in the app::

        dispatcher = Dispatcher(
            services,
            send=reply_sender,                 # async (incoming, reply): session webhook, else OpenAPI
            roles_of=role_lookup,              # async (user_id, project | None) -> frozenset of role names
            resolve_project=project_resolver,  # async (incoming, code | None) -> project | None
            find_user=user_finder,             # async (text) -> User | None: a name, mobile or userId typed
            client_audience=audience_check,    # async (incoming) -> bool: a client conversation (client view)
        )
        dispatcher.include_routers(projects.router, registers.router, help.router)
        handled = await dispatcher.handle(incoming)  # never raises; handled.outcome for the inbox
    """

    def __init__(
        self,
        services: Services,
        *,
        send: ReplySender,
        roles_of: RoleLookup = _no_roles,
        resolve_project: ProjectResolver = _no_project,
        find_user: UserFinder | None = None,
        client_audience: AudienceCheck = _internal_audience,
        on_handled: Callable[[Handled], None] = log_handled,
        max_chars: int = MAX_MESSAGE_CHARS,
        rewrites: Sequence[Callable[[Incoming], Incoming]] = (),
        preparers: Sequence[Preparer] = (),
    ) -> None:
        self.services = services
        self.commands = CommandTable()
        self._send = send
        self._roles_of = roles_of
        self._resolve_project = resolve_project
        self._find_user = find_user
        self._client_audience = client_audience
        self._on_handled = on_handled
        self._max_chars = max_chars
        # Feature modules may turn a message into a command before matching (e.g. a bare file -> 「暂存文件」).
        self._rewrites = tuple(rewrites)
        self._preparers = tuple(preparers)

    def include_routers(self, *routers: Router) -> None:
        self.commands.include(*routers)

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

    def reads_only(self, incoming: Incoming) -> bool:
        """Whether answering ``incoming`` only reads: a ``reads_only`` command, or an answer without a command (a
        greeting, help for a group, an unknown command, a message too long). Decided before running it, from the
        text alone, so the kernel can run it without the write lock."""
        incoming = self._rewrite(incoming)
        if len(incoming.text) > self._max_chars:
            return True
        found = self._match(command_text(incoming.text))
        return found is None or isinstance(found.target, Group) or found.target.reads_only

    def _rewrite(self, incoming: Incoming) -> Incoming:
        for rewrite in self._rewrites:
            incoming = rewrite(incoming)
        return incoming

    def _match(self, text: str) -> Match | None:
        if not text:
            return None
        # richText keeps the bot's own @name in front of the command; drop leading mentions when nothing matched.
        return self.commands.match(text) or self.commands.match(_LEADING_MENTIONS.sub("", text))

    async def handle(self, incoming: Incoming) -> Handled:
        started = time.perf_counter()
        progress = _Progress(new_trace_id())
        reply: Reply | None
        try:
            incoming = self._rewrite(incoming)
            reply = await self._route(incoming, progress)
        except UserError as exc:
            reply = self._explain(exc, progress)
        except Exception as exc:  # the error boundary: whatever a handler or a callback throws
            progress.outcome, progress.error = "error", type(exc).__name__
            logger.exception(
                "message failed message_id=%s command=%s trace_id=%s",
                incoming.message_id,
                progress.command_name,
                progress.trace_id,
            )
            reply = Text(APOLOGY.format(trace_id=progress.trace_id))
        if reply is not None:
            await self._deliver(incoming, reply, progress)
        handled = Handled(
            message_id=incoming.message_id,
            trace_id=progress.trace_id,
            sender_id=incoming.sender_key,
            command=progress.command_name,
            outcome=progress.outcome,
            duration_ms=(time.perf_counter() - started) * 1000,
            replies=progress.replies,
            error=progress.error,
        )
        try:
            self._on_handled(handled)
        except Exception:
            logger.exception("on_handled hook failed trace_id=%s", progress.trace_id)
        return handled

    async def _route(self, incoming: Incoming, progress: _Progress) -> Reply | None:
        if len(incoming.text) > self._max_chars:
            raise UserError(
                f"消息太长（{len(incoming.text)} 字），请控制在 {self._max_chars} 字以内；长内容请写成文档后发送文件。"
            )
        text = command_text(incoming.text)
        if not text:
            progress.outcome = "greeting"
            return Text(GREETING)
        found = self._match(text)
        if found is None:
            progress.outcome = "unknown_command"
            return Text(unknown_command_text(text, self.commands.suggest(text)))
        progress.command_name = found.target.name
        if isinstance(found.target, Group):
            progress.outcome = "group_help"
            return Text(group_text(self.commands, found.target, found.rest))
        command = progress.command = found.target
        ctx = await self._context(incoming, command, found.rest, progress)
        result = await command.handler(incoming, ctx)
        if result is not None:
            return as_reply(result)
        # Every message gets an answer: a handler that replied nothing still tells the user it is done.
        return None if progress.replies else Text(DONE)

    async def _context(self, incoming: Incoming, command: Command, rest: str, progress: _Progress) -> Context:
        args = await parse_args(
            command.all_params,
            rest,
            today=self.services.clock.today(),
            mentions=incoming.mentioned_keys,
            find_user=self._find_user,
        )
        code = args.text(PROJECT_PARAM.name) if command.needs_project else None
        project = await self._resolve_project(incoming, code)
        if code and project is None:
            raise NotFound(f"未找到项目「{clip(code)}」，请检查项目编号。")
        if command.needs_project and project is None:
            raise UserError(
                f"「{command.name}」需要先指定项目：请在已绑定项目的群里发送，"
                f"或加上项目编号，例如：{command.examples[0]} 项目:编号"
            )
        roles = await self._roles_of(incoming.sender_key, project)
        if not command.roles.allows(roles):
            raise PermissionDenied(command.roles.refusal(command.action, roles))
        # Whoever asks, and for whichever project: an internal command answers nothing in a client conversation.
        client_conversation = await self._client_audience(incoming)
        if client_conversation and not command.in_client_groups:
            raise PermissionDenied(client_conversation_refusal(command))

        async def reply(value: Reply) -> None:
            await self._deliver(incoming, value, progress)

        return Context(
            services=self.services,
            incoming=incoming,
            command=command,
            args=args,
            commands=self.commands,
            trace_id=progress.trace_id,
            project=project,
            roles=roles,
            client_conversation=client_conversation,
            _send=reply,
        )

    def _explain(self, exc: UserError, progress: _Progress) -> Reply:
        progress.outcome = exc.outcome
        if isinstance(exc, UsageError) and progress.command is not None:
            exc = exc.with_usage(progress.command.usage, progress.command.examples)
        return Text(exc.reply_text())

    async def _deliver(self, incoming: Incoming, reply: Reply, progress: _Progress) -> None:
        """Send one reply. A failed send is logged, not raised: the user cannot be told anyway."""
        try:
            await self._send(incoming, reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            progress.outcome, progress.error = "send_failed", type(exc).__name__
            logger.exception("reply failed message_id=%s trace_id=%s", incoming.message_id, progress.trace_id)
            return
        progress.replies += 1
