"""Report charts as PNG bytes: phase timeline, deliverables per phase, issues per week; and the portfolio's
projects by phase, projects by status colour and overdue deliverables by the week they fell due (the 看板).

Drawn through matplotlib's object API (``Figure`` + Agg canvas), never pyplot: pyplot keeps global
figure state, which leaks memory in a long-running bot and is unsafe across threads. For the same
reason the CJK font is passed to every text element instead of through ``rc_context``, which swaps the
process-wide rcParams and would race between threads rendering at the same time.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from .fonts import CHART_FONT_FAMILIES, ensure_cjk_font
from .model import DeliverableInfo, DeliverableStatus, PhaseInfo, ProjectReportData, WeeklyIssueCount

CHART_TITLES = {
    "phase_timeline": "项目阶段计划与实际进度",
    "deliverables_by_phase": "各阶段交付物完成情况",
    "issues_per_week": "每周问题新增与关闭",
}
PORTFOLIO_CHART_TITLES = {
    "projects_by_health": "项目状态",
    "projects_by_phase": "项目所处阶段",
    "overdue_by_week": "逾期交付物（按应交周）",
}

# A restrained palette that survives grey-scale printing: distinct lightness for each series.
PLANNED = "#C9D6E3"
ACTUAL_DONE = "#3C8D5A"
ACTUAL_RUNNING = "#3A78C2"
LATE = "#D64541"
WAIVED = "#A6A6A6"
PENDING = "#7FA7D9"
TODAY = "#D64541"
AT_RISK = "#E8A33D"
TEXT = "#333333"
GRID = "#E6E6E6"

ISSUE_CHART_MIN_SLOTS = 8  # the weekly report's usual span (domain.report_data.ISSUE_CHART_WEEKS)
# The charts are 8 in wide and printed 16 cm (6.3 in) wide in the A4 .docx: 120 dpi is ~150 pixels per printed inch,
# sharp on screen and in an office print; 150 dpi made 50 % more pixels to rasterize and compress for no visible gain.
DEFAULT_DPI = 120
# zlib level 1 instead of Pillow's 6: the PNGs are ~10 % larger (~30 KB each, and the .docx zips them again) and
# compress several times faster; compression was the largest single item of a chart's time.
PNG_COMPRESS_LEVEL = 1


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ensure_cjk_font()
    fig = Figure(figsize=(width, height), dpi=DEFAULT_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _font(size: float | None = None, weight: str = "normal"):
    from matplotlib.font_manager import FontProperties

    return FontProperties(family=list(CHART_FONT_FAMILIES), size=size, weight=weight)


def _style_axes(ax, *, title: str) -> None:
    family = list(CHART_FONT_FAMILIES)
    ax.set_title(title, fontproperties=_font(13), color=TEXT, loc="left", pad=10)
    ax.tick_params(labelfontfamily=family, labelsize=9, colors=TEXT, length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#BBBBBB")
    ax.xaxis.get_offset_text().set_fontfamily(family)
    ax.yaxis.get_offset_text().set_fontfamily(family)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DEFAULT_DPI, facecolor="white",
                pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    return buf.getvalue()


def _empty_chart(title: str, message: str = "暂无数据", width: float = 8) -> bytes:
    fig = _new_figure(width, 2.2)
    ax = fig.add_subplot()
    _style_axes(ax, title=title)
    ax.set_axis_off()
    ax.text(0.5, 0.45, message, ha="center", va="center", fontproperties=_font(12), color="#888888",
            transform=ax.transAxes)
    return _png(fig)


def _wrap(label: str, width: int = 8) -> str:
    """Break long Chinese phase names (设备制造与预验收) so axis labels stay narrow."""
    return "\n".join(label[i : i + width] for i in range(0, len(label), width)) or label


def phase_timeline_png(phases: Sequence[PhaseInfo], today: date, *,
                       title: str = CHART_TITLES["phase_timeline"]) -> bytes:
    """Gantt chart: for each phase a pale planned bar with the actual bar drawn over it, today marked.

    The actual bar runs from the actual start to the actual end, or to today while the phase is open;
    its part past the planned end is red, so a slipping phase is obvious at a glance.
    """
    import matplotlib.dates as mdates
    from matplotlib.patches import Patch

    phases = [p for p in phases if p.planned_start or p.actual_start]
    if not phases:
        return _empty_chart(title, "暂无阶段计划")

    fig = _new_figure(8, 1.3 + 0.55 * len(phases))
    ax = fig.add_subplot()
    _style_axes(ax, title=title)

    def num(d: date) -> float:
        return mdates.date2num(d)

    all_dates = [today]
    for i, p in enumerate(phases):
        y = len(phases) - 1 - i  # first phase on top
        if p.planned_start and p.planned_end:
            ax.barh(y, num(p.planned_end + timedelta(days=1)) - num(p.planned_start), left=num(p.planned_start),
                    height=0.62, color=PLANNED, edgecolor="none", zorder=2)
            all_dates += [p.planned_start, p.planned_end]
        if p.actual_start:
            end = p.actual_end or (today if p.state != "已完成" else p.actual_start)
            end = max(end, p.actual_start)
            colour = ACTUAL_DONE if p.state == "已完成" else ACTUAL_RUNNING
            stop = end + timedelta(days=1)
            on_time_stop = stop
            if p.planned_end and stop > p.planned_end + timedelta(days=1):
                on_time_stop = max(p.actual_start, p.planned_end + timedelta(days=1))
                ax.barh(y, num(stop) - num(on_time_stop), left=num(on_time_stop), height=0.3, color=LATE,
                        edgecolor="none", zorder=3)
            if on_time_stop > p.actual_start:
                ax.barh(y, num(on_time_stop) - num(p.actual_start), left=num(p.actual_start), height=0.3,
                        color=colour, edgecolor="none", zorder=3)
            all_dates += [p.actual_start, end]
        ends = [p.planned_end, p.actual_end, p.actual_start]
        if p.actual_start and p.state != "已完成":
            ends.append(today)  # the running bar reaches today: put the label past it
        label_x = max(d for d in ends if d is not None)
        ax.text(num(label_x + timedelta(days=2)), y, p.state, va="center", ha="left", fontproperties=_font(8),
                color="#666666", zorder=6, bbox=dict(facecolor="white", edgecolor="none", pad=1.0))

    ax.set_yticks(range(len(phases)), [_wrap(p.name) for p in reversed(phases)])
    lo, hi = min(all_dates), max(all_dates)
    span = max((hi - lo).days, 14)
    ax.set_xlim(num(lo - timedelta(days=span * 0.03 + 1)), num(hi + timedelta(days=span * 0.12 + 4)))
    ax.set_ylim(-0.7, len(phases) - 0.3)
    ax.axvline(num(today), color=TODAY, linestyle="--", linewidth=1.2, zorder=5)
    ax.text(num(today), len(phases) - 0.35, f" 今天 {today:%m-%d}", color=TODAY, va="bottom", ha="left",
            fontproperties=_font(8), zorder=5)

    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        locator,
        formats=["%Y年", "%m月", "%m-%d", "%H:%M", "%H:%M", "%S"],
        zero_formats=["", "%Y年", "%m月", "%m-%d", "%H:%M", "%H:%M"],
        # Year only: "2025年03月" under a Jan-Mar axis would read as if the whole chart were March.
        offset_formats=["", "%Y年", "%Y年", "%Y年", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
    ))
    ax.xaxis.get_offset_text().set_fontfamily(list(CHART_FONT_FAMILIES))
    ax.grid(axis="x", color=GRID, zorder=0)

    handles = [Patch(color=PLANNED, label="计划"), Patch(color=ACTUAL_DONE, label="实际（已完成）"),
               Patch(color=ACTUAL_RUNNING, label="实际（进行中）"), Patch(color=LATE, label="超出计划")]
    ax.legend(handles=handles, prop=_font(8), loc="upper center", bbox_to_anchor=(0.5, -0.08 - 0.3 / len(phases)),
              ncols=4, frameon=False)
    return _png(fig)


def deliverable_counts(deliverables: Iterable[DeliverableInfo],
                       phase_order: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per phase: counts of 已完成 / 待提交 / 逾期 / 已豁免 (逾期 is taken out of 待提交)."""
    counts = {name: {"已完成": 0, "待提交": 0, "逾期": 0, "已豁免": 0} for name in phase_order}
    for d in deliverables:
        bucket = counts.setdefault(d.phase, {"已完成": 0, "待提交": 0, "逾期": 0, "已豁免": 0})
        if d.status == DeliverableStatus.SUBMITTED:
            bucket["已完成"] += 1
        elif d.status == DeliverableStatus.WAIVED:
            bucket["已豁免"] += 1
        elif d.is_overdue:
            bucket["逾期"] += 1
        else:
            bucket["待提交"] += 1
    return counts


def deliverables_by_phase_png(deliverables: Sequence[DeliverableInfo], phase_order: Sequence[str] = (), *,
                              title: str = CHART_TITLES["deliverables_by_phase"]) -> bytes:
    """Horizontal stacked bars per phase (horizontal because Chinese phase names are long)."""
    order = list(phase_order) or list(dict.fromkeys(d.phase for d in deliverables))
    counts = deliverable_counts(deliverables, order)
    counts = {k: v for k, v in counts.items() if sum(v.values())}
    if not counts:
        return _empty_chart(title, "暂无交付物")

    names = list(counts)
    fig = _new_figure(8, 1.3 + 0.5 * len(names))
    ax = fig.add_subplot()
    _style_axes(ax, title=title)
    series = [("已完成", ACTUAL_DONE), ("待提交", PENDING), ("逾期", LATE), ("已豁免", WAIVED)]
    left = [0] * len(names)
    ys = [len(names) - 1 - i for i in range(len(names))]
    for label, colour in series:
        values = [counts[n][label] for n in names]
        bars = ax.barh(ys, values, left=left, height=0.6, color=colour, label=label, edgecolor="white",
                       linewidth=0.8, zorder=2)
        for bar, v in zip(bars, values):
            if v:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2, str(v),
                        ha="center", va="center", color="white", fontproperties=_font(8), zorder=3)
        left = [a + b for a, b in zip(left, values)]
    for y, total in zip(ys, left):
        ax.text(total + 0.15, y, f"共 {total} 项", va="center", ha="left", fontproperties=_font(8), color="#666666")
    ax.set_yticks(ys, [_wrap(n) for n in names])
    ax.set_xlim(0, max(left) * 1.18 + 1)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="x", color=GRID, zorder=0)
    ax.legend(prop=_font(8), loc="upper center", bbox_to_anchor=(0.5, -0.08 - 0.3 / len(names)), ncols=4,
              frameon=False)
    return _png(fig)


def issues_per_week_png(counts: Sequence[WeeklyIssueCount], *, title: str = CHART_TITLES["issues_per_week"]) -> bytes:
    """Bars for issues opened and closed each ISO week, and a line for how many remain open.

    The open line is cumulative from the first week given, so pass the weeks since the project began
    (or since the first issue); weeks without issues should be present with zeros.
    """
    counts = sorted(counts, key=lambda c: (c.iso_year, c.iso_week))
    if not counts:
        return _empty_chart(title, "暂无问题记录")

    fig = _new_figure(8, 3.4)
    ax = fig.add_subplot()
    _style_axes(ax, title=title)
    xs = list(range(len(counts)))
    width = 0.38
    opened = [c.opened for c in counts]
    closed = [c.closed for c in counts]
    ax.bar([x - width / 2 for x in xs], opened, width, color="#E8A33D", label="新增", zorder=2)
    ax.bar([x + width / 2 for x in xs], closed, width, color=ACTUAL_DONE, label="关闭", zorder=2)
    backlog, running = [], 0
    for c in counts:
        running = max(0, running + c.opened - c.closed)
        backlog.append(running)
    ax.plot(xs, backlog, color=ACTUAL_RUNNING, marker="o", markersize=4, linewidth=1.8, label="未关闭", zorder=3)
    for x, v in zip(xs, backlog):
        ax.annotate(str(v), (x, v), textcoords="offset points", xytext=(0, 6), ha="center",
                    fontproperties=_font(7), color=ACTUAL_RUNNING)
    # A young project has a week or two: keep the bars as narrow as in a full chart, starting at the left.
    ax.set_xlim(-0.6, max(len(xs), ISSUE_CHART_MIN_SLOTS) - 0.4)
    step = max(1, len(xs) // 12)  # keep at most ~12 week labels readable
    ax.set_xticks(xs[::step], [f"{c.iso_week}周" for c in counts][::step])
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_ylim(0, max(opened + closed + backlog + [1]) * 1.2)
    ax.grid(axis="y", color=GRID, zorder=0)
    ax.legend(prop=_font(8), loc="upper left", ncols=3, frameon=False)
    return _png(fig)


# Shown three abreast on a desktop and full width on a phone: narrower than the reports' 8 in, so that the text stays
# readable when the browser scales the picture down.
PORTFOLIO_CHART_WIDTH = 5.0


def _count_bars(title: str, labels: Sequence[str], values: Sequence[int], colours: Sequence[str], *,
                horizontal: bool, empty: str) -> bytes:
    """One bar per label with its count written on it: the portfolio's charts (counts of projects or deliverables)."""
    if not labels or not any(values):
        return _empty_chart(title, empty, PORTFOLIO_CHART_WIDTH)
    if horizontal:  # long Chinese labels (phase names) read better on the side
        fig = _new_figure(PORTFOLIO_CHART_WIDTH, 1.3 + 0.4 * len(labels))
        ax = fig.add_subplot()
        ys = [len(labels) - 1 - i for i in range(len(labels))]
        bars = ax.barh(ys, values, height=0.6, color=list(colours), zorder=2)
        ax.set_yticks(ys, [_wrap(label, 10) for label in labels])
        ax.set_xlim(0, max(values) * 1.15 + 1)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="x", color=GRID, zorder=0)
        for bar, value in zip(bars, values):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value}", va="center", ha="left",
                    fontproperties=_font(8), color=TEXT)
    else:
        fig = _new_figure(PORTFOLIO_CHART_WIDTH, 3.2)
        ax = fig.add_subplot()
        xs = list(range(len(labels)))
        bars = ax.bar(xs, values, width=0.62, color=list(colours), zorder=2)
        step = 1 if len(xs) <= 8 else 2  # at most ~8 labels stay readable at this width
        ax.set_xticks(xs[::step], list(labels)[::step])
        ax.set_ylim(0, max(values) * 1.2 + 1)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", color=GRID, zorder=0)
        for bar, value in zip(bars, values):
            if value:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), str(value), ha="center", va="bottom",
                        fontproperties=_font(8), color=TEXT)
    _style_axes(ax, title=title)
    return _png(fig)


def projects_by_phase_png(counts: Sequence[tuple[str, int]], *,
                          title: str = PORTFOLIO_CHART_TITLES["projects_by_phase"]) -> bytes:
    """How many projects are in each phase (``(phase, count)`` in the order to draw, first on top)."""
    return _count_bars(title, [label or "未开始" for label, _ in counts], [n for _, n in counts],
                       [ACTUAL_RUNNING] * len(counts), horizontal=True, empty="暂无项目")


HEALTH_COLOURS = {"延期": LATE, "有风险": AT_RISK, "正常": ACTUAL_DONE}


def projects_by_health_png(counts: Sequence[tuple[str, int]], *,
                           title: str = PORTFOLIO_CHART_TITLES["projects_by_health"]) -> bytes:
    """How many projects are 延期 / 有风险 / 正常 (the digest's traffic light, in its colours)."""
    return _count_bars(title, [label for label, _ in counts], [n for _, n in counts],
                       [HEALTH_COLOURS.get(label, PENDING) for label, _ in counts], horizontal=False,
                       empty="暂无项目")


def overdue_by_week_png(counts: Sequence[tuple[str, int]], *,
                        title: str = PORTFOLIO_CHART_TITLES["overdue_by_week"]) -> bytes:
    """Deliverables still pending, by the week they were due (``(week label, count)``, oldest first)."""
    return _count_bars(title, [label for label, _ in counts], [n for _, n in counts], [LATE] * len(counts),
                       horizontal=False, empty="没有逾期交付物")


def render_charts(data: ProjectReportData) -> dict[str, bytes]:
    """All three charts of a project, keyed like ``CHART_TITLES``."""
    return {
        "phase_timeline": phase_timeline_png(data.phases, data.today),
        "deliverables_by_phase": deliverables_by_phase_png(data.deliverables, data.phase_names()),
        "issues_per_week": issues_per_week_png(data.issue_counts),
    }
