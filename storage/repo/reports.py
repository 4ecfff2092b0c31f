"""Weekly reports, one per project, ISO week and audience."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ReportVariant, WeeklyReport, utcnow
from storage.repo._sql import insert_ignoring_duplicates


async def record_weekly_report(
    *,
    session: AsyncSession,
    project_id: int,
    iso_year: int,
    iso_week: int,
    content_md: str,
    variant: ReportVariant = ReportVariant.CLIENT,
    file_path: str | None = None,
    sent_at: datetime | None = None,
    now: datetime | None = None,
) -> tuple[WeeklyReport, bool]:
    """Store the report of a week, or replace the content of the one already stored (a regenerated report).

    Returns the row and whether it was created. ``sent_at`` is only ever set, never cleared, so regenerating a sent
    report keeps the record that it went out.
    """
    now = now or utcnow()
    row = WeeklyReport(
        project_id=project_id,
        iso_year=iso_year,
        iso_week=iso_week,
        variant=variant,
        content_md=content_md,
        file_path=file_path,
        sent_at=sent_at,
        created_at=now,
        updated_at=now,
    )
    new_id = await insert_ignoring_duplicates(session, row)
    key = (
        WeeklyReport.project_id == project_id,
        WeeklyReport.iso_year == iso_year,
        WeeklyReport.iso_week == iso_week,
        WeeklyReport.variant == variant,
    )
    if new_id is None:
        values: dict[str, object] = {"content_md": content_md, "file_path": file_path, "updated_at": now}
        if sent_at is not None:
            values["sent_at"] = sent_at
        await session.exec(update(WeeklyReport).where(*key).values(**values))
    stored = (await session.exec(select(WeeklyReport).where(*key).execution_options(populate_existing=True))).one()
    return stored, new_id is not None


async def get_weekly_report(
    *,
    session: AsyncSession,
    project_id: int,
    iso_year: int,
    iso_week: int,
    variant: ReportVariant = ReportVariant.CLIENT,
) -> WeeklyReport | None:
    query = select(WeeklyReport).where(
        WeeklyReport.project_id == project_id,
        WeeklyReport.iso_year == iso_year,
        WeeklyReport.iso_week == iso_week,
        WeeklyReport.variant == variant,
    )
    return (await session.exec(query)).first()


__all__ = ["get_weekly_report", "record_weekly_report"]
