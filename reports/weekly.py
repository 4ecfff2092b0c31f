"""客户项目周报: the weekly client report as a DingTalk markdown message and as a Word document.

The standard asks for a weekly report to the client on the current phase, the main work done this week
and next week's plan (《项目实施规范》 4 监控阶段). The content is chosen once by ``weekly_content`` and
printed twice, so the chat message and the .docx never disagree. The internal variant adds what the
standard's 审核报告 tells leaders: overdue deliverables and their owners, open risks and responses,
pending approvals and the team's workload.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from .digest import ProjectHealth, health_of
from .docx_fonts import DEFAULT_FONTS, DocxFonts
from .formatting import (
    fmt_date,
    fmt_percent,
    fmt_period,
    fmt_short_date,
    one_line,
    or_blank,
    progress_bar,
    truncated,
)
from .user_text import md_literal
from .model import (
    DeliverableCounts,
    DeliverableInfo,
    DeliverableStatus,
    PhaseInfo,
    ProjectReportData,
    ProjectSummary,
    RegisterEntry,
    RegisterKind,
    WeeklyPeriod,
    as_date,
)

CLIENT_TITLE = "客户项目周报"
INTERNAL_TITLE = "项目内部周报"
MAX_MARKDOWN_CHARS = 3500

SECTION_PROGRESS = "一、项目阶段与进度"
SECTION_DONE = "二、本周完成的主要工作"
SECTION_PLAN = "三、下周工作计划"
SECTION_CLIENT = "四、需客户协助的问题与风险"
SECTION_MILESTONES = "五、里程碑"
SECTION_INTERNAL = "六、内部事项（仅限内部）"
SUB_OVERDUE = "逾期交付物"
SUB_RISKS = "在办风险及应对措施"
SUB_APPROVALS = "待审批事项"
SUB_WORKLOAD = "团队本周工作量"


@dataclass(frozen=True, slots=True)
class WorkItem:
    source: str  # 实施日志 / 问题关闭 / 交付物提交 / 需求完成 / 系统升级 / 工作计划 / 交付物
    text: str
    owner: str = ""
    day: date | None = None
    detail: str = ""  # shown in the .docx only; the chat message stays one line per item


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    logs: int
    open_issues: int
    pending_deliverables: int
    overdue_deliverables: int


@dataclass(frozen=True, slots=True)
class WeeklyContent:
    data: ProjectReportData
    period: WeeklyPeriod
    next_period: WeeklyPeriod
    done: tuple[WorkItem, ...]
    plans: tuple[WorkItem, ...]
    client_items: tuple[RegisterEntry, ...]
    milestones: tuple[PhaseInfo, ...]
    deliverable_totals: Mapping[str, int]
    counts: DeliverableCounts
    health: ProjectHealth  # the leaders' digest's traffic light, by the same rule
    overdue: tuple[DeliverableInfo, ...]
    open_risks: tuple[RegisterEntry, ...]
    pending_approvals: tuple
    workload: tuple[Workload, ...]


def weekly_content(data: ProjectReportData, *, internal: bool = True) -> WeeklyContent:
    """Choose what the week's report says. Pure: everything is derived from ``data``. The client's report
    (``internal=False``) names no internal document in its work done and planned (the counts include them)."""
    week = data.week
    nxt = week.next()

    done: list[WorkItem] = []
    for e in data.entries(RegisterKind.LOG):
        if week.contains(e.created_at):
            done.append(WorkItem("实施日志", e.title, e.owner_name, e.created_date))
    for e in data.entries(RegisterKind.ISSUE):
        if week.contains(e.closed_at) or (not e.is_open and e.closed_at is None and week.contains(e.created_at)):
            done.append(WorkItem("问题关闭", f"解决问题：{e.title}", e.owner_name, e.closed_date, e.resolution))
    for e in data.entries(RegisterKind.REQUIREMENT):
        if week.contains(e.closed_at):
            done.append(WorkItem("需求完成", f"完成需求：{e.title}", e.owner_name, e.closed_date, e.resolution))
    for e in data.entries(RegisterKind.UPGRADE):
        if week.contains(e.closed_at or e.created_at):
            ver = f" {e.version}" if e.version else ""
            done.append(WorkItem("系统升级", f"系统升级{ver}：{e.title}", e.owner_name,
                                 as_date(e.closed_at or e.created_at), e.content))
    named = [d for d in data.deliverables if internal or not d.internal]
    for d in named:
        # A recurring record (the 周报 itself, an upgrade's notice) is reported by what produced it, if at all.
        if d.status == DeliverableStatus.SUBMITTED and week.contains(d.submitted_on) and not d.recurring:
            done.append(WorkItem("交付物提交", f"提交《{d.name}》", d.owner_name, d.submitted_on))
    done.sort(key=lambda w: (w.day or week.monday, w.source))

    plans: list[WorkItem] = []
    for e in data.entries(RegisterKind.PLAN):
        if week.contains(e.created_at) or nxt.contains(e.due):
            plans.append(WorkItem("工作计划", e.title, e.owner_name, e.due))
    for d in named:
        if d.status == DeliverableStatus.PENDING and d.due is not None and d.due <= nxt.sunday:
            plans.append(WorkItem("交付物", f"完成《{d.name}》", d.owner_name, d.due))
    plans.sort(key=lambda w: (w.day or nxt.sunday, w.source != "工作计划"))

    # Only what waits on the client: the section is titled so, and the client reads it.
    client_kinds = {RegisterKind.ISSUE, RegisterKind.RISK, RegisterKind.REQUIREMENT, RegisterKind.CHANGE}
    client_items = [e for e in data.registers if e.kind in client_kinds and e.is_open and e.needs_client]
    order = {RegisterKind.ISSUE: 0, RegisterKind.RISK: 1, RegisterKind.REQUIREMENT: 2, RegisterKind.CHANGE: 3}
    client_items.sort(key=lambda e: (order.get(e.kind, 9), e.seq))

    totals = Counter()
    for d in data.deliverables:
        totals["共计"] += 1
        if d.status == DeliverableStatus.SUBMITTED:
            totals["已完成"] += 1
        elif d.status == DeliverableStatus.WAIVED:
            totals["已豁免"] += 1
        elif d.is_overdue:
            totals["逾期"] += 1
        else:
            totals["待提交"] += 1

    overdue = sorted((d for d in data.deliverables if d.is_overdue),
                     key=lambda d: (-d.overdue_working_days, d.due or data.today))
    risks = sorted((e for e in data.entries(RegisterKind.RISK) if e.is_open), key=lambda e: (-e.risk_score, e.seq))
    pending = tuple(a for a in data.approvals if a.is_pending)

    return WeeklyContent(
        data=data,
        period=week,
        next_period=nxt,
        done=tuple(done),
        plans=tuple(plans),
        client_items=tuple(client_items),
        milestones=tuple(p for p in data.phases),
        deliverable_totals=dict(totals),
        counts=data.deliverable_counts,
        health=health_of(data),
        overdue=tuple(overdue),
        open_risks=tuple(risks),
        pending_approvals=pending,
        workload=_workload(data, week),
    )


def _workload(data: ProjectReportData, week: WeeklyPeriod) -> tuple[Workload, ...]:
    logs = Counter(e.owner_name for e in data.entries(RegisterKind.LOG) if week.contains(e.created_at) and e.owner_name)
    issues = Counter(e.owner_name for e in data.entries(RegisterKind.ISSUE) if e.is_open and e.owner_name)
    pending = Counter(d.owner_name for d in data.deliverables if d.status == DeliverableStatus.PENDING and d.owner_name)
    overdue = Counter(d.owner_name for d in data.deliverables if d.is_overdue and d.owner_name)
    names = list(dict.fromkeys([*logs, *issues, *overdue]))
    rows = [Workload(n, logs[n], issues[n], pending[n], overdue[n]) for n in names]
    rows.sort(key=lambda w: (-w.logs, -w.open_issues, w.name))
    return tuple(rows)


_CHART_ALT = {"phase_timeline": "阶段进度", "deliverables_by_phase": "交付物完成情况"}


def _plan_when(w: WorkItem, c: WeeklyContent) -> str:
    """"原定 03-03" for carried-over items, so a slipped date is not presented as next week's plan."""
    if w.day is not None and w.day < c.next_period.monday:
        return f"原定 {fmt_short_date(w.day)}"
    return f"计划 {fmt_short_date(w.day)}"


def _entry_label(e: RegisterEntry) -> str:
    return f"{e.kind}#{e.seq}"


def pm_contact(p: ProjectSummary) -> str:
    """``王建国（电话 13800000000）``: the client's contact person on our side."""
    return or_blank(p.pm_name) + (f"（电话 {p.pm_phone}）" if p.pm_phone else "")


def health_text(health: ProjectHealth, *, icon: bool = True) -> str:
    """``🟢 正常`` for chat; ``● 正常`` (to be coloured) for documents."""
    head = health.label if icon else f"● {health.status}"
    return head + (f"（{'；'.join(health.reasons)}）" if health.reasons else "")


def report_title(data: ProjectReportData, *, internal: bool = False) -> str:
    kind = INTERNAL_TITLE if internal else CLIENT_TITLE
    return f"{kind}｜{data.project.name}｜{data.week.label}"


# --------------------------------------------------------------------------------------------- markdown


def _md_lines(c: WeeklyContent, limit: int, *, internal: bool, chart_urls: Mapping[str, str]) -> list[str]:
    data, p = c.data, c.data.project
    week = c.period
    lines = [
        f"### {INTERNAL_TITLE if internal else CLIENT_TITLE}",
        f"**{md_literal(p.name)}**",
        "",
        f"{week.label}（{fmt_short_date(week.monday)} 至 {fmt_short_date(week.sunday)}）",
        "",
        f"- 客户：{md_literal(or_blank(p.customer))}",
        *([f"- 实施方：{md_literal(data.company_name)}"] if data.company_name else []),
        f"- 项目经理：{md_literal(pm_contact(p))}",
        f"- 项目状态：{health_text(c.health)}",
        f"- 当前阶段：**{or_blank(p.phase)}**（{or_blank(p.status)}）",
        f"- 总体进度：{progress_bar(p.progress)} {fmt_percent(p.progress)}（{c.counts.required_text}）",
        f"- 计划周期：{fmt_period(p.planned_start, p.planned_end)}",
        "",
        f"#### {SECTION_PROGRESS}",
    ]
    phase_lines = []
    for ph in c.milestones:
        mark = "**" if ph.name == p.phase else ""
        phase_lines.append(f"- {mark}{ph.name}{mark}：{ph.state}（计划 {fmt_short_date(ph.planned_start)} ~ "
                           f"{fmt_short_date(ph.planned_end)}）")
    lines += phase_lines or ["- 暂无阶段计划"]
    t = c.deliverable_totals
    if t.get("共计"):
        lines.append(f"- {c.counts.all_text}"
                     + (f"，逾期 {t['逾期']} 项" if t.get("逾期") else "")
                     + (f"，豁免 {t['已豁免']} 项" if t.get("已豁免") else ""))
    for key in ("phase_timeline", "deliverables_by_phase"):
        if chart_urls.get(key):
            lines += ["", f"![{_CHART_ALT[key]}]({chart_urls[key]})"]

    lines += ["", f"#### {SECTION_DONE}"]
    done = [f"{i}. {md_literal(one_line(w.text, 50))}（{md_literal(or_blank(w.owner))}，{fmt_short_date(w.day)}）"
            for i, w in enumerate(c.done, 1)]
    lines += truncated(done, limit) or ["- 本周暂无记录"]

    lines += ["", f"#### {SECTION_PLAN}"]
    plans = [f"{i}. {md_literal(one_line(w.text, 50))}（{md_literal(or_blank(w.owner))}，{_plan_when(w, c)}）" for i, w in enumerate(c.plans, 1)]
    lines += truncated(plans, limit) or ["- 暂无计划"]

    lines += ["", f"#### {SECTION_CLIENT}"]
    items = [f"- {_entry_label(e)} {md_literal(one_line(e.title, 40))}（{f'严重程度{e.priority}，' if e.priority else ''}"
             f"{or_blank(e.status)}，负责人 {md_literal(or_blank(e.owner_name))}） **需贵方协助**" for e in c.client_items]
    lines += truncated(items, limit) or ["- 目前没有需要协调的问题"]

    lines += ["", f"#### {SECTION_MILESTONES}"]
    ms = [f"- {ph.name}阶段完成：计划 {fmt_date(ph.planned_end)}，{ph.state}"
          + (f"（实际 {fmt_date(ph.actual_end)}）" if ph.actual_end else "") for ph in c.milestones]
    lines += truncated(ms, limit) or ["- 暂无里程碑"]

    if internal:
        lines += ["", f"#### {SECTION_INTERNAL}", f"**{SUB_OVERDUE}**"]
        od = [f"- 《{md_literal(d.name)}》{d.phase}，{md_literal(or_blank(d.owner_name))}，逾期 {d.overdue_working_days} 个工作日"
              f"（截止 {fmt_short_date(d.due)}）" for d in c.overdue]
        lines += truncated(od, limit) or ["- 无"]
        lines += ["", f"**{SUB_RISKS}**"]
        rk = [f"- 风险#{e.seq} {md_literal(one_line(e.title, 36))}（概率{or_blank(e.probability)}/影响{or_blank(e.impact)}）："
              f"{md_literal(one_line(e.response, 40)) or '待制定应对措施'}" for e in c.open_risks]
        lines += truncated(rk, limit) or ["- 无"]
        lines += ["", f"**{SUB_APPROVALS}**"]
        ap = [f"- {a.kind}：{md_literal(one_line(a.title, 36))}（{md_literal(or_blank(a.requester_name))} 于 {fmt_short_date(a.created_at)} 发起"
              + (f"，当前审批人 {md_literal(a.current_approver)}" if a.current_approver else "") + "）" for a in c.pending_approvals]
        lines += truncated(ap, limit) or ["- 无"]
        lines += ["", f"**{SUB_WORKLOAD}**"]
        wl = [f"- {md_literal(w.name)}：日志 {w.logs} 条，在办问题 {w.open_issues} 个，待交付 {w.pending_deliverables} 项"
              + (f"（逾期 {w.overdue_deliverables}）" if w.overdue_deliverables else "") for w in c.workload]
        lines += truncated(wl, limit) or ["- 本周无日志"]

    lines += ["", f"> {md_literal(data.company_name or '项目组')} · {p.code} · {fmt_date(data.today)} 生成"]
    return lines


def render_weekly_markdown(data: ProjectReportData, *, internal: bool = False, max_chars: int = MAX_MARKDOWN_CHARS,
                           chart_urls: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(title, markdown)`` for a DingTalk markdown message, at most ``max_chars`` characters.

    DingTalk's markdown has no tables, so everything is headings and lists. Long lists are cut to a few
    items with "…等 N 项"; the cut tightens until the message fits (DingTalk downgrades or rejects long
    markdown, and the full detail is in the .docx anyway).

    ``chart_urls`` optionally maps chart keys (``charts.CHART_TITLES``) to image URLs, e.g. the media_id
    of the uploaded PNG, which DingTalk accepts as an image URL in markdown; they go under section 一.
    """
    content = weekly_content(data, internal=internal)
    title = report_title(data, internal=internal)
    text = ""
    for limit in (8, 6, 4, 3, 2, 1, 0):
        text = "\n".join(_md_lines(content, limit, internal=internal, chart_urls=chart_urls or {}))
        if len(text) <= max_chars:
            return title, text
    tail = "\n\n…（内容较多，详见周报附件）"
    return title, text[: max_chars - len(tail)] + tail


# ------------------------------------------------------------------------------------------------- docx


def render_weekly_docx(data: ProjectReportData, charts: Mapping[str, bytes] | None = None, *,
                       internal: bool = False, fonts: DocxFonts = DEFAULT_FONTS) -> bytes:
    """The same report as a Word document, with tables and the charts embedded.

    ``charts`` maps the keys of ``charts.CHART_TITLES`` to PNG bytes; ``None`` draws them here, an
    empty mapping leaves them out (e.g. when a caller already failed to draw them).
    """
    from . import docx_style as dx  # python-docx is heavy: loaded by the render thread, not by our importers
    from .charts import CHART_TITLES, render_charts

    if charts is None:
        charts = render_charts(data)
    c = weekly_content(data, internal=internal)
    p = data.project
    title = INTERNAL_TITLE if internal else CLIENT_TITLE
    company = data.company_name
    doc = dx.new_document(fonts=fonts, header_text=" · ".join(x for x in (company, p.name, title) if x))
    dx.add_title(doc, title, f"{p.name}\n{c.period.label}（{fmt_date(c.period.monday)} 至 {fmt_date(c.period.sunday)}）")
    dx.add_form_table(doc, [
        ("项目编号", p.code), ("项目名称", p.name),
        ("客户单位", p.customer), ("实施方", company),
        ("项目经理", pm_contact(p)), ("项目类型", p.template),
        ("当前阶段", p.phase), ("项目状态", p.status),
        ("总体进度", f"{fmt_percent(p.progress)}（{c.counts.required_text}）"),
        ("计划周期", fmt_period(p.planned_start, p.planned_end)), ("报告日期", fmt_date(data.today)),
        ("健康状况", health_text(c.health, icon=False)),
    ], wide_labels=("健康状况",), colours={"健康状况": c.health.colour})

    doc.add_heading(SECTION_PROGRESS, level=1)
    dx.add_table(doc, ["阶段", "计划开始", "计划完成", "实际开始", "实际完成", "状态"],
                 [(ph.name, fmt_date(ph.planned_start), fmt_date(ph.planned_end), fmt_date(ph.actual_start),
                   fmt_date(ph.actual_end), ph.state) for ph in c.milestones],
                 widths_cm=[3.6, 2.5, 2.5, 2.5, 2.5, 2.2], empty="暂无阶段计划")
    if charts.get("phase_timeline"):
        dx.add_picture(doc, charts["phase_timeline"], f"图 1　{CHART_TITLES['phase_timeline']}")
    t = c.deliverable_totals
    dx.add_paragraph(doc, f"{c.counts.all_text}，待提交 {t.get('待提交', 0)} 项，逾期 {t.get('逾期', 0)} 项，"
                          f"已豁免 {t.get('已豁免', 0)} 项；{c.counts.required_text}（已提交或豁免，计入总体进度）。",
                     bold_prefix="交付物：")
    if charts.get("deliverables_by_phase"):
        dx.add_picture(doc, charts["deliverables_by_phase"], f"图 2　{CHART_TITLES['deliverables_by_phase']}")

    doc.add_heading(SECTION_DONE, level=1)
    dx.add_table(doc, ["序号", "工作内容", "类别", "负责人", "日期"],
                 [(i, w.text + (f"\n{w.detail}" if w.detail else ""), w.source, w.owner, fmt_date(w.day))
                  for i, w in enumerate(c.done, 1)],
                 widths_cm=[1.2, 8.0, 2.2, 1.9, 2.5], empty="本周暂无记录")

    doc.add_heading(SECTION_PLAN, level=1)
    dx.add_table(doc, ["序号", "计划内容", "类别", "负责人", "计划完成"],
                 [(i, w.text, w.source, w.owner, fmt_date(w.day)) for i, w in enumerate(c.plans, 1)],
                 widths_cm=[1.2, 8.0, 2.2, 1.9, 2.5], empty="暂无计划")

    doc.add_heading(SECTION_CLIENT, level=1)
    dx.add_table(doc, ["编号", "内容", "严重程度", "状态", "负责人"],
                 [(_entry_label(e), e.title + (f"\n{e.details}" if e.details else ""), e.priority or "—", e.status,
                   e.owner_name) for e in c.client_items],
                 widths_cm=[1.8, 8.4, 1.9, 1.9, 1.8], empty="目前没有需要协调的问题")
    if charts.get("issues_per_week"):
        dx.add_picture(doc, charts["issues_per_week"], f"图 3　{CHART_TITLES['issues_per_week']}")

    doc.add_heading(SECTION_MILESTONES, level=1)
    dx.add_table(doc, ["里程碑", "计划完成", "实际完成", "状态"],
                 [(f"{ph.name}阶段完成", fmt_date(ph.planned_end), fmt_date(ph.actual_end), ph.state)
                  for ph in c.milestones], widths_cm=[6.4, 3.2, 3.2, 3.0], empty="暂无里程碑")

    if internal:
        _internal_sections(doc, c)
    return dx.to_bytes(doc)


def _internal_sections(doc, c: WeeklyContent) -> None:
    from . import docx_style as dx
    doc.add_heading(SECTION_INTERNAL, level=1)
    doc.add_heading(SUB_OVERDUE, level=2)
    dx.add_table(doc, ["交付物", "阶段", "负责人", "截止日期", "逾期工作日"],
                 [(d.name, d.phase, d.owner_name, fmt_date(d.due), d.overdue_working_days) for d in c.overdue],
                 widths_cm=[5.2, 2.8, 2.6, 2.8, 2.4], empty="无逾期交付物")
    doc.add_heading(SUB_RISKS, level=2)
    dx.add_table(doc, ["编号", "风险", "概率", "影响", "应对措施", "负责人"],
                 [(f"风险#{e.seq}", e.title, e.probability, e.impact, e.response, e.owner_name) for e in c.open_risks],
                 widths_cm=[1.7, 5.0, 1.2, 1.2, 5.1, 1.6], empty="无在办风险")
    doc.add_heading(SUB_APPROVALS, level=2)
    dx.add_table(doc, ["类型", "事项", "发起人", "发起时间", "当前审批人"],
                 [(a.kind, a.title, a.requester_name, fmt_date(a.created_at), a.current_approver or "—")
                  for a in c.pending_approvals], widths_cm=[2.6, 5.6, 2.0, 3.4, 2.2], empty="无待审批事项")
    doc.add_heading(SUB_WORKLOAD, level=2)
    dx.add_table(doc, ["成员", "本周日志", "在办问题", "待提交交付物", "其中逾期"],
                 [(w.name, w.logs, w.open_issues, w.pending_deliverables, w.overdue_deliverables) for w in c.workload],
                 widths_cm=[3.6, 3.0, 3.0, 3.2, 3.0], empty="本周无日志")


def weekly_sections(*, internal: bool = False) -> Sequence[str]:
    """Section headings in order, for tests and for handlers that quote them in help texts."""
    base = [SECTION_PROGRESS, SECTION_DONE, SECTION_PLAN, SECTION_CLIENT, SECTION_MILESTONES]
    return [*base, SECTION_INTERNAL] if internal else base
