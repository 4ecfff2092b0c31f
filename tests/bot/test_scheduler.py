"""Running jobs: one run per (job, period) on every backend, catch-up after downtime, failures, a real trigger.

Jobs are declared the way a handler module declares them: module-level async functions on a module-level
``JobRegistry``. Time is a ``FrozenClock`` or an explicit ``now``; the one test that needs APScheduler to really fire
uses a sub-second interval and waits on an event.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.config import Config, parse_config
from bot.context import FrozenClock, Services, SystemClock
from bot.jobs import JobRegistry, JobRunContext, daily, every, weekly
from bot.outbox import group_target, target_params
from bot.scheduler import RunOutcome, Scheduler, request_job
from storage.db import Database
from storage.models import JobRunState, OutboxMessage
from storage.repo import claim_job_run, get_job_run, reclaim_job_run
from storage.workdays import WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
EVENT_TIMEOUT = 5.0


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


CONFIG: Config = parse_config(
    {"dingtalk": {"client_id": "ding-test", "client_secret": "s3cret"}}, environ={}, require_real_secret=False
)

# What the jobs saw, and which periods they should fail: module state, reset before every test.
CALLS: list[JobRunContext] = []
FAILING_PERIODS: set[str] = set()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()
    FAILING_PERIODS.clear()


weekly_jobs = JobRegistry()


@weekly_jobs.scheduled(
    "weekly_report",
    weekly(day=lambda cfg: cfg.schedule.weekly_report_day, at=lambda cfg: cfg.schedule.weekly_report_time),
)
async def weekly_report_job(run: JobRunContext) -> None:
    CALLS.append(run)
    if run.period_key in FAILING_PERIODS:
        raise RuntimeError(f"report generation failed for {run.period_key}")


reminder_jobs = JobRegistry()


@reminder_jobs.scheduled("overdue_reminders", daily(at=lambda cfg: cfg.schedule.reminder_time, workdays_only=True))
async def overdue_reminders_job(run: JobRunContext) -> None:
    CALLS.append(run)


def services_for(database: Database, now: datetime | None = None) -> Services:
    clock = FrozenClock(now, SHANGHAI) if now is not None else SystemClock(SHANGHAI)
    return Services(config=CONFIG, clock=clock, database=database, calendar=WorkCalendar())


async def job_run(database: Database, job: str, period_key: str):
    async with database.read() as session:
        return await get_job_run(session=session, job=job, period_key=period_key)


# -- exactly once ---------------------------------------------------------------------------------------------------


async def test_a_due_run_claims_its_period_and_runs_once(db: Database) -> None:
    services = services_for(db, sh("2026-11-27T17:00:03"))
    scheduler = Scheduler(services, [weekly_jobs], owner="bot-1:100")

    first = await scheduler.run_due()
    second = await scheduler.run_due()

    assert [(r.outcome, r.period_key) for r in first] == [(RunOutcome.DONE, "2026-W48")]
    assert [(r.outcome, r.period_key) for r in second] == [(RunOutcome.ALREADY_CLAIMED, "2026-W48")]
    [run] = CALLS
    assert (run.job, run.period_key, run.reason, run.owner) == ("weekly_report", "2026-W48", "manual", "bot-1:100")
    assert run.scheduled_at == sh("2026-11-27T17:00") and run.now == sh("2026-11-27T17:00:03")
    assert run.delay == timedelta(seconds=3) and run.today.isoformat() == "2026-11-27"
    assert run.services is services and run.database is db and run.config is CONFIG
    assert run.now_utc == datetime(2026, 11, 27, 9, 0, 3)
    row = await job_run(db, "weekly_report", "2026-W48")
    assert row is not None and row.state is JobRunState.DONE and row.owner == "bot-1:100" and row.error is None
    assert row.started_at == datetime(2026, 11, 27, 9, 0, 3) and row.finished_at >= row.started_at


async def test_concurrent_schedulers_on_one_database_run_a_period_once(db: Database) -> None:
    # Four "processes": each its own engine (connections, transactions) and scheduler; they race for one period.
    now = sh("2026-11-27T17:00:01")
    databases = [Database(db.url) for _ in range(4)]
    try:
        schedulers = [
            Scheduler(services_for(database, now), [weekly_jobs], owner=f"bot-{n}:1")
            for n, database in enumerate(databases)
        ]
        async with asyncio.timeout(30):
            results = await asyncio.gather(*(s.run_due() for s in schedulers), *(s.catch_up() for s in schedulers))
    finally:
        for database in databases:
            await database.close()
    outcomes = Counter(result.outcome for batch in results for result in batch)
    assert outcomes == {RunOutcome.DONE: 1, RunOutcome.ALREADY_CLAIMED: 7}
    assert [run.period_key for run in CALLS] == ["2026-W48"]
    row = await job_run(db, "weekly_report", "2026-W48")
    assert row is not None and row.state is JobRunState.DONE and row.owner == CALLS[0].owner


# -- catch-up -------------------------------------------------------------------------------------------------------


async def test_a_run_missed_while_down_runs_once_after_restart(db: Database) -> None:
    # Life 1 ends on Thursday, before Friday's 17:00 report; at its start it caught up last week's.
    life1 = Scheduler(services_for(db, sh("2026-11-26T10:00")), [weekly_jobs])
    assert [r.outcome for r in await life1.catch_up()] == [RunOutcome.DONE]

    # Life 2 starts on Saturday morning, on a fresh engine as a restarted process would.
    database2 = Database(db.url)
    try:
        life2 = Scheduler(services_for(database2, sh("2026-11-28T10:00")), [weekly_jobs])
        [result] = await life2.catch_up()
    finally:
        await database2.close()
    assert (result.outcome, result.period_key) == (RunOutcome.DONE, "2026-W48")
    assert result.scheduled_at == sh("2026-11-27T17:00")
    assert CALLS[-1].reason == "catch_up" and CALLS[-1].delay == timedelta(hours=17)

    # Life 3, an hour later: nothing to catch up.
    life3 = Scheduler(services_for(db, sh("2026-11-28T11:00")), [weekly_jobs])
    assert [r.outcome for r in await life3.catch_up()] == [RunOutcome.ALREADY_CLAIMED]
    assert [run.period_key for run in CALLS] == ["2026-W47", "2026-W48"]


async def test_a_fire_older_than_the_misfire_window_is_not_run(sqlite_db: Database) -> None:
    # Monday 08:00: the last working-day fire was Friday 09:30, beyond the daily job's one-day window.
    scheduler = Scheduler(services_for(sqlite_db, sh("2026-11-30T08:00")), [reminder_jobs])
    [result] = await scheduler.catch_up()
    assert (result.outcome, result.scheduled_at) == (RunOutcome.NOT_DUE, sh("2026-11-27T09:30"))
    assert CALLS == [] and await job_run(sqlite_db, "overdue_reminders", "2026-11-27") is None

    short_window = JobRegistry()
    short_window.scheduled("weekly_report", weekly(day="fri", at="17:00"), misfire=timedelta(hours=2))(
        weekly_report_job
    )
    late = Scheduler(services_for(sqlite_db, sh("2026-11-27T19:00:01")), [short_window])
    assert [r.outcome for r in await late.run_due()] == [RunOutcome.NOT_DUE]
    on_time = Scheduler(services_for(sqlite_db, sh("2026-11-27T19:00")), [short_window])
    assert [r.outcome for r in await on_time.run_due()] == [RunOutcome.DONE]


async def test_working_day_reminders_skip_the_holiday_and_run_on_the_make_up_saturday(sqlite_db: Database) -> None:
    clock = FrozenClock(sh("2026-09-29T09:31"), SHANGHAI)
    services = Services(config=CONFIG, clock=clock, database=sqlite_db, calendar=WorkCalendar())
    scheduler = Scheduler(services, [reminder_jobs])
    ran: list[str] = []
    for _ in range(14):  # one wake-up a day, a minute after the fire time, through National Day
        ran += [r.period_key for r in await scheduler.run_due(reason="trigger") if r.outcome is RunOutcome.DONE]
        clock.advance(timedelta(days=1))
    assert ran == ["2026-09-29", "2026-09-30", "2026-10-08", "2026-10-09", "2026-10-10", "2026-10-12"]


# -- failures -------------------------------------------------------------------------------------------------------


async def test_a_job_failing_with_a_bug_is_retried_three_times_then_left_recorded(db: Database) -> None:
    FAILING_PERIODS.add("2026-W48")
    scheduler = Scheduler(services_for(db, sh("2026-11-27T17:00")), [weekly_jobs])

    [failed] = await scheduler.run_due()
    assert failed.outcome is RunOutcome.FAILED and "report generation failed for 2026-W48" in (failed.error or "")
    row = await job_run(db, "weekly_report", "2026-W48")
    assert row is not None and row.state is JobRunState.FAILED and row.finished_at is not None
    assert "RuntimeError: report generation failed for 2026-W48" in (row.error or "")
    # The next sweeps run it again (the failure might have been passing), up to three runs in all ...
    retries = [await scheduler.run_due(sh(f"2026-11-27T17:{minute:02d}"), reason="catch_up") for minute in (5, 10)]
    assert [r.outcome for [r] in retries] == [RunOutcome.FAILED, RunOutcome.FAILED]
    assert [run.attempt for run in CALLS] == [1, 2, 3]
    # ... then it stays failed with its error, for the operator, and is not run again that week.
    assert [r.outcome for r in await scheduler.catch_up(sh("2026-11-27T17:15"))] == [RunOutcome.ALREADY_CLAIMED]
    row = await job_run(db, "weekly_report", "2026-W48")
    assert row is not None and row.state is JobRunState.FAILED and row.attempts == 3
    assert "RuntimeError: report generation failed for 2026-W48" in (row.error or "")
    # The next period runs normally.
    [next_week] = await scheduler.run_due(sh("2026-12-04T17:00"))
    assert (next_week.outcome, next_week.period_key) == (RunOutcome.DONE, "2026-W49")
    assert [run.period_key for run in CALLS] == ["2026-W48"] * 3 + ["2026-W49"]


async def test_a_run_left_running_by_a_dead_process_is_taken_over_once_after_its_lease(db: Database) -> None:
    # The process that claimed this week's run died in the middle of it: the row says running, nobody renews it.
    async with db.write() as session:
        await claim_job_run(session=session, job="weekly_report", period_key="2026-W48", owner="bot-dead:1",
                            now=datetime(2026, 11, 27, 9, 0), lease_until=datetime(2026, 11, 27, 9, 2))
    early = Scheduler(services_for(db, sh("2026-11-27T17:01")), [weekly_jobs])
    assert [r.outcome for r in await early.catch_up()] == [RunOutcome.ALREADY_CLAIMED]  # it may still be alive

    # After the lease, two replicas sweep at the same moment, each on its own engine: one runs the week again.
    databases = [Database(db.url) for _ in range(2)]
    try:
        sweepers = [Scheduler(services_for(d, sh("2026-11-27T17:05")), [weekly_jobs], owner=f"bot-{n}:1")
                    for n, d in enumerate(databases)]
        async with asyncio.timeout(30):
            results = await asyncio.gather(*(s.catch_up() for s in sweepers))
    finally:
        for database in databases:
            await database.close()
    assert Counter(r.outcome for [r] in results) == {RunOutcome.DONE: 1, RunOutcome.ALREADY_CLAIMED: 1}
    [run] = CALLS
    assert (run.period_key, run.attempt, run.reason) == ("2026-W48", 2, "catch_up")
    row = await job_run(db, "weekly_report", "2026-W48")
    assert row is not None and row.state is JobRunState.DONE and row.owner == run.owner and row.attempts == 2
    later = Scheduler(services_for(db, sh("2026-11-27T17:10")), [weekly_jobs])
    assert [r.outcome for r in await later.catch_up()] == [RunOutcome.ALREADY_CLAIMED]
    assert len(CALLS) == 1


hanging_jobs = JobRegistry()
_hang_state: dict[str, asyncio.Event] = {}  # fresh events per test (the `hang` fixture): the jobs are module-level


@hanging_jobs.scheduled("reconcile_approvals", every(timedelta(minutes=10)), timeout=0.2)
async def reconcile_approvals_job(run: JobRunContext) -> None:
    CALLS.append(run)
    _hang_state["started"].set()
    await _hang_state["release"].wait()


@pytest.fixture
def hang() -> dict[str, asyncio.Event]:
    _hang_state.update(started=asyncio.Event(), release=asyncio.Event())
    return _hang_state


async def test_a_run_over_its_timeout_is_cancelled_and_recorded(sqlite_db: Database, hang) -> None:
    scheduler = Scheduler(services_for(sqlite_db, sh("2026-11-25T09:31")), [hanging_jobs])
    [result] = await scheduler.run_due()
    assert result.outcome is RunOutcome.FAILED and result.error == "timed out after 0.2s"
    row = await job_run(sqlite_db, "reconcile_approvals", "2026-11-25T09:30+08:00")
    assert row is not None and row.state is JobRunState.FAILED and row.error == "timed out after 0.2s"


# -- the APScheduler side -------------------------------------------------------------------------------------------


async def test_start_runs_the_catch_up_and_stop_waits_for_the_run(sqlite_db: Database, hang) -> None:
    scheduler = Scheduler(services_for(sqlite_db, sh("2026-11-25T09:31")), [hanging_jobs])
    await scheduler.start()
    assert scheduler.running
    await asyncio.wait_for(hang["started"].wait(), EVENT_TIMEOUT)
    stopping = asyncio.create_task(scheduler.stop(grace=EVENT_TIMEOUT))
    hang["release"].set()
    await asyncio.wait_for(stopping, EVENT_TIMEOUT)
    assert not scheduler.running and CALLS[0].reason == "catch_up"
    row = await job_run(sqlite_db, "reconcile_approvals", "2026-11-25T09:30+08:00")
    assert row is not None and row.state is JobRunState.DONE


slow_jobs = JobRegistry()


@slow_jobs.scheduled("archive_projects", daily(at="02:00"))
async def archive_projects_job(run: JobRunContext) -> None:
    _hang_state["started"].set()
    await _hang_state["release"].wait()


async def test_stop_cancels_a_run_that_outlives_the_grace_period(sqlite_db: Database, hang) -> None:
    scheduler = Scheduler(services_for(sqlite_db, sh("2026-11-25T02:00")), [slow_jobs])
    await scheduler.start()
    await asyncio.wait_for(hang["started"].wait(), EVENT_TIMEOUT)
    await asyncio.wait_for(scheduler.stop(grace=0.05), EVENT_TIMEOUT)
    row = await job_run(sqlite_db, "archive_projects", "2026-11-25")
    assert row is not None and row.state is JobRunState.FAILED and "cancelled" in (row.error or "")


async def test_a_run_cancelled_at_shutdown_runs_again_at_the_next_sweep(db: Database, hang) -> None:
    life1 = Scheduler(services_for(db, sh("2026-11-25T02:00")), [slow_jobs], owner="bot-1:1")
    await life1.start()
    await asyncio.wait_for(hang["started"].wait(), EVENT_TIMEOUT)
    await asyncio.wait_for(life1.stop(grace=0.05), EVENT_TIMEOUT)

    hang["release"].set()  # this time the job gets to finish
    life2 = Scheduler(services_for(db, sh("2026-11-25T02:05")), [slow_jobs], owner="bot-2:1")
    [result] = await life2.run_due(reason="catch_up")
    assert (result.outcome, result.period_key) == (RunOutcome.DONE, "2026-11-25")
    row = await job_run(db, "archive_projects", "2026-11-25")
    assert row is not None and row.state is JobRunState.DONE and row.error is None
    assert (row.owner, row.attempts) == ("bot-2:1", 2)


async def eventually(check, timeout: float = EVENT_TIMEOUT) -> None:
    """Wait until the database shows what ``check`` looks for (a background renewal has no event to wait on)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


async def test_a_live_run_renews_its_lease_and_is_not_taken_over(sqlite_db: Database, hang) -> None:
    clock = FrozenClock(sh("2026-11-25T02:00"), SHANGHAI)
    services = Services(config=CONFIG, clock=clock, database=sqlite_db, calendar=WorkCalendar())
    owner = Scheduler(services, [slow_jobs], owner="bot-1:1", lease=timedelta(milliseconds=300))
    running = asyncio.create_task(owner.run_due())
    await asyncio.wait_for(hang["started"].wait(), EVENT_TIMEOUT)
    clock.advance(timedelta(hours=1))  # far past the first lease: only the renewals keep the run

    async def renewed() -> bool:
        row = await job_run(sqlite_db, "archive_projects", "2026-11-25")
        return row is not None and row.lease_until is not None and row.lease_until > datetime(2026, 11, 24, 19, 0)

    await eventually(renewed)
    rival = Scheduler(services_for(sqlite_db, sh("2026-11-25T03:00")), [slow_jobs], owner="bot-2:1")
    assert [r.outcome for r in await rival.catch_up()] == [RunOutcome.ALREADY_CLAIMED]
    hang["release"].set()
    [result] = await asyncio.wait_for(running, EVENT_TIMEOUT)
    assert result.outcome is RunOutcome.DONE
    row = await job_run(sqlite_db, "archive_projects", "2026-11-25")
    assert row is not None and (row.state, row.owner, row.attempts) == (JobRunState.DONE, "bot-1:1", 1)


async def test_an_owner_whose_run_was_taken_over_stops_it(sqlite_db: Database, hang) -> None:
    owner = Scheduler(services_for(sqlite_db, sh("2026-11-25T02:00")), [slow_jobs], owner="bot-1:1",
                      lease=timedelta(milliseconds=300))
    running = asyncio.create_task(owner.run_due())
    await asyncio.wait_for(hang["started"].wait(), EVENT_TIMEOUT)
    # As if this process had stalled past its lease and a replica had taken the run over.
    async with sqlite_db.write() as session:
        assert await reclaim_job_run(session=session, job="archive_projects", period_key="2026-11-25",
                                     owner="bot-2:1", stale_before=datetime(2026, 11, 25))
    [result] = await asyncio.wait_for(running, EVENT_TIMEOUT)
    assert (result.outcome, result.error) == (RunOutcome.FAILED, "lease lost")
    assert not hang["release"].is_set()  # the job was stopped, not finished
    row = await job_run(sqlite_db, "archive_projects", "2026-11-25")
    assert row is not None and (row.state, row.owner, row.attempts) == (JobRunState.RUNNING, "bot-2:1", 2)


async def test_the_weekly_cron_trigger_is_in_the_configured_timezone(sqlite_db: Database) -> None:
    scheduler = Scheduler(services_for(sqlite_db), [weekly_jobs, reminder_jobs])
    await scheduler.start(catch_up=False)
    try:
        fires = scheduler.next_fire_times()
    finally:
        await scheduler.stop()
    weekly_fire = fires["weekly_report"].astimezone(SHANGHAI)
    assert (weekly_fire.strftime("%a"), weekly_fire.strftime("%H:%M:%S")) == ("Fri", "17:00:00")
    assert fires["weekly_report"].utcoffset() == timedelta(hours=8)
    assert fires["overdue_reminders"].astimezone(SHANGHAI).strftime("%H:%M:%S") == "09:30:00"
    assert scheduler.next_fire_times() == {}


ticking_jobs = JobRegistry()
_ticks: dict[str, asyncio.Event] = {}


@ticking_jobs.scheduled("tick", every(timedelta(milliseconds=200)))
async def tick_job(run: JobRunContext) -> None:
    CALLS.append(run)
    if run.reason == "trigger":
        _ticks["fired"].set()


async def test_apscheduler_really_fires_a_job_in_process(sqlite_db: Database, loop_watch) -> None:
    # The one place a real trigger runs: a 200 ms interval on the system clock, waited for with an event.
    _ticks["fired"] = asyncio.Event()
    scheduler = Scheduler(services_for(sqlite_db), [ticking_jobs])
    await scheduler.start()
    try:
        await asyncio.wait_for(_ticks["fired"].wait(), EVENT_TIMEOUT)
    finally:
        await scheduler.stop(grace=EVENT_TIMEOUT)
    assert CALLS[0].reason == "catch_up" and "trigger" in {run.reason for run in CALLS}
    keys = [run.period_key for run in CALLS]
    assert len(keys) == len(set(keys))  # a slot never runs twice, whoever woke up for it
    for run in CALLS:
        row = await job_run(sqlite_db, "tick", run.period_key)
        assert row is not None and row.state is JobRunState.DONE


# -- on-demand jobs ---------------------------------------------------------------------------------------------------

on_demand_jobs = JobRegistry()


@on_demand_jobs.on_demand("project_archive")
async def project_archive_job(run: JobRunContext) -> None:
    CALLS.append(run)
    if run.period_key in FAILING_PERIODS:
        raise RuntimeError(f"archive of {run.period_key} failed")


async def request(database: Database, key: str, **params) -> bool:
    async with database.write() as session:
        return await request_job(session, "project_archive", key, params)


async def test_a_requested_run_runs_once_with_what_the_command_passed(db: Database) -> None:
    scheduler = Scheduler(services_for(db, sh("2026-11-27T10:00")), [on_demand_jobs], owner="bot-1:1")
    assert await request(db, "XM-2026-001", target="cid-group") is True
    assert await request(db, "XM-2026-001", target="cid-other") is False  # pending: a repeat joins it

    [first, second] = await asyncio.gather(scheduler.run_requested("project_archive", "XM-2026-001"),
                                           scheduler.run_requested("project_archive", "XM-2026-001"))
    assert sorted([first.outcome, second.outcome]) == [RunOutcome.ALREADY_CLAIMED, RunOutcome.DONE]
    [run] = CALLS
    assert (run.period_key, run.params, run.attempt, run.reason) == ("XM-2026-001", {"target": "cid-group"}, 1,
                                                                     "requested")
    row = await job_run(db, "project_archive", "XM-2026-001")
    assert row is not None and (row.state, row.owner, row.attempts) == (JobRunState.DONE, "bot-1:1", 1)
    # Asked again after it finished: it runs again (the job itself knows whether anything is left to do).
    assert await request(db, "XM-2026-001", target="cid-group") is True
    assert (await scheduler.run_requested("project_archive", "XM-2026-001")).outcome is RunOutcome.DONE
    assert len(CALLS) == 2


async def test_requests_left_by_a_dead_process_or_failed_run_at_the_next_sweep(db: Database) -> None:
    FAILING_PERIODS.add("XM-2026-002")
    assert await request(db, "XM-2026-001") and await request(db, "XM-2026-002")  # then the process died
    leader = Scheduler(services_for(db, sh("2026-11-27T10:05")), [weekly_jobs, on_demand_jobs], owner="leader")
    results = await leader.run_due(reason="catch_up")
    assert {(r.job, r.period_key, r.outcome) for r in results if r.job == "project_archive"} == {
        ("project_archive", "XM-2026-001", RunOutcome.DONE), ("project_archive", "XM-2026-002", RunOutcome.FAILED)}
    for _ in range(3):  # the failing one is tried again by the next sweeps, three runs in all
        await leader.run_due(reason="catch_up")
    assert [run.period_key for run in CALLS if run.job == "project_archive"] == ["XM-2026-001"] + ["XM-2026-002"] * 3
    row = await job_run(db, "project_archive", "XM-2026-002")
    assert row is not None and row.state is JobRunState.FAILED and "archive of XM-2026-002 failed" in (row.error or "")


noticed_jobs = JobRegistry()


@noticed_jobs.on_demand("archive_noticed", doing="生成归档包")
async def always_failing_archive(run: JobRunContext) -> None:
    raise RuntimeError("disk full")


async def test_a_failing_requested_run_tells_the_requester_each_time_and_when_it_gives_up(db: Database) -> None:
    scheduler = Scheduler(services_for(db, sh("2026-11-27T10:00")), [noticed_jobs], owner="bot-1:1")
    async with db.write() as session:
        await request_job(session, "archive_noticed", "XM-2026-009",
                          {"target": target_params(group_target("cid-internal"))})
    for _ in range(scheduler.max_attempts + 1):  # the last one finds it out of attempts and does not run
        await scheduler.run_due(reason="catch_up")
    async with db.read() as session:
        notices = list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())
    texts = [row.params["msgParam"]["content"] for row in notices]
    assert [row.target_ids for row in notices] == [["cid-internal"]] * scheduler.max_attempts
    assert all("生成归档包（XM-2026-009）" in text for text in texts)
    assert all("稍后会自动重试" in text for text in texts[:-1])
    assert f"已失败 {scheduler.max_attempts} 次，不再自动重试" in texts[-1]


async def test_a_failing_requested_run_without_a_target_only_records_the_failure(db: Database) -> None:
    scheduler = Scheduler(services_for(db, sh("2026-11-27T10:00")), [noticed_jobs], owner="bot-1:1")
    async with db.write() as session:
        await request_job(session, "archive_noticed", "XM-2026-010", {})
    assert (await scheduler.run_requested("archive_noticed", "XM-2026-010")).outcome is RunOutcome.FAILED
    async with db.read() as session:
        assert (await session.exec(select(OutboxMessage))).all() == []
