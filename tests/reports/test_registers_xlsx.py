"""Registers as an Excel workbook."""

from __future__ import annotations

import dataclasses
import io
from datetime import date, datetime, timedelta, timezone

import openpyxl
import pytest
import sample_data

from reports.model import RegisterEntry
from reports.registers_xlsx import REGISTER_KINDS, render_register_xlsx, render_registers_xlsx, sheet_title

EXPECTED_SHEETS = ["项目信息", "问题记录表", "需求跟踪表", "风险登记", "变更记录", "升级记录表", "实施日志", "工作计划", "会议记录"]


def _load(payload: bytes):
    return openpyxl.load_workbook(io.BytesIO(payload))


def _rows(ws):
    header = [c.value for c in ws[1]]
    return header, [dict(zip(header, (c.value for c in row))) for row in ws.iter_rows(min_row=2)]


@pytest.mark.parametrize("template", sample_data.TEMPLATES)
def test_workbook_has_a_sheet_per_register_with_all_rows(template, samples):
    data = samples[template]
    wb = _load(render_registers_xlsx(data))
    assert wb.sheetnames == EXPECTED_SHEETS
    for kind in REGISTER_KINDS:
        header, rows = _rows(wb[sheet_title(kind)])
        assert header[0] == "序号"
        assert [r["序号"] for r in rows] == [e.seq for e in data.entries(kind)]
    info = {r[0].value: r[1].value for r in wb["项目信息"].iter_rows()}
    assert info["项目名称"] == data.project.name and info["项目经理"] == data.project.pm_name


def test_issue_sheet_content_and_formatting(samples):
    data = samples["软件系统实施"]
    wb = _load(render_registers_xlsx(data))
    ws = wb["问题记录表"]
    header, rows = _rows(ws)
    # An issue's 严重程度 (问题 新增 … 严重程度:高) in the column that was headed 优先级.
    assert header == ["序号", "问题描述", "详细说明", "提出人", "负责人", "严重程度", "状态", "提出日期", "计划解决",
                      "解决日期", "解决方法", "需客户协助"]
    assert rows[0]["严重程度"] == "高"
    first = rows[0]
    assert first["问题描述"] == "HIS接口返回的门诊结算数据缺少医保目录编码"
    assert first["负责人"] == "刘洋" and first["状态"] == "处理中" and first["需客户协助"] == "是"
    assert first["提出日期"] == datetime(2025, 3, 4, 10, 0)  # a real date, sortable in Excel
    assert ws["H2"].number_format == "yyyy-mm-dd hh:mm"
    assert rows[1]["解决方法"].startswith("调整规则 R-032")
    assert ws.freeze_panes == "B2" and ws.auto_filter.ref == "A1:L6"
    assert ws["A1"].font.bold and ws["A1"].fill.fgColor.rgb.endswith("1F3A5F")
    assert ws.column_dimensions["B"].width >= 30 and ws["B2"].alignment.wrap_text


def test_risk_and_upgrade_sheets(samples):
    wb = _load(render_registers_xlsx(samples["软件系统实施"]))
    _, risks = _rows(wb["风险登记"])
    assert [(r["发生概率"], r["影响程度"], r["风险等级"]) for r in risks] == [("高", "高", "高"), ("中", "中", "中"),
                                                                        ("低", "高", "中")]
    _, upgrades = _rows(wb["升级记录表"])
    assert [(u["版本"], u["对应单据"]) for u in upgrades] == [("v2.3.0", "系统升级通知单"), ("v2.3.1", "系统升级确认单")]
    _, meetings = _rows(wb["会议记录"])
    assert meetings[0]["会议类型"] == "项目内部启动会" and "何军" in meetings[0]["参会人员"]


def test_empty_register_keeps_its_header(samples):
    wb = _load(render_registers_xlsx(samples["技改项目"]))
    header, rows = _rows(wb["变更记录"])
    assert header[:3] == ["序号", "变更内容", "变更说明（目的、影响、时间、资源）"] and rows == []


def test_single_register_workbook_and_aware_datetimes(samples):
    data = samples["软件系统实施"]
    tz = timezone(timedelta(hours=8))
    aware = RegisterEntry("问题", 99, "时区测试", created_at=datetime(2025, 3, 12, 9, tzinfo=tz), due=date(2025, 3, 20))

    data = dataclasses.replace(data, registers=data.registers + (aware,))
    wb = _load(render_register_xlsx(data, "问题"))
    assert wb.sheetnames == ["问题记录表"]
    _, rows = _rows(wb["问题记录表"])
    assert rows[-1]["提出日期"] == datetime(2025, 3, 12, 9) and rows[-1]["计划解决"] == datetime(2025, 3, 20)
