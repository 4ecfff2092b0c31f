"""The 看板's reads, every one scoped to who is looking.

A ``Scope`` says whose projects a query may see: every project (leaders and 项目管理员), or the projects the person
manages or works on (a member in any role but 客户). The condition is part of each statement, so a project outside the
scope is not found at all: the pages answer "not found" for it exactly as for a code that does not exist, and a file,
report or export of it cannot be reached by guessing its id.

The portfolio page asks for what it shows (``portfolio_slice``): one statement counts the projects the filters keep
by colour and phase, returns the page's projects and counts their overdue deliverables by due date, all from one CTE
of every visible project's facts; so a page of 10,000 projects returns a few dozen rows. The export and a project's
own line read every visible project in four flat statements instead (``visible_projects``, ``overdue_dues``, …) and
colour them in Python. Every read starts from an index (``ix_deliverables_status_due_date`` covers the overdue
deliverables, ``ix_register_entries_kind_status`` the risks, ``ix_approvals_status`` the approvals); the overdue
deliverables are grouped after the index range is read (a CTE), never by walking the table in project order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import (
    Date,
    Integer,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal_column,
    null,
    or_,
    type_coerce,
    union,
    union_all,
)
from sqlalchemy.orm import aliased
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    Approval,
    ApprovalStatus,
    AuditLog,
    Deliverable,
    DeliverableStatus,
    DeliverableVersion,
    MemberRole,
    Project,
    ProjectMember,
    RegisterEntry,
    RegisterKind,
    ReportVariant,
    User,
    WeeklyReport,
)
from storage.repo.report_queries import HIGH_RISK, MAX_IDS_PER_QUERY, OPEN_REGISTER_STATUSES


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose projects a read may see: all of them, or those ``user_id`` manages or is a member of (not as 客户)."""

    user_id: str
    every_project: bool = False


def visible(scope: Scope) -> Any:
    """The condition on ``projects`` rows that ``scope`` may see."""
    if scope.every_project:
        return Project.id.is_not(None)  # type: ignore[union-attr]
    # A union, not an OR of the two: each half starts from its own index (members by user, projects by PM), where an
    # OR makes PostgreSQL read every project.
    mine = union(
        select(ProjectMember.project_id).where(ProjectMember.user_id == scope.user_id,
                                               ProjectMember.role != MemberRole.CLIENT),
        select(Project.id).where(Project.pm_user_id == scope.user_id),
    )
    return Project.id.in_(mine)  # type: ignore[union-attr]


def _like(text: str) -> str:
    """A LIKE pattern finding ``text`` anywhere, its own % and _ taken literally (escape character \\)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _matching(search: str) -> Any:
    """The projects whose code, name, customer or PM's name contains ``search`` (in any case)."""
    pattern = _like(search)
    pms = select(User.user_id).where(User.name.ilike(pattern, escape="\\"))  # type: ignore[attr-defined]
    return or_(*(column.ilike(pattern, escape="\\") for column in (Project.code, Project.name, Project.customer)),
               Project.pm_user_id.in_(pms))  # type: ignore[union-attr]


def _scoped(column: Any, scope: Scope, project_ids: Sequence[int] | None, search: str = "") -> list[Any]:
    """Conditions limiting a child table's ``project_id`` column to the scope (and to ``project_ids`` if given, and to
    the projects ``search`` finds)."""
    conditions = []
    if search or not scope.every_project:
        found = [_matching(search)] if search else []
        conditions.append(column.in_(select(Project.id).where(visible(scope), *found)))
    if project_ids is not None:
        conditions.append(column.in_(list(project_ids)))
    return conditions


async def _rows(session: AsyncSession, query: Any) -> Sequence[Any]:
    """The rows of a read of plain columns, through Core: thousands of rows are cheap as rows and slow as ORM
    objects (``report_queries`` reads its scans the same way)."""
    return (await (await session.connection()).execute(query)).all()


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    """Ids in lists short enough for one IN (…) on every database."""
    for start in range(0, len(ids), MAX_IDS_PER_QUERY):
        yield list(ids[start:start + MAX_IDS_PER_QUERY])


def _open_entry() -> Any:
    """A register entry still to deal with: an open status and not closed (the reports' and the digest's rule)."""
    R = RegisterEntry
    return and_(R.status.in_(OPEN_REGISTER_STATUSES), R.closed_at.is_(None))  # type: ignore[attr-defined,union-attr]


# ---- the portfolio --------------------------------------------------------------------------------------------------


class ProjectLine(NamedTuple):
    """What the portfolio needs of every visible project to colour, count, filter and sort it (the rows the reads
    return have these names)."""

    id: int
    code: str
    template: str
    status: str  # its text: thousands of rows need no enum objects
    current_phase: str | None
    pm_user_id: str | None
    planned_end: date | None
    actual_end: date | None


class OverdueDue(NamedTuple):
    project_id: int
    due_date: date
    required: bool


async def visible_projects(*, session: AsyncSession, scope: Scope, project_ids: Sequence[int] | None = None,
                           search: str = "") -> list[ProjectLine]:
    """Every project ``scope`` may see (or those of ``project_ids`` among them; or those whose code, name, customer or
    PM's name contains ``search``), a few short columns each."""
    query = (
        select(Project.id, Project.code, Project.template, type_coerce(Project.status, String()).label("status"),
               Project.current_phase, Project.pm_user_id, Project.planned_end, Project.actual_end)
        .where(visible(scope))
    )
    if project_ids is not None:
        query = query.where(Project.id.in_(list(project_ids)))  # type: ignore[union-attr]
    if search:
        query = query.where(_matching(search))
    return list(await _rows(session, query))  # rows named as ProjectLine's fields: no copy of thousands


class ProjectDetails(NamedTuple):
    """What a shown project adds to its line: its name, customer, PM's name and planned start."""

    name: str
    customer: str | None
    pm_name: str | None
    planned_start: date | None


async def project_details(*, session: AsyncSession, project_ids: Sequence[int]) -> dict[int, ProjectDetails]:
    """The details of projects already found through the viewer's scope (a page of them, or an export's)."""
    pm = aliased(User)
    details: dict[int, ProjectDetails] = {}
    for chunk in _chunks(project_ids):
        query = (select(Project.id, Project.name, Project.customer, pm.name, Project.planned_start)
                 .outerjoin(pm, pm.user_id == Project.pm_user_id)  # type: ignore[arg-type]
                 .where(Project.id.in_(chunk)))  # type: ignore[union-attr]
        details.update((row[0], ProjectDetails._make(row[1:])) for row in await _rows(session, query))
    return details


async def overdue_dues(*, session: AsyncSession, scope: Scope, today: date, project_ids: Sequence[int] | None = None,
                       search: str = "") -> list[OverdueDue]:
    """Every pending deliverable due before ``today`` in the scope: its project, due date and whether it is required
    (tens of thousands at 10,000 projects: one range of ``ix_deliverables_status_due_date``, which holds all three).
    The caller decides which projects' deadlines run (a paused project's do not)."""
    query = select(Deliverable.project_id, Deliverable.due_date, Deliverable.required).where(
        Deliverable.status == DeliverableStatus.PENDING, Deliverable.due_date < today,  # type: ignore[operator]
        *_scoped(Deliverable.project_id, scope, project_ids, search))
    return list(await _rows(session, query))  # rows named as OverdueDue's fields


async def high_risk_project_ids(*, session: AsyncSession, scope: Scope, project_ids: Sequence[int] | None = None,
                                search: str = "") -> list[int]:
    """The project of each open high risk in the scope (a project appears once per such risk): the digest's rule."""
    R = RegisterEntry
    query = select(R.project_id).where(R.kind == RegisterKind.RISK, _open_entry(), HIGH_RISK,
                                       *_scoped(R.project_id, scope, project_ids, search))
    return [row[0] for row in await _rows(session, query)]


async def running_approval_project_ids(*, session: AsyncSession, scope: Scope,
                                       project_ids: Sequence[int] | None = None, search: str = "") -> list[int]:
    """The project of each approval still 审批中 in the scope (once per approval)."""
    query = select(Approval.project_id).where(
        Approval.status == ApprovalStatus.RUNNING, Approval.project_id.is_not(None),  # type: ignore[union-attr]
        *_scoped(Approval.project_id, scope, project_ids, search))
    return [row[0] for row in await _rows(session, query)]


class DeliverableState(NamedTuple):
    """What ``domain.report_data.progress_percent`` reads of a deliverable (its enums as their text, which compares
    equal to them: thousands of rows need no enum objects)."""

    project_id: int
    required: bool
    recurrence: str
    status: str


async def deliverable_states(*, session: AsyncSession, project_ids: Sequence[int]) -> list[DeliverableState]:
    """The deliverables of projects already found through the viewer's scope, for their progress."""
    rows: list[DeliverableState] = []
    make = DeliverableState._make
    for chunk in _chunks(project_ids):
        query = select(Deliverable.project_id, Deliverable.required, type_coerce(Deliverable.recurrence, String()),
                       type_coerce(Deliverable.status, String())).where(
            Deliverable.project_id.in_(chunk))  # type: ignore[attr-defined]
        rows.extend(make(row) for row in await _rows(session, query))
    return rows


# ---- the portfolio counted, ordered and paged in SQL -------------------------------------------------------------
#
# The page of the portfolio does not read every project: one CTE (``_portfolio_facts``) gives each visible project its
# overdue count, oldest overdue due dates, open high risks, running approvals and its colour, and one statement
# (``portfolio_slice``) counts those by colour and phase, orders and pages them, and counts their overdue deliverables
# by due date, so that only the page's rows and a few dozen counts come back. The colour is the digest's rule
# (``reports.digest.project_health``) given as plain values (``HealthRule``): working days cannot be counted in SQL,
# but "a required deliverable at least N working days late" is "due on or before one date" for a given today, and
# ordering by working days late is ordering by a step function of the oldest due date. ``web.portfolio.health_rule``
# derives both from the calendar; tests/web/test_portfolio_sql.py checks the result against the Python reading of
# every project on every database.

LATE, AT_RISK, ON_TRACK = 0, 1, 2  # the colours in SQL, worst first (``HEALTH_ORDER``'s positions)


@dataclass(frozen=True, slots=True)
class HealthRule:
    """The digest's colour rule for one day, as values SQL compares with (``web.portfolio.health_rule``)."""

    today: date
    finished_statuses: tuple[str, ...]  # a project in one of these (or with an actual end) is always 正常
    late_required_due: date | None  # a running project's required deliverable due on or before this: 延期
    overdue_for_risk: int  # this many overdue deliverables of a running project: 有风险 (0: never)
    high_risks_for_risk: int  # this many open high risks: 有风险 (0: never)
    # Working days late of a deliverable by due date, a step function: (first due date of a step, days), the
    # newest dates first; a date older than every step has the last step's days (none are: the steps reach the
    # oldest pending due date).
    lateness: tuple[tuple[date, int], ...] = ()


@dataclass(frozen=True, slots=True)
class PortfolioFilter:
    """What the portfolio's filters keep (empty: anything). ``health`` is a colour's position (``LATE`` …)."""

    template: str = ""
    phase: str = ""
    status: str = ""
    health: int | None = None
    pm: str = ""
    search: str = ""


def _lateness(column: str, steps: Sequence[tuple[date, int]]) -> Any:
    """The working days late of the due date in ``column`` (a column of the ``facts`` subquery) by ``steps``
    (``HealthRule.lateness``); 0 for none. A balanced tree of CASEs, a few comparisons per row whatever the number of
    steps, written as SQL text: every database compares a date column with an ISO date string, and a tree of
    hundreds of bound parameters would cost more to build per request than the statement takes to run."""

    def tree(part: Sequence[tuple[date, int]]) -> str:
        if len(part) == 1:
            return str(int(part[0][1]))
        middle = (len(part) - 1) // 2
        return (f"CASE WHEN {column} >= '{part[middle][0].isoformat()}' THEN {tree(part[:middle + 1])} "
                f"ELSE {tree(part[middle + 1:])} END")

    return literal_column(f"CASE WHEN {column} IS NULL THEN 0 ELSE {tree(steps)} END")


class _Within:
    """The projects ``scope`` may see (and ``search`` finds) as conditions on a ``project_id`` column: nothing for
    every project, else membership of one CTE, so that the scope's look-ups and a search's scan of the projects run
    once per statement, not once per table read."""

    def __init__(self, scope: Scope, search: str) -> None:
        found = [_matching(search)] if search else []
        self.ids = (select(Project.id).where(visible(scope), *found).cte("found")
                    if search or not scope.every_project else None)

    def __call__(self, column: Any) -> list[Any]:
        return [] if self.ids is None else [column.in_(select(self.ids.c.id))]


def _overdue(rule: HealthRule, within: _Within) -> Any:
    """The pending deliverables past their due date (one range of ``ix_deliverables_status_due_date``, which holds the
    three columns): what the colours and the chart by week count."""
    D = Deliverable
    return select(D.project_id, D.due_date, D.required).where(
        D.status == DeliverableStatus.PENDING, D.due_date < rule.today,  # type: ignore[operator]
        *within(D.project_id))


def _portfolio_facts(rule: HealthRule, within: _Within, overdue_dues: Any) -> Any:
    """One row per project ``within``: its columns, counts and colour."""
    R, A = RegisterEntry, Approval
    o = overdue_dues.c
    overdue = (select(o.project_id, func.count().label("n"), func.min(o.due_date).label("oldest"),
                      func.min(case((o.required, o.due_date))).label("oldest_required"))
               .group_by(o.project_id).subquery())
    risks = (select(R.project_id, func.count().label("n"))
             .where(R.kind == RegisterKind.RISK, _open_entry(), HIGH_RISK, *within(R.project_id))
             .group_by(R.project_id).subquery())
    approvals = (select(A.project_id, func.count().label("n"))
                 .where(A.status == ApprovalStatus.RUNNING, *within(A.project_id))
                 .group_by(A.project_id).subquery())
    status = type_coerce(Project.status, String())
    running = status.in_([str(s) for s in ACTIVE_PROJECT_STATUSES])
    # A paused or finished project's deadlines do not run: its overdue deliverables count for nothing.
    overdue_n = case((running, cast(func.coalesce(overdue.c.n, 0), Integer)), else_=0)
    oldest = case((running, overdue.c.oldest))
    oldest_required = case((running, overdue.c.oldest_required))
    high_risks = func.coalesce(risks.c.n, 0)
    finished = or_(status.in_(rule.finished_statuses), Project.actual_end.is_not(None))  # type: ignore[union-attr]
    late = [Project.planned_end < rule.today]  # type: ignore[operator]
    if rule.late_required_due is not None:
        late.append(oldest_required <= rule.late_required_due)
    risky = [false()]
    if rule.overdue_for_risk > 0:
        risky.append(overdue_n >= rule.overdue_for_risk)
    if rule.high_risks_for_risk > 0:
        risky.append(high_risks >= rule.high_risks_for_risk)
    health = case((finished, ON_TRACK), (or_(*late), LATE), (or_(*risky), AT_RISK), else_=ON_TRACK)
    return (
        select(Project.id, Project.code, Project.template, status.label("status"),
               func.coalesce(Project.current_phase, "").label("phase"), Project.pm_user_id, Project.planned_end,
               Project.actual_end, overdue_n.label("overdue"), oldest.label("oldest"),
               oldest_required.label("oldest_required"), high_risks.label("high_risks"),
               func.coalesce(approvals.c.n, 0).label("approvals"), health.label("health"))
        .outerjoin(overdue, overdue.c.project_id == Project.id)  # type: ignore[arg-type]
        .outerjoin(risks, risks.c.project_id == Project.id)  # type: ignore[arg-type]
        .outerjoin(approvals, approvals.c.project_id == Project.id)  # type: ignore[arg-type]
        .where(*within(Project.id))
    )


def _kept(facts: Any, wanted: PortfolioFilter) -> list[Any]:
    """The conditions of ``wanted`` on the facts (the search is in the facts already)."""
    conditions = []
    for column, value in ((facts.c.template, wanted.template), (facts.c.phase, wanted.phase),
                          (facts.c.status, wanted.status), (facts.c.pm_user_id, wanted.pm)):
        if value:
            conditions.append(column == value)
    if wanted.health is not None:
        conditions.append(facts.c.health == wanted.health)
    return conditions


def _codes(column: Any, dialect: str) -> Any:
    """``column`` ordered by code point, as Python orders strings. SQLite does so, and MariaDB's columns are
    utf8mb4_bin (the migrations); a PostgreSQL database created with a language's locale (en_US.UTF-8) would weigh
    case and punctuation apart."""
    return column.collate("C") if dialect == "postgresql" else column


def _order(facts: Any, sort: str, rule: HealthRule, dialect: str) -> list[Any]:
    """``web.portfolio.SORTS``'s orders in SQL (ties broken by code, as there)."""
    f = facts.c
    code = _codes(f.code, dialect)
    # Nothing overdue anywhere: every project is 0 days late (and a bare 0 would be a column number to SQLite).
    lateness = [_lateness(f"{facts.name}.oldest", rule.lateness).desc()] if rule.lateness else []
    if sort == "code":
        return [code]
    if sort == "end":
        return [case((f.planned_end.is_(None), 1), else_=0), f.planned_end, code]
    if sort == "overdue":  # descending on every key, the code too: Python's sorted(reverse=True)
        return [f.overdue.desc(), *lateness, code.desc()]
    if sort == "approvals":
        return [f.approvals.desc(), code.desc()]
    return [f.health, f.overdue.desc(), *lateness, code]  # worst first: reports.digest.worst_first


async def oldest_pending_due(*, session: AsyncSession) -> date | None:
    """The oldest due date of any pending deliverable (one step of ``ix_deliverables_status_due_date``): how far back
    ``HealthRule.lateness`` must reach."""
    query = select(func.min(Deliverable.due_date)).where(Deliverable.status == DeliverableStatus.PENDING)
    return (await _rows(session, query))[0][0]


class PortfolioCount(NamedTuple):
    """The projects of one colour and phase that the filters keep, with their overdue deliverables and running
    approvals."""

    health: int
    phase: str
    projects: int
    overdue: int
    approvals: int


class PortfolioRow(NamedTuple):
    """A project of a portfolio page (the facts' columns)."""

    id: int
    code: str
    template: str
    status: str
    phase: str
    pm_user_id: str | None
    planned_end: date | None
    actual_end: date | None
    overdue: int
    oldest: date | None
    oldest_required: date | None
    high_risks: int
    approvals: int
    health: int


class PortfolioSlice(NamedTuple):
    """What a portfolio page needs of the database: the counts of the projects the filters keep, a page of them (in
    no particular order: the caller orders the page by ``web.portfolio.SORTS``, as SQL chose it), and their overdue
    deliverables counted by due date."""

    counts: list[PortfolioCount]
    rows: list[PortfolioRow]
    dues: list[tuple[date, int]]


_COUNTS, _PAGE, _DUES = 0, 1, 2  # the parts of the slice's statement


async def portfolio_slice(*, session: AsyncSession, scope: Scope, rule: HealthRule, wanted: PortfolioFilter,
                          sort: str, limit: int, offset: int) -> PortfolioSlice:
    """The counts, a page (``sort``'s order, ``limit`` rows from ``offset``) and the overdue deliverables by due
    date of the projects ``wanted`` keeps, in one statement: its three parts read one ``facts`` (a CTE, computed
    once), and they share its columns (the page's names; the counts use id, overdue and approvals for the number of
    projects and the sums, the dues oldest and overdue for the date and its count)."""
    found = PortfolioSlice([], [], [])
    statement = _slice_statement(scope, rule, wanted, sort, limit, offset, session.bind.dialect.name)
    for row in await _rows(session, statement):
        if row.part == _COUNTS:
            found.counts.append(PortfolioCount(row.health, row.phase, row.id, row.overdue, row.approvals))
        elif row.part == _PAGE:
            found.rows.append(PortfolioRow(*(row._mapping[name] for name in PortfolioRow._fields)))
        else:
            found.dues.append((row.oldest, row.overdue))
    return found


def _slice_statement(scope: Scope, rule: HealthRule, wanted: PortfolioFilter, sort: str, limit: int, offset: int,
                     dialect: str) -> Any:
    within = _Within(scope, wanted.search)
    overdue = _overdue(rule, within).cte("overdue")
    facts = _portfolio_facts(rule, within, overdue).cte("facts")
    kept = _kept(facts, wanted)
    f = facts.c
    text, day, number = String(), Date(), Integer()

    def part(tag: int, **values: Any) -> Any:
        """A part's columns in the page's order, NULL (typed, for PostgreSQL's UNION) where the part has none."""
        columns = [literal_column(str(tag)).label("part")]
        for name, kind in (("health", number), ("phase", text), ("id", number), ("overdue", number),
                           ("approvals", number), ("code", text), ("template", text), ("status", text),
                           ("pm_user_id", text), ("planned_end", day), ("actual_end", day), ("oldest", day),
                           ("oldest_required", day), ("high_risks", number)):
            columns.append((values[name] if name in values else cast(null(), kind)).label(name))
        return columns

    counts = (select(*part(_COUNTS, health=f.health, phase=f.phase, id=func.count(),
                           overdue=cast(func.sum(f.overdue), Integer), approvals=cast(func.sum(f.approvals), Integer)))
              .where(*kept).group_by(f.health, f.phase))
    page = (select(facts).where(*kept).order_by(*_order(facts, sort, rule, dialect))
            .limit(limit).offset(offset).subquery("page"))
    rows = select(*part(_PAGE, **{name: page.c[name] for name in PortfolioRow._fields}))
    running = f.status.in_([str(s) for s in ACTIVE_PROJECT_STATUSES])
    o = overdue.c
    dues = (select(*part(_DUES, oldest=o.due_date, overdue=func.count()))
            .where(o.project_id.in_(select(f.id).where(running, *kept))).group_by(o.due_date))
    return union_all(counts, rows, dues)


class PortfolioChoices(NamedTuple):
    """What the filters offer: the (template, phase) pairs of the viewer's projects with their counts, and their PMs
    (None when there are more than asked for)."""

    kinds: list[tuple[str, str, int]]
    pms: list[str] | None


async def portfolio_choices(*, session: AsyncSession, scope: Scope, search: str, pms_max: int) -> PortfolioChoices:
    """The templates, phases and PMs of the projects ``scope`` may see (and ``search`` finds)."""
    found = [visible(scope), *([_matching(search)] if search else [])]
    phase = func.coalesce(Project.current_phase, "")
    kinds = await _rows(session, select(Project.template, phase, func.count()).where(*found)
                        .group_by(Project.template, phase))
    pm: Any = Project.pm_user_id
    pms = await _rows(session, select(pm).distinct().where(*found, pm.is_not(None), pm != "").limit(pms_max + 1))
    return PortfolioChoices([(t, p, int(n)) for t, p, n in kinds],
                            [row[0] for row in pms] if len(pms) <= pms_max else None)


# ---- one project ----------------------------------------------------------------------------------------------------


async def visible_project(*, session: AsyncSession, scope: Scope, code: str) -> Project | None:
    """The project with this code if ``scope`` may see it; None otherwise (or if there is none)."""
    query = select(Project).where(Project.code == code, visible(scope))
    return (await session.exec(query)).first()


async def versions_of_project(*, session: AsyncSession, project_id: int) -> list[DeliverableVersion]:
    """Every version of every deliverable of the project, each deliverable's newest first."""
    V = DeliverableVersion
    query = (
        select(V)
        .join(Deliverable, Deliverable.id == V.deliverable_id)  # type: ignore[arg-type]
        .where(Deliverable.project_id == project_id)
        .order_by(V.deliverable_id, V.version.desc())  # type: ignore[attr-defined]
    )
    return list((await session.exec(query)).all())


async def visible_version(*, session: AsyncSession, scope: Scope, code: str,
                          version_id: int) -> DeliverableVersion | None:
    """A stored deliverable version of the project ``code``, if ``scope`` may see that project."""
    V = DeliverableVersion
    query = (
        select(V)
        .join(Deliverable, Deliverable.id == V.deliverable_id)  # type: ignore[arg-type]
        .join(Project, Project.id == Deliverable.project_id)  # type: ignore[arg-type]
        .where(V.id == version_id, Project.code == code, visible(scope))
    )
    return (await session.exec(query)).first()


async def weekly_reports_of_project(*, session: AsyncSession, project_id: int) -> list[WeeklyReport]:
    """Both variants of every stored weekly report, newest week first, the client's before the internal one."""
    query = (
        select(WeeklyReport)
        .where(WeeklyReport.project_id == project_id)
        .order_by(WeeklyReport.iso_year.desc(), WeeklyReport.iso_week.desc(),  # type: ignore[attr-defined]
                  WeeklyReport.variant != ReportVariant.CLIENT)
    )
    return list((await session.exec(query)).all())


async def visible_weekly_report(*, session: AsyncSession, scope: Scope, code: str,
                                report_id: int) -> WeeklyReport | None:
    query = (
        select(WeeklyReport)
        .join(Project, Project.id == WeeklyReport.project_id)  # type: ignore[arg-type]
        .where(WeeklyReport.id == report_id, Project.code == code, visible(scope))
    )
    return (await session.exec(query)).first()


@dataclass(frozen=True, slots=True)
class RegisterFilter:
    kind: RegisterKind
    state: str = ""  # "open": still to deal with; "closed": done with; "": any
    text: str = ""  # in the title or the content


async def register_entries_page(*, session: AsyncSession, project_id: int, wanted: RegisterFilter, limit: int,
                                offset: int = 0) -> tuple[list[RegisterEntry], int]:
    """One register of a project, filtered, newest first: a page of entries and how many match in all."""
    R = RegisterEntry
    conditions: list[Any] = [R.project_id == project_id, R.kind == wanted.kind]
    if wanted.state == "open":
        conditions.append(_open_entry())
    elif wanted.state == "closed":
        conditions.append(~_open_entry())
    if wanted.text:
        pattern = _like(wanted.text)
        conditions.append(or_(R.title.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
                              R.content.ilike(pattern, escape="\\")))  # type: ignore[union-attr]
    total = (await session.exec(select(func.count()).select_from(R).where(*conditions))).one()
    query = select(R).where(*conditions).order_by(R.seq.desc())  # type: ignore[attr-defined]
    query = query.limit(limit).offset(offset)
    return list((await session.exec(query)).all()), int(total)


async def register_counts(*, session: AsyncSession, project_id: int) -> dict[str, tuple[int, int]]:
    """Per register kind: (entries, open entries) of the project."""
    R = RegisterEntry
    query = (select(R.kind, func.count(), func.sum(case((_open_entry(), 1), else_=0)))
             .where(R.project_id == project_id).group_by(R.kind))
    return {str(kind): (int(total), int(opened or 0)) for kind, total, opened in await _rows(session, query)}


async def audit_page(*, session: AsyncSession, project_id: int, limit: int,
                     offset: int = 0) -> tuple[list[AuditLog], int]:
    """The project's audit trail, newest first: a page and the total."""
    total = (await session.exec(select(func.count()).select_from(AuditLog)
                                .where(AuditLog.project_id == project_id))).one()
    query = (
        select(AuditLog)
        .where(AuditLog.project_id == project_id)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(limit)
        .offset(offset)
    )
    return list((await session.exec(query)).all()), int(total)


__all__ = [
    "AT_RISK",
    "DeliverableState",
    "HealthRule",
    "LATE",
    "ON_TRACK",
    "OverdueDue",
    "PortfolioChoices",
    "PortfolioCount",
    "PortfolioFilter",
    "PortfolioRow",
    "PortfolioSlice",
    "ProjectDetails",
    "ProjectLine",
    "RegisterFilter",
    "Scope",
    "audit_page",
    "deliverable_states",
    "high_risk_project_ids",
    "oldest_pending_due",
    "overdue_dues",
    "portfolio_choices",
    "portfolio_slice",
    "project_details",
    "register_counts",
    "register_entries_page",
    "running_approval_project_ids",
    "versions_of_project",
    "visible",
    "visible_project",
    "visible_projects",
    "visible_version",
    "visible_weekly_report",
    "weekly_reports_of_project",
]
