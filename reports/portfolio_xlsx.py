"""The 看板's portfolio as an Excel workbook: one row per project, in the order the page showed them.

The sheet is drawn like the registers workbook (``reports.registers_xlsx``: the same header, borders, frozen and
filterable header row) and its cells go through ``keep_as_text``: a project or customer name that starts like a
formula stays text.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from typing import Any

from .registers_xlsx import Column, sheet_styles, write_sheet

COLUMNS: tuple[Column, ...] = (
    Column("项目编号", lambda p: p.code, 15),
    Column("项目名称", lambda p: p.name, 30, True),
    Column("客户", lambda p: p.customer, 18, True),
    Column("项目类型", lambda p: p.template, 14),
    Column("当前阶段", lambda p: p.phase, 10),
    Column("项目状态", lambda p: p.status, 10),
    Column("状态颜色", lambda p: str(p.health.status), 9),
    Column("原因", lambda p: "；".join(p.health.reasons), 30, True),
    Column("项目经理", lambda p: p.pm_name, 10),
    Column("进度（%）", lambda p: p.progress, 9),
    Column("逾期交付物", lambda p: p.overdue, 10),
    Column("最长逾期（工作日）", lambda p: p.worst_overdue_days or None, 12),
    Column("待审批", lambda p: p.pending_approvals, 8),
    Column("计划开始", lambda p: p.planned_start, 12),
    Column("计划完成", lambda p: p.planned_end, 12),
)


def render_portfolio_xlsx(projects: Sequence[Any], *, today: date) -> bytes:
    """``projects``: the portfolio's entries (code, name, customer, template, phase, status, health with its
    reasons, pm_name, progress, overdue, worst_overdue_days, pending_approvals, planned_start, planned_end)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "项目组合"
    write_sheet(ws, COLUMNS, projects, sheet_styles())
    wb.properties.title = f"项目组合 {today:%Y-%m-%d}"
    wb.properties.creator = "dingpm"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


__all__ = ["COLUMNS", "render_portfolio_xlsx"]
