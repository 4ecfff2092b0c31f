"""The claim loop the inbox (commands to run), the outbox relay (messages to send) and the todo relay (待办 calls)
share.

Each keeps rows in a table and works on the ones it claimed (``storage.repo._claim``). The loop claims as many rows as
its owner has room for, hands them over, and otherwise sleeps until it is woken or the poll interval passes (rows of
other processes, retries falling due, leases running out).

It claims again only when rows may be waiting: ``wake()`` raises a mark (a row was stored for the poll, a retry fell
due), and a claim that came back short records the mark it had seen. When a slot frees up (``room_freed``) the loop
runs again only if a mark is newer than the last short claim; otherwise every finished command or send would cost an
empty claim transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

RowT = TypeVar("RowT")


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


async def wait_until(predicate: Callable[[], Awaitable[bool]], changed: Callable[[], asyncio.Event],
                     timeout: float) -> None:
    """Wait until ``await predicate()`` holds, re-checked each time the owner swaps in a fresh ``changed`` event
    (after a row is finished or settled): what the inbox's and the relay's ``wait_for`` give tests and tools."""
    async with asyncio.timeout(timeout):
        while True:
            event = changed()
            if await predicate():
                return
            await event.wait()


class ClaimLoop(Generic[RowT]):
    def __init__(
        self,
        *,
        name: str,
        claim: Callable[[int], Awaitable[Sequence[RowT]]],  # claim at most n rows (its own write transaction)
        room: Callable[[], int],  # how many rows the owner can take now
        hand_over: Callable[[Sequence[RowT]], None],  # start working on claimed rows (spawns tasks, never blocks)
        poll_seconds: Callable[[], float],
        log: logging.Logger,
        describe_error: Callable[[BaseException], str] = error_text,
    ) -> None:
        self.name = name
        self._claim = claim
        self._room = room
        self._hand_over = hand_over
        self._poll_seconds = poll_seconds
        self._log = log
        self._describe_error = describe_error
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stopping = False
        self.last_poll_error: str | None = None
        self._waiting_mark = 0
        self._claimed_mark = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def rows_waiting(self) -> bool:
        """Rows may be in the table that no claim has seen since they were stored (or fell due)."""
        return self._waiting_mark != self._claimed_mark

    def start(self) -> None:
        if self._task is None:
            self.stopping = False
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop claiming; rows already handed over are the owner's to finish."""
        self.stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def wake(self) -> None:
        """Rows may be waiting in the table: claim as soon as there is room."""
        self._waiting_mark += 1
        self._wake.set()

    def room_freed(self) -> None:
        """The owner finished a row: claim again if rows may be waiting for the room."""
        if self.rows_waiting:
            self._wake.set()

    async def _run(self) -> None:
        while not self.stopping:
            self._wake.clear()
            wanted = self._room()
            rows: Sequence[RowT] = ()
            if wanted > 0:
                mark = self._waiting_mark
                try:
                    rows = await self._claim(wanted)
                    self.last_poll_error = None
                    if len(rows) < wanted:
                        self._claimed_mark = mark  # everything stored up to the mark was seen by this claim
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database may be briefly away: the next poll tries again
                    self.last_poll_error = self._describe_error(exc)
                    self._log.warning("%s: claiming rows failed: %s", self.name, self.last_poll_error)
            if rows:
                self._hand_over(rows)
                if len(rows) == wanted:
                    continue  # all the room taken: probably more are due
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds())
