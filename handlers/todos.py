"""DingTalk 待办 for deliverable owners: the sync follows every change to a plan, a daily run, and the todo events.

* **After every change to a plan**, in its transaction: each unit of work (a command, an event, a job) notes the
  projects whose deliverables, phases or project row it wrote (SQLAlchemy session events: ORM flushes and Core
  UPDATE/DELETE statements naming a project), and before it commits the sync (``domain.todo_sync``) runs for them.
  So 计划, 豁免, 暂停/恢复, 推进, 归档, 提交, a new project, a new owner — and whatever comes later — need no call of
  their own.
* **Daily** (``todo.reconcile_time``, a claimed run key): the sync for every live project (the window rolls forward:
  what falls due within it gets its 待办), then a check of every open 待办 against DingTalk (a missed event).
* **Events** (``todo_task_update``, ``todo_task_delete``, through the inbox: stored before the ack, deduplicated):
  the task's row gets a call that looks at the task and re-creates it while it is due, or follows its new executor.

The calls go through the outbox to the leader's todo relay (``bot.todo_relay``). ``[todo] enabled = false`` turns
all of it off (nothing is noted, queued or sent).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators, visitors
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.context import EventContext, UnitOfWork
from bot.feature import Feature
from bot.incoming import TODO_EVENT_TYPES, ApprovalEvent
from bot.jobs import JobRegistry, JobRunContext, daily
from domain.todo_sync import queue_todo_call, sync_project
from storage.models import Deliverable, Phase, Project, TodoState
from storage.repo.todos import open_todos, projects_to_sync, todo_by_task

log = logging.getLogger(__name__)

jobs = JobRegistry()
RECONCILE_JOB = "todo_reconcile"
# session.info key: the projects a unit of work that follows plans has changed (absent: it follows none)
_TOUCHED = "dingpm_touched_projects"
_PLAN_TABLES = {Deliverable.__tablename__: "project_id", Phase.__tablename__: "project_id",
                Project.__tablename__: "id"}


# ---- which projects a unit of work changed -----------------------------------------------------------------------

def _touched(session: Session) -> set[int]:
    touched: set[int] = session.info[_TOUCHED]
    return touched


# Listened to on the Session class once, rather than on each unit of work's session (adding and removing listeners
# costs more than a whole command's statements): sessions that follow no plan return at the first line.
@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _context: Any) -> None:
    if _TOUCHED not in session.info:
        return
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, (Deliverable, Phase)) and obj.project_id is not None:
            _touched(session).add(obj.project_id)
        elif isinstance(obj, Project) and obj.id is not None:
            _touched(session).add(obj.id)


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: Any) -> None:
    """A Core UPDATE or DELETE of a plan table (a bulk reassignment of owners): the projects its WHERE names."""
    if not (state.is_update or state.is_delete) or _TOUCHED not in state.session.info:
        return
    table = getattr(getattr(state.statement, "table", None), "name", "")
    column = _PLAN_TABLES.get(table)
    if column is None or state.statement.whereclause is None:
        return
    for node in visitors.iterate(state.statement.whereclause):
        left, right = getattr(node, "left", None), getattr(node, "right", None)
        if (getattr(node, "operator", None) is operators.eq and getattr(getattr(left, "table", None), "name", None) == table
                and getattr(left, "name", None) == column and getattr(right, "value", None) is not None):
            _touched(state.session).add(int(right.value))


@contextlib.asynccontextmanager
async def follow_plans(work: UnitOfWork, services: Any) -> AsyncIterator[None]:
    """Around a unit of work: note the projects it changes, and sync their 待办 before it commits."""
    session = work.session.sync_session
    session.info[_TOUCHED] = set()
    try:
        yield
        if session.new or session.dirty or session.deleted:
            await work.session.flush()
        done: set[int] = set()
        while pending := _touched(session) - done:  # a sync writes only todos, but stay safe if that ever changes
            for project_id in sorted(pending):
                done.add(project_id)
                await sync_project(work.session, services, project_id)
    finally:
        session.info.pop(_TOUCHED, None)


# ---- the daily run -----------------------------------------------------------------------------------------------

def _reconcile_time(config: Any) -> Any:
    return config.todo.reconcile_time


@jobs.scheduled(RECONCILE_JOB, daily(at=_reconcile_time), misfire=timedelta(days=1))
async def todo_reconcile_job(run: JobRunContext) -> None:
    """Roll the window forward for every live project, then check every open 待办 against DingTalk."""
    if not run.config.todo.enabled:
        return
    services = run.services
    async with services.outbox.unit_of_work() as work:
        project_ids = await projects_to_sync(session=work.session)
    for project_id in project_ids:  # one short transaction per project
        async with services.outbox.unit_of_work() as work:
            await sync_project(work.session, services, project_id)
    async with services.outbox.unit_of_work() as work:
        rows = await open_todos(session=work.session)
        for row in rows:
            await queue_todo_call(work.session, row, key=f"todo-check:{row.id}:{run.period_key}")
    run.log.info("待办: %d projects synced, %d open todos checked", len(project_ids), len(rows))


# ---- events from DingTalk ----------------------------------------------------------------------------------------

async def on_todo_event(event_: ApprovalEvent, ctx: EventContext) -> None:
    """A todo changed or deleted in DingTalk: look at it (the event carries no state) and bring it back in line."""
    if event_.event_type not in TODO_EVENT_TYPES or not event_.task_id or not ctx.services.config.todo.enabled:
        return
    session = ctx.session
    row = await todo_by_task(session=session, task_id=event_.task_id)
    if row is None or row.state != TodoState.OPEN:
        return
    # One call per event (its id names it): a redelivered event queues nothing more.
    await queue_todo_call(session, row, key=f"todo-event:{row.id}:{event_.event_id}"[:255])
    log.info("待办 %s %s in DingTalk: checking it (trace_id=%s)", row.id, event_.event_type, ctx.trace_id)


@contextlib.asynccontextmanager
async def follow_plans_when_enabled(work: UnitOfWork, services: Any) -> AsyncIterator[None]:
    """``follow_plans`` unless ``[todo] enabled = false`` (then nothing is noted or queued)."""
    if not services.config.todo.enabled:
        yield
        return
    async with follow_plans(work, services):
        yield


feature = Feature("todos", jobs=jobs, on_event=(on_todo_event,), around_work=(follow_plans_when_enabled,))

__all__ = ["RECONCILE_JOB", "feature", "follow_plans", "jobs", "on_todo_event", "todo_reconcile_job"]
