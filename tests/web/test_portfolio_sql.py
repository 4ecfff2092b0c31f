"""The portfolio page is counted, ordered and paged by the database (``read_portfolio_view``); the export and the
charts' fallback colour every project in Python (``gather_portfolio`` → ``portfolio_view``). Both must show the same
thing: on every database, for every filter, sort and page, over projects made to hit the rule's edges (weekend and
holiday due dates that are equally late, paused and finished projects, codes that only a byte-wise order sorts as
Python does).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from domain.report_data import overdue_working_days
from reports.digest import HealthStatus
from storage.models import DeliverableStatus, Level, ProjectStatus, RegisterKind, RegisterStatus
from storage.repo import upsert_user
from storage.repo.dashboard import Scope
from storage.workdays import WorkCalendar
from tests.features.reports_world import DeliverableSpec, EntrySpec, ProjectSpec, add_project, utc
from web.portfolio import PortfolioQuery, health_rule, portfolio_view, read_portfolio, read_portfolio_view

CALENDAR = WorkCalendar()
TODAY = date(2026, 10, 14)  # a Wednesday a week after the National Day holiday (10-01 … 10-08)
PAGE_SIZE = 7
PHASES = ("启动", "规划", "执行")
PMS = ("wangjianguo", "chenjing", "liming")
# Due dates around the rule's edges: equally late pairs (a weekend, the holiday), the 5th working day back (延期 from
# there), yesterday, the future.
DUES = (date(2026, 10, 13), date(2026, 10, 9), date(2026, 10, 8), date(2026, 10, 3), date(2026, 9, 30),
        date(2026, 9, 29), date(2026, 9, 27), date(2026, 9, 26), date(2026, 9, 25), date(2026, 9, 12),
        date(2026, 8, 2), date(2026, 10, 20), date(2026, 11, 30))
STATUSES = (ProjectStatus.IN_PROGRESS,) * 6 + (ProjectStatus.APPROVED, ProjectStatus.PAUSED, ProjectStatus.CLOSED,
                                               ProjectStatus.ACCEPTED, ProjectStatus.DRAFT)
# Codes whose order differs between code points and the locale-aware collations (case, punctuation).
CODES = ("PM-01", "pm-02", "PM_03", "PM03-x", "Pm-05", "PM-1", "PM-10")


CODES_BY_NAME: dict[str, str] = {}


def equally_late_days() -> tuple[date, date]:
    """The latest weekend before TODAY: two due dates exactly as late in working days."""
    day = TODAY - timedelta(days=2)
    while not (day.weekday() == 5 and overdue_working_days(CALENDAR, day, TODAY)
               == overdue_working_days(CALENDAR, day + timedelta(days=1), TODAY)):
        day -= timedelta(days=1)
    return day, day + timedelta(days=1)


async def seed_portfolio(db, n: int = 36) -> None:
    chance = random.Random(17)
    projects = []
    async with db.write() as session:
        for user_id in PMS:
            await upsert_user(session=session, user_id=user_id, name={"wangjianguo": "王建国", "chenjing": "陈静",
                                                                      "liming": "李明"}[user_id])
        for i in range(n):
            deliverables = [
                DeliverableSpec(f"交付物{k}", chance.choice(DUES), required=chance.random() < 0.6,
                                status=chance.choice((DeliverableStatus.PENDING,) * 4 + (DeliverableStatus.SUBMITTED,)))
                for k in range(chance.choice((0, 0, 1, 2, 3)))]
            entries = [EntrySpec(RegisterKind.RISK, f"风险{k}", utc("2026-09-01T10:00"),
                                 probability=chance.choice((Level.HIGH, Level.MEDIUM)),
                                 impact=chance.choice((Level.HIGH, Level.LOW)),
                                 status=chance.choice((None, RegisterStatus.CLOSED)))
                       for k in range(chance.choice((0, 0, 1)))]
            project = await add_project(session, ProjectSpec(
                name=f"项目{i}", status=chance.choice(STATUSES), pm=chance.choice(PMS), members=(),
                planned_end=chance.choice((date(2026, 10, 13), date(2026, 10, 14), date(2027, 3, 31))),
                current_phase=chance.choice(PHASES), deliverables=deliverables, entries=entries,
                running_approvals=chance.choice((0, 0, 1, 2))))
            projects.append(project)
            project.template = chance.choice(("软件系统实施", "硬件集成"))
            if chance.random() < 0.15:
                project.planned_end = None
            if chance.random() < 0.1:
                project.current_phase = None
            if chance.random() < 0.1:
                project.actual_end = date(2026, 10, 1)
            session.add(project)
        # Eight projects equally late (one optional deliverable due on either day of a weekend), more than a page,
        # the first and the last due on the older day: ordering them by due date instead of by working days late
        # (then by code) would put another set of them on the first page.
        saturday, sunday = equally_late_days()
        for n in range(1, 9):
            code = f"TIE-{n}"
            due = saturday if n in (1, 8) else sunday
            projects.append(await add_project(session, ProjectSpec(
                name=code, members=(), deliverables=(DeliverableSpec("交付物", due, required=False),))))
            CODES_BY_NAME[code] = code
        await session.flush()
        for i, project in enumerate(projects):  # once every project has its code (each is numbered after the last)
            project.code = CODES_BY_NAME.get(project.name) or (CODES[i] if i < len(CODES) else f"PM-{i:03d}")
            session.add(project)


QUERIES = [
    {}, {"page": "2"}, {"page": "6"}, {"page": "99"},
    *({"sort": sort} for sort in ("code", "end", "overdue", "approvals")),
    {"sort": "overdue", "page": "2"}, {"sort": "end", "page": "3"},
    *({"health": str(h)} for h in HealthStatus),
    {"health": str(HealthStatus.LATE), "sort": "overdue"},
    {"status": str(ProjectStatus.PAUSED)}, {"status": str(ProjectStatus.IN_PROGRESS), "template": "硬件集成"},
    {"phase": "执行", "sort": "approvals"}, {"pm": "chenjing"}, {"q": "pm-0"}, {"q": "陈静", "sort": "end"},
    {"q": "没有这个项目"},
    *({"q": "TIE", "sort": sort} for sort in ("status", "overdue")),
    *({"sort": sort, "page": page} for sort in ("code", "approvals") for page in ("5", "6")),
]


@pytest.mark.parametrize("scope", [Scope("liuqiang", every_project=True), Scope("chenjing")], ids=["leader", "pm"])
async def test_the_page_from_sql_is_the_page_from_every_project(db, scope):
    await seed_portfolio(db)
    shown = 0
    for params in QUERIES:
        query = PortfolioQuery.parse(params)
        async with db.read() as session:
            fast = await read_portfolio_view(session=session, scope=scope, query=query, today=TODAY,
                                             calendar=CALENDAR, page_size=PAGE_SIZE, phase_order=PHASES)
            reads = await read_portfolio(session=session, scope=scope, today=TODAY, search=query.q)
        every = portfolio_view(reads.entries(today=TODAY, calendar=CALENDAR), query, page_size=PAGE_SIZE,
                               phase_order=PHASES, today=TODAY)
        assert [e._replace(overdue_dues=()) for e in fast.page.items] == \
               [e._replace(overdue_dues=()) for e in every.page.items], params
        assert (fast.page.number, fast.page.count, fast.page.total) == \
               (every.page.number, every.page.count, every.page.total), params
        assert (fast.total, fast.options, fast.health, fast.charts, fast.overdue, fast.approvals) == \
               (every.total, every.options, every.health, every.charts, every.overdue, every.approvals), params
        shown += len(fast.page.items)
    assert shown > 100  # the queries showed projects, not empty pages


async def test_nothing_overdue_anywhere(db):
    """No pending deliverable is past its due date: no step of lateness to order by."""
    async with db.write() as session:
        await upsert_user(session=session, user_id="wangjianguo", name="王建国")
        for n in range(3):
            await add_project(session, ProjectSpec(name=f"项目{n}", members=(), running_approvals=n,
                                                   deliverables=(DeliverableSpec("交付物", date(2026, 12, 1)),)))
    scope = Scope("liuqiang", every_project=True)
    for sort in ("status", "overdue", "approvals"):
        query = PortfolioQuery.parse({"sort": sort})
        async with db.read() as session:
            fast = await read_portfolio_view(session=session, scope=scope, query=query, today=TODAY,
                                             calendar=CALENDAR, page_size=PAGE_SIZE, phase_order=PHASES)
            reads = await read_portfolio(session=session, scope=scope, today=TODAY)
        every = portfolio_view(reads.entries(today=TODAY, calendar=CALENDAR), query, page_size=PAGE_SIZE,
                               phase_order=PHASES, today=TODAY)
        assert [e.code for e in fast.page.items] == [e.code for e in every.page.items] and len(fast.page.items) == 3
        assert fast.charts == every.charts and fast.overdue == 0


def test_the_rule_in_dates_is_the_rule_in_working_days():
    for today in (TODAY, date(2026, 10, 9), date(2026, 10, 12), date(2027, 2, 20)):
        oldest = today - timedelta(days=120)
        rule = health_rule(today=today, calendar=CALENDAR, oldest_due=oldest)
        steps = list(rule.lateness)
        day = oldest
        while day < today:
            days = overdue_working_days(CALENDAR, day, today)
            assert (rule.late_required_due is not None and day <= rule.late_required_due) == (days >= 5), (today, day)
            # The step function SQL orders by: the first step (newest first) that the date reaches.
            assert next(value for start, value in steps if day >= start) == days, (today, day)
            day += timedelta(days=1)
    assert health_rule(today=TODAY, calendar=CALENDAR, oldest_due=None).lateness == ()

