"""Leaders' digest, the health rule, and the reminder texts."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
import sample_data

from reports import reminders
from reports.digest import (
    HealthStatus,
    HealthThresholds,
    digest_rows,
    health_of,
    project_health,
    render_leaders_digest,
)
from reports.model import DeliverableInfo, ProjectSummary

TODAY = date(2025, 3, 12)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(), HealthStatus.ON_TRACK),
        (dict(planned_end=date(2025, 3, 11)), HealthStatus.LATE),
        (dict(planned_end=date(2025, 3, 12)), HealthStatus.ON_TRACK),  # due today is not late yet
        (dict(required_overdue_working_days=[5]), HealthStatus.LATE),
        (dict(required_overdue_working_days=[4]), HealthStatus.AT_RISK),
        (dict(overdue_count=1), HealthStatus.AT_RISK),  # an optional deliverable overdue
        (dict(open_high_risks=1), HealthStatus.AT_RISK),
        (dict(planned_end=date(2025, 1, 1), finished=True), HealthStatus.ON_TRACK),
        (dict(required_overdue_working_days=[9], thresholds=HealthThresholds(late_overdue_working_days=10)),
         HealthStatus.AT_RISK),
        (dict(open_high_risks=2, thresholds=HealthThresholds(at_risk_high_risks=3)), HealthStatus.ON_TRACK),
        (dict(overdue_count=1, thresholds=HealthThresholds(at_risk_overdue_count=0)), HealthStatus.ON_TRACK),
    ],
)
def test_project_health_rule(kwargs, expected):
    kwargs = {"today": TODAY, "planned_end": date(2025, 6, 30), **kwargs}
    assert project_health(**kwargs).status == expected


def test_health_explains_itself():
    h = project_health(today=TODAY, planned_end=date(2025, 3, 7), required_overdue_working_days=[8, 2])
    assert h.label == "🔴 延期"
    assert h.reasons == ("计划完成日 2025-03-07 已过", "交付物最长逾期 8 个工作日")
    assert project_health.__doc__ and "延期" in project_health.__doc__ and "有风险" in project_health.__doc__


def test_sample_projects_show_each_colour(samples):
    assert health_of(samples["设备系统类项目"]).status == HealthStatus.LATE
    assert health_of(samples["软件系统实施"]).status == HealthStatus.AT_RISK  # 4 days overdue + high risk
    assert health_of(samples["技改项目"]).status == HealthStatus.ON_TRACK


def test_leaders_digest_lists_projects_worst_first(samples):
    title, md = render_leaders_digest(list(samples.values()), today=TODAY)
    assert title == "项目周览｜2025-03-12"
    assert "共 3 个在建项目：🔴 延期 1 ｜ 🟡 有风险 1 ｜ 🟢 正常 1" in md
    order = [md.index(f"{icon} {samples[t].project.name}") for icon, t in
             (("🔴", "设备系统类项目"), ("🟡", "软件系统实施"), ("🟢", "技改项目"))]
    assert order == sorted(order)
    assert "阶段：项目实施｜进度 72%｜项目经理 李娜" in md
    assert "逾期交付物 2 项（最长 8 个工作日）｜待审批 1 项" in md
    assert "逾期交付物合计 4 项" in md and "待审批事项合计 2 项" in md


def test_leaders_digest_skips_finished_projects_and_collapses_when_long(samples):
    done = dataclasses.replace(samples["技改项目"], project=dataclasses.replace(samples["技改项目"].project, status="已完成"))
    assert [r.data.project.code for r in digest_rows([done])] == []
    many = []
    for i in range(60):
        base = samples[sample_data.TEMPLATES[i % 3]]
        many.append(dataclasses.replace(base, project=dataclasses.replace(base.project, code=f"P{i:03d}",
                                                                           name=f"{base.project.name}{i}")))
    _, md = render_leaders_digest(many, today=TODAY)
    assert len(md) <= 3500
    assert "共 60 个在建项目：🔴 延期 20 ｜ 🟡 有风险 20 ｜ 🟢 正常 20" in md
    _, empty = render_leaders_digest([], today=TODAY)
    assert "目前没有在建项目" in empty


PROJECT = ProjectSummary("RJ-1", "医保审核项目", "某医院", "软件系统实施", "进行中", "执行", "张伟")


def _d(name, owner, days, due=date(2025, 3, 5), phase="执行"):
    return DeliverableInfo(phase, name, owner, due, "待提交", overdue=days > 0, overdue_working_days=days)


def test_overdue_digest_for_the_internal_group():
    title, md = reminders.render_overdue_digest(
        PROJECT, [_d("数据质量报告", "刘洋", 3), _d("上线规则清单", "陈静", 7), _d("系统使用文档", "赵磊", 0)], today=TODAY)
    assert title == "逾期提醒｜医保审核项目"
    assert "共有 **2** 项交付物已过截止日期" in md
    assert md.index("上线规则清单") < md.index("数据质量报告")  # latest first
    assert "《上线规则清单》｜执行｜陈静｜截止 03-05｜**逾期 7 个工作日**" in md
    assert "系统使用文档" not in md
    assert "请刘洋、陈静尽快提交" in md and "项目经理张伟" in md
    _, none = reminders.render_overdue_digest(PROJECT, [], today=TODAY)
    assert "没有逾期的交付物" in none


def test_owner_reminder_one_and_many():
    _, one = reminders.render_owner_reminder(PROJECT, "陈静", [_d("上线规则清单", "陈静", 7)], today=TODAY)
    assert one.startswith("### 陈静，您好")
    assert "您负责的交付物《上线规则清单》" in one and "已**逾期 7 个工作日**" in one and "联系项目经理张伟" in one
    _, many = reminders.render_owner_reminder(
        PROJECT, "刘洋", [_d("接口说明文档", "刘洋", 1), _d("数据质量报告", "刘洋", 3)], today=TODAY)
    assert "负责的 **2** 项交付物已过截止日期" in many
    assert many.index("数据质量报告") < many.index("接口说明文档")


def test_due_soon_heads_up_is_gentle():
    title, md = reminders.render_due_soon_reminder(PROJECT, "刘洋", [_d("接口说明文档", "刘洋", 0, date(2025, 3, 14))],
                                                   due=date(2025, 3, 14))
    assert title == "交付物明日到期｜医保审核项目"
    assert "温馨提醒" in md and "将于 **2025-03-14** 到期" in md and "逾期" not in md


def test_escalations_to_pm_and_leaders():
    items = [_d("上线规则清单", "陈静", 7), _d("数据质量报告", "刘洋", 3), _d("操作手册", "", 6)]
    _, pm = reminders.render_pm_escalation(PROJECT, items, today=TODAY)
    assert pm.startswith("### 张伟，您好") and "有 **3** 项交付物" in pm and "负责人 未指定" in pm
    title, lead = reminders.render_leader_escalation([(PROJECT, items)], today=TODAY, threshold_working_days=5)
    assert title == "项目逾期上报｜医保审核项目"
    assert "1 个项目共 **2** 项交付物逾期已达 5 个工作日以上" in lead
    assert "数据质量报告" not in lead and "上线规则清单" in lead and "项目经理 张伟" in lead


def test_leaders_get_one_list_of_late_projects_worst_first_and_the_rest_counted():
    other = dataclasses.replace(PROJECT, code="RJ-2", name="智慧工厂MES", pm_name="王建国")
    calm = dataclasses.replace(PROJECT, code="RJ-3", name="仓储系统", pm_name="李明")
    projects = [(PROJECT, [_d("上线规则清单", "陈静", 7)]),
                (other, [_d(f"文档{i}", "刘洋", 12) for i in range(8)]),
                (calm, [_d("操作手册", "赵磊", 2)])]  # below the threshold: not a late project
    title, text = reminders.render_leader_escalation(projects, today=TODAY, threshold_working_days=5)
    assert title == "项目逾期上报｜2 个项目"
    assert "2 个项目共 **9** 项交付物" in text and "仓储系统" not in text
    assert text.index("智慧工厂MES") < text.index("医保审核项目")  # the most overdue first
    assert "…等 8 项" in text and "项目经理 王建国" in text
    _, short = reminders.render_leader_escalation(projects, today=TODAY, threshold_working_days=5, max_chars=330)
    assert "智慧工厂MES" in short and "医保审核项目" not in short and "另有 1 个项目" in short and len(short) <= 330


def test_reminder_lists_are_capped():
    items = [_d(f"交付物{i}", "刘洋", i + 1) for i in range(40)]
    _, md = reminders.render_overdue_digest(PROJECT, items, today=TODAY)
    assert "…等 40 项" in md and len(md) < 3500
