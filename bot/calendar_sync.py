"""Every process sees the official schedules imported with ``dingpm calendar import``.

The schedules live in the database (``calendar_days``). A process loads them into its `WorkCalendar` at start, then
asks every ``calendar.refresh_seconds`` whether anything changed (one indexed count-and-max query) and reloads when
it did, so an import reaches every running process, on every backend, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from storage.repo import calendar_revision, official_days
from storage.workdays import WorkCalendar

log = logging.getLogger(__name__)


class CalendarSync:
    def __init__(self, database: Any, calendar: WorkCalendar, *, interval_seconds: float) -> None:
        self.database, self.calendar, self.interval = database, calendar, interval_seconds
        self._revision: tuple[int, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        """Load the schedules if they changed since the last look; True when the calendar was updated."""
        async with self.database.read() as session:
            revision = await calendar_revision(session=session)
            if revision == self._revision:
                return False
            days = await official_days(session=session)
        self.calendar.set_official(days)
        if self._revision is not None or days:
            log.info("official calendar loaded: %d days in years %s", len(days), sorted({d.year for d in days}))
        self._revision = revision
        return True

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="calendar-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - a database hiccup: keep the schedule we have, try again next time
                log.warning("could not check the official calendar; keeping the loaded one", exc_info=True)
