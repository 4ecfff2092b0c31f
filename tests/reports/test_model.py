"""The report data model: derived properties the renderers rely on."""

from __future__ import annotations

from datetime import date, datetime

from reports.formatting import fmt_date, fmt_short_date
from reports.model import (
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

PROJECT = ProjectSummary("P-1", "测试项目", "客户", "软件系统实施", "进行中", "执行", "张伟")


def test_status_enums_compare_equal_to_plain_strings():
    assert DeliverableStatus.PENDING == "待提交" and RegisterKind.UPGRADE == "升级记录"
    d = DeliverableInfo("执行", "接口说明文档", status="待提交", overdue_working_days=2)
    assert d.is_overdue


def test_deliverable_overdue_only_while_pending():
    assert DeliverableInfo("执行", "a", overdue=True).is_overdue
    assert not DeliverableInfo("执行", "a", status="已提交", overdue=True, overdue_working_days=3).is_overdue
    assert not DeliverableInfo("执行", "a", status="已豁免", overdue_working_days=3).is_overdue
    assert not DeliverableInfo("执行", "a").is_overdue


def test_register_open_and_risk_level():
    assert RegisterEntry("问题", 1, "x", status="处理中").is_open
    assert not RegisterEntry("问题", 1, "x", status="已解决").is_open
    assert not RegisterEntry("问题", 1, "x", status="处理中", closed_at=datetime(2025, 3, 1)).is_open
    high = RegisterEntry("风险", 1, "x", probability="高", impact="中")
    assert high.risk_score == 6 and high.is_high_risk
    assert not RegisterEntry("风险", 2, "x", probability="中", impact="中").is_high_risk
    assert not RegisterEntry("问题", 3, "x", probability="高", impact="高").is_high_risk  # only risks
    assert RegisterEntry("风险", 4, "x").risk_score == 0


def test_phase_state_and_phase_order():
    assert PhaseInfo("启动", gate_passed=True).state == "已完成"
    assert PhaseInfo("规划", actual_start=date(2025, 1, 1)).state == "进行中"
    assert PhaseInfo("执行").state == "未开始"
    data = ProjectReportData(PROJECT, date(2025, 3, 12), phases=(PhaseInfo("启动"), PhaseInfo("规划")),
                             deliverables=(DeliverableInfo("其他", "x"), DeliverableInfo("启动", "y")))
    assert data.phase_names() == ("启动", "规划", "其他")
    assert data.week == WeeklyPeriod(2025, 11)


def test_entries_are_sorted_by_sequence():
    data = ProjectReportData(PROJECT, date(2025, 3, 12), registers=(
        RegisterEntry("问题", 2, "b"), RegisterEntry("风险", 1, "r"), RegisterEntry("问题", 1, "a")))
    assert [e.title for e in data.entries(RegisterKind.ISSUE)] == ["a", "b"]


def test_as_date():
    assert as_date(datetime(2025, 3, 12, 23, 59)) == date(2025, 3, 12)
    assert as_date(date(2025, 3, 12)) == date(2025, 3, 12) and as_date(None) is None


def test_dates_print_the_same_however_often_and_in_whichever_order():
    # Day texts are cached: a date and a datetime of the same day must still print differently.
    day, moment = date(2026, 3, 7), datetime(2026, 3, 7, 9, 5)
    for _ in range(2):
        assert (fmt_date(day), fmt_date(moment)) == ("2026-03-07", "2026-03-07 09:05")
        assert (fmt_short_date(day), fmt_short_date(moment)) == ("03-07", "03-07")
        assert fmt_date(None) == "—" and fmt_short_date(None, empty="") == ""
