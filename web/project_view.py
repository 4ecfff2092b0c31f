"""What a project's pages show, read from the database the way the reports read it.

Rows become report data through ``domain.report_data``'s mappings (``phase_info``, ``deliverable_info``,
``register_entry_info``, ``approval_info``, ``audit_entry``, ``member_info``), so a deliverable is overdue, a name is
shown and a register entry reads here exactly as in the weekly report and the archive. Every read starts from a
project the viewer's scope found (``storage.repo.dashboard.visible_project``); the rest take its id.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from domain.project_facts import FACTS, shown
from domain.report_data import (
    approval_info,
    approval_step_users,
    audit_entry,
    deliverable_info,
    member_info,
    phase_info,
    register_entry_info,
    to_local,
)
from reports.model import ApprovalInfo, AuditEntry, DeliverableInfo, MemberInfo, PhaseInfo, RegisterEntry
from reports.registers_xlsx import SHEETS, Column
from storage.models import DeliverableVersion, Project, RegisterKind, ReportVariant, WeeklyReport
from storage.repo.dashboard import (
    RegisterFilter,
    Scope,
    audit_page,
    register_counts,
    register_entries_page,
    versions_of_project,
    visible_project,
    weekly_reports_of_project,
)
from storage.repo.directory import display_names
from storage.repo.report_queries import approvals_of, deliverables_of, members_of, phases_of
from web.errors import NotFound
from web.portfolio import PortfolioEntry, complete, gather_portfolio

REGISTER_KINDS: tuple[str, ...] = tuple(str(kind) for kind in RegisterKind)


async def project_and_entry(*, session: Any, scope: Scope, code: str, today: date,
                            calendar: Any) -> tuple[Project, PortfolioEntry]:
    """The project ``code`` if the viewer may see it, with its portfolio line (colour, counts, progress): the same
    figures the portfolio shows for it. ``NotFound`` otherwise."""
    project = await visible_project(session=session, scope=scope, code=code)
    if project is None or project.id is None:
        raise NotFound()
    [entry] = await gather_portfolio(session=session, scope=scope, today=today, calendar=calendar,
                                     project_ids=[project.id])
    [entry] = await complete(session=session, entries=[entry])
    return project, entry


# ---- 概况: plan, deliverables, team ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionView:
    id: int
    version: int
    file_name: str  # the stored file's name ("" for a link)
    link: str  # a link submitted instead of a file: shown as text, never made a link
    size: int | None
    submitted_by: str
    submitted_at: datetime | None
    note: str

    @property
    def downloadable(self) -> bool:
        return bool(self.file_name)


@dataclass(frozen=True, slots=True)
class DeliverableView:
    seq: int
    info: DeliverableInfo
    versions: tuple[VersionView, ...]


@dataclass(frozen=True, slots=True)
class Overview:
    phases: tuple[PhaseInfo, ...]
    deliverables: tuple[tuple[str, tuple[DeliverableView, ...]], ...]  # by phase, in plan order
    members: tuple[MemberInfo, ...]
    facts: tuple[tuple[str, str], ...]  # the 立项 facts given (合同编号 …), as the 立项申请表 prints them


def _version_view(version: DeliverableVersion, names: dict[str, str], tz: tzinfo) -> VersionView:
    return VersionView(
        id=version.id or 0, version=version.version,
        file_name=(version.original_name or "附件") if version.file_path else "",
        link=version.link or "", size=version.size, submitted_by=names.get(version.submitted_by, version.submitted_by),
        submitted_at=to_local(version.submitted_at, tz), note=version.note or "",
    )


async def overview(*, session: Any, project: Project, today: date, calendar: Any, tz: tzinfo) -> Overview:
    ids = [project.id]
    phases = await phases_of(session=session, project_ids=ids)
    deliverables = await deliverables_of(session=session, project_ids=ids)
    versions = await versions_of_project(session=session, project_id=project.id)
    members = await members_of(session=session, project_ids=ids)
    people = {d.owner_user_id for d, _ in deliverables} | {v.submitted_by for v in versions}
    names = await display_names(session=session, user_ids={*people, *(m.user_id for m in members)} - {None})
    phase_names = {p.id: p.name for p in phases}
    versions_by: dict[int, list[VersionView]] = defaultdict(list)
    for version in versions:
        versions_by[version.deliverable_id].append(_version_view(version, names, tz))
    grouped: dict[str, list[DeliverableView]] = {p.name: [] for p in phases}
    for deliverable, latest in deliverables:
        phase = phase_names.get(deliverable.phase_id, "") if deliverable.phase_id is not None else ""
        info = deliverable_info(deliverable, latest, phase=phase, names=names, today=today, calendar=calendar, tz=tz)
        grouped.setdefault(phase, []).append(
            DeliverableView(deliverable.seq, info, tuple(versions_by.get(deliverable.id or 0, ()))))
    return Overview(
        phases=tuple(phase_info(p) for p in phases),
        deliverables=tuple((name, tuple(items)) for name, items in grouped.items() if items),
        members=tuple(member_info(m, names=names, customer=project.customer) for m in members),
        facts=tuple((fact.label, shown(project, fact)) for fact in FACTS if getattr(project, fact.attribute)),
    )


# ---- 登记簿 ---------------------------------------------------------------------------------------------------------

REGISTER_STATES = {"": "全部", "open": "未关闭", "closed": "已关闭"}


@dataclass(frozen=True, slots=True)
class RegisterView:
    kind: str
    title: str  # the standard's record name (问题记录表 …)
    columns: tuple[Column, ...]
    entries: tuple[RegisterEntry, ...]
    total: int
    counts: dict[str, tuple[int, int]]  # kind -> (entries, open)


async def register_view(*, session: Any, project: Project, kind: str, state: str, text: str, limit: int,
                        offset: int, tz: tzinfo) -> RegisterView:
    rows, total = await register_entries_page(
        session=session, project_id=project.id, limit=limit, offset=offset,
        wanted=RegisterFilter(kind=RegisterKind(kind), state=state, text=text))
    people = {user for entry in rows for user in (entry.owner_user_id, entry.created_by) if user}
    names = await display_names(session=session, user_ids=people)
    title, columns = SHEETS[kind]
    counts = await register_counts(session=session, project_id=project.id)
    return RegisterView(kind, title, columns, tuple(register_entry_info(e, names=names, tz=tz) for e in rows), total,
                        counts)


# ---- 审批 -------------------------------------------------------------------------------------------------------------


async def approvals(*, session: Any, project: Project, tz: tzinfo) -> list[ApprovalInfo]:
    """The project's approvals, newest first, with their steps."""
    rows = await approvals_of(session=session, project_ids=[project.id])
    people = {a.requester_user_id for a in rows} | {user for a in rows for user in approval_step_users(a)}
    names = await display_names(session=session, user_ids=people)
    return [approval_info(a, names=names, tz=tz) for a in reversed(rows)]


# ---- 周报与文档 ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeeklyReportLine:
    id: int
    label: str  # 2026年第45周
    variant: str  # 客户版 / 内部版
    sent_at: datetime | None
    downloadable: bool


def weekly_label(report: WeeklyReport) -> str:
    return f"{report.iso_year}年第{report.iso_week}周"


async def weekly_reports(*, session: Any, project: Project, tz: tzinfo) -> list[WeeklyReportLine]:
    rows = await weekly_reports_of_project(session=session, project_id=project.id)
    return [WeeklyReportLine(r.id or 0, weekly_label(r), str(r.variant), to_local(r.sent_at, tz), bool(r.file_path))
            for r in rows]


def report_file_name(project: Project, report: WeeklyReport) -> str:
    kind = "客户项目周报" if report.variant == ReportVariant.CLIENT else "项目内部周报"
    return f"{kind}_{project.code}_{report.iso_year}-W{report.iso_week:02d}.docx"


# ---- 操作记录 -------------------------------------------------------------------------------------------------------


async def audit_trail(*, session: Any, project: Project, limit: int, offset: int,
                      tz: tzinfo) -> tuple[list[AuditEntry], int]:
    rows, total = await audit_page(session=session, project_id=project.id, limit=limit, offset=offset)
    names = await display_names(session=session, user_ids={r.actor_user_id for r in rows if r.actor_user_id})
    return [audit_entry(r, names=names, tz=tz) for r in rows], total


__all__ = [
    "DeliverableView",
    "Overview",
    "REGISTER_KINDS",
    "REGISTER_STATES",
    "RegisterView",
    "VersionView",
    "WeeklyReportLine",
    "approvals",
    "audit_trail",
    "overview",
    "project_and_entry",
    "register_view",
    "report_file_name",
    "weekly_label",
    "weekly_reports",
]
