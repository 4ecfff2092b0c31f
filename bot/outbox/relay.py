"""The outbox relay: every message the bot sends is first a row, written in the transaction of the change that causes it,
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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bot.claim_loop import ClaimLoop, wait_until
from bot.config import Config
from bot.context import UnitOfWork, bind_unit_of_work, current_unit_of_work
from bot.dingtalk.cards import CardsApi, CardWrite
from bot.dingtalk.custom_robot import PACED_HERE, CustomRobot, CustomRobotSender
from bot.dingtalk.errors import DingTalkError, InvalidRequest, SessionWebhookExpired, Throttled
from bot.dingtalk.messages import RobotMessage, robot_file, robot_image
from bot.drain import drain
from bot.group_commit import GroupCommit
from bot.transactions import Transactions
from domain.file_store import unlink_quietly
from storage.models import OutboxMessage, OutboxMessageKind, OutboxTargetKind, utcnow
from storage.repo import claim_due_outbox, mark_dead, mark_retry
from storage.repo.cards import record_status_card_pinned
from storage.repo.kernel import refund_outbox_attempt, update_outbox_params, update_outbox_targets
from storage.repo.outbox import mark_sent_many

log = logging.getLogger("dingpm.outbox")


# ---- the relay ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayOptions:
    lease_seconds: float = 120.0  # a claimed row is ours this long (covers the client's own inline retries)
    poll_seconds: float = 5.0  # look for other processes' rows and due retries at least this often
    backoff_base_seconds: float = 2.0  # full jitter: uniform(0, min(max, base * 2**(attempt-1)))
    backoff_max_seconds: float = 600.0
    # Conversations served at once (each conversation's rows go in order). A slot is held for a send's round trip
    # and its sent mark: at 50 ms a round, 8 slots capped one process at ~140 answers a second, below what it can
    # answer. OpenAPI sends are paced apart from this (``pacing.calls_per_second``); webhook replies have no limit.
    max_concurrent_sends: int = 16
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
        self._cards = CardsApi(client, config.dingtalk.effective_robot_code)
        self.custom_robots = custom_robots
        self._find_custom_robot = find_custom_robot
        self._max_attempts = config.pacing.outbox_max_attempts
        self._batch = config.pacing.outbox_batch
        self.worker = worker
        self.options = options or RelayOptions()
        self.spool_dir = spool_dir or (Path(config.storage.files_dir) / "outbox")
        self._rng = rng or random.Random()
        self.stats = RelayStats()
        self._slots = asyncio.Semaphore(self.options.max_concurrent_sends)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._commit_hooks: list[Callable[[UnitOfWork], None]] = []
        self._work_wrappers: list[Callable[[UnitOfWork], contextlib.AbstractAsyncContextManager[None]]] = []
        self._in_flight = 0  # rows handed to send tasks and not settled yet
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._idle = asyncio.Event()
        self._idle.set()
        self._changed = asyncio.Event()  # replaced after each settled row: wakes wait_for()
        self._poll: ClaimLoop[OutboxMessage] = ClaimLoop(
            name="outbox-relay", claim=self._claim, room=self._room, hand_over=self._spawn_batches,
            poll_seconds=lambda: self.options.poll_seconds, log=log, describe_error=_error_text,
        )
        self._sent_marks: GroupCommit[OutboxMessage, None] = GroupCommit(self._mark_sent_batch,
                                                                         name="outbox-sent")

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._poll.start()

    async def stop(self) -> None:
        """Stop claiming, give in-flight sends a bounded grace, cancel the rest (their leases run out; re-sent)."""
        if self._timer is not None:
            self._timer.cancel()
        await self._poll.stop()
        if cut := await drain(self._tasks, self.options.stop_grace_seconds):
            log.warning("outbox relay: %d sends cut short by shutdown; they are retried after their lease", cut)

    @property
    def running(self) -> bool:
        return self._poll.running

    @property
    def last_poll_error(self) -> str | None:
        return self._poll.last_poll_error

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def wake(self) -> None:
        """New rows for the poll (queued outside the fast path): look now instead of at the next poll."""
        self._poll.wake()

    async def wait_for(self, predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
        """Wait until ``await predicate()`` holds, re-checked each time a row is settled (tests, tools)."""
        await wait_until(predicate, lambda: self._changed, timeout)

    async def wait_idle(self, timeout: float) -> None:
        """Wait until no send is in flight (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    # ---- units of work ---------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def unit_of_work(self, *, interactive: bool = False) -> AsyncIterator[UnitOfWork]:
        """A write transaction bound to this task as the current unit of work; its outbox rows are sent as soon as
        it commits. Not for use inside another unit of work (a handler already has ``ctx.session``)."""
        if current_unit_of_work() is not None:
            raise RuntimeError("a unit of work inside a unit of work: use ctx.session / the current work's session")
        work = UnitOfWork(session=None, worker=self.worker, outbox_lease_seconds=self.options.lease_seconds,
                          spool_dir=self.spool_dir)
        async with self._tx.write(interactive=interactive) as session:
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
        if self._poll.stopping:
            return  # shutting down: their lease runs out and the next process (or this one restarted) sends them
        self._spawn_batches(list(rows))

    # ---- the poll loop ---------------------------------------------------------------------------------------

    def _room(self) -> int:
        # Claim up to twice the send slots: a batch is ready while the previous one is being sent.
        return min(2 * self.options.max_concurrent_sends - self._in_flight, self._batch)

    async def _claim(self, limit: int) -> list[OutboxMessage]:
        async with self._tx.write() as session:
            return await claim_due_outbox(session=session, limit=limit, worker=self.worker,
                                          lease_seconds=self.options.lease_seconds)

    def _spawn_batches(self, rows: Sequence[OutboxMessage]) -> None:
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
        self._poll.room_freed()

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
            await asyncio.to_thread(unlink_quietly, Path(row.attachment_path))
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
                async with self._tx.write(urgent=True, interactive=True) as session:
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
        if row.msg_kind == OutboxMessageKind.CARD:
            await self._send_card(CardWrite.from_params(params))
            return
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

    async def _send_card(self, write: CardWrite) -> None:
        delivery = await self._cards.send(write)
        if write.status_card and delivery.pinned is not None:
            # Whether the group took the pin decides how the card stays in sight (re-posted when it is not).
            async with self._tx.write() as session:
                await record_status_card_pinned(session=session, out_track_id=write.out_track_id,
                                                pinned=delivery.pinned)

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

