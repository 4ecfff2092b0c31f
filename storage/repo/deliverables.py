"""Deliverable queries that must be indexed and identical on every backend."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import NamedTuple

from sqlalchemy import bindparam, func, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    Deliverable,
    DeliverableStatus,
    DeliverableVersion,
    MemberRole,
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


async def list_deliverables(
    *, session: AsyncSession, project_id: int, phase_ids: Iterable[int] | None = None
) -> list[Deliverable]:
    """A project's deliverables in template order (all phases, or those of ``phase_ids``)."""
    if phase_ids is None:
        return list((await session.exec(_OF_PROJECT, params={"b_project": project_id})).all())  # type: ignore[call-overload]
    query = select(Deliverable).where(Deliverable.project_id == project_id,
                                      Deliverable.phase_id.in_(list(phase_ids)))  # type: ignore[union-attr]
    return list((await session.exec(query.order_by(Deliverable.seq, Deliverable.id))).all())


# Built once: 项目, 交付物 and a file's arrival list a project's deliverables on every message.
_OF_PROJECT = (select(Deliverable).where(Deliverable.project_id == bindparam("b_project"))
               .order_by(Deliverable.seq, Deliverable.id))


class DeliverableHeading(NamedTuple):
    """What a list of candidates shows of a deliverable: read as plain rows, far cheaper than loaded objects when a
    file is matched against every deliverable of several projects."""

    id: int
    project_id: int
    seq: int
    name: str
    status: DeliverableStatus
    due_date: date | None


async def deliverable_headings(*, session: AsyncSession, project_ids: Iterable[int]) -> list[DeliverableHeading]:
    """The deliverables of ``project_ids``, by project and in template order (one statement)."""
    ids = sorted(set(project_ids))
    if not ids:
        return []
    rows = (await session.exec(_HEADINGS, params={"b_projects": ids})).all()  # type: ignore[call-overload]
    return [DeliverableHeading(*row) for row in rows]


_D = Deliverable
_HEADINGS = (select(_D.id, _D.project_id, _D.seq, _D.name, _D.status, _D.due_date)  # type: ignore[call-overload]
             .where(_D.project_id.in_(bindparam("b_projects", expanding=True)))  # type: ignore[attr-defined]
             .order_by(_D.project_id, _D.seq, _D.id))


async def latest_versions(*, session: AsyncSession, deliverable_ids: Iterable[int]) -> dict[int, DeliverableVersion]:
    """The newest version of each deliverable that has one, by deliverable id (one query)."""
    ids = sorted(set(deliverable_ids))
    if not ids:
        return {}
    V = DeliverableVersion
    newest = (
        select(V.deliverable_id, func.max(V.version).label("version"))
        .where(V.deliverable_id.in_(ids))  # type: ignore[attr-defined]
        .group_by(V.deliverable_id)
        .subquery()
    )
    query = select(V).join(
        newest, (V.deliverable_id == newest.c.deliverable_id) & (V.version == newest.c.version)  # type: ignore[arg-type]
    )
    return {v.deliverable_id: v for v in (await session.exec(query)).all()}


async def assign_unowned_deliverables(
    *, session: AsyncSession, project_id: int, role: MemberRole, user_id: str
) -> int:
    """Make ``user_id`` the owner of the project's deliverables of ``role`` that have nobody yet; returns how many."""
    result = await session.exec(
        update(Deliverable)
        .where(
            Deliverable.project_id == project_id,
            Deliverable.owner_role == role,
            Deliverable.owner_user_id.is_(None),  # type: ignore[union-attr]
        )
        .values(owner_user_id=user_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


async def reassign_deliverables(
    *, session: AsyncSession, project_id: int, from_user_id: str, to_user_id: str | None,
    role: MemberRole | None = None,
) -> int:
    """Hand ``from_user_id``'s open deliverables (of ``role``, or all) to ``to_user_id`` (None: nobody)."""
    statement = update(Deliverable).where(
        Deliverable.project_id == project_id,
        Deliverable.owner_user_id == from_user_id,
        Deliverable.status == DeliverableStatus.PENDING,
    )
    if role is not None:
        statement = statement.where(Deliverable.owner_role == role)
    result = await session.exec(
        statement.values(owner_user_id=to_user_id, updated_at=utcnow()).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


__all__ = [
    "DeliverableHeading",
    "add_deliverable_version",
    "assign_unowned_deliverables",
    "deliverable_headings",
    "latest_versions",
    "list_deliverables",
    "overdue_deliverables",
    "reassign_deliverables",
]
