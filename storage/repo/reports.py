"""Weekly reports, one per project, ISO week and audience; and the renders made ahead of the weekly push."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, delete, or_, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ReportVariant, WeeklyReport, WeeklyReportRender, utcnow
from storage.repo._sql import insert_ignoring_duplicates
from storage.repo.report_queries import MAX_IDS_PER_QUERY


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


async def store_weekly_render(*, session: AsyncSession, render: WeeklyReportRender) -> None:
    """Store a pre-rendered weekly report, replacing the project's earlier render of the same week."""
    if await insert_ignoring_duplicates(session, render) is not None:
        return
    values = {name: getattr(render, name) for name in (
        "fingerprint", "title", "content_md", "file_path", "internal_title", "internal_content_md",
        "internal_file_path", "rendered_at")}
    await session.exec(update(WeeklyReportRender).where(
        WeeklyReportRender.project_id == render.project_id,
        WeeklyReportRender.iso_year == render.iso_year,
        WeeklyReportRender.iso_week == render.iso_week,
    ).values(**values))


async def weekly_renders(
    *, session: AsyncSession, iso_year: int, iso_week: int, project_ids: Iterable[int]
) -> dict[int, WeeklyReportRender]:
    """Project id -> its pre-rendered report of that ISO week, for those of ``project_ids`` that have one."""
    ids = list(project_ids)
    found: dict[int, WeeklyReportRender] = {}
    for start in range(0, len(ids), MAX_IDS_PER_QUERY):
        query = select(WeeklyReportRender).where(
            WeeklyReportRender.iso_year == iso_year,
            WeeklyReportRender.iso_week == iso_week,
            WeeklyReportRender.project_id.in_(ids[start:start + MAX_IDS_PER_QUERY]),  # type: ignore[attr-defined]
        )
        found.update((r.project_id, r) for r in (await session.exec(query)).all())
    return found


async def delete_weekly_renders_before(*, session: AsyncSession, iso_year: int, iso_week: int) -> int:
    """Forget the pre-rendered reports of the weeks before this one (their pushes are over). Returns how many."""
    result = await session.exec(delete(WeeklyReportRender).where(or_(
        WeeklyReportRender.iso_year < iso_year,
        and_(WeeklyReportRender.iso_year == iso_year, WeeklyReportRender.iso_week < iso_week),
    )))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


__all__ = [
    "delete_weekly_renders_before",
    "get_weekly_report",
    "record_weekly_report",
    "store_weekly_render",
    "weekly_renders",
]
