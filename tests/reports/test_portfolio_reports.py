"""The 看板's portfolio as rendered: its three charts (the bundled CJK font, every label present) and its workbook
(one row per project, users' text never a formula)."""

from __future__ import annotations

import io
import warnings
from datetime import date
from types import SimpleNamespace

from openpyxl import load_workbook
from PIL import Image

from reports import charts
from reports.digest import HealthStatus, ProjectHealth
from reports.portfolio_xlsx import COLUMNS, render_portfolio_xlsx

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        return image.size


def test_portfolio_charts_draw_every_label_in_the_bundled_font():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = [
            charts.projects_by_health_png([("延期", 3), ("有风险", 5), ("正常", 40)]),
            charts.projects_by_phase_png([("启动", 2), ("设备制造与预验收", 7), ("收尾", 1)]),
            charts.overdue_by_week_png([("更早", 4), *((f"11-{d:02d}", d % 5) for d in (2, 9, 16, 23, 30))]),
            charts.overdue_by_week_png([("更早", 0), ("11-30", 0)]),  # nothing overdue: a chart that says so
        ]
    assert not [w for w in caught if "missing from font" in str(w.message) or "Glyph" in str(w.message)]
    for png in drawn:
        assert png.startswith(PNG_MAGIC)
        width, height = size(png)
        # Narrower than the reports' charts: three abreast on a desktop, the text still readable on a phone.
        assert width == charts.PORTFOLIO_CHART_WIDTH * charts.DEFAULT_DPI and 200 < height < 700
    assert drawn[2] != drawn[3]


def test_the_portfolio_workbook_keeps_users_text_as_text():
    health = ProjectHealth(HealthStatus.LATE, ("计划完成日 2026-10-31 已过", "交付物最长逾期 7 个工作日"))
    project = SimpleNamespace(
        code="XM-2026-001", name='=HYPERLINK("http://evil","点我")', customer="+86 某某制造", template="软件系统实施",
        phase="执行", status="进行中", health=health, pm_name="@王建国", progress=42.5, overdue=3,
        worst_overdue_days=7, pending_approvals=1, planned_start=date(2026, 9, 1), planned_end=date(2026, 10, 31))
    sheet = load_workbook(io.BytesIO(render_portfolio_xlsx([project], today=date(2026, 11, 11))))["项目组合"]
    header, row = list(sheet.iter_rows(min_row=1, max_row=2))
    assert [c.value for c in header] == [column.header for column in COLUMNS]
    values = {column.header: cell for column, cell in zip(COLUMNS, row)}
    for name in ("项目名称", "客户", "项目经理"):
        assert values[name].data_type == "s" and values[name].quotePrefix, name
    assert values["状态颜色"].value == "延期" and values["原因"].value == "计划完成日 2026-10-31 已过；交付物最长逾期 7 个工作日"
    assert values["进度（%）"].value == 42.5 and values["逾期交付物"].value == 3
    assert values["计划完成"].value.date() == date(2026, 10, 31) and values["计划完成"].number_format == "yyyy-mm-dd"
    assert sheet.freeze_panes == "B2" and sheet.auto_filter.ref == "A1:O2"
