"""The imported official working-day schedules (``calendar_days``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import delete, func, or_
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import CalendarDay, utcnow
from storage.workdays import OfficialDay


async def official_days(*, session: AsyncSession) -> list[OfficialDay]:
    rows = (await session.exec(select(CalendarDay).order_by(CalendarDay.day))).all()
    return [OfficialDay(row.day, row.working, row.name, row.source) for row in rows]


async def calendar_revision(*, session: AsyncSession) -> tuple[int, datetime | None]:
    """What changes whenever a schedule is imported: one cheap query for the processes that poll it."""
    count, latest = (await session.exec(select(func.count(), func.max(CalendarDay.imported_at)))).one()
    return int(count), latest


async def replace_official_years(*, session: AsyncSession, days: Sequence[OfficialDay],
                                 now: datetime | None = None) -> list[int]:
    """Make ``days`` the official schedule of every year they cover (what an earlier import said of those years
    goes); returns the years."""
    years = sorted({d.year for d in days})
    if not years:
        return []
    now = now or utcnow()
    await session.exec(delete(CalendarDay).where(or_(*(
        CalendarDay.day.between(date(y, 1, 1), date(y, 12, 31)) for y in years))))
    session.add_all(CalendarDay(day=d.day, working=d.working, name=d.name, source=d.source, imported_at=now)
                    for d in days)
    await session.flush()
    return years
