"""Keeps the live cards current: after commits, once the burst has passed, one refresh in one write transaction.

A command that changes what a status card shows audits the change in its own transaction; the refresher is poked
after every commit, waits ``cards.coalesce_seconds`` for the burst to settle, and runs the registered refresh
(``handlers.status_card``, ``handlers.approval_cards``) once, in a unit of work whose card writes the outbox sends right
after it commits. Pokes that arrive while it runs make one more run afterwards, never one per poke; its own commit
does not poke it. Several processes may refresh at once: the status cards are row-locked and every write has a
business key (``card:<outTrackId>:v<n>``), so an update is queued once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.context import Services, UnitOfWork

log = logging.getLogger("dingpm.cards")

Refresh = Callable[[Any, Services], Awaitable[int]]  # (session, services) -> card writes queued


class CardRefresher:
    def __init__(self, services: Services, refreshes: Sequence[Refresh], *, coalesce_seconds: float) -> None:
        self._services = services
        self._refreshes = tuple(refreshes)
        self._coalesce = coalesce_seconds
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.runs = 0
        self.queued = 0

    def poke(self, work: UnitOfWork | None = None) -> None:
        if self._task is None or asyncio.current_task() is self._task:
            return  # stopped, or our own commit
        self._idle.clear()
        self._dirty.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="card-refresher")
            self.poke()  # changes made while no process was refreshing

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._idle.set()

    async def wait_idle(self, timeout: float) -> None:
        """Wait until no refresh is pending or running (tests, tools)."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            if self._coalesce:
                await asyncio.sleep(self._coalesce)  # let the burst finish: its changes make one update
            self._dirty.clear()
            try:
                async with self._services.outbox.unit_of_work() as work:
                    queued = 0
                    for refresh in self._refreshes:
                        queued += await refresh(work.session, self._services)
                self.runs += 1
                self.queued += queued
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next commit tries again; the audit checkpoint was not moved
                log.exception("refreshing the status cards failed")
            if not self._dirty.is_set():
                self._idle.set()


__all__ = ["CardRefresher"]
