"""This process's write transactions, queued fairly on SQLite.

SQLite has one writer at a time: a write transaction (``BEGIN IMMEDIATE``) that finds the lock taken waits in
SQLite's busy handler, which sleeps in growing steps (up to 100 ms) in the driver's thread. With dozens of commands,
frames and relay updates in flight, that polling wastes most of the time and serves no one in order. An
``asyncio.Lock`` in front of the write transactions of this process makes them queue in arrival order and start the
moment the previous one commits; the busy handler still arbitrates between processes. PostgreSQL and MySQL lock rows,
not the database, so there the gate is not used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from storage.db import Database


class Transactions:
    """``async with transactions.write() as session``: ``Database.write()`` behind the per-process SQLite gate."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._gate: asyncio.Lock | None = asyncio.Lock() if database.family == "sqlite" else None
        self._holder: asyncio.Task[Any] | None = None

    @property
    def waiting(self) -> int:
        """Write transactions of this process waiting for the gate (SQLite); 0 on server databases."""
        gate: Any = self._gate
        return len(getattr(gate, "_waiters", None) or ()) if gate is not None else 0

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        if self._gate is None:
            async with self.database.write() as session:
                yield session
            return
        if self._holder is not None and self._holder is asyncio.current_task():
            # SQLite would wait for itself until busy_timeout; the gate would wait forever. Fail loudly instead.
            raise RuntimeError("a write transaction inside a write transaction of the same task: use ctx.session")
        async with self._gate:
            self._holder = asyncio.current_task()
            try:
                async with self.database.write() as session:
                    yield session
            finally:
                self._holder = None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Any]:
        async with self.database.read() as session:
            yield session
