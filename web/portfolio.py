"""The portfolio (项目组合): every project the viewer may see, its status colour by the leaders' digest's rule, and
what the page filters, sorts, pages and charts.

The page is computed by the database (``read_portfolio_view`` → ``storage.repo.dashboard.portfolio_slice``): the
colour rule goes to SQL as dates (``health_rule``: "a required deliverable at least 5 working days late" is "due on or
before one date" for a given today, and the working days late of each due date a step function of it), so only the
page's projects and a few dozen counts come back; each shown project is then coloured again here by
``reports.digest.project_health`` itself, which gives its reasons. The export and the charts' fallback read every
visible project (``gather_portfolio``: four flat statements), colour each in Python and filter, sort and count in
memory (``portfolio_view``, ``select_entries``): the same results, checked against each other on every database
(tests/web/test_portfolio_sql.py). Overdue deliverables count only for projects whose deadlines run (已立项,
进行中), as in the digest: a paused project's clock is stopped.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlencode

from domain.report_data import overdue_working_days, progress_percent
from reports.digest import HealthStatus, HealthThresholds, ProjectHealth, project_health, worst_first
from reports.model import FINISHED_PROJECT_STATUSES, WeeklyPeriod, project_finished
from storage.models import ACTIVE_PROJECT_STATUSES, ProjectStatus
from storage.repo.dashboard import (
    HealthRule,
    OverdueDue,
    PortfolioFilter,
    PortfolioRow,
    ProjectLine,
    Scope,
    deliverable_states,
    high_risk_project_ids,
    oldest_pending_due,
    overdue_dues,
    portfolio_choices,
    portfolio_slice,
    project_details,
    running_approval_project_ids,
    visible_projects,
)
from web import params

HEALTH_ORDER = (HealthStatus.LATE, HealthStatus.AT_RISK, HealthStatus.ON_TRACK)
HEALTH_CSS = {HealthStatus.LATE: "late", HealthStatus.AT_RISK: "risk", HealthStatus.ON_TRACK: "ok"}  # the pages' class
OVERDUE_CHART_WEEKS = 12  # the chart's weeks, the older ones summed in one bar
_RUNNING = frozenset(str(s) for s in ACTIVE_PROJECT_STATUSES)


class PortfolioEntry(NamedTuple):
    """One project as the portfolio shows it (a named tuple: thousands are made per page, and a tuple is made several
    times faster than a frozen dataclass)."""

    id: int
    code: str
    template: str
    status: str
    phase: str
    pm_user_id: str
    planned_end: date | None
    overdue: int
    worst_overdue_days: int
    pending_approvals: int
    high_risks: int
    health: ProjectHealth
    overdue_dues: Sequence[date] = ()
    # Filled for the projects shown (``complete``): read for a page, not for every project.
    progress: float | None = None
    name: str = ""
    customer: str = ""
    pm_name: str = ""
    planned_start: date | None = None


def build_entries(lines: Sequence[ProjectLine], dues: Sequence[OverdueDue], risks: Iterable[int],
                  approvals: Iterable[int], *, today: date, calendar: Any) -> list[PortfolioEntry]:
    """The pure half of ``gather_portfolio``: join the reads by project and colour each project.

    One pass over each read (thousands of projects, tens of thousands of overdue deliverables); ``project_health`` is
    asked once per distinct set of its inputs (most projects share one: nothing overdue, no high risk)."""
    overdue: dict[int, list[Any]] = {}  # project -> [due dates, oldest, oldest required]
    for project_id, due, required in dues:
        found = overdue.get(project_id)
        if found is None:
            overdue[project_id] = [[due], due, due if required else None]
            continue
        found[0].append(due)
        if due < found[1]:
            found[1] = due
        if required and (found[2] is None or due < found[2]):
            found[2] = due
    high_risks: dict[int, int] = Counter(risks)
    pending: dict[int, int] = Counter(approvals)
    lateness: dict[date | None, int] = {None: 0}
    colours: dict[tuple[Any, ...], ProjectHealth] = {}
    entries = []
    append = entries.append
    for project_id, code, template, status, phase, pm_user_id, planned_end, actual_end in lines:
        dates, oldest, oldest_required = (overdue.get(project_id, _NONE_OVERDUE) if status in _RUNNING
                                          else _NONE_OVERDUE)
        # Working days late: once per date, not once per project.
        worst = lateness.get(oldest)
        if worst is None:
            worst = lateness[oldest] = overdue_working_days(calendar, oldest, today)
        worst_required = lateness.get(oldest_required)
        if worst_required is None:
            worst_required = lateness[oldest_required] = overdue_working_days(calendar, oldest_required, today)
        risks_open = high_risks.get(project_id, 0)
        finished = project_finished(status, actual_end)
        inputs = (planned_end if planned_end is not None and planned_end < today else None, finished,
                  worst_required, len(dates), risks_open)
        health = colours.get(inputs)
        if health is None:
            health = colours[inputs] = project_health(
                today=today, planned_end=planned_end, finished=finished,
                required_overdue_working_days=(worst_required,) if oldest_required else (),
                overdue_count=len(dates), open_high_risks=risks_open)
        append(PortfolioEntry(project_id, code, template, status, phase or "", pm_user_id or "", planned_end,
                              len(dates), worst, pending.get(project_id, 0), risks_open, health, dates))
    return entries


_NONE_OVERDUE: tuple[tuple[date, ...], None, None] = ((), None, None)


@dataclass(frozen=True, slots=True)
class PortfolioReads:
    """What the database says about the visible projects (``build_entries`` colours them)."""

    lines: list[ProjectLine]
    dues: list[OverdueDue]
    risks: list[int]
    approvals: list[int]

    def entries(self, *, today: date, calendar: Any) -> list[PortfolioEntry]:
        return build_entries(self.lines, self.dues, self.risks, self.approvals, today=today, calendar=calendar)


async def read_portfolio(*, session: Any, scope: Scope, today: date, project_ids: Sequence[int] | None = None,
                         search: str = "") -> PortfolioReads:
    """The four reads of every project ``scope`` may see (or of those of ``project_ids`` among them, or of those
    ``search`` finds)."""
    lines = await visible_projects(session=session, scope=scope, project_ids=project_ids, search=search)
    if not lines:
        return PortfolioReads([], [], [], [])
    return PortfolioReads(
        lines,
        await overdue_dues(session=session, scope=scope, today=today, project_ids=project_ids, search=search),
        await high_risk_project_ids(session=session, scope=scope, project_ids=project_ids, search=search),
        await running_approval_project_ids(session=session, scope=scope, project_ids=project_ids, search=search),
    )


async def gather_portfolio(*, session: Any, scope: Scope, today: date, calendar: Any,
                           project_ids: Sequence[int] | None = None, search: str = "") -> list[PortfolioEntry]:
    """Every project ``scope`` may see (or those of ``project_ids``, or those ``search`` finds), coloured (mapped in a
    worker thread)."""
    reads = await read_portfolio(session=session, scope=scope, today=today, project_ids=project_ids, search=search)
    return await asyncio.to_thread(reads.entries, today=today, calendar=calendar)


async def complete(*, session: Any, entries: Sequence[PortfolioEntry]) -> list[PortfolioEntry]:
    """``entries`` (found through the viewer's scope) with their names, customer, planned start and progress (the
    share of counted deliverables done: ``progress_percent``)."""
    ids = [e.id for e in entries]
    details = await project_details(session=session, project_ids=ids)
    states: dict[int, list[Any]] = defaultdict(list)
    for state in await deliverable_states(session=session, project_ids=ids):
        states[state.project_id].append(state)
    done = []
    for e in entries:
        name, customer, pm_name, planned_start = details[e.id]
        done.append(e._replace(progress=progress_percent(states.get(e.id, ())), name=name, customer=customer or "",
                               pm_name=pm_name or e.pm_user_id, planned_start=planned_start))
    return done


# ---- what the page asks for --------------------------------------------------------------------------------------

SORTS: dict[str, tuple[str, Callable[[PortfolioEntry], Any], bool]] = {
    # name: (label, key, descending)
    "status": ("状态（最严重在前）",
               lambda e: worst_first(e.health.status, e.overdue, e.worst_overdue_days, e.code), False),
    "code": ("项目编号", lambda e: e.code, False),
    "end": ("计划完成日", lambda e: (e.planned_end is None, e.planned_end or date.max, e.code), False),
    "overdue": ("逾期交付物最多", lambda e: (e.overdue, e.worst_overdue_days, e.code), True),
    "approvals": ("待审批最多", lambda e: (e.pending_approvals, e.code), True),
}
PROJECT_STATUSES = tuple(str(s) for s in ProjectStatus)
HEALTH_NAMES = tuple(str(s) for s in HEALTH_ORDER)


@dataclass(frozen=True, slots=True)
class PortfolioQuery:
    """The filters, sort and page of a portfolio request (also what the charts and the export are of)."""

    template: str = ""
    phase: str = ""
    status: str = ""
    health: str = ""
    pm: str = ""
    q: str = ""
    sort: str = "status"
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> PortfolioQuery:
        return cls(
            template=params.text(query, "template", "项目类型"),
            phase=params.text(query, "phase", "阶段"),
            status=params.choice(query, "status", "项目状态", PROJECT_STATUSES),
            health=params.choice(query, "health", "状态颜色", HEALTH_NAMES),
            pm=params.text(query, "pm", "项目经理"),
            q=params.text(query, "q", "搜索内容"),
            sort=params.choice(query, "sort", "排序", SORTS, default="status"),
            page=params.page_number(query),
        )

    def matches(self, entry: PortfolioEntry) -> bool:
        if self.template and entry.template != self.template:
            return False
        if self.phase and entry.phase != self.phase:
            return False
        if self.status and entry.status != self.status:
            return False
        if self.health and entry.health.status != self.health:
            return False
        if self.pm and entry.pm_user_id != self.pm:
            return False
        return True  # the search (q) is the database's: read_portfolio(search=…)

    @property
    def filtered(self) -> bool:
        return any((self.template, self.phase, self.status, self.health, self.pm, self.q))

    @property
    def narrows(self) -> bool:
        """Whether ``matches`` can leave a project out (the search is the database's)."""
        return any((self.template, self.phase, self.status, self.health, self.pm))

    def params(self, **changes: Any) -> str:
        """This query as URL parameters (with ``changes``), defaults left out: for links to other pages and sorts."""
        values = {"template": self.template, "phase": self.phase, "status": self.status, "health": self.health,
                  "pm": self.pm, "q": self.q, "sort": self.sort, "page": self.page, **changes}
        defaults = {"sort": "status", "page": 1}
        return urlencode({k: v for k, v in values.items() if v and defaults.get(k) != v})

    def filters_only(self) -> str:
        """The filters as URL parameters (charts and the export ignore sort and page)."""
        return self.params(sort="status", page=1)


def select_entries(entries: Iterable[PortfolioEntry], query: PortfolioQuery) -> list[PortfolioEntry]:
    """The entries the filters keep, in the requested order."""
    _, key, descending = SORTS[query.sort]
    kept = (e for e in entries if query.matches(e)) if query.narrows else entries
    return sorted(kept, key=key, reverse=descending)


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[PortfolioEntry]
    number: int
    count: int  # pages in all (at least 1)
    total: int  # entries in all
    size: int

    @property
    def first_index(self) -> int:
        """The 1-based position of the page's first entry (0 when there is none)."""
        return (self.number - 1) * self.size + 1 if self.items else 0


def page_of(entries: Sequence[PortfolioEntry], number: int, size: int) -> Page:
    """Page ``number`` (past the last: the last one)."""
    count = max(1, -(-len(entries) // size))
    number = min(number, count)
    return Page(entries[(number - 1) * size:number * size], number, count, len(entries), size)


PM_CHOICES_MAX = 100  # beyond this many PMs a list is no help: the search box finds a PM by name


@dataclass(frozen=True, slots=True)
class FilterOptions:
    templates: tuple[str, ...]
    phases: tuple[str, ...]
    pm_ids: tuple[str, ...]  # the PMs to choose from (none when there are more than PM_CHOICES_MAX)


def filter_options(entries: Iterable[PortfolioEntry]) -> FilterOptions:
    """The values the filters offer: those the viewer's projects have."""
    templates, phases, pms = set(), set(), set()
    for e in entries:
        templates.add(e.template)
        phases.add(e.phase)
        pms.add(e.pm_user_id)
    phases.discard("")
    pms.discard("")
    return FilterOptions(tuple(sorted(templates)), tuple(sorted(phases)),
                         tuple(sorted(pms)) if len(pms) <= PM_CHOICES_MAX else ())


@dataclass(frozen=True, slots=True)
class PortfolioView:
    """What the portfolio page shows, but the progress of the page's projects (read for those alone)."""

    total: int  # every visible project
    page: Page  # of the projects the filters keep, in the order asked for
    options: FilterOptions
    health: list[tuple[str, int]]  # projects per colour, of those the filters keep
    charts: dict[str, Any]  # each chart's data
    overdue: int
    approvals: int


def portfolio_view(entries: Sequence[PortfolioEntry], query: PortfolioQuery, *, page_size: int,
                   phase_order: Sequence[str], today: date) -> PortfolioView:
    """The pure work of a portfolio page (filter, sort, count, chart), for a worker thread."""
    chosen = select_entries(entries, query)
    charts = chart_data(chosen, phase_order=phase_order, today=today)
    overdue = approvals = 0
    for entry in chosen:
        overdue += entry.overdue
        approvals += entry.pending_approvals
    return PortfolioView(
        total=len(entries), page=page_of(chosen, query.page, page_size), options=filter_options(entries),
        health=charts["projects_by_health"], charts=charts, overdue=overdue, approvals=approvals)


# ---- the page, from SQL ------------------------------------------------------------------------------------------


def health_rule(*, today: date, calendar: Any, oldest_due: date | None,
                thresholds: HealthThresholds = HealthThresholds()) -> HealthRule:
    """``project_health``'s rule for ``today`` as dates SQL compares with: how old a required deliverable's due date
    must be for 延期, and the working days late of every due date back to ``oldest_due`` (steps of equal days)."""
    if thresholds.late_overdue_working_days < 1:
        raise ValueError("late_overdue_working_days must be at least 1")  # 0 would make every project 延期
    yesterday = today - timedelta(days=1)
    late_due: date | None = yesterday
    while overdue_working_days(calendar, late_due, today) < thresholds.late_overdue_working_days:
        late_due -= timedelta(days=1)
        if today - late_due > _LATE_SEARCH:  # a calendar without working days: nothing is ever that late
            late_due = None
            break
    steps: list[tuple[date, int]] = []
    day = yesterday
    while oldest_due is not None and day >= oldest_due:
        days = overdue_working_days(calendar, day, today)
        if steps and steps[-1][1] == days:
            steps[-1] = (day, days)  # the step reaches back to this day
        else:
            steps.append((day, days))
        day -= timedelta(days=1)
    return HealthRule(today=today, finished_statuses=tuple(sorted(FINISHED_PROJECT_STATUSES)),
                      late_required_due=late_due, overdue_for_risk=thresholds.at_risk_overdue_count,
                      high_risks_for_risk=thresholds.at_risk_high_risks, lateness=tuple(steps))


_LATE_SEARCH = timedelta(days=3660)


def entry_of(row: PortfolioRow, *, today: date, calendar: Any) -> PortfolioEntry:
    """A page's project as ``build_entries`` makes it, its colour and reasons by ``project_health`` itself."""
    worst = overdue_working_days(calendar, row.oldest, today)
    worst_required = overdue_working_days(calendar, row.oldest_required, today)
    health = project_health(today=today, planned_end=row.planned_end,
                            finished=project_finished(row.status, row.actual_end),
                            required_overdue_working_days=(worst_required,) if row.oldest_required else (),
                            overdue_count=row.overdue, open_high_risks=row.high_risks)
    return PortfolioEntry(row.id, row.code, row.template, row.status, row.phase, row.pm_user_id or "",
                          row.planned_end, row.overdue, worst, row.approvals, row.high_risks, health)


async def read_portfolio_view(*, session: Any, scope: Scope, query: PortfolioQuery, today: date, calendar: Any,
                              page_size: int, phase_order: Sequence[str]) -> PortfolioView:
    """What the portfolio page shows, counted, ordered and paged by the database: a few statements whose answers
    are the page's projects and a few dozen counts, whatever the number of projects (``portfolio_view`` computes the
    same from every project, for the export)."""
    rule = health_rule(today=today, calendar=calendar, oldest_due=await oldest_pending_due(session=session))
    wanted = PortfolioFilter(template=query.template, phase=query.phase, status=query.status,
                             health=HEALTH_NAMES.index(query.health) if query.health else None, pm=query.pm,
                             search=query.q)
    choices = await portfolio_choices(session=session, scope=scope, search=query.q, pms_max=PM_CHOICES_MAX)
    found = await portfolio_slice(session=session, scope=scope, rule=rule, wanted=wanted, sort=query.sort,
                                  limit=page_size, offset=(query.page - 1) * page_size)
    kept = sum(c.projects for c in found.counts)
    pages = max(1, -(-kept // page_size))
    number = min(query.page, pages)
    if number != query.page:  # past the last page: the last one (its counts are the same)
        found = await portfolio_slice(session=session, scope=scope, rule=rule, wanted=wanted, sort=query.sort,
                                      limit=page_size, offset=(number - 1) * page_size)
    counts = found.counts
    _, key, descending = SORTS[query.sort]
    shown = sorted((entry_of(row, today=today, calendar=calendar) for row in found.rows), key=key,
                   reverse=descending)
    healths: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    for c in counts:
        healths[HEALTH_ORDER[c.health]] += c.projects
        phases[c.phase] += c.projects
    charts = {"projects_by_health": health_counts(healths),
              "projects_by_phase": phase_counts(phases, phase_order),
              "overdue_by_week": overdue_week_counts(dict(found.dues), today)}
    options = FilterOptions(tuple(sorted({t for t, _, _ in choices.kinds})),
                            tuple(sorted({p for _, p, _ in choices.kinds} - {""})),
                            tuple(sorted(choices.pms)) if choices.pms is not None else ())
    return PortfolioView(
        total=sum(n for _, _, n in choices.kinds),
        page=Page(shown, number, pages, kept, page_size),
        options=options, health=charts["projects_by_health"], charts=charts,
        overdue=sum(c.overdue for c in counts), approvals=sum(c.approvals for c in counts))


# ---- charts' data ---------------------------------------------------------------------------------------------------


def chart_data(entries: Sequence[PortfolioEntry], *, phase_order: Sequence[str], today: date) -> dict[str, Any]:
    """What each portfolio chart draws (``web.charts_store.PORTFOLIO_CHARTS``), from the projects the filters keep
    (one pass over them)."""
    healths: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    due_days: Counter[date] = Counter()
    for entry in entries:
        healths[entry.health.status] += 1
        phases[entry.phase] += 1
        due_days.update(entry.overdue_dues)
    return {
        "projects_by_health": health_counts(healths),
        "projects_by_phase": phase_counts(phases, phase_order),
        "overdue_by_week": overdue_week_counts(due_days, today),
    }


def health_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Projects per colour, worst first (every colour, none left out)."""
    return [(str(status), counts.get(status, 0)) for status in HEALTH_ORDER]


def phase_counts(counts: Mapping[str, int], order: Sequence[str] = ()) -> list[tuple[str, int]]:
    """Projects per current phase; phases in ``order`` first (the templates' order), then by count."""
    known = [name for name in order if name in counts]
    rest = sorted((name for name in counts if name not in known), key=lambda name: (-counts[name], name))
    return [(name, counts[name]) for name in [*known, *rest]]


def overdue_week_counts(per_day: Mapping[date, int], today: date,
                        weeks: int = OVERDUE_CHART_WEEKS) -> list[tuple[str, int]]:
    """Overdue deliverables (counted by due date) by the week they were due: the last ``weeks`` weeks (labelled by
    their Monday), the older ones in a first bar 更早."""
    first = WeeklyPeriod.containing(today).monday - timedelta(weeks=weeks - 1)
    counts: Counter[date] = Counter()
    older = 0
    for due, n in per_day.items():  # a few hundred distinct dates, whatever the number of deliverables
        if due < first:
            older += n
        else:
            counts[due - timedelta(days=due.weekday())] += n
    mondays = [first + timedelta(weeks=n) for n in range(weeks)]
    return [("更早", older), *((f"{monday:%m-%d}", counts[monday]) for monday in mondays)]


__all__ = [
    "FilterOptions",
    "HEALTH_CSS",
    "HEALTH_ORDER",
    "PM_CHOICES_MAX",
    "Page",
    "PortfolioEntry",
    "PortfolioQuery",
    "PortfolioReads",
    "PortfolioView",
    "SORTS",
    "build_entries",
    "chart_data",
    "complete",
    "entry_of",
    "filter_options",
    "gather_portfolio",
    "health_counts",
    "health_rule",
    "overdue_week_counts",
    "page_of",
    "phase_counts",
    "portfolio_view",
    "read_portfolio",
    "read_portfolio_view",
    "select_entries",
]
