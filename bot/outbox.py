"""The outbox: every message the bot sends is first a row, written in the transaction of the change that causes it,
then delivered by the relay.

Handlers and jobs queue messages with ``enqueue(session, key, target, message)``; the key is the message's business
identity (``weekly:{project}:{iso_week}``, ``overdue:{deliverable}:{date}``), so a re-run stores it once. A command's
replies are rows too (kind "reply": the message's sessionWebhook first, the OpenAPI when it expired or is missing).

Delivery:

* **fast path**: rows written inside a unit of work of this process are inserted already claimed by this worker and
  handed to the relay the moment the transaction commits, in order;
* **poll**: the relay claims due rows (other processes' rows, retries, leases of a crashed sender) every
  ``poll_seconds``, and at once when this process queues a row for later or a retry falls due.

Failures: retryable errors (throttling, 5xx, timeouts, broken connections) are retried with full-jitter exponential
backoff, never before the platform's ``retry_after``; after ``pacing.outbox_max_attempts`` tries, or at once for an
error that cannot heal (bad parameter, unknown conversation, permission), the row is dead-lettered with its error.
``dingpm outbox`` lists them and replays them.

A send that timed out or lost its connection mid-request (``maybe_sent``) is **sent again**: DingTalk has no
idempotency key, so the choice is between a possible duplicate and a possible loss, and for project messages
(approvals, weekly reports, overdue reminders) a lost message is the worse failure. The server gives up on its side
after 3 s while our client waits ``pacing.http_timeout_seconds`` (10 s), so a client-side timeout mostly means the
request never completed. The row's ``last_error`` says "maybe sent" and ``stats.maybe_sent`` counts them. The same
holds for a sender that crashed between the send and its ``mark_sent``: the lease runs out and the row is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.config import Config
from bot.context import UnitOfWork, bind_unit_of_work, current_unit_of_work
from bot.dingtalk.custom_robot import PACED_HERE, CustomRobot, CustomRobotSender
from bot.dingtalk.errors import DingTalkError, InvalidRequest, SessionWebhookExpired, Throttled
from bot.dingtalk.messages import (
    RobotMessage,
    check_webhook_body_size,
    robot_file,
    robot_image,
    robot_message_for_reply,
    webhook_body,
    webhook_body_for_reply,
)
from bot.drain import drain
from bot.group_commit import GroupCommit
from bot.incoming import Incoming
from bot.replies import File, Image, Reply, Text
from bot.transactions import Transactions
from storage.models import OutboxMessage, OutboxMessageKind, OutboxState, OutboxTargetKind, is_external_key, utcnow
from storage.models.base import KEY_LEN
from storage.repo import claim_due_outbox, mark_dead, mark_retry
from storage.repo.outbox import mark_sent_many
from storage.repo.kernel import (
    insert_outbox_row,
    refund_outbox_attempt,
    update_outbox_params,
    update_outbox_targets,
)

log = logging.getLogger("dingpm.outbox")

Message = Reply | RobotMessage | str


# ---- targets ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a message goes: a group, some users (1:1), or a message's sessionWebhook with an OpenAPI fallback."""

    kind: OutboxTargetKind
    ids: tuple[str, ...]
    fallback: Target | None = None  # webhook only: used when the webhook expired, and for images and files
    expires_at: datetime | None = None  # webhook only: naive UTC

    def __post_init__(self) -> None:
        if not self.ids or not all(self.ids):
            raise ValueError("a message target needs at least one non-empty id")
        if self.kind == OutboxTargetKind.GROUP and len(self.ids) != 1:
            raise ValueError("a group target names exactly one conversation (queue one message per group)")
        if self.kind == OutboxTargetKind.WEBHOOK and len(self.ids) != 1:
            raise ValueError("a webhook target is exactly one sessionWebhook URL")
        if self.fallback is not None and self.fallback.kind == OutboxTargetKind.WEBHOOK:
            raise ValueError("a webhook's fallback is a group or users, not another webhook")

    def __repr__(self) -> str:  # the webhook URL carries a credential: never print it
        shown = ("<sessionWebhook>",) if self.kind == OutboxTargetKind.WEBHOOK else self.ids
        return f"Target({self.kind.value}, {shown!r}, fallback={self.fallback!r})"


def group_target(conversation_id: str) -> Target:
    """A group chat, by its openConversationId (``groupMessages/send``)."""
    return Target(OutboxTargetKind.GROUP, (conversation_id,))


def users_target(user_ids: Sequence[str] | str) -> Target:
    """1:1 chats with these users (``oToMessages/batchSend``, 20 per call). External contacts (``ext:…`` keys) are
    left out: DingTalk sends no 1:1 robot message to someone of another organization (reference part 2 §4); what is
    meant for them goes to their project's client group."""
    ids = (user_ids,) if isinstance(user_ids, str) else tuple(dict.fromkeys(user_ids))
    internal = tuple(i for i in ids if not is_external_key(i))
    if len(internal) < len(ids):
        log.warning("outbox: %d external contacts left out of a 1:1 message", len(ids) - len(internal))
    return Target(OutboxTargetKind.USER, internal)


def custom_robot_target(project_code: str) -> Target:
    """The project's client group through its custom robot (``bot.client_robots``): text and markdown only."""
    return Target(OutboxTargetKind.CUSTOM_ROBOT, (project_code,))


def conversation_target(incoming: Incoming) -> Target | None:
    """Where a proactive answer to this message goes: its group, or the sender's 1:1 chat."""
    if incoming.is_group and incoming.conversation_id:
        return group_target(incoming.conversation_id)
    if incoming.sender_id:
        return users_target(incoming.sender_id)
    return None


def target_params(target: Target | None) -> dict[str, Any] | None:
    """A group or users target as JSON-able params (a job request remembering where to answer)."""
    if target is None:
        return None
    if target.kind == OutboxTargetKind.WEBHOOK:
        raise ValueError("a sessionWebhook expires: remember the conversation (conversation_target) instead")
    return {"kind": target.kind.value, "ids": list(target.ids)}


def target_from_params(params: Any) -> Target | None:
    """The target ``target_params`` stored, or None when there is none (or it is not one)."""
    if not isinstance(params, dict) or not params.get("ids"):
        return None
    try:
        return Target(OutboxTargetKind(params["kind"]), tuple(str(i) for i in params["ids"]))
    except (KeyError, ValueError):
        return None


def reply_target(incoming: Incoming) -> Target:
    """The answer to a message: its sessionWebhook (it can @ the sender), falling back to the OpenAPI."""
    fallback = conversation_target(incoming)
    if incoming.session_webhook:
        return Target(OutboxTargetKind.WEBHOOK, (incoming.session_webhook,), fallback=fallback,
                      expires_at=incoming.session_webhook_expires_at)
    if fallback is None:
        raise ValueError(f"message {incoming.message_id} has neither a sessionWebhook nor a sender to answer")
    return fallback


# ---- message encoding -----------------------------------------------------------------------------------------

_KIND_BY_MSG_KEY = {
    "sampleText": OutboxMessageKind.TEXT,
    "sampleMarkdown": OutboxMessageKind.MARKDOWN,
    "sampleLink": OutboxMessageKind.LINK,
    "sampleImageMsg": OutboxMessageKind.IMAGE,
    "sampleFile": OutboxMessageKind.FILE,
}


def _kind_of(msg_key: str) -> OutboxMessageKind:
    if msg_key.startswith("sampleActionCard"):
        return OutboxMessageKind.ACTION_CARD
    try:
        return _KIND_BY_MSG_KEY[msg_key]
    except KeyError:
        raise ValueError(f"the outbox cannot send msgKey {msg_key!r}") from None


@dataclass(frozen=True)
class _Encoded:
    kind: OutboxMessageKind
    params: dict[str, Any]
    path: Path | None = None  # an attachment already on disk
    data: bytes | None = field(default=None, repr=False)  # an attachment to write to the spool first
    file_name: str | None = None


def _encode(message: Message) -> _Encoded:
    """The row form of a message. Fails here (in the handler) rather than at send time for what can never be sent."""
    if isinstance(message, str):
        message = Text(message)
    if isinstance(message, RobotMessage):
        message.msg_param()  # raises when over DingTalk's size limit
        params: dict[str, Any] = {"msgKey": message.msg_key, "msgParam": dict(message.params)}
        body = webhook_body(message)
        if body is not None:
            check_webhook_body_size(body)
            params["webhook"] = body
        return _Encoded(_kind_of(message.msg_key), params)
    if isinstance(message, Image):
        if message.media_id is not None:
            return _encode(robot_image(message.media_id))
        return _Encoded(OutboxMessageKind.IMAGE, {"media": {"kind": "image", "fileName": "image.png"}},
                        data=message.png, file_name="image.png")
    if isinstance(message, File):
        robot_file("@check", message.name, message.file_type)  # raises for a file type DingTalk cannot send
        media = {"kind": "file", "fileName": message.name, "fileType": message.file_type}
        return _Encoded(OutboxMessageKind.FILE, {"media": media}, path=message.path, data=message.data,
                        file_name=message.name)
    robot = robot_message_for_reply(message)
    robot.msg_param()
    params = {"msgKey": robot.msg_key, "msgParam": dict(robot.params)}
    body = webhook_body_for_reply(message)
    if body is not None:
        check_webhook_body_size(body)
        params["webhook"] = body
    return _Encoded(_kind_of(robot.msg_key), params)


_SAFE_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")


def _spool(directory: Path, file_name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = Path(file_name).suffix.lower()
    if not _SAFE_SUFFIX.fullmatch(suffix):
        suffix = ""
    path = directory / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(data)
    return path


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def enqueue(
    session: Any,
    key: str,
    target: Target,
    message: Message,
    *,
    not_before: datetime | None = None,
    spool_dir: Path | None = None,
) -> bool:
    """Queue ``message`` for ``target`` in the caller's transaction; False if ``key`` was queued before (then nothing
    changes, so a re-run job or a retried command never sends twice).

    Inside a unit of work (a command, an event, ``outbox.unit_of_work()``) the row is sent right after the commit;
    otherwise (or with ``not_before`` in the future) by the relay's poll. ``message``: a reply value
    (``Text``, ``Markdown``, ``ActionCard``, ``Image``, ``File``), a ``RobotMessage`` or a plain string. Images and
    files are uploaded at send time, once; in-memory ones are written to the spool directory now.
    """
    if not key or len(key) > KEY_LEN:
        raise ValueError(f"an outbox key is 1..{KEY_LEN} characters: {key[:40]!r}…")
    work = current_unit_of_work()
    in_work = work is not None and work.session is session
    encoded = _encode(message)
    params = dict(encoded.params)
    if target.kind == OutboxTargetKind.WEBHOOK:
        if "webhook" in params:
            if target.fallback is not None:
                params["fallback"] = {"kind": target.fallback.kind.value, "ids": list(target.fallback.ids)}
            if target.expires_at is not None:
                params["expiresAt"] = target.expires_at.isoformat()
        elif target.fallback is not None:
            target = target.fallback  # images and files cannot go through a sessionWebhook
        else:
            raise ValueError("an image or file answer needs a conversation to send to; the webhook cannot carry it")
    if target.kind == OutboxTargetKind.CUSTOM_ROBOT and "webhook" not in params:
        raise ValueError("a custom robot sends text, markdown, links and action cards only, not images or files")
    path = encoded.path
    if encoded.data is not None:
        directory = spool_dir or (work.spool_dir if in_work and work is not None else None)
        if directory is None:
            raise ValueError("an in-memory attachment needs spool_dir= outside a unit of work")
        path = await asyncio.to_thread(_spool, Path(directory), encoded.file_name or "attachment", encoded.data)
        params["spooled"] = True
    now = utcnow()
    fast = bool(in_work and work is not None and work.worker and (not_before is None or not_before <= now))
    row = OutboxMessage(
        idempotency_key=key,
        target_kind=target.kind,
        target_ids=list(target.ids),
        msg_kind=encoded.kind,
        params=params,
        attachment_path=str(path) if path is not None else None,
        next_attempt_at=not_before or now,
        created_at=now,
    )
    if fast and work is not None:
        row.state = OutboxState.SENDING
        row.claimed_by = work.worker
        row.claimed_until = now + timedelta(seconds=work.outbox_lease_seconds)
        row.attempts = 1
    new_id = await insert_outbox_row(session=session, row=row)
    if new_id is None:
        if params.get("spooled") and path is not None:
            await asyncio.to_thread(_unlink, path)
        return False
    row.id = new_id
    if in_work and work is not None:
        if fast:
            work.claimed_outbox.append(row)
        else:
            work.queued_outbox += 1
    return True


# ---- the relay ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayOptions:
    lease_seconds: float = 120.0  # a claimed row is ours this long (covers the client's own inline retries)
    poll_seconds: float = 5.0  # look for other processes' rows and due retries at least this often
    backoff_base_seconds: float = 2.0  # full jitter: uniform(0, min(max, base * 2**(attempt-1)))
    backoff_max_seconds: float = 600.0
    max_concurrent_sends: int = 8  # conversations served at once (each conversation's rows go in order)
    stop_grace_seconds: float = 10.0  # on stop, in-flight sends get this long before they are cancelled


@dataclass
class RelayStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    maybe_sent: int = 0  # retries after a send that may have reached DingTalk (possible duplicate)
    fallbacks: int = 0  # replies sent through the OpenAPI because the sessionWebhook expired
    uploads: int = 0
    lost_claims: int = 0  # rows whose lease ran out while we were sending (another worker took them)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class _PartialDelivery(Exception):
    """A 1:1 batch reached some users; ``remaining`` are the ones to try again."""

    def __init__(self, remaining: Sequence[str], error: DingTalkError | None) -> None:
        super().__init__(f"{len(remaining)} users not reached yet")
        self.remaining = list(remaining)
        self.error = error


# Not DingTalk's answer but our own row or file: trying again cannot help (a deleted attachment, a malformed row).
_PERMANENT_ERRORS = (FileNotFoundError, IsADirectoryError, PermissionError, ValueError, TypeError, KeyError)


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, DingTalkError) and exc.maybe_sent:
        text += "（可能已送达 / maybe sent）"
    return text[:2000]


def _parse_utc(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


class OutboxRelay:
    """Delivers outbox rows through the ``DingTalkClient``; one per process, started and stopped by the app."""

    def __init__(
        self,
        *,
        transactions: Transactions,
        client: Any,
        config: Config,
        worker: str,
        options: RelayOptions | None = None,
        spool_dir: Path | None = None,
        rng: random.Random | None = None,
        custom_robots: CustomRobotSender | None = None,
        find_custom_robot: Callable[[Any, str], Awaitable[CustomRobot | None]] | None = None,  # (session, code)
    ) -> None:
        self._tx = transactions
        self._client = client
        self.custom_robots = custom_robots
        self._find_custom_robot = find_custom_robot
        self._max_attempts = config.pacing.outbox_max_attempts
        self._batch = config.pacing.outbox_batch
        self.worker = worker
        self.options = options or RelayOptions()
        self.spool_dir = spool_dir or (Path(config.storage.files_dir) / "outbox")
        self._rng = rng or random.Random()
        self.stats = RelayStats()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self.options.max_concurrent_sends)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._commit_hooks: list[Callable[[UnitOfWork], None]] = []
        self._work_wrappers: list[Callable[[UnitOfWork], contextlib.AbstractAsyncContextManager[None]]] = []
        self._in_flight = 0  # rows handed to send tasks and not settled yet
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._idle = asyncio.Event()
        self._idle.set()
        self._changed = asyncio.Event()  # replaced after each settled row: wakes wait_for()
        self.last_poll_error: str | None = None
        # Rows may be due in the table (queued for the poll, a retry fell due, a claim came back full) since the mark
        # the last short claim saw: only then does a finished send make the loop claim again.
        self._due_mark = 0
        self._claimed_mark = 0
        self._sent_marks: GroupCommit[OutboxMessage, None] = GroupCommit(self._mark_sent_batch,
                                                                         name="outbox-sent")

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._loop_task is None:
            self._stopping = False
            self._loop_task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop claiming, give in-flight sends a bounded grace, cancel the rest (their leases run out; re-sent)."""
        self._stopping = True
        self._wake.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        if cut := await drain(self._tasks, self.options.stop_grace_seconds):
            log.warning("outbox relay: %d sends cut short by shutdown; they are retried after their lease", cut)

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def wake(self) -> None:
        """New rows for the poll (queued outside the fast path): look now instead of at the next poll."""
        self._due_mark += 1
        self._wake.set()

    async def wait_for(self, predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
        """Wait until ``await predicate()`` holds, re-checked each time a row is settled (tests, tools)."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if await predicate():
                    return
                await changed.wait()

    async def wait_idle(self, timeout: float) -> None:
        """Wait until no send is in flight (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    # ---- units of work ---------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """A write transaction bound to this task as the current unit of work; its outbox rows are sent as soon as
        it commits. Not for use inside another unit of work (a handler already has ``ctx.session``)."""
        if current_unit_of_work() is not None:
            raise RuntimeError("a unit of work inside a unit of work: use ctx.session / the current work's session")
        work = UnitOfWork(session=None, worker=self.worker, outbox_lease_seconds=self.options.lease_seconds,
                          spool_dir=self.spool_dir)
        async with self._tx.write() as session:
            work.session = session
            with bind_unit_of_work(work):
                async with contextlib.AsyncExitStack() as stack:
                    for wrap in self._work_wrappers:
                        await stack.enter_async_context(wrap(work))
                    yield work
        self.after_commit(work)

    def after_commit(self, work: UnitOfWork) -> None:
        if work.claimed_outbox:
            self.deliver_now(work.claimed_outbox)
        if work.queued_outbox:
            self.wake()
        for hook in self._commit_hooks:
            hook(work)

    def wrap_work(self, wrapper: Callable[[UnitOfWork], contextlib.AbstractAsyncContextManager[None]]) -> None:
        """Enter ``wrapper(work)`` around the body of each unit of work, inside its transaction: what it does after
        the body succeeded commits with it (the 待办 sync follows every change to a plan)."""
        self._work_wrappers.append(wrapper)

    def on_commit(self, hook: Callable[[UnitOfWork], None]) -> None:
        """Call ``hook(work)`` after each unit of work commits (the app starts the on-demand jobs it requested)."""
        self._commit_hooks.append(hook)

    def deliver_now(self, rows: Sequence[OutboxMessage]) -> None:
        """Send rows this worker already claimed (the fast path), in order per conversation."""
        if not rows:
            return
        if self._stopping:
            return  # shutting down: their lease runs out and the next process (or this one restarted) sends them
        self._spawn_batches(list(rows))

    # ---- the poll loop ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            capacity = 2 * self.options.max_concurrent_sends - self._in_flight
            wanted = min(capacity, self._batch)
            rows: list[OutboxMessage] = []
            if wanted > 0:
                mark = self._due_mark
                try:
                    rows = await self._claim(wanted)
                    self.last_poll_error = None
                    if len(rows) < wanted:
                        self._claimed_mark = mark
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database may be briefly unavailable: try again at the next poll
                    self.last_poll_error = _error_text(exc)
                    log.warning("outbox relay: claiming due rows failed: %s", self.last_poll_error)
            if rows:
                self._spawn_batches(rows)
                if len(rows) == wanted:
                    continue  # probably more are due
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.options.poll_seconds)

    async def _claim(self, limit: int) -> list[OutboxMessage]:
        async with self._tx.write() as session:
            return await claim_due_outbox(session=session, limit=limit, worker=self.worker,
                                          lease_seconds=self.options.lease_seconds)

    def _spawn_batches(self, rows: list[OutboxMessage]) -> None:
        # One conversation's rows go one after the other (a command's answers arrive in order); conversations run
        # side by side, bounded by the send slots.
        by_conversation: dict[tuple[Any, ...], list[OutboxMessage]] = {}
        for row in rows:
            by_conversation.setdefault(_conversation_key(row), []).append(row)
        for batch in by_conversation.values():
            self._in_flight += len(batch)
            self._idle.clear()
            task = asyncio.create_task(self._send_in_order(batch), name="outbox-send")
            self._tasks.add(task)
            task.add_done_callback(self._send_done)

    def _send_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox relay: send task crashed", exc_info=task.exception())
        if not self._tasks:
            self._idle.set()
        if self._due_mark != self._claimed_mark:
            self._wake.set()  # a slot is free again and rows may be due

    async def _send_in_order(self, rows: list[OutboxMessage]) -> None:
        unsettled = len(rows)
        try:
            # One slot for the conversation's whole batch: its messages go out together (a weekly report's text and
            # its .docx), not each behind every other conversation's first message.
            async with self._slots:
                for index, row in enumerate(rows):
                    retry_at = await self._deliver_one(row)
                    unsettled -= 1
                    self._in_flight -= 1
                    if retry_at is None:
                        continue
                    # Keep the conversation's order: the rest waits for the failed one, without spending an attempt.
                    for offset, later in enumerate(rows[index + 1:], start=1):
                        await self._settle(mark_retry, later, error="等待同一会话中更早的消息发送成功",
                                           next_at=retry_at + timedelta(microseconds=offset), refund=True)
                        unsettled -= 1
                        self._in_flight -= 1
                    return
        finally:
            self._in_flight -= unsettled

    # ---- one row ---------------------------------------------------------------------------------------------

    async def _deliver_one(self, row: OutboxMessage) -> datetime | None:
        """Send one claimed row and record the outcome; returns when it is due again if it must be retried."""
        try:
            await self._send(row)
        except asyncio.CancelledError:
            raise
        except _PartialDelivery as partial:
            if row.target_kind == OutboxTargetKind.USER:
                async with self._tx.write() as session:
                    await update_outbox_targets(session=session, outbox_id=row.id, target_ids=partial.remaining,
                                                worker=self.worker)
                row.target_ids = partial.remaining
            error = partial.error or Throttled("flowControlled", "users flow-controlled by DingTalk")
            return await self._failed(row, error)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row, none is dropped
            return await self._failed(row, exc)
        self.stats.sent += 1
        await self._sent_marks.submit(row)
        if row.params.get("spooled") and row.attachment_path:
            await asyncio.to_thread(_unlink, Path(row.attachment_path))
        return None

    async def _failed(self, row: OutboxMessage, exc: BaseException) -> datetime | None:
        error = _error_text(exc)
        retryable = exc.retryable if isinstance(exc, DingTalkError) else not isinstance(exc, _PERMANENT_ERRORS)
        if not retryable or row.attempts >= self._max_attempts:
            self.stats.dead += 1
            why = "cannot succeed" if not retryable else f"{row.attempts} attempts"
            log.error("outbox: message %s (%s) dead-lettered after %s: %s", row.id, row.idempotency_key, why, error)
            await self._settle(mark_dead, row, error=error)
            return None
        delay = self._rng.uniform(0, min(self.options.backoff_max_seconds,
                                         self.options.backoff_base_seconds * 2 ** max(0, row.attempts - 1)))
        if isinstance(exc, DingTalkError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        if isinstance(exc, DingTalkError) and exc.maybe_sent:
            self.stats.maybe_sent += 1
        # Our own pacing said "later" (a custom robot's minute is full): nothing was tried, no attempt is spent.
        paced_here = isinstance(exc, Throttled) and exc.code == PACED_HERE
        self.stats.retried += 1
        next_at = utcnow() + timedelta(seconds=delay)
        log.warning("outbox: message %s (%s) attempt %d failed (%s); retry in %.1fs",
                    row.id, row.idempotency_key, row.attempts, error, delay)
        await self._settle(mark_retry, row, error=error, next_at=next_at, refund=paced_here)
        self._wake_at(delay)
        return next_at

    async def _settle(self, mark: Any, row: OutboxMessage, *, refund: bool = False, **values: Any) -> None:
        """Record a row's outcome (a retry or a dead letter)."""

        async def record(session: Any) -> None:
            ours = await mark(session=session, outbox_id=row.id, worker=self.worker, **values)
            if ours and refund:
                await refund_outbox_attempt(session=session, outbox_id=row.id)
            if not ours:
                self._lost([row], 1)

        await self._record(record, [row])

    async def _mark_sent_batch(self, rows: list[OutboxMessage]) -> list[None]:
        """Record the sends finished meanwhile, together: one transaction instead of one per message."""

        async def record(session: Any) -> None:
            ours = await mark_sent_many(session=session, outbox_ids=[row.id for row in rows], worker=self.worker)
            if ours < len(rows):
                self._lost(rows, len(rows) - ours)

        await self._record(record, rows)  # never raises: a failure is logged, and the lease runs out
        return [None] * len(rows)

    async def _record(self, record: Callable[[Any], Awaitable[None]], rows: list[OutboxMessage]) -> None:
        """Run ``record`` in a write transaction ahead of the queue, retried briefly: until it commits a crash
        would send the message again after the lease."""
        for attempt in range(3):
            try:
                async with self._tx.write(urgent=True) as session:
                    await record(session)
                self._changed.set()
                self._changed = asyncio.Event()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if attempt == 2:
                    log.exception("outbox: recording the outcome of messages %s failed; their lease will run out",
                                  [row.id for row in rows])
                    return
                await asyncio.sleep(0.2 * (attempt + 1))

    def _lost(self, rows: Sequence[OutboxMessage], count: int) -> None:
        self.stats.lost_claims += count
        log.warning("outbox: %d of the messages %s were re-claimed by another worker while we sent them", count,
                    [row.id for row in rows])

    def _wake_at(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if when >= self._timer_at and self._timer is not None and not self._timer.cancelled():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when

        def fire() -> None:
            self._timer = None
            self._timer_at = float("inf")
            self.wake()

        self._timer = loop.call_at(when, fire)

    # ---- sending ---------------------------------------------------------------------------------------------

    async def _send(self, row: OutboxMessage) -> None:
        params = dict(row.params or {})
        kind = OutboxTargetKind(row.target_kind)
        ids = [str(i) for i in row.target_ids]
        if kind == OutboxTargetKind.WEBHOOK:
            try:
                await self._client.reply_via_webhook(ids[0], params["webhook"],
                                                     expires_at=_parse_utc(params.get("expiresAt")))
                return
            except SessionWebhookExpired:
                fallback = params.get("fallback")
                if not fallback:
                    raise
                self.stats.fallbacks += 1
                kind = OutboxTargetKind(fallback["kind"])
                ids = [str(i) for i in fallback["ids"]]
        if kind == OutboxTargetKind.CUSTOM_ROBOT:
            await self._send_custom_robot(ids[0], params)
            return
        message = await self._robot_message(row, params)
        if kind == OutboxTargetKind.GROUP:
            await self._client.send_group(ids[0], message)
            return
        if kind == OutboxTargetKind.USER:
            result = await self._client.send_to_users(ids, message)
            if result.invalid_staff_ids:
                log.warning("outbox: message %s: DingTalk knows no user %s", row.id, list(result.invalid_staff_ids))
            remaining = [u for chunk, _ in result.failed for u in chunk] + list(result.flow_controlled_staff_ids)
            if remaining:
                raise _PartialDelivery(remaining, result.failed[0][1] if result.failed else None)
            return
        raise ValueError(f"unknown target kind {kind!r}")

    async def _send_custom_robot(self, project_code: str, params: dict[str, Any]) -> None:
        if self.custom_robots is None or self._find_custom_robot is None:
            raise ValueError("this process sends no custom-robot messages")
        async with self._tx.read() as session:
            robot = await self._find_custom_robot(session, project_code)
        if robot is None:
            raise InvalidRequest("customRobot.missing", f"项目 {project_code} 的客户群自定义机器人已不再登记，消息无法送达",
                                 api="robot/send")
        await self.custom_robots.send(robot, params["webhook"])

    async def _robot_message(self, row: OutboxMessage, params: dict[str, Any]) -> RobotMessage:
        media = params.get("media")
        if not media:
            return RobotMessage(str(params["msgKey"]), dict(params.get("msgParam") or {}))
        media_id = params.get("mediaId")
        if not media_id:
            if not row.attachment_path:
                raise ValueError(f"message {row.id} has an attachment but no file path")
            media_id = await self._client.upload_media(media["kind"], media["fileName"], path=row.attachment_path)
            self.stats.uploads += 1
            # Remember it: a retry of the send must not upload the file again.
            params = {**params, "mediaId": media_id}
            async with self._tx.write() as session:
                await update_outbox_params(session=session, outbox_id=row.id, params=params, worker=self.worker)
            row.params = params
        if media["kind"] == "image":
            return robot_image(str(media_id))
        return robot_file(str(media_id), str(media["fileName"]), media.get("fileType"))


def _conversation_key(row: OutboxMessage) -> tuple[Any, ...]:
    fallback = (row.params or {}).get("fallback") or {}
    if row.target_kind == OutboxTargetKind.WEBHOOK and fallback:
        # A webhook reply and an OpenAPI message to the same chat belong to one conversation.
        return (str(fallback.get("kind")), tuple(fallback.get("ids") or ()))
    return (str(OutboxTargetKind(row.target_kind).value), tuple(row.target_ids))


__all__ = [
    "Message",
    "OutboxRelay",
    "RelayOptions",
    "RelayStats",
    "Target",
    "conversation_target",
    "custom_robot_target",
    "enqueue",
    "group_target",
    "reply_target",
    "target_from_params",
    "target_params",
    "users_target",
]
