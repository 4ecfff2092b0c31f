"""Schedules and period keys, computed for a given instant: no database, no waiting for the wall clock."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config, parse_config
from bot.context import FrozenClock, Services
from bot.jobs import JobRegistry, JobRunContext, daily, every, iso_week, weekly
from bot.scheduler import Scheduler
from storage.workdays import WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def make_config(**schedule: object) -> Config:
    raw = {"dingtalk": {"client_id": "ding-test", "client_secret": "s3cret"}, "schedule": schedule}
    return parse_config(raw, environ={}, require_real_secret=False)


CONFIG = make_config()
CALENDAR = WorkCalendar()


async def _noop(run: JobRunContext) -> None:
    pass


def scheduler_for(schedule: object, *, config: Config = CONFIG, **options: object) -> Scheduler:
    registry = JobRegistry()
    registry.scheduled("job", schedule, **options)(_noop)  # type: ignore[arg-type]
    services = Services(config=config, clock=FrozenClock(sh("2026-01-01T00:00")), calendar=CALENDAR)
    return Scheduler(services, [registry])


WEEKLY_REPORT = weekly(day=lambda cfg: cfg.schedule.weekly_report_day, at=lambda cfg: cfg.schedule.weekly_report_time)


@pytest.mark.parametrize(
    ("now", "key", "fire"),
    [
        ("2026-11-27T17:00", "2026-W48", "2026-11-27T17:00"),  # the fire instant itself
        ("2026-11-27T16:59:59", "2026-W47", "2026-11-20T17:00"),  # a second before: last week's run
        ("2026-11-30T08:00", "2026-W48", "2026-11-27T17:00"),  # Monday of the next ISO week
        ("2026-12-31T12:00", "2026-W52", "2026-12-25T17:00"),
        ("2027-01-01T17:00", "2026-W53", "2027-01-01T17:00"),  # 2026 has 53 ISO weeks: New Year's Day is in W53
        ("2027-01-07T23:59", "2026-W53", "2027-01-01T17:00"),
        ("2027-01-08T17:00", "2027-W01", "2027-01-08T17:00"),
    ],
)
def test_weekly_period_is_the_iso_week_of_the_fire(now: str, key: str, fire: str) -> None:
    assert scheduler_for(WEEKLY_REPORT).period_at("job", sh(now)) == (key, sh(fire))


def test_weekly_day_and_time_come_from_the_config() -> None:
    config = make_config(weekly_report_day="Monday", weekly_report_time="09:15")
    scheduler = scheduler_for(WEEKLY_REPORT, config=config)
    assert scheduler.period_at("job", sh("2026-12-28T09:15")) == ("2026-W53", sh("2026-12-28T09:15"))
    assert scheduler.period_at("job", sh("2027-01-04T09:14")) == ("2026-W53", sh("2026-12-28T09:15"))
    assert scheduler.period_at("job", sh("2027-01-04T09:15")) == ("2027-W01", sh("2027-01-04T09:15"))
    assert scheduler.describe() == {"job": "weekly mon 09:15"}


def test_naive_now_is_utc_like_the_clock() -> None:
    # 2026-12-31 16:10 UTC is already 2027-01-01 00:10 in Shanghai: the period follows the configured timezone.
    scheduler = scheduler_for(daily(at=time(0, 5)))
    assert scheduler.period_at("job", datetime(2026, 12, 31, 16, 10)) == ("2027-01-01", sh("2027-01-01T00:05"))
    assert scheduler.period_at("job", datetime(2026, 12, 31, 16, 4)) == ("2026-12-31", sh("2026-12-31T00:05"))


@pytest.mark.parametrize(
    ("now", "key"),
    [
        ("2026-11-25T09:30", "2026-11-25"),
        ("2026-11-25T09:29:59", "2026-11-24"),
        ("2027-01-01T09:30", "2027-01-01"),
        ("2027-01-01T09:00", "2026-12-31"),
        ("2026-10-01T10:00", "2026-10-01"),  # every day, holidays included, without workdays_only
    ],
)
def test_daily_period_is_the_local_date(now: str, key: str) -> None:
    assert scheduler_for(daily(at=lambda cfg: cfg.schedule.reminder_time)).period_at("job", sh(now))[0] == key


@pytest.mark.parametrize(
    ("now", "fire"),
    [
        ("2026-09-30T09:30", "2026-09-30T09:30"),
        ("2026-10-01T10:00", "2026-09-30T09:30"),  # National Day: no fire, the latest is the last working day
        ("2026-10-04T10:00", "2026-09-30T09:30"),  # a Sunday inside the holiday
        ("2026-10-08T09:29", "2026-09-30T09:30"),  # first working day, before its fire time
        ("2026-10-08T09:30", "2026-10-08T09:30"),
        ("2026-10-10T09:30", "2026-10-10T09:30"),  # Saturday, a make-up working day (调休)
        ("2026-10-11T12:00", "2026-10-10T09:30"),  # Sunday
        ("2026-09-20T09:45", "2026-09-20T09:30"),  # Sunday, a make-up working day before the holiday
    ],
)
def test_working_day_daily_follows_the_chinese_calendar(now: str, fire: str) -> None:
    scheduler = scheduler_for(daily(at=lambda cfg: cfg.schedule.reminder_time, workdays_only=True))
    assert scheduler.period_at("job", sh(now)) == (sh(fire).date().isoformat(), sh(fire))


@pytest.mark.parametrize(
    ("interval", "now", "key"),
    [
        (timedelta(minutes=30), "2026-11-25T09:47", "2026-11-25T09:30+08:00"),
        (timedelta(minutes=30), "2026-11-25T09:30", "2026-11-25T09:30+08:00"),
        (timedelta(minutes=30), "2026-12-31T23:59:59", "2026-12-31T23:30+08:00"),
        (timedelta(minutes=30), "2027-01-01T00:00", "2027-01-01T00:00+08:00"),
        (timedelta(hours=1), "2027-01-01T00:20", "2027-01-01T00:00+08:00"),
        (timedelta(seconds=45), "2026-11-25T09:30:50", "2026-11-25T09:30:45+08:00"),
        (timedelta(milliseconds=250), "2026-11-25T09:30:00.600", "2026-11-25T09:30:00.500000+08:00"),
    ],
)
def test_interval_period_is_the_slot_start(interval: timedelta, now: str, key: str) -> None:
    assert scheduler_for(every(interval)).period_at("job", sh(now))[0] == key


@pytest.mark.parametrize(
    "schedule",
    [WEEKLY_REPORT, daily(at="09:30"), every(timedelta(minutes=7)), every(timedelta(milliseconds=300))],
    ids=["weekly", "daily", "every-7min", "every-300ms"],
)
def test_the_apscheduler_trigger_fires_exactly_at_the_computed_fire_times(schedule: object) -> None:
    # The trigger only wakes the scheduler; run_due then recomputes the fire. Both must agree, or a wake-up would
    # find nothing due (or the previous period) and the run would wait for the next catch-up sweep.
    times = schedule.resolve(CONFIG, CALENDAR)  # type: ignore[attr-defined]
    trigger = times.trigger()
    now = sh("2026-12-30T11:11:11.111")
    for _ in range(5):
        fire = trigger.get_next_fire_time(None, now)
        assert times.latest(fire) == fire
        assert times.latest(fire - timedelta(microseconds=1)) < fire
        assert times.latest(fire - timedelta(microseconds=1)) == times.latest(now)
        now = fire + timedelta(microseconds=1)


def test_period_override_and_iso_week_for_a_daily_job() -> None:
    # A daily fire with a weekly key: the first fire of each week runs, the others find the key taken.
    scheduler = scheduler_for(daily(at="09:30"), period=iso_week)
    assert scheduler.period_at("job", sh("2026-11-25T10:00")) == ("2026-W48", sh("2026-11-25T09:30"))


def test_declaration_mistakes_fail_at_start_with_the_job_name() -> None:
    with pytest.raises(ValueError, match="'job'.*unknown weekday 'someday'"):
        scheduler_for(weekly(day="someday", at="17:00"))
    with pytest.raises(ValueError, match="'job'.*too short"):
        scheduler_for(every(timedelta(0)))
    registry = JobRegistry()
    registry.scheduled("twice", daily(at="09:00"))(_noop)
    with pytest.raises(ValueError, match="declared twice"):
        registry.scheduled("twice", daily(at="10:00"))
    with pytest.raises(TypeError, match="async function"):
        registry.scheduled("sync", daily(at="09:00"))(lambda run: None)  # type: ignore[arg-type]
    other = JobRegistry()
    other.scheduled("twice", daily(at="11:00"))(_noop)
    services = Services(config=CONFIG, clock=FrozenClock(sh("2026-01-01T00:00")), calendar=CALENDAR)
    with pytest.raises(ValueError, match="two handler modules"):
        Scheduler(services, [registry, other])
