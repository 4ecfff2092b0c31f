"""Group commit: many small writes that arrive together share one transaction.

``await group.submit(item)`` returns ``item``'s result once ``write(batch)`` has written a batch that holds it. While
one batch is being written the next one collects, so under load many items share a transaction (on SQLite, one turn
of the write lock; on a server, one connection checkout, BEGIN and COMMIT), and alone an item waits for nothing extra.
If ``write`` raises, every item of that batch gets the exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Result]]], *, name: str) -> None:
        self._write = write
        self._name = name
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None:
            # Its own task: a cancelled submitter must not cancel the write of the others' items.
            self._writer = asyncio.create_task(self._drain(), name=self._name)
        return await asyncio.shield(done)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    results = await self._write([item for item, _ in batch])
                except BaseException as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, done), result in zip(batch, results, strict=True):
                    if not done.done():
                        done.set_result(result)
        finally:
            self._writer = None
            for _, done in self._waiting:  # cancelled with items still queued: they were never written
                if not done.done():
                    done.cancel()
            self._waiting = []
