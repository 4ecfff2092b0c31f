"""The 待办 sync's two pure steps: which todos a plan calls for, and what changes bring the rows there."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import select

from domain.todo_sync import plan_changes, wanted_todos, window_end
from storage.models import Deliverable, DeliverableStatus, Project, ProjectStatus, Recurrence, TodoItem, TodoState
from storage.workdays import WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
PHASES = {1: ("启动", None), 2: ("规划", None), 3: ("执行", None), 4: ("监控", "执行")}
PEOPLE = {"wang": "union-wang", "li": "union-li"}


def project(status: ProjectStatus = ProjectStatus.IN_PROGRESS, phase: str = "启动") -> Project:
    return Project(id=1, code="XM-2026-001", name="智慧工厂MES", customer="华东", template="software", status=status,
                   current_phase=phase)


def deliverable(id_: int, due: date, *, phase: int = 1, owner: str | None = "wang", **kw) -> Deliverable:
    return Deliverable(id=id_, project_id=1, phase_id=phase, name=f"文档{id_}", owner_user_id=owner, due_date=due, **kw)


def want(items, proj=None, last_day=date(2026, 11, 9)):
    return wanted_todos(proj or project(), items, PHASES, PEOPLE, last_day=last_day, at=time(18), tz=SHANGHAI)


def test_the_window_counts_working_days_over_the_national_day_holiday() -> None:
    calendar = WorkCalendar()
    # Friday 2026-09-25 + 5 working days would be Friday 10-02 without holidays; the National Day week is skipped.
    end = window_end(calendar, date(2026, 9, 25), 5)
    assert end > date(2026, 10, 2) and calendar.is_workday(end)
    assert window_end(calendar, date(2026, 11, 2), 5) == date(2026, 11, 9)


def test_current_phase_due_soon_or_overdue_owners_with_a_union_id() -> None:
    items = [deliverable(1, date(2026, 11, 4)), deliverable(2, date(2026, 10, 20)),  # due soon, overdue
             deliverable(3, date(2026, 11, 4), phase=2),  # a later phase
             deliverable(4, date(2026, 11, 4), owner="ext:someone"),  # an external contact: no unionId
             deliverable(5, date(2026, 11, 4), owner=None),
             deliverable(6, date(2026, 11, 4), recurrence=Recurrence.DAILY, period_key="2026-11-04"),
             deliverable(7, date(2026, 11, 4), status=DeliverableStatus.WAIVED)]
    wanted = want(items)
    assert set(wanted) == {(1, "wang"), (2, "wang")}
    todo = wanted[(1, "wang")]
    assert todo.subject == "《文档1》· 智慧工厂MES" and todo.union_id == "union-wang"
    assert todo.due_at == datetime(2026, 11, 4, 10, 0)  # 18:00 in Shanghai, naive UTC


def test_the_phase_running_beside_the_current_one_counts_and_paused_or_closed_projects_have_none() -> None:
    items = [deliverable(1, date(2026, 11, 4), phase=3), deliverable(2, date(2026, 11, 4), phase=4)]
    assert set(want(items, project(phase="执行"))) == {(1, "wang"), (2, "wang")}
    for status in (ProjectStatus.PAUSED, ProjectStatus.CLOSED, ProjectStatus.REJECTED):
        assert want(items, project(status, "执行")) == {}


def row(id_: int, deliverable_id: int, state: TodoState = TodoState.OPEN, **kw) -> TodoItem:
    values = dict(id=id_, project_id=1, deliverable_id=deliverable_id, owner_user_id="wang",
                  creator_union_id="union-wang", executor_union_id="union-wang", source_id=f"s{id_}",
                  subject=f"《文档{deliverable_id}》· 智慧工厂MES", due_at=datetime(2026, 11, 4, 10), state=state)
    values.update(kw)
    return TodoItem(**values)


def test_changes_create_update_complete_remove_and_reopen() -> None:
    wanted = want([deliverable(1, date(2026, 11, 4)), deliverable(2, date(2026, 11, 5)),
                   deliverable(3, date(2026, 11, 4)), deliverable(6, date(2026, 11, 4))])
    rows = [row(10, 2),  # its due date moved
            row(11, 3),  # unchanged
            row(12, 4), row(13, 5),  # no longer wanted: submitted, waived
            row(14, 6, TodoState.DONE)]  # wanted again after it was done (a rejected submission)
    statuses = {4: DeliverableStatus.SUBMITTED, 5: DeliverableStatus.WAIVED}
    actions = {(c.action, (c.wanted or c.row).deliverable_id) for c in plan_changes(wanted, rows, statuses)}
    assert actions == {("create", 1), ("update", 2), ("done", 4), ("remove", 5), ("reopen", 6)}


def test_no_change_when_the_rows_say_what_the_plan_says() -> None:
    wanted = want([deliverable(3, date(2026, 11, 4))])
    assert plan_changes(wanted, [row(11, 3), row(12, 9, TodoState.REMOVED)], {}) == []


async def test_a_bulk_change_of_owners_names_its_project_for_the_sync(db, monkeypatch) -> None:
    """``成员 添加`` / ``成员 移除`` hand deliverables over with one UPDATE: the sync still runs for that project."""
    import handlers.todos as todos
    from bot.context import UnitOfWork
    from storage.models import MemberRole
    from storage.repo.deliverables import assign_unowned_deliverables, reassign_deliverables

    synced: list[int] = []

    async def record(_session, _services, project_id: int) -> int:
        synced.append(project_id)
        return 0

    monkeypatch.setattr(todos, "sync_project", record)
    async with db.write() as session:
        async with todos.follow_plans(UnitOfWork(session=session), services=None):
            await assign_unowned_deliverables(session=session, project_id=7, role=MemberRole.ENGINEER, user_id="li")
            await reassign_deliverables(session=session, project_id=8, from_user_id="li", to_user_id=None)
            await session.exec(select(Deliverable).where(Deliverable.project_id == 9))  # a read names nothing
    assert synced == [7, 8]
