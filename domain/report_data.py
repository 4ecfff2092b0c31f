"""Database rows -> ``reports.model``: the one place that knows how a stored project becomes report data.

Every report, document and archive is rendered from a ``ProjectReportData``; the 周报 commands and job, the 文档
command, the reminders, the digest, ``dingpm archive`` and the 归档/交接 commands all get it from here, so a column
added to the storage layer is mapped once. Loading is batched: ``gather_project_reports`` runs one statement per table
for any number of projects (``project_id IN …``), never one per project.

Conventions applied here, so that rendering stays pure:

* datetimes are stored naive UTC and handed to reports as naive local time (``tz``, Asia/Shanghai by default);
* a deliverable is overdue when it is 待提交 and its due date has passed; it is late by the working days since
  (``WorkCalendar.workdays_between(due, today)``, at least 1): due on a Friday, it is 1 day late on Monday, 2 on
  Tuesday; ``progress_percent`` counts the required one-off deliverables and final registers submitted or waived
  (the rule of the lifecycle commands' overview);
* names are display names from ``users`` (the user id when the bot never saw the person);
* a register entry's ``extra`` JSON may carry ``措施`` (a risk's measures, printed after its response),
  ``related_to_client``, ``needs_client``, ``reporter``, ``priority``, ``attendees``, ``location``; the rest is
  passed on as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.audit_labels import action_label, entity_label
from domain.project_facts import money_text
from reports.model import (
    ApprovalInfo,
    ApprovalStep,
    AuditEntry,
    DeliverableInfo,
    MemberInfo,
    PhaseInfo,
    ProjectReportData,
    ProjectSummary,
    WeeklyIssueCount,
    WeeklyPeriod,
)
from reports.model import (
    RegisterEntry as ReportEntry,
)
from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    Approval,
    ApprovalKind,
    ApprovalResult,
    ApprovalStatus,
    AuditLog,
    Deliverable,
    DeliverableStatus,
    DeliverableVersion,
    MemberRole,
    Phase,
    Project,
    ProjectMember,
    ProjectStatus,
    Recurrence,
    RegisterEntry,
    RegisterKind,
)
from storage.repo.directory import display_mobiles
from storage.repo.report_queries import (
    SCAN_CHUNK_ROWS,
    DeliverableDue,
    DigestRow,
    approvals_of,
    audit_of,
    deliverables_of,
    digest_scan_chunks,
    members_of,
    names_of,
    phases_of,
    register_entries_of,
)
from storage.templates import client_visible
from storage.workdays import WorkCalendar

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
ISSUE_CHART_WEEKS = 8  # weeks shown by the issues-per-week chart of the weekly report
OUR_SIDE = "我方"

_APPROVAL_KINDS = {
    ApprovalKind.INITIATION: "项目立项",
    ApprovalKind.SCHEDULE_CHANGE: "项目进度变更",
    ApprovalKind.CHANGE_REQUEST: "变更",
}
_EXTRA_FIELDS = ("reporter", "priority", "needs_client", "attendees", "location", "related_to_client", "措施")
_TRUE = {"1", "true", "yes", "y", "是", "需要", "需客户"}

_Chunk = TypeVar("_Chunk")
_Out = TypeVar("_Out")


# ---- small conversions ----------------------------------------------------------------------------------------


def to_local(value: datetime | None, tz: tzinfo = DEFAULT_TZ) -> datetime | None:
    """A stored naive-UTC datetime as naive local time (what reports print)."""
    if value is None:
        return None
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(tz).replace(tzinfo=None)


def local_date(value: datetime | None, tz: tzinfo = DEFAULT_TZ) -> date | None:
    local = to_local(value, tz)
    return local.date() if local is not None else None


def utc_start_of(day: date, tz: tzinfo = DEFAULT_TZ) -> datetime:
    """Local midnight of ``day`` as naive UTC, for comparing with stored timestamps."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def overdue_working_days(calendar: WorkCalendar, due: date | None, today: date) -> int:
    """Working days a deliverable due on ``due`` is late as of ``today``: 0 until the day after the due date, then at
    least 1 (due on a Sunday, it is 1 day late on Monday), the same rule as the deliverable list
    (``handlers._common.overdue_days``)."""
    if due is None or due >= today:
        return 0
    return max(1, calendar.workdays_between(due, today))


# Deliverables the progress figure counts: one-off documents and the final version of a living register. Daily logs,
# weekly reports, per-cycle and per-event documents recur and never "finish" anything.
PROGRESS_RECURRENCES = frozenset({Recurrence.NONE, Recurrence.CONTINUOUS})


def counts_toward_progress(deliverable: Deliverable) -> bool:
    return deliverable.required and deliverable.recurrence in PROGRESS_RECURRENCES


def progress_percent(deliverables: Iterable[Deliverable]) -> float:
    """Share of the counted deliverables (required, one-off or final register) submitted or waived, in percent."""
    counted = [d for d in deliverables if counts_toward_progress(d)]
    if not counted:
        return 0.0
    done = sum(1 for d in counted if d.status != DeliverableStatus.PENDING)
    return round(100.0 * done / len(counted), 1)


def issue_window_start(period: WeeklyPeriod, tz: tzinfo = DEFAULT_TZ) -> datetime:
    """Naive UTC start of the oldest week a weekly report looks at (its issue chart)."""
    return utc_start_of(period.monday - timedelta(weeks=ISSUE_CHART_WEEKS - 1), tz)


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# ---- mapping one row at a time ----------------------------------------------------------------------------------


def _name(names: Mapping[str, str], user_id: str | None) -> str:
    return names.get(user_id, user_id) if user_id else ""


def _name_and_id(names: Mapping[str, str], user_id: str | None) -> str:
    """``王建国（wangjianguo）``: the audit log names people and keeps the id an auditor can match (a name may be shared,
    and change)."""
    name = _name(names, user_id)
    return f"{name}（{user_id}）" if user_id and name != user_id else name


def phase_info(phase: Phase) -> PhaseInfo:
    return PhaseInfo(
        name=phase.name,
        planned_start=phase.planned_start,
        planned_end=phase.planned_end,
        actual_start=phase.actual_start,
        actual_end=phase.actual_end,
        gate_passed=phase.gate_passed_at is not None,
    )


def deliverable_info(
    deliverable: Deliverable,
    version: DeliverableVersion | None,
    *,
    phase: str,
    names: Mapping[str, str],
    today: date,
    calendar: WorkCalendar,
    tz: tzinfo = DEFAULT_TZ,
) -> DeliverableInfo:
    late = 0
    if deliverable.status == DeliverableStatus.PENDING:
        late = overdue_working_days(calendar, deliverable.due_date, today)
    submitted = deliverable.submitted_at or (version.submitted_at if version is not None else None)
    return DeliverableInfo(
        phase=phase,
        name=deliverable.name,
        owner_name=_name(names, deliverable.owner_user_id),
        due=deliverable.due_date,
        status=str(deliverable.status),
        required=deliverable.required,
        overdue=late > 0,
        overdue_working_days=late,
        latest_file_name=(version.original_name or version.link) if version is not None else None,
        latest_version=version.version if version is not None else None,
        submitted_on=local_date(submitted, tz) if deliverable.status == DeliverableStatus.SUBMITTED else None,
        counted=counts_toward_progress(deliverable),
        recurring=deliverable.recurrence not in PROGRESS_RECURRENCES,
        internal=not client_visible(deliverable.flags),
    )


def register_entry_info(entry: RegisterEntry, *, names: Mapping[str, str], tz: tzinfo = DEFAULT_TZ) -> ReportEntry:
    extra = dict(entry.extra or {})
    return ReportEntry(
        kind=str(entry.kind),
        seq=entry.seq,
        title=entry.title,
        owner_name=_name(names, entry.owner_user_id),
        status=str(entry.status),
        created_at=to_local(entry.created_at, tz),
        closed_at=to_local(entry.closed_at, tz),
        content=entry.content or "",
        resolution=entry.resolution or "",
        reporter_name=_text(extra.get("reporter")) or (_name(names, entry.created_by)
                                                      if entry.kind == RegisterKind.ISSUE else ""),
        priority=_text(extra.get("priority")),
        due=entry.due_date,
        needs_client=_truthy(extra.get("needs_client", False)),
        probability=_text(entry.probability),
        impact=_text(entry.impact),
        response=_text(entry.response) + (f"：{extra['措施']}" if extra.get("措施") else ""),
        meeting_type=entry.meeting_type or "",
        attendees=_text(extra.get("attendees")),
        location=_text(extra.get("location")),
        version=entry.version or "",
        related_to_client=_truthy(extra.get("related_to_client", False)),
        extra={str(k): _text(v) for k, v in extra.items() if k not in _EXTRA_FIELDS},
    )


def approval_info(approval: Approval, *, names: Mapping[str, str], tz: tzinfo = DEFAULT_TZ) -> ApprovalInfo:
    if approval.status == ApprovalStatus.RUNNING:
        status = "审批中"
    elif approval.status == ApprovalStatus.TERMINATED:
        status = "已撤销"
    elif approval.result == ApprovalResult.REFUSE:
        status = "已拒绝"
    else:
        status = "已通过"
    form = approval.form_values or {}
    kind = _APPROVAL_KINDS.get(approval.kind, str(approval.kind))
    title = _text(form.get("标题") or form.get("title") or form.get("变更事项") or form.get("原因")) or kind
    if approval.steps is None:
        steps = _steps_from_remarks(approval, names=names, tz=tz)
    else:
        steps = tuple(
            ApprovalStep(actor_name=_name(names, step.get("user")) or "—", action=_text(step.get("action")),
                         at=to_local(_stored_time(step.get("at")), tz), remark=_text(step.get("remark")))
            for step in approval.steps if isinstance(step, dict)
        )
    return ApprovalInfo(
        kind=kind,
        title=title,
        status=status,
        result=_text(approval.result),
        requester_name=_name(names, approval.requester_user_id),
        created_at=to_local(approval.created_at, tz),
        finished_at=to_local(approval.decided_at, tz),
        remarks=approval.remarks or "",
        steps=steps,
        instance_id=approval.process_instance_id,
    )


_REMARK_LINE = re.compile(r"^(?P<name>.+?)（(?P<verdict>同意|拒绝)）(?:：(?P<remark>.*))?$")


def _steps_from_remarks(approval: Approval, *, names: Mapping[str, str], tz: tzinfo) -> tuple[ApprovalStep, ...]:
    """The steps of an approval decided before steps were kept: the submission, then each ``刘强（同意）：意见``
    line of its remarks (their times were not kept)."""
    steps = [ApprovalStep(_name(names, approval.requester_user_id), "发起", to_local(approval.created_at, tz))]
    for line in (approval.remarks or "").splitlines():
        found = _REMARK_LINE.match(line.strip())
        if found:
            steps.append(ApprovalStep(found["name"], found["verdict"], None, found["remark"] or ""))
    return tuple(steps)


def approval_step_users(approval: Approval) -> list[str]:
    return [str(step.get("user")) for step in approval.steps or () if isinstance(step, dict) and step.get("user")]


def _stored_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


def audit_entry(record: AuditLog, *, names: Mapping[str, str], tz: tzinfo = DEFAULT_TZ) -> AuditEntry:
    target = f"{entity_label(record.entity)}{'#' + record.entity_id if record.entity_id else ''}"
    detail = ""
    if record.after:
        detail = "；".join(f"{k}={v}" for k, v in record.after.items())[:500]
    return AuditEntry(
        at=to_local(record.at, tz) or record.at,
        actor_name=_name_and_id(names, record.actor_user_id) or "机器人",
        action=action_label(record.action),
        target=target,
        detail=detail,
    )


def member_info(member: ProjectMember, *, names: Mapping[str, str], customer: str | None,
                phones: Mapping[str, str] | None = None) -> MemberInfo:
    client = member.role == MemberRole.CLIENT
    return MemberInfo(
        name=_name(names, member.user_id),
        role=str(member.role),
        phone=(phones or {}).get(member.user_id, ""),
        # reports.documents splits the sides by comparing with the project's customer name.
        organization=(customer or "") if client else OUR_SIDE,
    )


def issue_counts(entries: Iterable[ReportEntry], period: WeeklyPeriod, weeks: int = ISSUE_CHART_WEEKS,
                 since: date | None = None) -> tuple[WeeklyIssueCount, ...]:
    """Issues opened and closed in each of the ``weeks`` weeks ending with ``period``, none before the week of
    ``since`` (the project's start: a chart of weeks before the project existed says nothing)."""
    start = period.monday - timedelta(weeks=weeks - 1)
    if since is not None:
        start = min(max(start, since), period.monday)
    periods = []
    current = WeeklyPeriod.containing(start)
    while current.monday <= period.monday:
        periods.append(current)
        current = current.next()
    opened: dict[WeeklyPeriod, int] = defaultdict(int)
    closed: dict[WeeklyPeriod, int] = defaultdict(int)
    for e in entries:
        if e.kind != RegisterKind.ISSUE:
            continue
        for p in periods:
            if p.contains(e.created_at):
                opened[p] += 1
            if p.contains(e.closed_at):
                closed[p] += 1
    return tuple(WeeklyIssueCount(p.iso_year, p.iso_week, opened[p], closed[p]) for p in periods)


def project_start(project: Project, tz: tzinfo = DEFAULT_TZ) -> date | None:
    """The first day the project existed or was planned to start, whichever came first."""
    known = [d for d in (local_date(project.created_at, tz), project.planned_start, project.actual_start) if d]
    return min(known, default=None)


def project_summary(
    project: Project,
    *,
    names: Mapping[str, str],
    members: Sequence[ProjectMember],
    deliverables: Sequence[Deliverable],
    phones: Mapping[str, str] | None = None,
) -> ProjectSummary:
    def first(role: MemberRole) -> str:
        return next((_name(names, m.user_id) for m in members if m.role == role), "")

    return ProjectSummary(
        code=project.code,
        name=project.name,
        customer=project.customer or "",
        template=project.template,
        status=str(project.status),
        phase=project.current_phase or "",
        pm_name=_name(names, project.pm_user_id),
        pm_phone=(phones or {}).get(project.pm_user_id or "", ""),
        planned_start=project.planned_start,
        planned_end=project.planned_end,
        actual_start=project.actual_start,
        actual_end=project.actual_end,
        progress=progress_percent(deliverables),
        sales_name=first(MemberRole.SALES),
        customer_contact=first(MemberRole.CLIENT),
        contract_no=project.contract_no or "",
        contract_amount=money_text(project.contract_amount),
        background=project.background or "",
        objectives=project.objectives or "",
        scope=project.scope or "",
    )


# ---- gathering ----------------------------------------------------------------------------------------------------


async def gather_project_reports(
    *,
    session: AsyncSession,
    projects: Sequence[Project],
    today: date,
    calendar: WorkCalendar,
    tz: tzinfo = DEFAULT_TZ,
    period: WeeklyPeriod | None = None,
    registers_since: datetime | None = None,
    include_audit: bool = False,
    company_name: str = "",
) -> dict[int, ProjectReportData]:
    """Report data of every project in ``projects``, by project id, in one statement per table.

    ``today``: the local "as of" date (overdue days are counted to it). ``period``: the reported week (default: the
    week of ``today``). ``registers_since`` (naive UTC): load only the register entries a report of that period can
    print, e.g. ``issue_window_start(period, tz)`` for a weekly report; None loads every entry (documents, archive).
    ``include_audit``: the audit trail too (the archive prints it; reports do not).
    """
    if not projects:
        return {}
    ids = [p.id for p in projects if p.id is not None]
    phases = await phases_of(session=session, project_ids=ids)
    deliverables = await deliverables_of(session=session, project_ids=ids)
    entries = await register_entries_of(session=session, project_ids=ids, since=registers_since)
    members = await members_of(session=session, project_ids=ids)
    approvals = await approvals_of(session=session, project_ids=ids)
    audit = await audit_of(session=session, project_ids=ids) if include_audit else []

    user_ids: set[str] = set()
    user_ids.update(p.pm_user_id for p in projects if p.pm_user_id)
    user_ids.update(d.owner_user_id for d, _ in deliverables if d.owner_user_id)
    user_ids.update(u for e in entries for u in (e.owner_user_id, e.created_by) if u)
    user_ids.update(m.user_id for m in members)
    user_ids.update(a.requester_user_id for a in approvals)
    user_ids.update(u for a in approvals for u in approval_step_users(a))
    user_ids.update(r.actor_user_id for r in audit if r.actor_user_id)
    names = await names_of(session=session, user_ids=user_ids)
    # The team's mobiles, from the directory: the PM's beside their name on client reports, everyone's in 通讯录.
    phones = await display_mobiles(
        session=session, user_ids={p.pm_user_id for p in projects} | {m.user_id for m in members})

    phases_by: dict[int, list[Phase]] = defaultdict(list)
    phase_names: dict[int, str] = {}
    for ph in phases:
        phases_by[ph.project_id].append(ph)
        if ph.id is not None:
            phase_names[ph.id] = ph.name
    deliverables_by: dict[int, list[DeliverableInfo]] = defaultdict(list)
    rows_by: dict[int, list[Deliverable]] = defaultdict(list)
    for d, version in deliverables:
        rows_by[d.project_id].append(d)
        phase = phase_names.get(d.phase_id, "") if d.phase_id is not None else ""
        deliverables_by[d.project_id].append(
            deliverable_info(d, version, phase=phase, names=names, today=today, calendar=calendar, tz=tz))
    entries_by: dict[int, list[ReportEntry]] = defaultdict(list)
    for e in entries:
        entries_by[e.project_id].append(register_entry_info(e, names=names, tz=tz))
    members_by: dict[int, list[ProjectMember]] = defaultdict(list)
    for m in members:
        members_by[m.project_id].append(m)
    approvals_by: dict[int, list[ApprovalInfo]] = defaultdict(list)
    for a in approvals:
        if a.project_id is not None:
            approvals_by[a.project_id].append(approval_info(a, names=names, tz=tz))
    audit_by: dict[int, list[AuditEntry]] = defaultdict(list)
    for r in audit:
        if r.project_id is not None:
            audit_by[r.project_id].append(audit_entry(r, names=names, tz=tz))

    week = period or WeeklyPeriod.containing(today)
    result: dict[int, ProjectReportData] = {}
    for project in projects:
        pid = project.id
        if pid is None:
            continue
        project_deliverables = tuple(deliverables_by[pid])
        project_entries = tuple(entries_by[pid])
        result[pid] = ProjectReportData(
            project=project_summary(project, names=names, members=members_by[pid], deliverables=rows_by[pid],
                                    phones=phones),
            today=today,
            phases=tuple(phase_info(ph) for ph in phases_by[pid]),
            deliverables=project_deliverables,
            registers=project_entries,
            members=tuple(member_info(m, names=names, customer=project.customer, phones=phones)
                          for m in members_by[pid]),
            approvals=tuple(approvals_by[pid]),
            audit=tuple(audit_by[pid]),
            issue_counts=issue_counts(project_entries, week, since=project_start(project, tz)),
            period=period,
            company_name=company_name,
        )
    return result


async def gather_project_report(
    *,
    session: AsyncSession,
    project: Project,
    today: date,
    calendar: WorkCalendar,
    tz: tzinfo = DEFAULT_TZ,
    period: WeeklyPeriod | None = None,
    weekly: bool = False,
    include_audit: bool = False,
    company_name: str = "",
) -> ProjectReportData:
    """Report data of one project. ``weekly=True`` loads only what the week's report prints (recent and open
    register entries); otherwise every entry (documents, 交接, archive)."""
    week = period or WeeklyPeriod.containing(today)
    gathered = await gather_project_reports(
        session=session, projects=[project], today=today, calendar=calendar, tz=tz, period=period,
        registers_since=issue_window_start(week, tz) if weekly else None, include_audit=include_audit,
        company_name=company_name,
    )
    return gathered[project.id]  # type: ignore[index]


# ---- scans: reminders and the leaders' digest ------------------------------------------------------------------

# The digest lists paused projects too (leaders want to see what is stuck); their deadlines do not run, so they count
# no overdue deliverables.
DIGEST_PROJECT_STATUSES: tuple[ProjectStatus, ...] = (*ACTIVE_PROJECT_STATUSES, ProjectStatus.PAUSED)


_PENDING = DeliverableStatus.PENDING.value  # an enum member's .value is a descriptor call: once, not once per row


def due_deliverable_info(row: DeliverableDue, *, late: int) -> DeliverableInfo:
    """A scanned pending deliverable as report data, ``late`` working days overdue (``overdue_working_days`` of its
    due date: the caller computes it once per date, not once per row)."""
    return DeliverableInfo(
        phase=row.phase or "",
        name=row.name,
        owner_name=row.owner_name or row.owner_user_id or "",
        due=row.due,
        status=_PENDING,
        required=row.required,
        overdue=late > 0,
        overdue_working_days=late,
    )


def due_project_summary(row: DeliverableDue) -> ProjectSummary:
    """The project of a scanned deliverable, as much as a reminder prints."""
    return ProjectSummary(
        code=row.project_code, name=row.project_name, customer=row.customer or "", template="", status="",
        phase=row.project_phase or "", pm_name=row.pm_name or row.pm_user_id or "",
    )


def digest_summary(row: DigestRow) -> ProjectSummary:
    return ProjectSummary(
        code=row.code, name=row.name, customer=row.customer or "", template=row.template,
        status=str(row.status), phase=row.current_phase or "", pm_name=row.pm_name or row.pm_user_id or "",
        planned_start=row.planned_start, planned_end=row.planned_end, actual_start=row.actual_start,
        actual_end=row.actual_end,
    )


async def map_chunks_off_loop(chunks: AsyncIterator[_Chunk], work: Callable[[_Chunk], list[_Out]]) -> list[_Out]:
    """``work`` on each chunk of a streamed scan, in a worker thread (mapping thousands of rows is CPU work: not on
    the event loop), the results concatenated in order.

    One chunk at a time, not overlapping the read of the next: the reading thread (aiosqlite's, or the event loop
    for asyncpg) would then wait for the GIL at every row or packet while the worker holds it, which was slower."""
    results: list[_Out] = []
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            results.extend(await asyncio.to_thread(work, chunk))
    return results


async def gather_digest_data(
    *,
    session: AsyncSession,
    today: date,
    calendar: WorkCalendar,
    tz: tzinfo = DEFAULT_TZ,
    statuses: Sequence[ProjectStatus] = DIGEST_PROJECT_STATUSES,
    chunk_rows: int = SCAN_CHUNK_ROWS,
) -> list[ProjectReportData]:
    """What ``reports.digest.render_leaders_digest`` reads, for every project of ``statuses``, from one statement
    (``digest_scan``, streamed in chunks of ``chunk_rows`` projects): the project, its overdue deliverables, open high
    risks and running approvals."""
    chunks = digest_scan_chunks(session=session, today=today, statuses=statuses, chunk_rows=chunk_rows)
    return await map_chunks_off_loop(chunks, functools.partial(build_digest_data, today=today, calendar=calendar))


def build_digest_data(rows: Sequence[DigestRow], *, today: date, calendar: WorkCalendar) -> list[ProjectReportData]:
    """The pure half of ``gather_digest_data``.

    The digest prints counts, so the database counts: a project's overdue deliverables arrive as a number and the
    two oldest due dates. They are handed to the renderer as that many anonymous overdue items whose lateness
    reproduces what ``reports.digest.health_of`` and the digest read (the count, the worst lateness overall and
    among required deliverables); likewise the high risks and the pending approvals.
    """
    result = []
    for row in rows:
        items: list[DeliverableInfo] = []
        if row.overdue:
            worst_required = overdue_working_days(calendar, row.oldest_required_due, today)
            worst = overdue_working_days(calendar, row.oldest_due, today)
            if row.oldest_required_due is not None:
                items.append(DeliverableInfo(phase="", name="", due=row.oldest_required_due, required=True,
                                             overdue=True, overdue_working_days=worst_required))
            if worst > worst_required or row.oldest_required_due is None:
                items.append(DeliverableInfo(phase="", name="", due=row.oldest_due, required=False, overdue=True,
                                             overdue_working_days=worst))
            filler = DeliverableInfo(phase="", name="", required=False, overdue=True, overdue_working_days=1)
            items.extend([filler] * (row.overdue - len(items)))
        result.append(ProjectReportData(
            project=digest_summary(row),
            today=today,
            deliverables=tuple(items),
            registers=tuple(ReportEntry(kind=RegisterKind.RISK.value, seq=n, title="", probability="高", impact="高")
                            for n in range(1, row.high_risks + 1)),
            approvals=tuple(ApprovalInfo(kind="", title="") for _ in range(row.pending_approvals)),
        ))
    return result


__all__ = [
    "DEFAULT_TZ",
    "DIGEST_PROJECT_STATUSES",
    "build_digest_data",
    "due_deliverable_info",
    "due_project_summary",
    "gather_digest_data",
    "approval_info",
    "deliverable_info",
    "gather_project_report",
    "gather_project_reports",
    "issue_counts",
    "issue_window_start",
    "local_date",
    "map_chunks_off_loop",
    "overdue_working_days",
    "progress_percent",
    "project_summary",
    "register_entry_info",
    "to_local",
    "utc_start_of",
]
