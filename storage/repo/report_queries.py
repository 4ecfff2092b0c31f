"""Read queries behind reports, reminders and the leaders' digest.

Two kinds of reads live here:

* **scans** over every running project (the daily reminder scan, the weekly digest). Each is one statement whatever
  the number of projects, selects plain columns instead of ORM entities (tens of thousands of rows are cheap as
  tuples and slow as objects) and starts from an index: ``ix_deliverables_status_due_date`` for deliverables,
  ``ix_projects_status`` for projects, ``ix_approvals_status`` for approvals, and the
  ``(project_id, kind, status)`` index of the registers reached through the project join. The jobs read them as a
  stream of chunks of whole projects (``*_chunks``), so that only a chunk of rows is alive at a time: with tens of
  thousands of live rows, every pass of CPython's cyclic garbage collector gets slower, and the scan superlinear.
* **batch loads** for a set of projects (report data, the weekly job, the archive): one statement per table with
  ``project_id IN (…)``, never one per project.

Nothing here decides what is overdue in working days: that needs the work calendar, which is the caller's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import and_, case, func, or_, true
from sqlalchemy.ext.asyncio import AsyncConnection
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
    Level,
    Phase,
    Project,
    ProjectMember,
    ProjectStatus,
    RegisterEntry,
    RegisterKind,
    RegisterStatus,
    ReportVariant,
    User,
    WeeklyReport,
)
from storage.repo.directory import display_names

# Register statuses that leave nothing to do; an entry with closed_at set is closed whatever its status.
CLOSED_REGISTER_STATUSES: tuple[RegisterStatus, ...] = (
    RegisterStatus.CLOSED,
    RegisterStatus.DONE,
    RegisterStatus.REJECTED,
    RegisterStatus.RECORDED,
)
# Kinds that are records of something that happened, never "open": loading all of them for a weekly report would
# read a project's whole history (a 实施日志 every working day).
RECORD_KINDS: tuple[RegisterKind, ...] = (RegisterKind.LOG, RegisterKind.MEETING, RegisterKind.UPGRADE)
# Batch loads bind one parameter per project id; stay well under every driver's limit (SQLite 32766, asyncpg 32767).
MAX_IDS_PER_QUERY = 1000
# Rows fetched per round trip by the streamed scans, and about the size of the chunks they yield: small enough to keep
# the live set bounded, large enough that the round trips (one per chunk) do not count.
SCAN_CHUNK_ROWS = 2000

_T = TypeVar("_T")


# ---- scans ------------------------------------------------------------------------------------------------------


class DeliverableDue(NamedTuple):
    """One pending deliverable found by ``pending_deliverables_due``, with what a reminder needs about its project.

    A named tuple, not a frozen dataclass: built straight from the row, it costs a tenth of the time, which matters
    for tens of thousands of rows."""

    deliverable_id: int
    seq: int
    name: str
    phase: str | None
    due: date
    required: bool
    owner_user_id: str | None
    owner_name: str | None
    project_id: int
    project_code: str
    project_name: str
    customer: str | None
    project_phase: str | None
    pm_user_id: str | None
    pm_name: str | None
    internal_conversation_id: str | None
    client_conversation_id: str | None  # where a reminder for a client contact goes: they get no 1:1 message


def _pending_due_query(
    *,
    before: date | None,
    due_from: date | None,
    due_until: date | None,
    statuses: Iterable[ProjectStatus],
    project_ids: list[int] | None,
) -> Any:
    if before is None and due_until is None:
        raise ValueError("give before= (overdue) and/or due_from/due_until= (due soon)")
    owner = aliased(User)
    pm = aliased(User)
    windows = []
    if before is not None:
        windows.append(Deliverable.due_date < before)  # type: ignore[operator]
    if due_until is not None:
        window = Deliverable.due_date <= due_until  # type: ignore[operator]
        if due_from is not None:
            window = and_(Deliverable.due_date >= due_from, window)  # type: ignore[operator]
        windows.append(window)
    query = (
        select(
            Deliverable.id, Deliverable.seq, Deliverable.name, Phase.name, Deliverable.due_date, Deliverable.required,
            Deliverable.owner_user_id, owner.name,
            Project.id, Project.code, Project.name, Project.customer, Project.current_phase, Project.pm_user_id,
            pm.name, Project.internal_conversation_id, Project.client_conversation_id,
        )
        .join(Project, Project.id == Deliverable.project_id)  # type: ignore[arg-type]
        .outerjoin(Phase, Phase.id == Deliverable.phase_id)  # type: ignore[arg-type]
        .outerjoin(owner, owner.user_id == Deliverable.owner_user_id)  # type: ignore[arg-type]
        .outerjoin(pm, pm.user_id == Project.pm_user_id)  # type: ignore[arg-type]
        .where(
            Deliverable.status == DeliverableStatus.PENDING,
            Deliverable.due_date.is_not(None),  # type: ignore[union-attr]
            or_(*windows) if len(windows) > 1 else windows[0],
            Project.status.in_(list(statuses)),  # type: ignore[attr-defined]
        )
        .order_by(Deliverable.project_id, Deliverable.due_date, Deliverable.seq, Deliverable.id)
    )
    if project_ids is not None:
        query = query.where(Deliverable.project_id.in_(project_ids))  # type: ignore[attr-defined]
    return query


async def pending_deliverables_due(
    *,
    session: AsyncSession,
    before: date | None = None,
    due_from: date | None = None,
    due_until: date | None = None,
    statuses: Iterable[ProjectStatus] = ACTIVE_PROJECT_STATUSES,
    project_ids: Iterable[int] | None = None,
) -> list[DeliverableDue]:
    """Deliverables still 待提交 in projects of ``statuses`` whose due date is before ``before`` (overdue) and/or in
    ``[due_from, due_until]`` (falling due soon): the reminder job asks both in one statement.

    One range scan of ``ix_deliverables_status_due_date``; phases and projects by primary key, names by the unique
    ``users.user_id``. Ordered by project, then due date, so callers can group without sorting.
    """
    ids = None if project_ids is None else list(project_ids)
    query = _pending_due_query(before=before, due_from=due_from, due_until=due_until, statuses=statuses,
                               project_ids=ids)
    if ids == []:
        return []
    make = DeliverableDue._make
    return [make(row) for row in await _core_rows(session, query)]


def pending_deliverables_due_chunks(
    *,
    session: AsyncSession,
    before: date | None = None,
    due_from: date | None = None,
    due_until: date | None = None,
    statuses: Iterable[ProjectStatus] = ACTIVE_PROJECT_STATUSES,
    chunk_rows: int = SCAN_CHUNK_ROWS,
) -> AsyncIterator[list[DeliverableDue]]:
    """``pending_deliverables_due`` as a stream of lists of about ``chunk_rows`` rows, in the same order, each holding
    whole projects (a project is never split between two chunks): a caller can handle each chunk on its own."""
    query = _pending_due_query(before=before, due_from=due_from, due_until=due_until, statuses=statuses,
                               project_ids=None)
    return stream_chunks(session, query, DeliverableDue._make, chunk_rows=chunk_rows,
                         group_key=lambda row: row.project_id)


async def _core_rows(session: AsyncSession, query: Any) -> Sequence[Any]:
    # Core, not the ORM: plain columns need none of its row loading, which is a sixth of a scan's reading.
    connection = await session.connection()
    async with _memory_mapped(connection):
        return (await connection.execute(query)).all()


# SQLite reads a scan's pages through a memory map instead of read() calls into its 2 MB page cache: a scan touches a
# good part of the file once, and each page read was a syscall and a copy (the overdue statement on 10,000 projects:
# -30 % in sqlite3, -13 % with its rows mapped). Only while a scan runs: mapped pages the process touched count in
# its RSS as long as the map lasts.
_SCAN_MMAP_BYTES = 1 << 30


@contextlib.asynccontextmanager
async def _memory_mapped(connection: AsyncConnection) -> AsyncIterator[None]:
    if connection.dialect.name != "sqlite":
        yield
        return
    await connection.exec_driver_sql(f"PRAGMA mmap_size={_SCAN_MMAP_BYTES}")
    try:
        yield
    finally:
        await connection.exec_driver_sql("PRAGMA mmap_size=0")


async def stream_chunks(
    session: AsyncSession,
    query: Any,
    make: Callable[[Any], _T],
    *,
    chunk_rows: int,
    group_key: Callable[[_T], object] | None = None,
) -> AsyncIterator[list[_T]]:
    """The rows of ``query``, made by ``make``, in lists of about ``chunk_rows`` (streamed from the server, one
    round trip per chunk). With ``group_key`` (the query is ordered by it), rows of one group are never split: the
    last group of a fetch is held back until the next fetch shows whether it goes on."""
    connection = await session.connection()  # Core, as in _core_rows
    async with _memory_mapped(connection):
        result = await connection.stream(query.execution_options(yield_per=chunk_rows))
        held: list[_T] = []
        try:
            async for fetched in result.partitions():
                rows = held + [make(row) for row in fetched]
                if group_key is None:
                    held = []
                    yield rows
                    continue
                last = group_key(rows[-1])
                cut = len(rows)
                while cut and group_key(rows[cut - 1]) == last:
                    cut -= 1
                held = rows[cut:]
                if cut:
                    yield rows[:cut]
            if held:
                yield held
        finally:
            await result.close()


class DigestRow(NamedTuple):
    """One project of the leaders' digest: what its line prints, counted by the database."""

    id: int
    code: str
    name: str
    customer: str | None
    template: str
    status: ProjectStatus
    current_phase: str | None
    pm_user_id: str | None
    pm_name: str | None
    planned_start: date | None
    planned_end: date | None
    actual_start: date | None
    actual_end: date | None
    overdue: int  # pending deliverables due before today (0 for projects whose clock is stopped)
    oldest_due: date | None  # of those, the earliest due date
    oldest_required_due: date | None  # the earliest among the required ones
    high_risks: int  # open risks 高 in one dimension and at least 中 in the other
    pending_approvals: int  # approvals still 审批中


# Open register statuses, listed positively so the (project_id, kind, status) index narrows on status too.
OPEN_REGISTER_STATUSES: tuple[RegisterStatus, ...] = tuple(s for s in RegisterStatus
                                                           if s not in CLOSED_REGISTER_STATUSES)
# A high risk is 高 in one dimension and at least 中 in the other (``reports.model.RegisterEntry.is_high_risk``,
# score >= 6 on the 1-3 x 1-3 matrix); spelled out here so the database counts them instead of shipping every risk.
HIGH_RISK = or_(
    and_(RegisterEntry.probability == Level.HIGH, RegisterEntry.impact.in_((Level.HIGH, Level.MEDIUM))),  # type: ignore[union-attr]
    and_(RegisterEntry.impact == Level.HIGH, RegisterEntry.probability.in_((Level.HIGH, Level.MEDIUM))),  # type: ignore[union-attr]
)


async def digest_scan(
    *,
    session: AsyncSession,
    today: date,
    statuses: Iterable[ProjectStatus],
    running_statuses: Iterable[ProjectStatus] = ACTIVE_PROJECT_STATUSES,
) -> list[DigestRow]:
    """Every project of ``statuses`` with its counts, in one statement, by code.

    * overdue deliverables: one grouped range scan of ``ix_deliverables_status_due_date`` joined by project; counted
      only for projects of ``running_statuses`` (a paused project's deadlines are stopped);
    * open high risks and running approvals: correlated counts per project, each an index look-up
      (``(project_id, kind, status)`` on the registers, ``ix_approvals_project_id``).
    """
    query = _digest_query(today=today, statuses=statuses, running_statuses=running_statuses)
    return [_digest_row(row) for row in await _core_rows(session, query)]


def digest_scan_chunks(
    *,
    session: AsyncSession,
    today: date,
    statuses: Iterable[ProjectStatus],
    running_statuses: Iterable[ProjectStatus] = ACTIVE_PROJECT_STATUSES,
    chunk_rows: int = SCAN_CHUNK_ROWS,
) -> AsyncIterator[list[DigestRow]]:
    """``digest_scan`` as a stream of lists of ``chunk_rows`` projects, in the same order."""
    query = _digest_query(today=today, statuses=statuses, running_statuses=running_statuses)
    return stream_chunks(session, query, _digest_row, chunk_rows=chunk_rows)


def _digest_row(row: Any) -> DigestRow:
    # The CASE columns lose the Date type on some drivers (SQLite returns text): normalise here.
    return DigestRow._make((*row[:14], _as_date(row[14]), _as_date(row[15]), int(row[16] or 0), int(row[17] or 0)))


def _digest_query(
    *, today: date, statuses: Iterable[ProjectStatus], running_statuses: Iterable[ProjectStatus]
) -> Any:
    D, R, A = Deliverable, RegisterEntry, Approval
    pm = aliased(User)
    overdue = (
        select(
            D.project_id.label("project_id"),  # type: ignore[attr-defined]
            func.count().label("n"),
            func.min(D.due_date).label("oldest"),
            func.min(case((D.required == true(), D.due_date))).label("oldest_required"),
        )
        .where(D.status == DeliverableStatus.PENDING, D.due_date < today)  # type: ignore[operator]
        .group_by(D.project_id)
        .subquery()
    )
    high_risks = (
        select(func.count())
        .where(R.project_id == Project.id, R.kind == RegisterKind.RISK,
               R.status.in_(OPEN_REGISTER_STATUSES), R.closed_at.is_(None), HIGH_RISK)  # type: ignore[union-attr,attr-defined]
        .correlate(Project)
        .scalar_subquery()
    )
    approvals = (
        select(func.count())
        .where(A.project_id == Project.id, A.status == ApprovalStatus.RUNNING)
        .correlate(Project)
        .scalar_subquery()
    )
    running = Project.status.in_(list(running_statuses))  # type: ignore[attr-defined]
    query = (
        select(
            Project.id, Project.code, Project.name, Project.customer, Project.template, Project.status,
            Project.current_phase, Project.pm_user_id, pm.name, Project.planned_start, Project.planned_end,
            Project.actual_start, Project.actual_end,
            case((running, func.coalesce(overdue.c.n, 0)), else_=0),
            case((running, overdue.c.oldest)),
            case((running, overdue.c.oldest_required)),
            high_risks,
            approvals,
        )
        .outerjoin(pm, pm.user_id == Project.pm_user_id)  # type: ignore[arg-type]
        .outerjoin(overdue, overdue.c.project_id == Project.id)
        .where(Project.status.in_(list(statuses)))  # type: ignore[attr-defined]
        .order_by(Project.code)
    )
    return query


def _as_date(value: object) -> date | None:
    if value is None or isinstance(value, date):
        return value  # type: ignore[return-value]
    return date.fromisoformat(str(value)[:10])


# ---- batch loads for report data ------------------------------------------------------------------------------------


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), MAX_IDS_PER_QUERY):
        yield list(ids[start:start + MAX_IDS_PER_QUERY])


async def phases_of(*, session: AsyncSession, project_ids: Sequence[int]) -> list[Phase]:
    rows: list[Phase] = []
    for ids in _chunks(project_ids):
        query = select(Phase).where(Phase.project_id.in_(ids)).order_by(Phase.project_id, Phase.seq)  # type: ignore[attr-defined]
        rows.extend((await session.exec(query)).all())
    return rows


async def deliverables_of(
    *, session: AsyncSession, project_ids: Sequence[int]
) -> list[tuple[Deliverable, DeliverableVersion | None]]:
    """Every deliverable of the projects with its newest version (or None), in template order."""
    V = DeliverableVersion
    rows: list[tuple[Deliverable, DeliverableVersion | None]] = []
    for ids in _chunks(project_ids):
        newest = (
            select(V.deliverable_id, func.max(V.version).label("version"))
            .join(Deliverable, Deliverable.id == V.deliverable_id)  # type: ignore[arg-type]
            .where(Deliverable.project_id.in_(ids))  # type: ignore[attr-defined]
            .group_by(V.deliverable_id)
            .subquery()
        )
        latest = aliased(V)
        query = (
            select(Deliverable, latest)
            .outerjoin(newest, newest.c.deliverable_id == Deliverable.id)
            .outerjoin(latest, and_(latest.deliverable_id == newest.c.deliverable_id,  # type: ignore[arg-type]
                                    latest.version == newest.c.version))
            .where(Deliverable.project_id.in_(ids))  # type: ignore[attr-defined]
            .order_by(Deliverable.project_id, Deliverable.seq, Deliverable.id)
        )
        rows.extend((d, v) for d, v in (await session.exec(query)).all())
    return rows


async def register_entries_of(
    *, session: AsyncSession, project_ids: Sequence[int], since: datetime | None = None
) -> list[RegisterEntry]:
    """Register entries of the projects; with ``since`` (naive UTC) only those a report of that period can print:
    created or closed since then, or still open (records such as logs and meetings are never "open")."""
    rows: list[RegisterEntry] = []
    for ids in _chunks(project_ids):
        query = select(RegisterEntry).where(RegisterEntry.project_id.in_(ids))  # type: ignore[attr-defined]
        if since is not None:
            query = query.where(
                or_(
                    RegisterEntry.created_at >= since,  # type: ignore[operator]
                    RegisterEntry.closed_at >= since,  # type: ignore[operator]
                    and_(
                        RegisterEntry.closed_at.is_(None),  # type: ignore[union-attr]
                        RegisterEntry.kind.not_in(RECORD_KINDS),  # type: ignore[attr-defined]
                        RegisterEntry.status.not_in(CLOSED_REGISTER_STATUSES),  # type: ignore[attr-defined]
                    ),
                )
            )
        query = query.order_by(RegisterEntry.project_id, RegisterEntry.kind, RegisterEntry.seq)
        rows.extend((await session.exec(query)).all())
    return rows


async def members_of(*, session: AsyncSession, project_ids: Sequence[int]) -> list[ProjectMember]:
    rows: list[ProjectMember] = []
    for ids in _chunks(project_ids):
        query = (
            select(ProjectMember)
            .where(ProjectMember.project_id.in_(ids))  # type: ignore[attr-defined]
            .order_by(ProjectMember.project_id, ProjectMember.id)
        )
        rows.extend((await session.exec(query)).all())
    return rows


async def approvals_of(*, session: AsyncSession, project_ids: Sequence[int]) -> list[Approval]:
    rows: list[Approval] = []
    for ids in _chunks(project_ids):
        query = (
            select(Approval)
            .where(Approval.project_id.in_(ids))  # type: ignore[union-attr]
            .order_by(Approval.project_id, Approval.created_at, Approval.id)
        )
        rows.extend((await session.exec(query)).all())
    return rows


async def audit_of(*, session: AsyncSession, project_ids: Sequence[int]) -> list[AuditLog]:
    """The whole audit trail of the projects, oldest first (the archive prints all of it)."""
    rows: list[AuditLog] = []
    for ids in _chunks(project_ids):
        query = (
            select(AuditLog)
            .where(AuditLog.project_id.in_(ids))  # type: ignore[union-attr]
            .order_by(AuditLog.project_id, AuditLog.at, AuditLog.id)
        )
        rows.extend((await session.exec(query)).all())
    return rows


# Display names come from the directory's one helper (chunked there).
names_of = display_names


async def weekly_reports_of(
    *, session: AsyncSession, project_id: int, variant: ReportVariant | None = ReportVariant.CLIENT
) -> list[WeeklyReport]:
    """The stored weekly reports of a project, oldest week first (the archive's 客户项目周报 folder)."""
    query = select(WeeklyReport).where(WeeklyReport.project_id == project_id)
    if variant is not None:
        query = query.where(WeeklyReport.variant == variant)
    query = query.order_by(WeeklyReport.iso_year, WeeklyReport.iso_week)
    return list((await session.exec(query)).all())


async def sent_weekly_reports(
    *, session: AsyncSession, iso_year: int, iso_week: int, project_ids: Iterable[int] | None = None
) -> dict[int, datetime]:
    """Project id -> when the first report (either audience) of that ISO week went out, for every project whose
    report already did: the weekly job and ``周报 发送`` both skip those."""
    query = (
        select(WeeklyReport.project_id, func.min(WeeklyReport.sent_at))
        .where(
            WeeklyReport.iso_year == iso_year,
            WeeklyReport.iso_week == iso_week,
            WeeklyReport.sent_at.is_not(None),  # type: ignore[union-attr]
        )
        .group_by(WeeklyReport.project_id)
    )
    if project_ids is not None:
        ids = list(project_ids)
        if not ids:
            return {}
        query = query.where(WeeklyReport.project_id.in_(ids))  # type: ignore[attr-defined]
    return {project_id: sent_at for project_id, sent_at in (await session.exec(query)).all()}


async def projects_by_ids(*, session: AsyncSession, project_ids: Sequence[int]) -> list[Project]:
    rows: list[Project] = []
    for ids in _chunks(project_ids):
        rows.extend((await session.exec(select(Project).where(Project.id.in_(ids)))).all())  # type: ignore[union-attr]
    return rows


__all__ = [
    "CLOSED_REGISTER_STATUSES",
    "DeliverableDue",
    "DigestRow",
    "HIGH_RISK",
    "OPEN_REGISTER_STATUSES",
    "SCAN_CHUNK_ROWS",
    "approvals_of",
    "audit_of",
    "deliverables_of",
    "digest_scan",
    "digest_scan_chunks",
    "members_of",
    "names_of",
    "pending_deliverables_due",
    "pending_deliverables_due_chunks",
    "phases_of",
    "projects_by_ids",
    "register_entries_of",
    "sent_weekly_reports",
    "weekly_reports_of",
]
