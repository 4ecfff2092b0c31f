"""The 待办 sync: which DingTalk todos a project's plan calls for, and the changes that bring the ``todos`` rows there.

State-driven: nothing here listens for "what happened". ``wanted_todos`` (pure) reads the plan as it is now:

* a deliverable still to submit, of the current phase (or of the phase running beside it: 监控 beside 执行), gets one
  待办 for its owner once it is due within ``todo.window_working_days`` working days (the work calendar), and keeps
  it while overdue; subject 《交付物》· 项目, due at ``todo.due_time`` on its due date;
* none while the project is paused, closed (归档) or rejected; none for deliverables produced every day (实施日志:
  a habit, not a todo); none for owners without a unionId (external contacts, people who left).

``plan_changes`` (pure) compares that with the rows: a new row to create, a changed subject or due time to update, a
submitted deliverable's todo to complete, anything else no longer wanted to delete, a done or deleted one wanted
again to re-create (a new generation: a new sourceId). ``sync_project`` applies them in the caller's transaction and
queues one outbox operation per changed row, keyed by the row and its revision, so a re-run queues nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.outbox import enqueue_row
from storage.models import (
    Deliverable,
    DeliverableStatus,
    OutboxMessage,
    OutboxMessageKind,
    OutboxTargetKind,
    Project,
    ProjectStatus,
    Recurrence,
    TodoItem,
    TodoState,
    utcnow,
)
from storage.models.todos import todo_source_id
from storage.repo.todos import (
    deliverable_statuses,
    pending_due_by,
    phase_names,
    project_for_todos,
    project_todos,
    union_ids,
)
from storage.workdays import WorkCalendar

NO_TODOS = (ProjectStatus.PAUSED, ProjectStatus.CLOSED, ProjectStatus.REJECTED)
SUBJECT_MAX = 500


@dataclass(frozen=True, slots=True)
class WantedTodo:
    deliverable_id: int
    owner_user_id: str
    union_id: str
    subject: str
    due_at: datetime  # naive UTC


@dataclass(frozen=True, slots=True)
class TodoChange:
    """``create`` (a new row), ``reopen`` (a done/removed row wanted again), ``update``, ``done`` or ``remove``."""

    action: str
    wanted: WantedTodo | None = None
    row: TodoItem | None = None


def subject_of(deliverable: Deliverable, project: Project) -> str:
    name = deliverable.name + (f"（{deliverable.period_key}）" if deliverable.period_key else "")
    return f"《{name}》· {project.name}"[:SUBJECT_MAX]


def due_at(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tz).astimezone(UTC).replace(tzinfo=None)


def window_end(calendar: WorkCalendar, today: date, working_days: int) -> date:
    """The last due date inside the window: ``working_days`` working days after today."""
    return calendar.add_workdays(today, working_days) if working_days else today


def wanted_todos(project: Project, deliverables: Iterable[Deliverable], phases: dict[int, tuple[str, str | None]],
                 people: dict[str, str], *, last_day: date, at: time, tz: ZoneInfo) -> dict[tuple[int, str], WantedTodo]:
    """The 待办 the plan calls for, by (deliverable, owner). ``deliverables``: the pending ones due by ``last_day``;
    ``phases``: id -> (name, the phase it runs beside); ``people``: userId -> unionId of those who can have one."""
    if project.status in NO_TODOS or not project.current_phase:
        return {}
    wanted: dict[tuple[int, str], WantedTodo] = {}
    for d in deliverables:
        name, beside = phases.get(d.phase_id or -1, (None, None))
        current = project.current_phase in (name, beside)
        if (not current or d.status != DeliverableStatus.PENDING or d.due_date is None or d.due_date > last_day
                or d.recurrence == Recurrence.DAILY or d.id is None or not d.owner_user_id):
            continue
        union_id = people.get(d.owner_user_id)
        if union_id is None:
            continue
        wanted[(d.id, d.owner_user_id)] = WantedTodo(d.id, d.owner_user_id, union_id, subject_of(d, project),
                                                     due_at(d.due_date, at, tz))
    return wanted


def plan_changes(wanted: dict[tuple[int, str], WantedTodo], rows: Sequence[TodoItem],
                 statuses: dict[int, DeliverableStatus]) -> list[TodoChange]:
    """What to do to ``rows`` so that they say ``wanted``. ``statuses``: the rows' deliverables (a submitted one's
    todo is completed, not deleted; a deliverable deleted from the plan has none)."""
    changes: list[TodoChange] = []
    by_key = {(r.deliverable_id, r.owner_user_id): r for r in rows}
    for key, want in wanted.items():
        row = by_key.get(key)
        if row is None:
            changes.append(TodoChange("create", want))
        elif row.state != TodoState.OPEN:
            changes.append(TodoChange("reopen", want, row))
        elif row.subject != want.subject or row.due_at != want.due_at:
            changes.append(TodoChange("update", want, row))
    for key, row in by_key.items():
        if key in wanted or row.state != TodoState.OPEN:
            continue
        submitted = statuses.get(row.deliverable_id) == DeliverableStatus.SUBMITTED
        changes.append(TodoChange("done" if submitted else "remove", None, row))
    return changes


async def queue_todo_call(session: AsyncSession, row: TodoItem, key: str | None = None) -> bool:
    """Queue the call that brings DingTalk in line with ``row`` (as it will be when the call is sent); ``key``
    defaults to the row's revision (one call per change)."""
    now = utcnow()
    outbox = OutboxMessage(
        idempotency_key=key or f"todo:{row.id}:{row.revision}", target_kind=OutboxTargetKind.TODO,
        target_ids=[row.creator_union_id], msg_kind=OutboxMessageKind.TODO, params={"todo": row.id},
        next_attempt_at=now, created_at=now)
    return await enqueue_row(session, outbox)


async def _apply(session: AsyncSession, project_id: int, change: TodoChange) -> TodoItem:
    row, want = change.row, change.wanted
    if change.action == "create" and want is not None:
        row = TodoItem(project_id=project_id, deliverable_id=want.deliverable_id, owner_user_id=want.owner_user_id,
                       creator_union_id=want.union_id, executor_union_id=want.union_id,
                       source_id=todo_source_id(want.deliverable_id, want.owner_user_id, 0), subject=want.subject,
                       due_at=want.due_at, state=TodoState.OPEN)
        session.add(row)
        await session.flush()
        return row
    assert row is not None
    if change.action == "reopen" and want is not None:
        # A new task: the old one is done or deleted (and may keep its sourceId in DingTalk).
        row.generation += 1
        row.source_id = todo_source_id(row.deliverable_id, row.owner_user_id, row.generation)
        row.task_id = None
        row.creator_union_id = row.executor_union_id = want.union_id
    if want is not None:
        row.subject, row.due_at, row.state = want.subject, want.due_at, TodoState.OPEN
    else:
        row.state = TodoState.DONE if change.action == "done" else TodoState.REMOVED
    row.revision += 1
    session.add(row)
    await session.flush()
    return row


async def sync_project(session: AsyncSession, services: Any, project_id: int) -> int:
    """Bring the project's ``todos`` rows in line with its plan and queue the calls; returns how many rows changed."""
    config = services.config.todo
    project = await project_for_todos(session=session, project_id=project_id)
    if project is None:
        return 0
    today = services.clock.today()
    last_day = window_end(services.calendar, today, config.window_working_days)
    deliverables = await pending_due_by(session=session, project_id=project_id, last_day=last_day)
    phases = await phase_names(session=session, project_id=project_id)
    people = await union_ids(session=session, user_ids=(d.owner_user_id for d in deliverables if d.owner_user_id))
    wanted = wanted_todos(project, deliverables, phases, people, last_day=last_day, at=config.due_time,
                          tz=services.config.tz)
    rows = await project_todos(session=session, project_id=project_id)
    statuses = await deliverable_statuses(session=session, ids=(r.deliverable_id for r in rows
                                                                if r.state == TodoState.OPEN))
    changes = plan_changes(wanted, rows, statuses)
    for change in changes:
        await queue_todo_call(session, await _apply(session, project_id, change))
    return len(changes)


__all__ = ["TodoChange", "WantedTodo", "plan_changes", "queue_todo_call", "subject_of", "sync_project",
           "wanted_todos", "window_end"]
