"""plan_project: phases in order, every date a working day, holidays and years beyond the package's data."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.planner import PlanError, _apportion, plan_project
from storage.templates import ProcessTemplate, ProjectPlan, TemplateRegistry
from storage.workdays import WorkCalendar

TEMPLATES = ["软件系统实施", "设备系统类项目", "技改项目"]
NATIONAL_DAY_2026 = {date(2026, 10, d) for d in range(1, 8)}


def check_plan(plan: ProjectPlan, template: ProcessTemplate, calendar: WorkCalendar) -> None:
    """Invariants every plan must hold."""
    assert [p.name for p in plan.phases] == [p.name for p in template.phases]
    assert [p.order for p in plan.phases] == list(range(1, len(template.phases) + 1))
    sequential = [p for p in plan.phases if p.parallel_with is None]
    assert sequential[0].start == plan.start
    assert sequential[-1].end == plan.end
    for before, after in zip(sequential, sequential[1:]):
        assert after.start == calendar.next_workday(before.end)
    for phase in plan.phases:
        assert calendar.is_workday(phase.start) and calendar.is_workday(phase.end)
        assert phase.duration_days >= 1
        assert calendar.count_workdays(phase.start, phase.end) == phase.duration_days
        if phase.parallel_with:
            host = plan.phase(phase.parallel_with)
            assert (phase.start, phase.end) == (host.start, host.end)
    expected = [(p.name, a.name, d.name) for p, a, d in template.iter_deliverables()]
    assert [(d.phase, d.activity, d.name) for d in plan.deliverables] == expected
    assert [d.order for d in plan.deliverables] == list(range(1, len(expected) + 1))
    for deliverable in plan.deliverables:
        if deliverable.recurrence == "per_event":
            assert deliverable.due is None
            continue
        assert deliverable.due is not None
        assert calendar.is_workday(deliverable.due), deliverable
        phase = plan.phase(deliverable.phase)
        assert phase.start <= deliverable.due <= phase.end, deliverable


@pytest.mark.parametrize("name", TEMPLATES)
def test_each_template_plans_into_a_project(registry: TemplateRegistry, calendar: WorkCalendar, name: str) -> None:
    template = registry.get(name)
    plan = plan_project(template, date(2026, 3, 2), calendar)
    check_plan(plan, template, calendar)
    assert plan.template == name
    assert not plan.scaled
    for phase, spec in zip(plan.phases, template.phases):
        assert phase.duration_days == template.phase_duration(spec)


def test_software_plan_details(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    plan = plan_project(registry.get("软件"), date(2026, 3, 2), calendar)
    approval = plan.deliverable("项目立项申请表")
    assert approval.has_flag("project_approval") and approval.flags == ("project_approval", "leader_approval")
    assert approval.owner_role == "项目经理" and approval.required
    assert approval.due == date(2026, 3, 4)  # offset 2 from Monday
    assert plan.flagged("acceptance")[0].name == "项目验收确认单"
    weekly = plan.deliverable("客户项目周报")
    assert weekly.recurrence == "weekly" and weekly.phase == "监控"
    assert weekly.due == calendar.add_workdays(plan.phase("执行").start, 4)
    assert plan.deliverable("问题记录表").due == plan.phase("监控").end  # final version at the phase end
    assert plan.deliverable("问题记录表").register == "问题"
    assert plan.deliverable("升级记录表").due is None
    assert [d.name for d in plan.deliverables_of("启动")][:2] == ["商务合同", "项目启动会记录表"]


def test_start_on_a_holiday_rolls_forward(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    plan = plan_project(registry.get("软件"), date(2026, 10, 1), calendar)
    assert plan.start == date(2026, 10, 8)
    assert plan.deliverable("商务合同").due == date(2026, 10, 8)


@pytest.mark.parametrize("name", TEMPLATES)
def test_dues_across_national_day_2026(registry: TemplateRegistry, calendar: WorkCalendar, name: str) -> None:
    template = registry.get(name)
    for offset in range(0, 60, 3):
        plan = plan_project(template, date(2026, 8, 3) + timedelta(days=offset), calendar)
        check_plan(plan, template, calendar)
        dues = {d.due for d in plan.deliverables if d.due}
        assert not dues & NATIONAL_DAY_2026
        assert date(2026, 10, 11) not in dues


def test_a_deliverable_can_fall_on_the_makeup_saturday(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    plan = plan_project(registry.get("技改"), date(2026, 9, 1), calendar)
    review = plan.deliverable("设计会审纪要")
    assert review.due == date(2026, 10, 10)
    assert review.due.weekday() == 5
    assert plan.phase("规划").end == date(2026, 10, 10)
    assert plan.phase("执行").start == date(2026, 10, 12)


def test_project_running_into_2027(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    template = registry.get("技改")
    plan = plan_project(template, date(2026, 11, 2), calendar)
    check_plan(plan, template, calendar)
    dues_2027 = sorted(d.due for d in plan.deliverables if d.due and d.due.year == 2027)
    assert dues_2027, "the plan should reach into 2027"
    assert plan.end.year == 2027

    # Declaring the first 2027 due date a company holiday moves everything off it.
    holiday = dues_2027[0]
    company = WorkCalendar(extra_holidays=[holiday, date(2027, 1, 1)])
    shifted = plan_project(template, date(2026, 11, 2), company, end=date(2027, 6, 30))
    check_plan(shifted, template, company)
    unscaled = plan_project(template, date(2026, 11, 2), company)
    check_plan(unscaled, template, company)
    for each in (shifted, unscaled):
        dues = {d.due for d in each.deliverables if d.due}
        assert holiday not in dues and date(2027, 1, 1) not in dues
        assert all(p.start != holiday and p.end != holiday for p in each.phases)


def test_far_future_projects_never_fail(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    template = registry.get("设备")
    check_plan(plan_project(template, date(2031, 12, 20), calendar), template, calendar)


# -- fitting to an end date ---------------------------------------------------------------------------------------


def test_end_date_scales_phases_to_fit(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    template = registry.get("软件")
    start, end = date(2026, 9, 1), date(2026, 11, 30)
    plan = plan_project(template, start, calendar, end=end)
    check_plan(plan, template, calendar)
    assert plan.scaled
    assert plan.end == date(2026, 11, 30)
    sequential = [p for p in plan.phases if p.parallel_with is None]
    assert sum(p.duration_days for p in sequential) == calendar.count_workdays(start, end)
    # Proportions are kept: 执行 (40 of 80 template days) stays the longest phase.
    assert max(sequential, key=lambda p: p.duration_days).name == "执行"


def test_end_on_a_rest_day_rolls_back(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    plan = plan_project(registry.get("软件"), date(2026, 9, 1), calendar, end=date(2026, 10, 4))
    assert plan.end == date(2026, 9, 30)


def test_end_matching_the_template_changes_nothing(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    template = registry.get("设备")
    default = plan_project(template, date(2026, 4, 1), calendar)
    fitted = plan_project(template, date(2026, 4, 1), calendar, end=default.end)
    assert not fitted.scaled
    assert fitted == default


def test_tight_end_date_gives_every_phase_one_day(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    template = registry.get("软件")  # four sequential phases
    plan = plan_project(template, date(2026, 9, 28), calendar, end=date(2026, 10, 8))  # 28, 29, 30, 8
    check_plan(plan, template, calendar)
    assert [p.duration_days for p in plan.phases] == [1, 1, 1, 1, 1]
    assert plan.phase("收尾").start == date(2026, 10, 8)


def test_impossible_end_dates(registry: TemplateRegistry, calendar: WorkCalendar) -> None:
    template = registry.get("软件")
    with pytest.raises(PlanError, match="工期过短: 2026-09-29 至 2026-10-08 只有 3 个工作日"):
        plan_project(template, date(2026, 9, 29), calendar, end=date(2026, 10, 8))
    with pytest.raises(PlanError, match="早于开始日期"):
        plan_project(template, date(2026, 10, 8), calendar, end=date(2026, 10, 7))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(TEMPLATES),
    st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31)),
    st.integers(min_value=21, max_value=400),  # three weeks always hold four working days
)
def test_any_fitted_plan_is_sound(name: str, start: date, days: int) -> None:
    from storage.templates import load_templates

    template = load_templates().get(name)
    calendar = WorkCalendar()
    plan = plan_project(template, start, calendar, end=start + timedelta(days=days))
    check_plan(plan, template, calendar)
    assert plan.end == calendar.roll_backward(start + timedelta(days=days))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=90), min_size=1, max_size=8), st.integers(0, 500))
def test_apportion_fills_exactly_with_at_least_one_day(weights: list[int], extra: int) -> None:
    total = len(weights) + extra
    shares = _apportion(weights, total)
    assert sum(shares) == total
    assert min(shares) >= 1
    assert _apportion(weights, sum(weights)) == weights
