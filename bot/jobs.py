"""Scheduled job declarations: what a handler module writes to have a function run on a schedule.

A handler module owns a ``JobRegistry`` (it only collects declarations; nothing runs at import) and decorates
module-level async functions taking one ``JobRunContext``::

    jobs = JobRegistry()

    @jobs.scheduled("weekly_report", weekly(day=lambda cfg: cfg.schedule.weekly_report_day,
                                            at=lambda cfg: cfg.schedule.weekly_report_time))
    async def weekly_report_job(run: JobRunContext) -> None:
        ...  # ask the database what is due and not yet done for run.period_key, write outbox rows

A job may also be **on demand**: no schedule, run once per key when a command asks for it. The command records the
request in its own transaction and answers at once; the job does the heavy part (rendering a report, building an
archive) right after the commit, outside any write transaction::

    @jobs.on_demand("project_archive")
    async def project_archive_job(run: JobRunContext) -> None:
        ...  # run.period_key names the request ("XM-2026-001"), run.params carries what the command passed

    await request_job(ctx.session, "project_archive", project.code, {"target": ...})  # bot.scheduler, in the command

``bot.app`` hands every handler's registry to ``bot.scheduler.Scheduler``. Values may be constants or functions of
the ``Config``: they are resolved once, when the scheduler is built. A resolved schedule answers one question, "the
latest fire time at or before now", and the period key follows from that fire time in the configured timezone. The
APScheduler trigger, the catch-up after a restart and the tests all go through that answer, so they always agree
on which logical run is due.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Protocol, TypeVar

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import WEEKDAYS, Config

T = TypeVar("T")
# A declaration value: a constant, or read from the config when the scheduler is built.
FromConfig = T | Callable[[Config], T]
PeriodFunc = Callable[[datetime], str]
JobFunc = Callable[["JobRunContext"], Awaitable[None]]

MAX_JOB_NAME = 64  # job_runs.job


# -- period keys: the same logical run always gets the same key -------------------------------------------------------


def iso_week(fire: datetime) -> str:
    """``2026-W48``: ISO year and week, so the days around New Year land in the right week (2027-01-01 is 2026-W53)."""
    year, week, _ = fire.isocalendar()
    return f"{year}-W{week:02d}"


def iso_date(fire: datetime) -> str:
    """``2026-11-25``: the local calendar day of the fire time."""
    return fire.date().isoformat()


def slot_start(fire: datetime) -> str:
    """``2026-11-25T09:30+08:00``: the interval slot's start; the UTC offset keeps keys unique across a DST change."""
    spec = "microseconds" if fire.microsecond else "seconds" if fire.second else "minutes"
    return fire.isoformat(timespec=spec)


# -- schedules ------------------------------------------------------------------------------------------------------


class FireTimes(Protocol):
    """A schedule resolved against the config: when it fires, and how the APScheduler trigger is built."""

    default_period: PeriodFunc
    default_misfire: timedelta

    def latest(self, now: datetime) -> datetime:
        """The latest fire time at or before ``now`` (both aware, in the configured timezone)."""
        ...

    def trigger(self) -> BaseTrigger: ...

    def describe(self) -> str: ...


class Schedule(Protocol):
    def resolve(self, config: Config, calendar: Any) -> FireTimes: ...

    @property
    def needs_calendar(self) -> bool: ...


def _value(value: FromConfig[T], config: Config) -> T:
    return value(config) if callable(value) else value  # type: ignore[return-value]


def _clock_time(value: time | str) -> time:
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ValueError(f"schedule time {value} must be naive: it is read in the configured timezone")
        return value
    return time.fromisoformat(value.strip())


def _weekday(value: str | int) -> int:
    if isinstance(value, int):
        if not 0 <= value <= 6:
            raise ValueError(f"weekday {value} out of range (0 = Monday … 6 = Sunday)")
        return value
    short = value.strip().lower()[:3]
    if short not in WEEKDAYS:
        raise ValueError(f"unknown weekday {value!r}; expected one of {', '.join(WEEKDAYS)}")
    return WEEKDAYS.index(short)


def _at(day: date, at: time, tz: tzinfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)


@dataclass(frozen=True, slots=True)
class WeeklyTimes:
    weekday: int  # 0 = Monday
    at: time
    tz: tzinfo
    default_misfire: timedelta = timedelta(days=7)

    @property
    def default_period(self) -> PeriodFunc:
        return iso_week

    def latest(self, now: datetime) -> datetime:
        day = now.date() - timedelta(days=(now.weekday() - self.weekday) % 7)
        fire = _at(day, self.at, self.tz)
        return fire if fire <= now else _at(day - timedelta(days=7), self.at, self.tz)

    def trigger(self) -> BaseTrigger:
        return CronTrigger(day_of_week=WEEKDAYS[self.weekday], hour=self.at.hour, minute=self.at.minute,
                           second=self.at.second, timezone=self.tz)

    def describe(self) -> str:
        return f"weekly {WEEKDAYS[self.weekday]} {self.at.isoformat('minutes')}"


@dataclass(frozen=True, slots=True)
class DailyTimes:
    at: time
    tz: tzinfo
    calendar: Any = None  # a WorkCalendar when only working days fire
    default_misfire: timedelta = timedelta(days=1)

    @property
    def default_period(self) -> PeriodFunc:
        return iso_date

    def latest(self, now: datetime) -> datetime:
        day = now.date()
        if _at(day, self.at, self.tz) > now:
            day -= timedelta(days=1)
        if self.calendar is not None:
            # Every day up to `day` has already reached its fire time, so the latest working one is the answer.
            day = self.calendar.roll_backward(day)
        return _at(day, self.at, self.tz)

    def trigger(self) -> BaseTrigger:
        # Fires every day: on a rest day `latest` points back at the last working day, whose key is already taken,
        # so the job does not run. Cron cannot express the Chinese calendar (调休 Saturdays), the calendar can.
        return CronTrigger(hour=self.at.hour, minute=self.at.minute, second=self.at.second, timezone=self.tz)

    def describe(self) -> str:
        return f"daily {self.at.isoformat('minutes')}{' on working days' if self.calendar is not None else ''}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class IntervalTimes:
    every: timedelta
    tz: tzinfo

    @property
    def default_period(self) -> PeriodFunc:
        return slot_start

    @property
    def default_misfire(self) -> timedelta:
        return self.every  # only the current slot is worth running: the next one comes soon anyway

    def latest(self, now: datetime) -> datetime:
        # Slots are counted from the Unix epoch, not from the process start, so every replica and every restart
        # agrees on where a slot begins (and so on its key).
        step = self.every // _MICROSECOND
        elapsed = (now - _EPOCH) // _MICROSECOND
        return (_EPOCH + (elapsed - elapsed % step) * _MICROSECOND).astimezone(self.tz)

    def trigger(self) -> BaseTrigger:
        return IntervalTrigger(seconds=self.every.total_seconds(), start_date=_EPOCH, timezone=self.tz)

    def describe(self) -> str:
        return f"every {self.every}"


@dataclass(frozen=True, slots=True)
class weekly:  # noqa: N801 - reads as a function in declarations: weekly(day=..., at=...)
    """Once a week on ``day`` (``"fri"`` or 0-6, Monday = 0) at ``at`` (``time`` or ``"HH:MM"``), local time."""

    day: FromConfig[str | int]
    at: FromConfig[time | str]
    needs_calendar = False

    def resolve(self, config: Config, calendar: Any) -> WeeklyTimes:
        return WeeklyTimes(_weekday(_value(self.day, config)), _clock_time(_value(self.at, config)), config.tz)


@dataclass(frozen=True, slots=True)
class daily:  # noqa: N801
    """Every day at ``at``; with ``workdays_only`` only on Chinese working days (holidays skipped, 调休 days kept)."""

    at: FromConfig[time | str]
    workdays_only: bool = False

    @property
    def needs_calendar(self) -> bool:
        return self.workdays_only

    def resolve(self, config: Config, calendar: Any) -> DailyTimes:
        if self.workdays_only and calendar is None:
            raise ValueError("a workdays_only schedule needs the work calendar")
        return DailyTimes(_clock_time(_value(self.at, config)), config.tz, calendar if self.workdays_only else None)


@dataclass(frozen=True, slots=True)
class every:  # noqa: N801
    """Every ``interval`` (``timedelta``, or from the config), in slots aligned on the Unix epoch."""

    interval: FromConfig[timedelta]
    needs_calendar = False

    def resolve(self, config: Config, calendar: Any) -> IntervalTimes:
        interval = _value(self.interval, config)
        if interval < timedelta(milliseconds=10):
            raise ValueError(f"interval {interval} is too short")
        return IntervalTimes(interval, config.tz)


# -- declarations ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    func: JobFunc
    schedule: Schedule | None  # None: on demand (run when a command requests it)
    period: PeriodFunc | None = None  # None: the schedule's natural period (week, day, slot)
    misfire: FromConfig[timedelta] | None = None  # how late a fire may still run (catch-up); None: the default
    timeout: float | None = None  # seconds; a run taking longer is cancelled and recorded as failed
    # On demand: what the run does, for the person who asked ("生成归档包"); with a ``target`` in the request's
    # params, a failed run tells them (it will be retried, or it was given up).
    doing: str | None = None


class JobRegistry:
    """The jobs one handler module declares. Collects declarations only; the scheduler runs them."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}

    def scheduled(
        self,
        name: str,
        schedule: Schedule,
        *,
        period: PeriodFunc | None = None,
        misfire: FromConfig[timedelta] | None = None,
        timeout: float | None = None,
    ) -> Callable[[JobFunc], JobFunc]:
        """Declare ``async def job(run: JobRunContext) -> None`` under ``name`` (the run key's job part)."""
        return self._declare(name, schedule, period, misfire, timeout)

    def _declare(
        self,
        name: str,
        schedule: Schedule | None,
        period: PeriodFunc | None,
        misfire: FromConfig[timedelta] | None,
        timeout: float | None,
        doing: str | None = None,
    ) -> Callable[[JobFunc], JobFunc]:
        if not name or len(name) > MAX_JOB_NAME:
            raise ValueError(f"job name must be 1-{MAX_JOB_NAME} characters: {name!r}")
        if name in self._specs:
            raise ValueError(f"job {name!r} is declared twice")

        def register(func: JobFunc) -> JobFunc:
            if not inspect.iscoroutinefunction(func):
                raise TypeError(f"job {name!r}: {func!r} must be an async function")
            self._specs[name] = JobSpec(name, func, schedule, period, misfire, timeout, doing)
            return func

        return register

    def on_demand(self, name: str, *, timeout: float | None = None,
                  doing: str | None = None) -> Callable[[JobFunc], JobFunc]:
        """Declare ``async def job(run: JobRunContext) -> None`` run once per key a command requests
        (``bot.scheduler.request_job``), right after that command commits. ``doing``: see ``JobSpec.doing``."""
        return self._declare(name, None, None, None, timeout, doing)

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


# -- what a running job is given --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRunContext:
    """One run of one job for one period. Times are aware, in the configured timezone."""

    job: str
    period_key: str  # "2026-W48", "2026-11-25", "2026-11-25T09:30+08:00"
    scheduled_at: datetime  # the fire time this run stands for
    now: datetime  # when the run started (from the injected clock)
    reason: str  # "trigger" (APScheduler fired), "catch_up" (start / became leader), "manual"
    services: Any  # bot.context.Services: config, clock, database, dingtalk, calendar, ...
    log: logging.LoggerAdapter  # prefixes job and period
    owner: str  # host:pid that claimed the run
    attempt: int = 1  # 2, 3: this period's run was interrupted or failed before and is being run again
    params: dict[str, Any] = field(default_factory=dict)  # an on-demand run: what the requesting command passed

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def database(self) -> Any:
        return self.services.database

    @property
    def calendar(self) -> Any:
        return self.services.calendar

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def now_utc(self) -> datetime:
        """``now`` as naive UTC, the form the database stores."""
        return self.now.astimezone(UTC).replace(tzinfo=None)

    @property
    def delay(self) -> timedelta:
        """How late this run is: large after downtime, so a job may word a late reminder differently."""
        return self.now - self.scheduled_at


class _Prefixed(logging.LoggerAdapter):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['job']} {self.extra['period']}] {msg}", kwargs  # type: ignore[index]


def job_logger(logger: logging.Logger, job: str, period_key: str) -> logging.LoggerAdapter:
    return _Prefixed(logger, {"job": job, "period": period_key})


__all__ = [
    "FireTimes",
    "JobRegistry",
    "JobRunContext",
    "JobSpec",
    "Schedule",
    "daily",
    "every",
    "iso_date",
    "iso_week",
    "slot_start",
    "weekly",
]
