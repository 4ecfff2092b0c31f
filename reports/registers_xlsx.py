"""The project's registers as an Excel workbook (openpyxl), one sheet per register.

Sheet names are the standard's record names: 问题记录表, 需求跟踪表, 风险登记, 变更记录, 升级记录表,
实施日志, 工作计划, 会议记录; a first sheet 项目信息 says which project and when. Dates are real Excel
dates (sortable, filterable), long text wraps, the header row is frozen and filterable.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from .formatting import fmt_percent, fmt_period
from .model import ProjectReportData, RegisterEntry, RegisterKind
from .user_text import keep_as_text

FONT_NAME = "微软雅黑"
HEADER_FILL = "1F3A5F"
ZEBRA_FILL = "F5F8FC"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[RegisterEntry], object]
    width: float = 12  # Excel character units
    wrap: bool = False


def _yes(flag: bool) -> str:
    return "是" if flag else "否"


def _level(e: RegisterEntry) -> str:
    score = e.risk_score
    if not score:
        return ""
    return "高" if score >= 6 else "中" if score >= 3 else "低"


SEQ = Column("序号", lambda e: e.seq, 6)

SHEETS: dict[str, tuple[str, tuple[Column, ...]]] = {
    RegisterKind.ISSUE: ("问题记录表", (
        SEQ, Column("问题描述", lambda e: e.title, 36, True), Column("详细说明", lambda e: e.details, 30, True),
        Column("提出人", lambda e: e.reporter_name, 10), Column("负责人", lambda e: e.owner_name, 10),
        Column("严重程度", lambda e: e.priority, 8), Column("状态", lambda e: e.status, 9),
        Column("提出日期", lambda e: e.created_at, 12), Column("计划解决", lambda e: e.due, 12),
        Column("解决日期", lambda e: e.closed_at, 12), Column("解决方法", lambda e: e.resolution, 36, True),
        Column("需客户协助", lambda e: _yes(e.needs_client), 10),
    )),
    RegisterKind.REQUIREMENT: ("需求跟踪表", (
        SEQ, Column("需求描述", lambda e: e.title, 36, True), Column("详细说明", lambda e: e.details, 30, True),
        Column("提出人", lambda e: e.reporter_name, 10), Column("负责人", lambda e: e.owner_name, 10),
        Column("优先级", lambda e: e.priority, 8), Column("状态", lambda e: e.status, 9),
        Column("提出日期", lambda e: e.created_at, 12), Column("期望完成", lambda e: e.due, 12),
        Column("完成日期", lambda e: e.closed_at, 12), Column("完成情况", lambda e: e.resolution, 36, True),
    )),
    RegisterKind.RISK: ("风险登记", (
        SEQ, Column("风险描述", lambda e: e.title, 36, True), Column("发生概率", lambda e: e.probability, 9),
        Column("影响程度", lambda e: e.impact, 9), Column("风险等级", _level, 9),
        Column("应对措施", lambda e: e.response, 40, True), Column("负责人", lambda e: e.owner_name, 10),
        Column("状态", lambda e: e.status, 9), Column("识别日期", lambda e: e.created_at, 12),
        Column("关闭日期", lambda e: e.closed_at, 12),
    )),
    RegisterKind.CHANGE: ("变更记录", (
        SEQ, Column("变更内容", lambda e: e.title, 34, True), Column("变更说明（目的、影响、时间、资源）", lambda e: e.content, 40, True),
        Column("申请人", lambda e: e.reporter_name or e.owner_name, 10), Column("负责人", lambda e: e.owner_name, 10),
        Column("状态", lambda e: e.status, 9), Column("申请日期", lambda e: e.created_at, 12),
        Column("批准日期", lambda e: e.closed_at, 12), Column("审批结论", lambda e: e.resolution, 30, True),
    )),
    RegisterKind.UPGRADE: ("升级记录表", (
        SEQ, Column("升级内容", lambda e: e.title, 32, True), Column("版本", lambda e: e.version, 12),
        Column("升级说明", lambda e: e.content, 36, True), Column("负责人", lambda e: e.owner_name, 10),
        Column("升级时间", lambda e: e.created_at, 17), Column("完成时间", lambda e: e.closed_at, 17),
        Column("解决客户问题/需求", lambda e: _yes(e.related_to_client), 12),
        Column("对应单据", lambda e: "系统升级确认单" if e.related_to_client else "系统升级通知单", 15),
        Column("状态", lambda e: e.status, 9),
    )),
    RegisterKind.LOG: ("实施日志", (
        SEQ, Column("日期", lambda e: e.created_at, 17), Column("记录人", lambda e: e.owner_name, 10),
        Column("工作内容", lambda e: e.title, 50, True), Column("详细说明", lambda e: e.details, 40, True),
    )),
    RegisterKind.PLAN: ("工作计划", (
        SEQ, Column("计划内容", lambda e: e.title, 46, True), Column("负责人", lambda e: e.owner_name, 10),
        Column("计划完成", lambda e: e.due, 12), Column("状态", lambda e: e.status, 9),
        Column("编制日期", lambda e: e.created_at, 12),
    )),
    RegisterKind.MEETING: ("会议记录", (
        SEQ, Column("会议主题", lambda e: e.title, 24, True), Column("会议类型", lambda e: e.meeting_type, 14),
        Column("时间", lambda e: e.created_at, 17), Column("地点", lambda e: e.location, 16, True),
        Column("参会人员", lambda e: e.attendees, 28, True), Column("会议内容", lambda e: e.content, 44, True),
        Column("会议决议", lambda e: e.resolution, 34, True), Column("记录人", lambda e: e.owner_name, 10),
    )),
}

REGISTER_KINDS = tuple(SHEETS)


def sheet_title(kind: str) -> str:
    return SHEETS[kind][0]


def sheet_styles():
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    thin = Side(style="thin", color="BFBFBF")
    return {
        "header_font": Font(name=FONT_NAME, bold=True, color="FFFFFF", size=10),
        "header_fill": PatternFill("solid", fgColor=HEADER_FILL),
        "body_font": Font(name=FONT_NAME, size=10),
        "zebra": PatternFill("solid", fgColor=ZEBRA_FILL),
        "border": Border(left=thin, right=thin, top=thin, bottom=thin),
        "center": Alignment(horizontal="center", vertical="center", wrap_text=True),
        "wrap": Alignment(vertical="top", wrap_text=True),
        "top": Alignment(vertical="top"),
    }


def _cell_value(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        # Excel has no time zones and openpyxl refuses aware datetimes; callers pass local times.
        return value.replace(tzinfo=None)
    if isinstance(value, (int, float, date, datetime)):
        return value
    return str(value)


def write_sheet(ws, columns: Sequence[Column], entries: Iterable[object], st) -> None:
    """A table: a frozen, filterable header row, then one row per entry (users' text kept as text)."""
    from openpyxl.utils import get_column_letter

    for c, col in enumerate(columns, 1):
        cell = ws.cell(row=1, column=c, value=col.header)
        cell.font, cell.fill = st["header_font"], st["header_fill"]
        cell.alignment, cell.border = st["center"], st["border"]
        ws.column_dimensions[get_column_letter(c)].width = col.width
    ws.row_dimensions[1].height = 22
    row = 1
    for row, entry in enumerate(entries, 2):
        for c, col in enumerate(columns, 1):
            value = _cell_value(col.value(entry))
            cell = keep_as_text(ws.cell(row=row, column=c, value=value))
            cell.font, cell.border = st["body_font"], st["border"]
            cell.alignment = st["wrap"] if col.wrap else st["top"]
            if isinstance(value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm"
            elif isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
            if row % 2 == 1:
                cell.fill = st["zebra"]
    ws.freeze_panes = "B2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(row, 1)}"
    ws.sheet_view.zoomScale = 100


def _write_info(ws, data: ProjectReportData, st) -> None:
    p = data.project
    rows = [
        ("项目编号", p.code), ("项目名称", p.name), ("客户单位", p.customer), ("项目类型", p.template),
        ("项目经理", p.pm_name), ("当前阶段", p.phase), ("项目状态", p.status), ("总体进度", fmt_percent(p.progress)),
        ("计划周期", fmt_period(p.planned_start, p.planned_end)), ("导出日期", data.today),
    ]
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 60
    for r, (label, value) in enumerate(rows, 1):
        a = ws.cell(row=r, column=1, value=label)
        b = keep_as_text(ws.cell(row=r, column=2, value=_cell_value(value)))
        a.font, a.fill, a.border = st["header_font"], st["header_fill"], st["border"]
        b.font, b.border = st["body_font"], st["border"]
        if isinstance(value, date):
            b.number_format = "yyyy-mm-dd"
            b.alignment = st["top"]


def render_registers_xlsx(data: ProjectReportData, kinds: Sequence[str] | None = None, *,
                          include_info: bool = True) -> bytes:
    """One workbook: 项目信息, then a sheet per register kind (all kinds by default, in the standard's order).

    A register without entries still gets its sheet with the header row, so the workbook always has
    the same shape and people can keep filling it in by hand.
    """
    from openpyxl import Workbook

    st = sheet_styles()
    wb = Workbook()
    first = wb.active
    if include_info:
        first.title = "项目信息"
        _write_info(first, data, st)
    for i, kind in enumerate(kinds or REGISTER_KINDS):
        title, columns = SHEETS[kind]
        ws = first if (i == 0 and not include_info) else wb.create_sheet()
        ws.title = title
        write_sheet(ws, columns, data.entries(kind), st)
    wb.properties.title = f"{data.project.name} 项目登记表"
    wb.properties.creator = "dingpm"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def render_register_xlsx(data: ProjectReportData, kind: str) -> bytes:
    """A single register (e.g. the 问题记录表 the client asked for) as its own workbook."""
    return render_registers_xlsx(data, [kind], include_info=False)
