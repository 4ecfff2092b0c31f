"""Deliverable queries that must be indexed and identical on every backend."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    Deliverable,
    DeliverableStatus,
    DeliverableVersion,
    Project,
    utcnow,
)
from storage.repo._sql import add_with_retry


async def overdue_deliverables(
    *, session: AsyncSession, today: date, project_ids: Iterable[int] | None = None
) -> list[tuple[Deliverable, Project]]:
    """Deliverables still 待提交 whose due date is before ``today`` (the local calendar date), in projects whose
    clock runs (已立项/进行中: paused, closed and rejected projects are never nagged), oldest due first.

    Uses ix_deliverables_status_due_date. Submitted and waived deliverables are never overdue.
    """
    query = (
        select(Deliverable, Project)
        .join(Project, Project.id == Deliverable.project_id)  # type: ignore[arg-type]
        .where(
            Deliverable.status == DeliverableStatus.PENDING,
            Deliverable.due_date < today,  # type: ignore[operator]
            Project.status.in_(ACTIVE_PROJECT_STATUSES),  # type: ignore[attr-defined]
        )
        .order_by(Deliverable.due_date, Deliverable.id)
    )
    if project_ids is not None:
        ids = list(project_ids)
        if not ids:
            return []
        query = query.where(Deliverable.project_id.in_(ids))  # type: ignore[attr-defined]
    rows = (await session.exec(query)).all()
    return [(deliverable, project) for deliverable, project in rows]


async def add_deliverable_version(
    *,
    session: AsyncSession,
    deliverable_id: int,
    submitted_by: str,
    file_path: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    original_name: str | None = None,
    link: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> DeliverableVersion:
    """Store the next version (1, 2, …) of a deliverable. Setting the deliverable's status is the caller's job."""

    async def build() -> DeliverableVersion:
        current = (
            await session.exec(
                select(func.max(DeliverableVersion.version)).where(DeliverableVersion.deliverable_id == deliverable_id)
            )
        ).one()
        return DeliverableVersion(
            deliverable_id=deliverable_id,
            version=(current or 0) + 1,
            file_path=file_path,
            sha256=sha256,
            size=size,
            original_name=original_name,
            link=link,
            submitted_by=submitted_by,
            submitted_at=now or utcnow(),
            note=note,
        )

    return await add_with_retry(session, build)


__all__ = ["add_deliverable_version", "overdue_deliverables"]
