"""The ``todos`` table and what the 待办 sync reads of a project's plan."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Deliverable, DeliverableStatus, Phase, Project, ProjectStatus, TodoItem, TodoState, User


async def project_for_todos(*, session: AsyncSession, project_id: int) -> Project | None:
    return (await session.exec(select(Project).where(Project.id == project_id))).first()


async def phase_names(*, session: AsyncSession, project_id: int) -> dict[int, tuple[str, str | None]]:
    """Phase id -> (name, the phase it runs alongside)."""
    rows = await session.exec(select(Phase.id, Phase.name, Phase.parallel_with).where(Phase.project_id == project_id))
    return {pid: (name, beside) for pid, name, beside in rows.all()}


async def pending_due_by(*, session: AsyncSession, project_id: int, last_day: date) -> list[Deliverable]:
    """The project's deliverables still to submit that are due on or before ``last_day`` (the overdue ones too)."""
    query = select(Deliverable).where(
        Deliverable.project_id == project_id, Deliverable.status == DeliverableStatus.PENDING,
        Deliverable.due_date.is_not(None), Deliverable.due_date <= last_day,  # type: ignore[union-attr]
    )
    return list((await session.exec(query)).all())


async def deliverable_statuses(*, session: AsyncSession, ids: Iterable[int]) -> dict[int, DeliverableStatus]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await session.exec(select(Deliverable.id, Deliverable.status).where(Deliverable.id.in_(wanted)))  # type: ignore[union-attr]
    return {i: DeliverableStatus(s) for i, s in rows.all()}


async def union_ids(*, session: AsyncSession, user_ids: Iterable[str]) -> dict[str, str]:
    """The unionIds of the current employees among ``user_ids`` (external contacts and people who left have none
    the todo APIs take)."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return {}
    query = select(User.user_id, User.union_id).where(
        User.user_id.in_(wanted), User.union_id.is_not(None), User.external.is_(False),  # type: ignore[attr-defined]
        User.active.is_(True))  # type: ignore[attr-defined]
    return {u: union for u, union in (await session.exec(query)).all()}


async def project_todos(*, session: AsyncSession, project_id: int) -> list[TodoItem]:
    return list((await session.exec(select(TodoItem).where(TodoItem.project_id == project_id))).all())


async def get_todo(*, session: AsyncSession, todo_id: int) -> TodoItem | None:
    query = select(TodoItem).where(TodoItem.id == todo_id).execution_options(populate_existing=True)
    return (await session.exec(query)).first()


async def todo_by_task(*, session: AsyncSession, task_id: str) -> TodoItem | None:
    return (await session.exec(select(TodoItem).where(TodoItem.task_id == task_id))).first()


async def open_todos(*, session: AsyncSession) -> list[TodoItem]:
    return list((await session.exec(select(TodoItem).where(TodoItem.state == TodoState.OPEN))).all())


async def projects_to_sync(*, session: AsyncSession) -> list[int]:
    """Every project that may have 待办 now or had some: the ones not finished, and the ones with open rows."""
    live = select(Project.id).where(Project.status.not_in((ProjectStatus.CLOSED, ProjectStatus.REJECTED)))  # type: ignore[union-attr]
    ids = set((await session.exec(live)).all())
    ids |= set((await session.exec(select(TodoItem.project_id).where(TodoItem.state == TodoState.OPEN))).all())
    return sorted(ids)


async def record_task(*, session: AsyncSession, todo_id: int, current_source_id: str, **values: Any) -> bool:
    """Remember what DingTalk answered (the taskId of the created task, the executor it follows, a new generation),
    unless the row moved on to another task meanwhile (its sourceId changed)."""
    statement = update(TodoItem).where(TodoItem.id == todo_id, TodoItem.source_id == current_source_id).values(**values)
    return bool((await session.exec(statement)).rowcount)  # type: ignore[call-overload]


async def project_codes(*, session: AsyncSession, project_ids: Sequence[int]) -> dict[int, str]:
    rows = await session.exec(select(Project.id, Project.code).where(Project.id.in_(list(project_ids))))  # type: ignore[union-attr]
    return dict(rows.all())
