"""Overdue reminders and escalation through the real scheduler, day by day across the 2026 National Day holiday.

2026: 10-01 .. 10-07 are holidays, Saturday 10-10 is a make-up workday (调休), Sunday 10-11 a rest day.
Thresholds: the defaults, PM after 2 working days, leaders after 5.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.jobs import JobRunContext
from bot.scheduler import RunOutcome, Scheduler
from handlers import reminders
from handlers.reminders import overdue_reminders_job, plan_reminders
from storage.models import OutboxTargetKind, ProjectStatus
from storage.repo.report_queries import pending_deliverables_due
from storage.workdays import WorkCalendar

from tests.features.reports_world import (
    LEADERS,
    DeliverableSpec,
    ProjectSpec,
    add_people,
    add_project,
    make_config,
    make_services,
    outbox_rows,
    sh,
)


def holiday_project(name: str = "智慧工厂MES项目", status: ProjectStatus = ProjectStatus.IN_PROGRESS,
                    internal: str = "cid-internal") -> ProjectSpec:
    return ProjectSpec(
        name=name, status=status, internal=internal, client=None,
        deliverables=[
            DeliverableSpec("项目实施计划", date(2026, 9, 29), owner="liming"),
            DeliverableSpec("需求规格说明书", date(2026, 10, 8), owner="zhaolei"),
            DeliverableSpec("系统部署方案", date(2026, 10, 9), owner=None),  # nobody yet: the PM is reminded
            DeliverableSpec("已交的文档", date(2026, 9, 20), status="已提交"),
        ],
    )


@pytest.fixture
def config(tmp_path: Path):
    return make_config(tmp_path / "files")


async def seed(database, config, *specs):
    async with database.write() as session:
        await add_people(session)
        return [await add_project(session, s) for s in specs]


async def run_day(database, config, day: date, clock: str = "09:30:05"):
    services = make_services(database, config, sh(f"{day}T{clock}"))
    before = {r.idempotency_key for r in await outbox_rows(database)}
    results = await Scheduler(services, [reminders.jobs], owner="test").run_due()
    new = [r for r in await outbox_rows(database) if r.idempotency_key not in before]
    return results, new


async def test_reminders_follow_working_days_escalate_on_thresholds_and_skip_holidays(sqlite_db, config) -> None:
    [project, *_] = await seed(
        sqlite_db, config, holiday_project(),
        holiday_project("暂停的项目", ProjectStatus.PAUSED, "cid-paused"),
        holiday_project("关闭的项目", ProjectStatus.CLOSED, "cid-closed"),
    )
    c = project.code
    sent: dict[date, list[str]] = {}
    day = date(2026, 9, 28)
    while day <= date(2026, 10, 12):
        results, new = await run_day(sqlite_db, config, day)
        sent[day] = sorted(r.idempotency_key for r in new)
        if not WorkCalendar().is_workday(day):
            assert [r.outcome for r in results] == [RunOutcome.NOT_DUE], day
        day += timedelta(days=1)

    assert sent[date(2026, 9, 28)] == [f"duesoon:{c}:liming:2026-09-29"]
    assert sent[date(2026, 9, 29)] == []  # due today: not late yet
    assert sent[date(2026, 9, 30)] == sorted([
        f"overdue-digest:{c}:2026-09-30", f"overdue:{c}:liming:2026-09-30",
        f"duesoon:{c}:zhaolei:2026-10-08",  # the working day before 10-08 is 09-30: the holiday lies between
    ])
    for holiday in range(1, 8):
        assert sent[date(2026, 10, holiday)] == [], holiday
    assert sent[date(2026, 10, 8)] == sorted([
        f"overdue-digest:{c}:2026-10-08", f"overdue:{c}:liming:2026-10-08",
        f"escalate-pm:{c}:2026-10-08",  # 项目实施计划: 2 working days (09-29, 09-30)
        f"duesoon:{c}:wangjianguo:2026-10-09",
    ])
    assert sent[date(2026, 10, 9)] == sorted([
        f"overdue-digest:{c}:2026-10-09", f"overdue:{c}:liming:2026-10-09", f"overdue:{c}:zhaolei:2026-10-09",
        f"escalate-pm:{c}:2026-10-09",
    ])
    assert sent[date(2026, 10, 10)] == sorted([  # Saturday, a make-up workday
        f"overdue-digest:{c}:2026-10-10", f"overdue:{c}:liming:2026-10-10", f"overdue:{c}:zhaolei:2026-10-10",
        f"overdue:{c}:wangjianguo:2026-10-10", f"escalate-pm:{c}:2026-10-10",
    ])
    assert sent[date(2026, 10, 11)] == []
    assert sent[date(2026, 10, 12)] == sorted([
        f"overdue-digest:{c}:2026-10-12", f"overdue:{c}:liming:2026-10-12", f"overdue:{c}:zhaolei:2026-10-12",
        f"overdue:{c}:wangjianguo:2026-10-12", f"escalate-pm:{c}:2026-10-12",
        "escalate-leaders:2026-10-12",  # 项目实施计划: 5 working days (one list a day for all projects)
    ])

    rows = {r.idempotency_key: r for r in await outbox_rows(sqlite_db)}
    # Nothing at all for the paused and the closed project.
    assert all(key.split(":")[1] == c for key in rows if not key.startswith("escalate-leaders:"))
    digest = rows[f"overdue-digest:{c}:2026-10-12"]
    assert (digest.target_kind, digest.target_ids) == (OutboxTargetKind.GROUP, ["cid-internal"])
    assert "《项目实施计划》" in digest.params["msgParam"]["text"] and "逾期 5 个工作日" in digest.params["msgParam"]["text"]
    owner = rows[f"overdue:{c}:liming:2026-10-12"]
    assert (owner.target_kind, owner.target_ids) == (OutboxTargetKind.USER, ["liming"])
    assert "李明，您好" in owner.params["msgParam"]["text"] and "《项目实施计划》" in owner.params["msgParam"]["text"]
    assert "需求规格说明书" not in owner.params["msgParam"]["text"]  # each owner hears about their own only
    pm = rows[f"escalate-pm:{c}:2026-10-12"]
    # 需求规格说明书 is 3 working days late and 系统部署方案 2 (10-09, 10-10): both reach the PM's line of 2.
    assert pm.target_ids == ["wangjianguo"] and "需求规格说明书" in pm.params["msgParam"]["text"]
    assert "《系统部署方案》｜执行｜负责人 未指定｜截止 10-09｜**逾期 2 个工作日**" in pm.params["msgParam"]["text"]
    leaders = rows["escalate-leaders:2026-10-12"]
    assert leaders.target_ids == list(LEADERS)
    text = leaders.params["msgParam"]["text"]
    assert "项目逾期上报" in text and f"（{c}）" in text and "需求规格说明书" not in text
    assert "暂停的项目" not in text and "关闭的项目" not in text

    # Once per day: the run key is taken, and a forced second run finds every outbox key already queued.
    results, new = await run_day(sqlite_db, config, date(2026, 10, 12), "15:00")
    assert [r.outcome for r in results] == [RunOutcome.ALREADY_CLAIMED] and new == []
    services = make_services(sqlite_db, config, sh("2026-10-12T16:00"))
    await overdue_reminders_job(JobRunContext(
        job="overdue_reminders", period_key="2026-10-12", scheduled_at=sh("2026-10-12T09:30"),
        now=sh("2026-10-12T16:00"), reason="manual", services=services,
        log=logging.LoggerAdapter(logging.getLogger("t"), {}), owner="test"))
    assert len(await outbox_rows(sqlite_db)) == len(rows)


async def test_a_catch_up_that_lands_on_a_rest_day_sends_nothing(sqlite_db, config) -> None:
    [project] = await seed(sqlite_db, config, holiday_project())
    # The bot was down over the make-up Saturday and comes back on Sunday morning: the Saturday run is claimed but
    # nobody is reminded on a Sunday; Monday's run covers it.
    results, new = await run_day(sqlite_db, config, date(2026, 10, 11), "08:00")
    assert [(r.outcome, r.period_key) for r in results] == [(RunOutcome.DONE, "2026-10-10")] and new == []
    results, new = await run_day(sqlite_db, config, date(2026, 10, 12))
    assert results[0].outcome == RunOutcome.DONE
    assert {r.idempotency_key.rsplit(":", 1)[1] for r in new} == {"2026-10-12"}


async def test_a_late_catch_up_on_a_working_day_does_not_repeat_that_days_reminders(sqlite_db, config) -> None:
    [project] = await seed(sqlite_db, config, holiday_project())
    # Down at 09:30 on Friday 10-09, back at 08:00 on the make-up Saturday: Friday's run happens now, keyed by today,
    # so Saturday's own run at 09:30 finds every message already queued.
    results, early = await run_day(sqlite_db, config, date(2026, 10, 10), "08:00")
    assert [(r.outcome, r.period_key) for r in results] == [(RunOutcome.DONE, "2026-10-09")]
    assert early and all(k.idempotency_key.endswith("2026-10-10") for k in early)
    results, later = await run_day(sqlite_db, config, date(2026, 10, 10))
    assert [(r.outcome, r.period_key) for r in results] == [(RunOutcome.DONE, "2026-10-10")] and later == []


async def test_thresholds_come_from_the_config(sqlite_db, tmp_path) -> None:
    config = make_config(tmp_path, schedule={"escalate_to_pm_after_days": 1, "escalate_to_leaders_after_days": 1},
                         leaders=())
    await seed(sqlite_db, config, holiday_project())
    async with sqlite_db.read() as session:
        rows = await pending_deliverables_due(session=session, before=date(2026, 9, 30))
    plan = plan_reminders(rows, today=date(2026, 9, 30), calendar=WorkCalendar(), pm_after_days=1,
                          leaders_after_days=1, leaders=())
    kinds = defaultdict(int)
    for reminder in plan:
        kinds[reminder.kind] += 1
    assert kinds == {"digest": 1, "overdue": 1, "escalate-pm": 1}  # no leaders configured: no leader message
