"""Leaders' digest: every active project on one screen, with a traffic-light health status."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from .formatting import fmt_date, fmt_percent, fmt_short_date, one_line, or_blank
from .model import ProjectReportData, RegisterKind
from .user_text import md_literal


class HealthStatus(StrEnum):
    ON_TRACK = "正常"
    AT_RISK = "有风险"
    LATE = "延期"


HEALTH_ICONS = {HealthStatus.ON_TRACK: "🟢", HealthStatus.AT_RISK: "🟡", HealthStatus.LATE: "🔴"}
# The same lights as text colours, for documents (a printer or an office suite may lack the emoji).
HEALTH_COLOURS = {HealthStatus.ON_TRACK: "2E7D32", HealthStatus.AT_RISK: "B7791F", HealthStatus.LATE: "C62828"}
_SEVERITY = {HealthStatus.LATE: 0, HealthStatus.AT_RISK: 1, HealthStatus.ON_TRACK: 2}


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    late_overdue_working_days: int = 5  # a required deliverable this late makes the project 延期
    at_risk_overdue_count: int = 1  # this many overdue deliverables make it 有风险
    at_risk_high_risks: int = 1  # this many open high risks make it 有风险


@dataclass(frozen=True, slots=True)
class ProjectHealth:
    status: HealthStatus
    reasons: tuple[str, ...] = ()

    @property
    def icon(self) -> str:
        return HEALTH_ICONS[self.status]

    @property
    def label(self) -> str:
        return f"{self.icon} {self.status}"

    @property
    def colour(self) -> str:
        return HEALTH_COLOURS[self.status]


def project_health(
    *,
    today: date,
    planned_end: date | None,
    finished: bool = False,
    required_overdue_working_days: Iterable[int] = (),
    overdue_count: int = 0,
    open_high_risks: int = 0,
    thresholds: HealthThresholds = HealthThresholds(),
) -> ProjectHealth:
    """Traffic-light status of a project.

    Rule (thresholds are parameters, defaults in brackets):

    * 🔴 延期 when the project is not finished and either its planned end date has passed, or any
      required deliverable is overdue by at least ``late_overdue_working_days`` [5] working days.
    * 🟡 有风险 otherwise, when at least ``at_risk_overdue_count`` [1] deliverables are overdue, or at
      least ``at_risk_high_risks`` [1] open risks are high (高 in one dimension and at least 中 in the
      other).
    * 🟢 正常 otherwise; a finished project is always 正常.

    ``required_overdue_working_days`` holds the working days overdue of each overdue *required*
    deliverable; ``overdue_count`` counts all overdue deliverables (required or not).
    """
    if finished:
        return ProjectHealth(HealthStatus.ON_TRACK)
    days = [d for d in required_overdue_working_days if d > 0]
    late: list[str] = []
    if planned_end is not None and planned_end < today:
        late.append(f"计划完成日 {fmt_date(planned_end)} 已过")
    worst = max(days, default=0)
    if worst >= thresholds.late_overdue_working_days:
        late.append(f"交付物最长逾期 {worst} 个工作日")
    if late:
        return ProjectHealth(HealthStatus.LATE, tuple(late))
    risky: list[str] = []
    overdue_count = max(overdue_count, len(days))
    if thresholds.at_risk_overdue_count > 0 and overdue_count >= thresholds.at_risk_overdue_count:
        risky.append(f"{overdue_count} 项交付物逾期")
    if thresholds.at_risk_high_risks > 0 and open_high_risks >= thresholds.at_risk_high_risks:
        risky.append(f"{open_high_risks} 个高风险未关闭")
    if risky:
        return ProjectHealth(HealthStatus.AT_RISK, tuple(risky))
    return ProjectHealth(HealthStatus.ON_TRACK)


def health_of(data: ProjectReportData, thresholds: HealthThresholds = HealthThresholds()) -> ProjectHealth:
    """``project_health`` fed from a project's report data."""
    overdue = [d for d in data.deliverables if d.is_overdue]
    return project_health(
        today=data.today,
        planned_end=data.project.planned_end,
        finished=data.project.is_finished,
        required_overdue_working_days=[max(d.overdue_working_days, 1) for d in overdue if d.required],
        overdue_count=len(overdue),
        open_high_risks=sum(1 for e in data.entries(RegisterKind.RISK) if e.is_open and e.is_high_risk),
        thresholds=thresholds,
    )


@dataclass(frozen=True, slots=True)
class DigestRow:
    data: ProjectReportData
    health: ProjectHealth
    overdue: int
    worst_overdue_days: int
    pending_approvals: int


def digest_rows(projects: Iterable[ProjectReportData],
                thresholds: HealthThresholds = HealthThresholds()) -> list[DigestRow]:
    """Active projects, worst first (延期, then 有风险, then by overdue count)."""
    rows = []
    for data in projects:
        if data.project.is_finished:
            continue
        overdue = [d for d in data.deliverables if d.is_overdue]
        rows.append(DigestRow(
            data=data,
            health=health_of(data, thresholds),
            overdue=len(overdue),
            worst_overdue_days=max((d.overdue_working_days for d in overdue), default=0),
            pending_approvals=sum(1 for a in data.approvals if a.is_pending),
        ))
    rows.sort(key=lambda r: worst_first(r.health.status, r.overdue, r.worst_overdue_days, r.data.project.code))
    return rows


def worst_first(status: HealthStatus, overdue: int, worst_overdue_days: int, code: str) -> tuple[int, int, int, str]:
    """The digest's order as a sort key: 延期, then 有风险, then 正常; within each, more overdue deliverables first,
    then the longest overdue, then by code."""
    return _SEVERITY[status], -overdue, -worst_overdue_days, code


def _block(row: DigestRow) -> list[str]:
    p = row.data.project
    facts = [f"阶段：{or_blank(p.phase)}", f"进度 {fmt_percent(p.progress)}", f"项目经理 {md_literal(or_blank(p.pm_name))}"]
    if p.planned_end:
        facts.append(f"计划完成 {fmt_short_date(p.planned_end)}")
    lines = [f"#### {row.health.icon} {md_literal(p.name)}", f"- {'｜'.join(facts)}"]
    counts = [f"逾期交付物 {row.overdue} 项" + (f"（最长 {row.worst_overdue_days} 个工作日）" if row.overdue else ""),
              f"待审批 {row.pending_approvals} 项"]
    lines.append(f"- {'｜'.join(counts)}")
    if row.health.reasons:
        lines.append(f"- {row.health.status}原因：{'；'.join(row.health.reasons)}")
    if p.status not in ("", "进行中"):
        lines.append(f"- 项目状态：{p.status}")
    return lines


def render_leaders_digest(projects: Sequence[ProjectReportData], *, today: date,
                          thresholds: HealthThresholds = HealthThresholds(), max_chars: int = 3500) -> tuple[str, str]:
    """``(title, markdown)``: a summary line, then one block per project, worst first.

    Only ``project``, ``deliverables`` (the overdue ones suffice), ``approvals`` (the pending ones) and
    the risk entries of ``registers`` are read, so a digest job can fill just those per project.

    When the blocks do not fit in ``max_chars`` the 正常 projects collapse into a single line of names,
    then the 有风险 ones, so the late projects are always shown in full.
    """
    rows = digest_rows(projects, thresholds)
    title = f"项目周览｜{fmt_date(today)}"
    by_status = {s: [r for r in rows if r.health.status == s] for s in HealthStatus}
    head = [
        f"### 在建项目周览（{fmt_date(today)}）",
        f"共 {len(rows)} 个在建项目：🔴 延期 {len(by_status[HealthStatus.LATE])} ｜ "
        f"🟡 有风险 {len(by_status[HealthStatus.AT_RISK])} ｜ 🟢 正常 {len(by_status[HealthStatus.ON_TRACK])}",
        "",
        f"- 逾期交付物合计 {sum(r.overdue for r in rows)} 项",
        f"- 待审批事项合计 {sum(r.pending_approvals for r in rows)} 项",
    ]
    if not rows:
        return title, "\n".join([*head, "", "目前没有在建项目。"])

    def compose(collapsed: set[HealthStatus]) -> str:
        lines = list(head)
        for status in (HealthStatus.LATE, HealthStatus.AT_RISK, HealthStatus.ON_TRACK):
            group = by_status[status]
            if not group:
                continue
            if status in collapsed:
                names = "、".join(md_literal(one_line(r.data.project.name, 24)) for r in group)
                lines += ["", f"#### {HEALTH_ICONS[status]} {status}（{len(group)} 个）", names]
            else:
                for r in group:
                    lines += ["", *_block(r)]
        lines += ["", f"> 规则：必交付物逾期 ≥{thresholds.late_overdue_working_days} 个工作日或已过计划完成日为延期；"
                      "有逾期交付物或高风险未关闭为有风险。"]
        return "\n".join(lines)

    for collapsed in (set(), {HealthStatus.ON_TRACK}, {HealthStatus.ON_TRACK, HealthStatus.AT_RISK}):
        text = compose(collapsed)
        if len(text) <= max_chars:
            return title, text
    tail = "\n\n…（项目较多，仅显示部分）"
    return title, text[: max_chars - len(tail)] + tail
