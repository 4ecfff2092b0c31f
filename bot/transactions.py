"""This process's write transactions, queued fairly on SQLite.

SQLite has one writer at a time: a write transaction (``BEGIN IMMEDIATE``) that finds the lock taken waits in
SQLite's busy handler, which sleeps in growing steps (up to 100 ms) in the driver's thread. With dozens of commands,
frames and relay updates in flight, that polling wastes most of the time and serves no one in order. A gate in front
of the write transactions of this process makes them queue in arrival order and start the moment the previous one
commits; the busy handler still arbitrates between processes. PostgreSQL and MySQL lock rows, not the database, so
there the gate is not used.

``write(urgent=True)`` goes ahead of the queue. The relay uses it to record that a message was sent: until that
commits, a crash would send the message again, so the window must not include the wait behind a burst of commands.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from storage.db import Database


class _Gate:
    """A lock whose waiters are served first come, first served, urgent ones before the others."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._urgent) + len(self._normal)

    async def acquire(self, urgent: bool) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # stays held: ownership moves to the waiter
                    return
        self._held = False


class Transactions:
    """``async with transactions.write() as session``: ``Database.write()`` behind the per-process SQLite gate."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._gate: _Gate | None = _Gate() if database.family == "sqlite" else None
        self._holder: asyncio.Task[Any] | None = None

    @property
    def waiting(self) -> int:
        """Write transactions of this process waiting for the gate (SQLite); 0 on server databases."""
        return self._gate.waiting if self._gate is not None else 0

    @asynccontextmanager
    async def write(self, *, urgent: bool = False, interactive: bool = False) -> AsyncIterator[Any]:
        """``interactive``: a short transaction on a message's path (``Database.write``)."""
        if self._gate is None:
            async with self.database.write(interactive=interactive) as session:
                yield session
            return
        if self._holder is not None and self._holder is asyncio.current_task():
            # SQLite would wait for itself until busy_timeout; the gate would wait forever. Fail loudly instead.
            raise RuntimeError("a write transaction inside a write transaction of the same task: use ctx.session")
        await self._gate.acquire(urgent)
        self._holder = asyncio.current_task()
        try:
            async with self.database.write(interactive=interactive) as session:
                yield session
        finally:
            self._holder = None
            self._gate.release()

    @asynccontextmanager
    async def read(self, *, interactive: bool = False) -> AsyncIterator[Any]:
        async with self.database.read(interactive=interactive) as session:
            yield session
