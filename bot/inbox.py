"""Frame -> inbox -> unit of work -> dispatcher: how a message becomes exactly one run of its command.

1. ``on_frame`` (called by the Stream client before it acks) stores the typed item in the inbox, unique by the
   frame's messageId and the bot message's msgId, and returns: only then is the frame acked. A duplicate or a
   redelivery hits a unique key, is dropped, and is acked as well.
2. With room here (a free slot: fewer than ``pacing.max_concurrent_messages`` in flight; or a free place in the
   backlog of ``InboxOptions.backlog`` rows waiting for a slot) and no older rows waiting in the table, the frame is
   stored already claimed by this worker and runs at once, or when a slot frees, in arrival order: no claim round
   trip per message, under load too. Otherwise it is stored pending, and the pump claims pending rows (and rows
   whose processor's lease ran out, e.g. after a crash, or other processes' leftovers) oldest first, in batches
   once the backlog is half empty, and at least every ``poll_seconds``. On stop, the backlog goes back to pending.
3. Each message is routed once (``Dispatcher.route``) and run through the kernel's one door,
   ``bot.kernel.answer``, with this row's units of work (``_InboxUnits``): the command runs with ``ctx.session``;
   its replies become outbox rows keyed by the row and the row is marked done, on the condition that this worker
   still holds its claim (else ``Superseded``: all of it rolls back) -- all committed together. On PostgreSQL/MySQL
   every unit of work first re-asserts (and extends) the claim, which row-locks it against other processes; on
   SQLite, whose write transaction shuts them out anyway, only a unit of work that begins after half the lease.
   After the commit the replies go out through the relay's fast path. A command declared ``reads_only`` (a list,
   an overview, help) runs in a read transaction instead, outside the write lock (SQLite's only writer), and a
   short write transaction then queues its answer and marks the row done. A command's statements run on the
   loop's thread on SQLite (``storage.sqlite_driver``: interactive sessions).
4. A user mistake (usage, permission, not found, conflict) commits nothing but its reply and the done-mark; an
   unexpected error rolls everything back, then records the failure and the apology in a second transaction (the
   rule lives in ``bot.kernel``). A crash anywhere before the commit leaves the row claimed; its lease runs out and
   it is run again (by this process after a restart, or by another one).

Approval events take the same path and are handed to the handlers registered with ``register(fn)``. Card presses
(``bot.card_press``) are stored under their own kind and run as the command their button stands for, through the
same route and the same ``answer`` with their own units (``_CardPressUnits``: a refusal goes into the card's private
notice); ``on_card_press`` waits briefly for the run so that the card's change rides on the callback's ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.card_press import CARD_ANSWER_BUDGET_SECONDS, CardAnswer, CardPress, PressActions, press_incoming
from bot.claim_loop import ClaimLoop, wait_until
from bot.context import (
    ApprovalEventHandler,
    EventContext,
    Services,
    UnitOfWork,
    bind_unit_of_work,
)
from bot.dingtalk.cards import CardWrite
from bot.dingtalk.errors import InvalidRequest
from bot.dispatcher import Dispatcher, Handled, new_trace_id
from bot.drain import drain
from bot.group_commit import GroupCommit
from bot.incoming import ApprovalEvent, Incoming, Mention, ReceivedFile
from bot.kernel import Superseded, Undeliverable, answer
from bot.outbox import OutboxRelay, enqueue, group_target, reply_target
from bot.transactions import Transactions
from domain.replies import Reply
from storage.db import writes_forbidden
from storage.models import InboxKind, InboxMessage
from storage.repo import (
    claim_pending_inbox,
    insert_inbox,
    mark_inbox_done,
    mark_inbox_failed,
    release_inbox_claims,
)
from storage.repo.kernel import hold_inbox_claim

log = logging.getLogger("dingpm.inbox")
event_log = logging.getLogger("dingpm.events")

PAYLOAD_VERSION = 1


# ---- payloads: the typed item <-> the inbox row's JSON text -------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


Item = Incoming | ApprovalEvent | CardPress


def encode_item(item: Item) -> str:
    kind = "message" if isinstance(item, Incoming) else "card" if isinstance(item, CardPress) else "event"
    return json.dumps({"v": PAYLOAD_VERSION, "type": kind, "item": _jsonable(item)}, ensure_ascii=False,
                      separators=(",", ":"))


def _datetime(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def decode_item(payload: str) -> Item:
    document = json.loads(payload)
    fields = dict(document["item"])
    if document["type"] == "card":
        fields["received_at"] = _datetime(fields.get("received_at"))
        return CardPress(**fields)
    if document["type"] == "message":
        fields["mentions"] = tuple(Mention(**m) for m in fields.get("mentions") or ())
        fields["files"] = tuple(ReceivedFile(**f) for f in fields.get("files") or ())
        for name in ("session_webhook_expires_at", "created_at"):
            fields[name] = _datetime(fields.get(name))
        return Incoming(**fields)
    fields["occurred_at"] = _datetime(fields.get("occurred_at"))
    return ApprovalEvent(**fields)


# ---- the pipeline -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxOptions:
    lease_seconds: float = 60.0  # a claimed row is ours this long before another process may take it over
    poll_seconds: float = 5.0  # look for rows of other processes and expired leases at least this often
    stop_grace_seconds: float = 20.0  # on stop, commands in flight get this long to finish
    backlog: int = 64  # claimed rows waiting here for a free slot (in arrival order), beyond those in flight


@dataclass
class InboxStats:
    stored: int = 0  # frames persisted
    taken_at_once: int = 0  # of those, stored already claimed (run at once or queued here) without a claim round trip
    duplicates: int = 0  # frames dropped by a unique key (redelivery, duplicate push)
    processed: int = 0  # rows finished (done or failed) by this process
    failed: int = 0
    superseded: int = 0  # rows another worker had taken over by the time we got to them
    commit_failures: int = 0  # units of work whose commit failed: re-run after the lease

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True, slots=True)
class _Claim:
    """A row this worker claimed (or stored claimed), and when (``time.monotonic()``): its lease runs from then."""

    inbox_id: int
    at: float


@dataclass(frozen=True, slots=True)
class _Frame:
    item: Item
    kind: InboxKind
    msg_id: str | None
    at_once: bool  # store it claimed by this worker and run it at once


class InboxPipeline:
    def __init__(
        self,
        *,
        services: Services,
        dispatcher: Dispatcher,
        relay: OutboxRelay,
        transactions: Transactions,
        worker: str,
        max_concurrent: int,
        options: InboxOptions | None = None,
    ) -> None:
        self._services = services
        self._dispatcher = dispatcher
        self._relay = relay
        self._tx = transactions
        self.worker = worker
        self._max_concurrent = max_concurrent
        self.options = options or InboxOptions()
        self._event_handlers: list[ApprovalEventHandler] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stats = InboxStats()
        self._changed = asyncio.Event()  # replaced after each finished row: wakes wait_for()
        self._reserved = 0  # places (slots or backlog) promised to frames being stored already claimed
        # Rows this worker claimed that wait for a slot, oldest first: under load a frame is still stored claimed and
        # queued here instead of pending (which would cost a claim round trip per row when a slot frees).
        self._backlog: deque[tuple[_Claim, Item | str]] = deque()
        self._held: set[int] = set()  # rows running or waiting here: the pump must not take them in a second time
        # On SQLite a unit of work's BEGIN IMMEDIATE shuts every other writer out, claimers included, so the claim
        # needs re-asserting only once half its lease is gone; on PostgreSQL/MySQL the hold's UPDATE is what locks
        # the row against other processes' claims for the whole transaction, so every unit of work begins with it.
        self._hold_always = transactions.database.family != "sqlite"
        self._frames: GroupCommit[_Frame, int | None] = GroupCommit(self._store_frames, name="inbox-frames")
        self._pump: ClaimLoop[InboxMessage] = ClaimLoop(
            name="inbox-pump", claim=self._claim, room=self._claim_room, hand_over=self._take_claimed,
            poll_seconds=lambda: self.options.poll_seconds, log=log,
        )
        self.card_actions = PressActions()
        self._card_answers: dict[str, asyncio.Future[dict[str, Any]]] = {}  # messageId -> the ACK's response

    # ---- wiring ----------------------------------------------------------------------------------------------

    def register(self, handler: ApprovalEventHandler) -> ApprovalEventHandler:
        """Hand every approval event to ``handler(event, ctx)``, inside the event's unit of work."""
        self._event_handlers.append(handler)
        return handler

    @property
    def event_handlers(self) -> tuple[ApprovalEventHandler, ...]:
        return tuple(self._event_handlers)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def running(self) -> bool:
        return self._pump.running

    @property
    def last_poll_error(self) -> str | None:
        return self._pump.last_poll_error

    # ---- 1. frame -> inbox (before the ack) ------------------------------------------------------------------

    async def on_card_press(self, press: CardPress) -> dict[str, Any] | None:
        """Persist a card press, then give its run a moment to finish: the card's change goes into the ACK's
        response (None: ACK without a change; the run finishes on its own and updates the card through the
        outbox). Raising leaves the frame unacked."""
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._card_answers[press.message_id] = answer
        try:
            await self.on_frame(press)
            return await asyncio.wait_for(asyncio.shield(answer), CARD_ANSWER_BUDGET_SECONDS)
        except asyncio.TimeoutError:
            return None
        finally:
            self._card_answers.pop(press.message_id, None)

    async def on_frame(self, item: Item) -> None:
        """Persist the frame; return (-> ack) only once it is stored. Raising leaves it unacked (redelivered)."""
        if isinstance(item, CardPress):
            kind, msg_id = InboxKind.CARD, f"card:{item.message_id}"
        elif isinstance(item, Incoming):
            kind, msg_id = InboxKind.MESSAGE, item.msg_id or None
        else:
            # A redelivered event keeps its messageId; the eventId also catches the same event in a new frame.
            kind, msg_id = InboxKind.EVENT, (f"event:{item.event_id}" if item.event_id else None)
        at_once = self._has_room()
        if at_once:
            self._reserved += 1
        try:
            new_id = await self._frames.submit(_Frame(item, kind, msg_id, at_once))
            claimed_at = time.monotonic()
        finally:
            if at_once:
                self._reserved -= 1
        if new_id is None:
            self.stats.duplicates += 1
            log.info("frame dropped as a duplicate message_id=%s", item.message_id)
            waiting = self._card_answers.get(item.message_id) if isinstance(item, CardPress) else None
            if waiting is not None and not waiting.done():
                waiting.set_result({})  # applied once already: the repeat is acknowledged without a change
            return
        self.stats.stored += 1
        if at_once:
            self.stats.taken_at_once += 1
            self._take(_Claim(new_id, claimed_at), item)
        else:
            self.wake()

    async def _store_frames(self, frames: list[_Frame]) -> list[int | None]:
        # Frames arriving together are stored in one transaction (a group commit); each is acked once it is in.
        async with self._tx.write(interactive=True) as session:
            return [await insert_inbox(session=session, message_id=f.item.message_id, msg_id=f.msg_id,
                                       payload=encode_item(f.item), kind=f.kind,
                                       claimed_by=self.worker if f.at_once else None,
                                       lease_seconds=self.options.lease_seconds) for f in frames]

    def _has_room(self) -> bool:
        # Older rows waiting in the table go first: a new frame queues behind them.
        return self.running and not self._pump.stopping and not self._pump.rows_waiting and self._places() > 0

    def _places(self) -> int:
        """Rows this worker can take now: free slots plus free backlog places."""
        free_slots = self._max_concurrent - len(self._tasks)
        return free_slots + self.options.backlog - len(self._backlog) - self._reserved

    def _claim_room(self) -> int:
        # Claim from the table in batches: only once the backlog has run down to half, then enough to fill it.
        return self._places() if len(self._backlog) <= self.options.backlog // 2 else 0

    # ---- 2. the pump -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start processing: rows a crash left behind are claimed at once (leases permitting)."""
        self._pump.start()

    async def stop(self) -> None:
        """Stop claiming; let commands in flight finish within the grace; cancel the rest (rolled back, re-run).
        Rows still waiting in the backlog are handed back to the table (pending) for whoever runs next."""
        await self._pump.stop()
        if cut := await drain(self._tasks, self.options.stop_grace_seconds):
            log.warning("inbox: %d commands cut short by shutdown; rolled back, they run again after restart", cut)
        # Taken after the drain: a frame whose store finished meanwhile was queued here too (``_take``).
        waiting, self._backlog = [claim.inbox_id for claim, _ in self._backlog], deque()
        if waiting:
            try:
                async with self._tx.write() as session:
                    await release_inbox_claims(session=session, inbox_ids=waiting, worker=self.worker)
            except Exception:  # their leases run out instead
                log.exception("inbox: %d waiting rows could not be handed back; they run after their lease",
                              len(waiting))

    def wake(self) -> None:
        """Rows may be waiting in the table: claim them as soon as a slot is free."""
        self._pump.wake()

    async def wait_for(self, predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
        """Wait until ``await predicate()`` holds, re-checked each time a row is finished (tests, tools)."""
        await wait_until(predicate, lambda: self._changed, timeout)

    async def _claim(self, limit: int) -> list[InboxMessage]:
        async with self._tx.write() as session:
            return await claim_pending_inbox(session=session, limit=limit, worker=self.worker,
                                             lease_seconds=self.options.lease_seconds)

    def _take_claimed(self, rows: Sequence[InboxMessage]) -> None:
        claimed_at = time.monotonic()
        for row in rows:
            assert row.id is not None
            if row.id in self._held:
                # Its lease ran out while it waited here, so the claim took it again (and renewed the lease): it
                # is already queued, and runs once.
                continue
            self._take(_Claim(row.id, claimed_at), row.payload)

    def _take(self, claim: _Claim, item: Item | str) -> None:
        """Run a row this worker claimed, now if a slot is free, else after the rows already waiting (when stopping:
        kept for ``stop`` to hand back)."""
        self._held.add(claim.inbox_id)
        if self._backlog or len(self._tasks) >= self._max_concurrent or self._pump.stopping:
            self._backlog.append((claim, item))
        else:
            self._spawn(claim, item)

    def _spawn(self, claim: _Claim, item: Item | str) -> None:
        task = asyncio.create_task(self._process(claim, item), name=f"inbox-{claim.inbox_id}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._changed.set()
        self._changed = asyncio.Event()
        if not task.cancelled() and task.exception() is not None:
            log.error("inbox: processing task crashed", exc_info=task.exception())
        if self._backlog and not self._pump.stopping:
            self._spawn(*self._backlog.popleft())
        self._pump.room_freed()

    # ---- 3. one row, one unit of work ------------------------------------------------------------------------

    async def _process(self, claim: _Claim, item: Item | str) -> None:
        """Run one claimed row: ``item`` is the typed item (stored just now) or the row's payload (claimed)."""
        try:
            await self._run_row(claim, item)
        finally:
            self._held.discard(claim.inbox_id)

    async def _run_row(self, claim: _Claim, item: Item | str) -> None:
        inbox_id = claim.inbox_id
        if isinstance(item, str):
            try:
                item = decode_item(item)
            except Exception as exc:  # noqa: BLE001 - an unreadable row must not block the others
                log.exception("inbox: row %s cannot be decoded", inbox_id)
                with contextlib.suppress(Superseded):
                    await self._fail_alone(claim, f"payload unreadable: {type(exc).__name__}: {exc}")
                return
        started = time.perf_counter()
        try:
            if isinstance(item, CardPress):
                await self._run_press(claim, item, started)
            elif isinstance(item, Incoming):
                await self._run_command(claim, item, started)
            else:
                await self._run_event(claim, item, started)
        except asyncio.CancelledError:
            raise
        except Superseded:
            return  # another worker has the row (logged where it was found out)
        except Exception:
            # The commit failed (database gone, serialization failure): nothing happened; after the lease the row
            # is claimed again and the command runs afresh.
            self.stats.commit_failures += 1
            log.exception("inbox: row %s (message_id=%s) could not be committed; it runs again after its lease",
                          inbox_id, item.message_id)

    async def _run_command(self, claim: _Claim, incoming: Incoming, started: float) -> None:
        incoming = await self._dispatcher.prepare(incoming)  # downloads and the like: not inside the write lock
        route = self._dispatcher.route(incoming)
        try:
            handled = await answer(self._dispatcher, route, _InboxUnits(self, claim, route.incoming),
                                   started=started)
        except Superseded:
            return
        if handled.outcome.failed:
            self.stats.failed += 1
        self.stats.processed += 1

    async def _run_press(self, claim: _Claim, press: CardPress, started: float) -> None:
        """The press runs as the command its button stands for (the same route and kernel rule as a message); its
        answer is settled on the card."""
        card = CardAnswer(press.out_track_id, private={"notice": ""})  # a refusal shown before is cleared
        text = self.card_actions.text_of(press)
        if text is None:
            card.private["notice"] = "此按钮已失效，请发送「帮助」查看可用的命令。"
            log.warning("card press %s: unknown action %r", press.message_id, press.action)
            async with self._writing(claim) as work:
                await self.finish(work.session, claim.inbox_id)
        else:
            incoming = press_incoming(press, text, corp_id=self._services.config.dingtalk.corp_id, is_group=True)
            incoming = await self._dispatcher.prepare(incoming)
            route = self._dispatcher.route(incoming)
            try:
                handled = await answer(self._dispatcher, route,
                                       _CardPressUnits(self, claim, route.incoming, card), started=started)
            except Superseded:
                return
            if handled.outcome.failed:
                self.stats.failed += 1
            self.stats.processed += 1
            if not handled.outcome.rolls_back:
                card.public.update(self.card_actions.on_ok(press))
        await self._settle_press(press, card)

    async def _settle_press(self, press: CardPress, card: CardAnswer) -> None:
        waiting = self._card_answers.get(press.message_id)
        if waiting is not None and not waiting.done():
            waiting.set_result(card.response())
            return
        if not card.public and not (card.private and press.user_id_type == 1):
            return
        # The ACK went out without the answer (slow run, or a row re-run after a restart): update the card.
        private = {press.user_id: card.private} if card.private and press.user_id_type == 1 else {}
        async with self._relay.unit_of_work(interactive=True) as work:
            await enqueue(work.session, f"card:{press.out_track_id}:press:{press.message_id}",
                          group_target(press.conversation_id),
                          CardWrite("update", press.out_track_id, data=card.public, private=private, by_key=True))

    @contextlib.asynccontextmanager
    async def _reading(self, card_answer: CardAnswer | None = None) -> AsyncIterator[UnitOfWork]:
        """A read-only command's unit of work: a read session that refuses writes, bound as the current work."""
        async with self._tx.read(interactive=True) as session:
            work = UnitOfWork(session=session, read_only=True, card_answer=card_answer)
            with writes_forbidden(session), bind_unit_of_work(work):
                yield work

    @contextlib.asynccontextmanager
    async def _writing(self, claim: _Claim, card_answer: CardAnswer | None = None) -> AsyncIterator[UnitOfWork]:
        """A write unit of work on a claimed row (``Superseded`` if the claim was lost).

        On PostgreSQL/MySQL the claim is re-asserted (its lease extended, the row locked) first, always. On SQLite
        only once half the lease has gone by: before that no other worker can have taken the row over, the write
        transaction keeps every claimer out while it runs, and the row's finishing mark (``finish``), conditional on
        the claim, catches a takeover between transactions anyway. So there a typical command pays no statement."""
        async with self._relay.unit_of_work(interactive=True) as work:
            half_gone = time.monotonic() - claim.at >= self.options.lease_seconds / 2
            if (self._hold_always or half_gone) and not await self._hold(work.session, claim.inbox_id):
                raise Superseded(claim.inbox_id)
            work.card_answer = card_answer
            yield work

    async def _run_event(self, claim: _Claim, event: ApprovalEvent, started: float) -> None:
        trace_id = new_trace_id()
        outcome, error = "ok", None
        try:
            async with self._writing(claim) as work:
                ctx = EventContext(services=self._services, event=event, trace_id=trace_id)
                for handler in self._event_handlers:
                    await handler(event, ctx)
                if not self._event_handlers:
                    outcome = "stored"  # no approvals feature yet: kept in the inbox for later inspection
                await self.finish(work.session, claim.inbox_id)
        except (asyncio.CancelledError, Superseded):
            raise
        except Exception as exc:  # noqa: BLE001 - the handler's error is kept on the row
            outcome, error = "error", f"{type(exc).__name__}: {exc}"[:2000]
            event_log.exception("approval event failed message_id=%s trace_id=%s", event.message_id, trace_id)
            await self._fail_alone(claim, f"{error} (trace_id={trace_id})")
            self.stats.failed += 1
        self.stats.processed += 1
        event_log.info(
            "approval event handled message_id=%s event_type=%s instance=%s change=%s outcome=%s duration_ms=%.1f "
            "trace_id=%s", event.message_id, event.event_type, event.process_instance_id, event.change, outcome,
            (time.perf_counter() - started) * 1000, trace_id,
            extra={"event": "approval_event_handled", "message_id": event.message_id, "outcome": outcome,
                   "error": error},
        )

    async def _hold(self, session: AsyncSession, inbox_id: int) -> bool:
        if await hold_inbox_claim(session=session, inbox_id=inbox_id, worker=self.worker,
                                  lease_seconds=self.options.lease_seconds):
            return True
        self._superseded(inbox_id)
        return False

    async def finish(self, session: AsyncSession, inbox_id: int, error: str | None = None) -> None:
        """Mark the row done (failed with ``error``) in ``session``'s transaction, if this worker still holds it;
        otherwise raise ``Superseded``: the transaction must roll back (another worker runs the row)."""
        if error is None:
            finished = await mark_inbox_done(session=session, inbox_id=inbox_id, worker=self.worker)
        else:
            finished = await mark_inbox_failed(session=session, inbox_id=inbox_id, error=error, worker=self.worker)
        if not finished:
            self._superseded(inbox_id)
            raise Superseded(inbox_id)

    def _superseded(self, inbox_id: int) -> None:
        self.stats.superseded += 1
        log.warning("inbox: row %s was taken over by another worker; not running it here", inbox_id)

    async def _fail_alone(self, claim: _Claim, error: str) -> None:
        async with self._writing(claim) as work:
            await self.finish(work.session, claim.inbox_id, error)


@dataclass(slots=True)
class _InboxUnits:
    """A message row's units of work (``bot.kernel.Units``): answers become outbox rows to the conversation, keyed
    by the row, and the row is marked done (or failed) in the same transaction."""

    pipeline: InboxPipeline
    claim: _Claim
    incoming: Incoming

    def read(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return self.pipeline._reading()

    def write(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return self.pipeline._writing(self.claim)

    async def settle(self, work: UnitOfWork, handled: Handled) -> None:
        try:
            await queue_replies(work.session, self.claim.inbox_id, self.incoming, handled.replies)
        except (ValueError, TypeError, InvalidRequest) as exc:
            raise Undeliverable(f"answer cannot be sent: {type(exc).__name__}: {exc}") from exc
        error = f"{handled.error} (trace_id={handled.trace_id})" if handled.outcome.failed else None
        await self.pipeline.finish(work.session, self.claim.inbox_id, error)


@dataclass(slots=True)
class _CardPressUnits:
    """A card press's units of work: as a message's, with the press's ``CardAnswer`` on each unit of work (what the
    command changes on its own card). An OK answer's replies go to the chat like a typed command's; a rolled-back
    one (a refusal, an error) goes to the presser alone, as the card's private notice, and the chat stays quiet."""

    pipeline: InboxPipeline
    claim: _Claim
    incoming: Incoming
    card: CardAnswer

    def read(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return self.pipeline._reading(self.card)

    def write(self) -> contextlib.AbstractAsyncContextManager[UnitOfWork]:
        return self.pipeline._writing(self.claim, self.card)

    async def settle(self, work: UnitOfWork, handled: Handled) -> None:
        if handled.outcome.rolls_back:
            self.card.public.clear()  # what the rolled-back command meant to show on the card did not happen
            self.card.private["notice"] = _plain(handled.replies[-1] if handled.replies else None)
            replies: Sequence[Reply] = ()
        else:
            replies = handled.replies
        await _InboxUnits(self.pipeline, self.claim, self.incoming).settle(
            work, dataclasses.replace(handled, replies=tuple(replies)))


def _plain(reply: Reply | None) -> str:
    text = getattr(reply, "text", None) or getattr(reply, "title", None) or ""
    return str(text)[:500]


async def queue_replies(session: AsyncSession, inbox_id: int, incoming: Incoming, replies: Sequence[Reply]) -> None:
    """The answers to a message as outbox rows to its conversation."""
    if not replies:
        return
    target = reply_target(incoming)
    for number, reply in enumerate(replies):
        # The inbox row commits once, so its id names its answers for good: a re-run cannot queue them twice.
        await enqueue(session, f"reply:{inbox_id}:{number}", target, reply)


__all__ = [
    "InboxOptions",
    "InboxPipeline",
    "InboxStats",
    "decode_item",
    "encode_item",
]
