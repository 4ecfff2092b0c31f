"""The todo relay: sends the 待办 calls the sync queued in the outbox, one at a time, on the leader process only.

One sender for the whole deployment keeps the calls under DingTalk's todo limits (the client's per-API pacing, plus
flow control per executor and org, which answers ``Throttled`` and is retried after a backoff) and keeps two calls
for one todo from racing (two creates would make two tasks). Each outbox row names a ``todos`` row; the call brings
DingTalk in line with that row as it is *now*, after a ``GET``, so a late, repeated or reordered operation ends
right:

* open: no task yet -> look for one with the row's sourceId (a create that got through before a crash or timeout),
  else create it; a task deleted in DingTalk -> a new generation (a new sourceId) and create; a task reassigned in
  DingTalk -> follow its new executor; otherwise update what differs (subject, due time, done, no executor left);
* done: mark the task done; removed: delete it (a task already gone is fine).

Failures follow the outbox's rules: retryable ones (throttling, 5xx, timeouts) back off and retry, others and the
last attempt are dead-lettered (``dingpm outbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.claim_loop import ClaimLoop
from bot.dingtalk.errors import DingTalkError
from bot.dingtalk.todo import TaskExists, TaskMissing, TodoApi, TodoDraft, TodoTask
from bot.transactions import Transactions
from storage.models import OutboxMessage, TodoItem, TodoState, utcnow
from storage.models.todos import todo_source_id
from storage.repo import claim_due_outbox, mark_dead, mark_retry
from storage.repo.outbox import mark_sent_many
from storage.repo.todos import get_todo, project_codes, record_task

log = logging.getLogger("dingpm.todo")


@dataclass(frozen=True)
class TodoRelayOptions:
    poll_seconds: float = 5.0
    lease_seconds: float = 60.0
    batch: int = 20
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0


@dataclass
class TodoRelayStats:
    calls: int = 0  # todo operations finished
    created: int = 0
    recreated: int = 0  # tasks deleted in DingTalk and created again
    followed: int = 0  # tasks reassigned in DingTalk whose new executor the bot follows
    retried: int = 0
    dead: int = 0


def _ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


class TodoRelay:
    def __init__(self, *, transactions: Transactions, client: Any, worker: str, max_attempts: int,
                 detail_url: Callable[[str], str], options: TodoRelayOptions | None = None,
                 rng: random.Random | None = None) -> None:
        self._tx, self.api, self.worker = transactions, TodoApi(client), worker
        self._max_attempts, self._detail_url = max_attempts, detail_url
        self.options = options or TodoRelayOptions()
        self._rng = rng or random.Random()
        self.stats = TodoRelayStats()
        self._loop: ClaimLoop[OutboxMessage] = ClaimLoop(
            name="todo-relay", claim=self._claim, room=lambda: 0 if self._batch is not None else self.options.batch,
            hand_over=self._hand_over, poll_seconds=lambda: self.options.poll_seconds, log=log)
        self._batch: asyncio.Task[None] | None = None  # the calls being sent, one at a time

    # ---- lifecycle (the leader's) ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop at once; a call cut short is sent again after its lease (idempotent by construction)."""
        await self._loop.stop()
        if self._batch is not None:
            self._batch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batch
            self._batch = None

    @property
    def running(self) -> bool:
        return self._loop.running

    def wake(self) -> None:
        self._loop.wake()

    async def _claim(self, limit: int) -> list[OutboxMessage]:
        async with self._tx.write() as session:
            return await claim_due_outbox(session=session, limit=limit, worker=self.worker,
                                          lease_seconds=self.options.lease_seconds, todo=True)

    def _hand_over(self, rows: Sequence[OutboxMessage]) -> None:
        self._batch = asyncio.create_task(self._send_batch(rows), name="todo-relay-calls")

    async def _send_batch(self, rows: Sequence[OutboxMessage]) -> None:
        try:
            for row in rows:
                try:
                    await self._deliver(row)
                except Exception:  # noqa: BLE001 - settling failed (the database away): sent again after its lease
                    log.warning("todo relay: settling call %s failed", row.idempotency_key, exc_info=True)
        finally:
            self._batch = None
        if len(rows) == self.options.batch:
            self._loop.wake()  # a full batch: more are probably due
        else:
            self._loop.room_freed()

    # ---- one call ------------------------------------------------------------------------------------------------

    async def _deliver(self, outbox: OutboxMessage) -> None:
        try:
            await self.bring_in_line(int((outbox.params or {})["todo"]))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the outbox row, never dropped
            await self._failed(outbox, exc)
            return
        self.stats.calls += 1
        async with self._tx.write(urgent=True) as session:
            await mark_sent_many(session=session, outbox_ids=[outbox.id], worker=self.worker)

    async def _failed(self, outbox: OutboxMessage, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        retryable = exc.retryable if isinstance(exc, DingTalkError) else True
        async with self._tx.write(urgent=True) as session:
            if not retryable or outbox.attempts >= self._max_attempts:
                self.stats.dead += 1
                log.error("todo relay: call %s dead-lettered: %s", outbox.idempotency_key, error)
                await mark_dead(session=session, outbox_id=outbox.id, error=error, worker=self.worker)
                return
            delay = self._rng.uniform(0, min(self.options.backoff_max_seconds,
                                             self.options.backoff_base_seconds * 2 ** max(0, outbox.attempts - 1)))
            if isinstance(exc, DingTalkError) and exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            self.stats.retried += 1
            log.warning("todo relay: call %s attempt %d failed (%s); retry in %.1fs", outbox.idempotency_key,
                        outbox.attempts, error, delay)
            await mark_retry(session=session, outbox_id=outbox.id, error=error,
                             next_at=utcnow() + timedelta(seconds=delay), worker=self.worker)
        asyncio.get_running_loop().call_later(delay, self.wake)

    async def bring_in_line(self, todo_id: int) -> None:
        async with self._tx.read() as session:
            row = await get_todo(session=session, todo_id=todo_id)
            code = (await project_codes(session=session, project_ids=[row.project_id])).get(row.project_id) \
                if row is not None else None
        if row is None or code is None:
            return  # the project or the deliverable was deleted: its rows went with it (the task stays, unknown)
        if row.state == TodoState.OPEN:
            await self._keep_open(row, code)
        elif row.task_id is not None and row.state == TodoState.DONE:
            try:
                await self.api.update(row.creator_union_id, row.task_id, subject=row.subject, due_ms=_ms(row.due_at),
                                      done=True, executor_id=row.executor_union_id)
            except TaskMissing:
                return
        elif row.task_id is not None:
            await self.api.delete(row.creator_union_id, row.task_id)

    async def _keep_open(self, row: TodoItem, code: str) -> None:
        task: TodoTask | None = None
        if row.task_id is not None:
            try:
                task = await self.api.get(row.creator_union_id, row.task_id)
            except TaskMissing:
                # Deleted in DingTalk while its deliverable is still due: a new task, under a new sourceId.
                row = await self._next_generation(row)
                self.stats.recreated += 1
        if task is None:
            task = await self._create(row, code)
            return
        executor = row.executor_union_id
        if task.executor_ids and executor not in task.executor_ids:
            executor = task.executor_ids[0]  # reassigned in DingTalk: the bot follows the new executor
            await self._record(row, executor_union_id=executor)
            self.stats.followed += 1
            log.info("todo %s: reassigned in DingTalk; following the new executor", row.id)
        if (task.subject != row.subject or task.due_ms != _ms(row.due_at) or task.done
                or executor not in task.executor_ids):
            await self.api.update(row.creator_union_id, task.task_id, subject=row.subject, due_ms=_ms(row.due_at),
                                  done=False, executor_id=executor)

    async def _create(self, row: TodoItem, code: str) -> TodoTask:
        # A create that got through before a crash or a timeout left a task under this sourceId: take it.
        task = await self.api.by_source(row.creator_union_id, row.source_id)
        if task is None:
            draft = TodoDraft(subject=row.subject, due_ms=_ms(row.due_at), executor_id=row.executor_union_id,
                              detail_url=self._detail_url(code), source_id=row.source_id)
            try:
                task = await self.api.create(row.creator_union_id, draft)
                self.stats.created += 1
            except TaskExists:
                # Taken by a task we cannot read (deleted, the sourceId kept): the next generation, on the retry.
                await self._next_generation(row)
                raise
        await self._record(row, task_id=task.task_id)
        return task

    async def _next_generation(self, row: TodoItem) -> TodoItem:
        generation = row.generation + 1
        new_source = todo_source_id(row.deliverable_id, row.owner_user_id, generation)
        await self._record(row, task_id=None, generation=generation, source_id=new_source)
        row.task_id, row.generation, row.source_id = None, generation, new_source
        return row

    async def _record(self, row: TodoItem, **values: Any) -> None:
        async with self._tx.write(urgent=True) as session:
            await record_task(session=session, todo_id=row.id, current_source_id=row.source_id, **values)  # type: ignore[arg-type]
