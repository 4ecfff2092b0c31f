"""The leaders' digest (项目周览): Monday 09:00, 1:1 to each leader, every running project with a status colour."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from bot.scheduler import RunOutcome, Scheduler
from domain.report_data import gather_digest_data
from handlers import digest
from reports.digest import HealthStatus, health_of
from storage.models import OutboxTargetKind, ProjectStatus, RegisterKind
from storage.workdays import WorkCalendar

from tests.features.reports_world import (
    LEADERS,
    DeliverableSpec,
    EntrySpec,
    ProjectSpec,
    add_people,
    add_project,
    make_config,
    make_services,
    outbox_rows,
    sh,
    utc,
)

MONDAY = sh("2026-11-30T09:00:05")


def portfolio() -> list[ProjectSpec]:
    return [
        ProjectSpec("正常项目", internal="cid-a"),
        ProjectSpec("延期项目", internal="cid-b", planned_end=date(2026, 11, 20)),
        ProjectSpec("逾期项目", internal="cid-c", running_approvals=2,
                    deliverables=[DeliverableSpec("需求规格说明书", date(2026, 11, 25)),
                                  DeliverableSpec("非必交材料", date(2026, 11, 26), required=False)]),
        ProjectSpec("高风险项目", internal="cid-d",
                    entries=[EntrySpec(RegisterKind.RISK, "关键设备到货延迟", utc("2026-11-20T10:00"),
                                       probability="高", impact="中"),
                             EntrySpec(RegisterKind.RISK, "低风险", utc("2026-11-20T10:00"),
                                       probability="低", impact="低")]),
        ProjectSpec("暂停项目", internal="cid-e", status=ProjectStatus.PAUSED,
                    deliverables=[DeliverableSpec("暂停前的文档", date(2026, 11, 2))]),
        ProjectSpec("已关闭项目", internal="cid-f", status=ProjectStatus.CLOSED,
                    deliverables=[DeliverableSpec("不会出现", date(2026, 11, 2))]),
    ]


async def seed(database, specs):
    async with database.write() as session:
        await add_people(session)
        for spec in specs:
            await add_project(session, spec)


async def test_the_digest_goes_to_every_leader_once_a_week_worst_first(sqlite_db, tmp_path: Path) -> None:
    config = make_config(tmp_path)
    await seed(sqlite_db, portfolio())
    services = make_services(sqlite_db, config, MONDAY)
    scheduler = Scheduler(services, [digest.jobs], owner="test")
    [result] = await scheduler.run_due()
    assert (result.outcome, result.period_key) == (RunOutcome.DONE, "2026-W49"), result.error

    [row] = await outbox_rows(sqlite_db)
    assert row.idempotency_key == "leaders-digest:2026-W49"
    assert (row.target_kind, row.target_ids) == (OutboxTargetKind.USER, list(LEADERS))
    text = row.params["msgParam"]["text"]
    assert row.params["msgParam"]["title"] == "项目周览｜2026-11-30"
    assert "共 5 个在建项目：🔴 延期 1 ｜ 🟡 有风险 2 ｜ 🟢 正常 2" in text
    assert "已关闭项目" not in text
    # Worst first: the late project, then the ones at risk, then the healthy ones.
    order = [text.index(name) for name in ("🔴 延期项目", "🟡 逾期项目", "🟡 高风险项目", "🟢 正常项目")]
    assert order == sorted(order)
    assert "计划完成日 2026-11-20 已过" in text
    assert "逾期交付物 2 项（最长 3 个工作日）｜待审批 2 项" in text  # 11-25, 11-26, 11-27 / 11-26, 11-27
    assert "1 个高风险未关闭" in text
    assert "项目状态：已暂停" in text  # listed, but its stopped deadlines count no overdue deliverables
    assert "逾期交付物合计 2 项" in text

    [again] = await scheduler.run_due()
    assert again.outcome == RunOutcome.ALREADY_CLAIMED
    assert len(await outbox_rows(sqlite_db)) == 1


async def test_no_digest_on_a_holiday_monday(sqlite_db, tmp_path: Path) -> None:
    await seed(sqlite_db, portfolio())
    services = make_services(sqlite_db, make_config(tmp_path), sh("2026-10-05T09:00:05"))  # 国庆 holiday
    [result] = await Scheduler(services, [digest.jobs], owner="test").run_due()
    assert (result.outcome, result.period_key) == (RunOutcome.DONE, "2026-W41") and await outbox_rows(sqlite_db) == []


async def test_no_leaders_no_digest(sqlite_db, tmp_path: Path) -> None:
    await seed(sqlite_db, portfolio())
    services = make_services(sqlite_db, make_config(tmp_path, leaders=()), MONDAY)
    [result] = await Scheduler(services, [digest.jobs], owner="test").run_due()
    assert result.outcome == RunOutcome.DONE and await outbox_rows(sqlite_db) == []


async def test_digest_data_and_health_on_every_backend(db) -> None:
    await seed(db, portfolio())
    async with db.read() as session:
        projects = await gather_digest_data(session=session, today=date(2026, 11, 30), calendar=WorkCalendar())
    by_name = {p.project.name: p for p in projects}
    assert sorted(by_name) == sorted(["正常项目", "延期项目", "逾期项目", "高风险项目", "暂停项目"])
    health = {name: health_of(data).status for name, data in by_name.items()}
    assert health == {"正常项目": HealthStatus.ON_TRACK, "延期项目": HealthStatus.LATE,
                      "逾期项目": HealthStatus.AT_RISK, "高风险项目": HealthStatus.AT_RISK,
                      "暂停项目": HealthStatus.ON_TRACK}
    late = by_name["逾期项目"]
    # Counted by the database: two overdue, the worst (a required one, due 11-25) 3 working days late.
    assert len(late.deliverables) == 2 and all(d.is_overdue for d in late.deliverables)
    assert max(d.overdue_working_days for d in late.deliverables if d.required) == 3
    assert len(late.approvals) == 2 and all(a.is_pending for a in late.approvals)
    assert late.project.pm_name == "王建国" and late.project.phase == "规划"
    assert sum(e.is_high_risk for e in by_name["高风险项目"].registers) == 1
