"""The scheduler: runs the declared jobs on time, once per period, and catches up after downtime.

Everything goes through one method, ``run_due(now)``. For each job it computes the latest fire time at or before
``now`` (``bot.jobs``); if that is within the job's misfire window, it claims the (job, period key) run in the
database and only the winner runs the job. Who calls it:

* APScheduler (``AsyncIOScheduler`` in the configured timezone, a ``CronTrigger`` or ``IntervalTrigger`` per job),
  which only wakes us at the fire time;
* ``catch_up()``, at start and whenever this process becomes the leader, plus a periodic sweep, so that a fire
  missed while the bot was down (or while the database was unreachable) runs once as soon as possible;
* tests, with any ``now``, without waiting for the wall clock.

APScheduler keeps nothing across restarts; the ``job_runs`` row is the truth. The claim is committed in its own short
transaction before the job starts, not held open in the job's transaction: a job may run for a while and commit its
work in several units (one per project), and a long transaction would hold the claim's row lock (and on SQLite the
only write lock) all that time. The price: a process killed in the middle of a run leaves the run ``running`` and
that period is not retried; jobs are state-driven (they look at what is due and not yet done), so the next period
picks up what was left.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import traceback
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.jobs import FireTimes, JobRegistry, JobRunContext, JobSpec, PeriodFunc, job_logger
from storage.models import JobRunState
from storage.repo import claim_job_run, finish_job_run
from storage.workdays import WorkCalendar

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 8000
_SWEEP_JOB_ID = "dingpm:catch-up-sweep"


class RunOutcome(StrEnum):
    DONE = "done"
    FAILED = "failed"  # the job raised or timed out (recorded), or the claim itself failed (not recorded, retried)
    ALREADY_CLAIMED = "already_claimed"  # another run (this process, a replica, a previous life) has the key
    NOT_DUE = "not_due"  # the latest fire is older than the misfire window


@dataclass(frozen=True, slots=True)
class JobRunResult:
    job: str
    outcome: RunOutcome
    period_key: str | None = None
    scheduled_at: datetime | None = None
    duration: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Job:
    spec: JobSpec
    times: FireTimes
    period: PeriodFunc
    misfire: timedelta

    @property
    def name(self) -> str:
        return self.spec.name


def default_owner() -> str:
    """``host:pid``: which worker claimed a run, for the operator reading ``job_runs``."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


class Scheduler:
    """The one scheduler of a process. Build it at start; ``start()`` / ``stop()`` follow leadership.

    ``services`` is ``bot.context.Services``: its config (timezone, schedule settings), clock, database and work
    calendar are used here, and the whole object is handed to every job run.
    """

    def __init__(
        self,
        services: Any,
        registries: Iterable[JobRegistry],
        *,
        owner: str | None = None,
        stop_grace: float = 30.0,
        sweep_interval: timedelta | None = timedelta(minutes=5),
    ) -> None:
        self.services = services
        self.config = services.config
        self.tz = self.config.tz
        self.clock = services.clock
        self.database = services.database
        self.owner = owner or default_owner()
        self.stop_grace = stop_grace
        self.sweep_interval = sweep_interval
        self._jobs = self._resolve(list(registries))
        self._aps: AsyncIOScheduler | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def _resolve(self, registries: list[JobRegistry]) -> dict[str, _Job]:
        specs = [spec for registry in registries for spec in registry]
        calendar = self.services.calendar
        if calendar is None and any(spec.schedule.needs_calendar for spec in specs):
            # The app normally passes the calendar in Services; this fallback reads the same config (and its small
            # data file, once, at start).
            cal = self.config.calendar
            calendar = WorkCalendar(cal.extra_holidays, cal.extra_workdays, cal.data_file)
        jobs: dict[str, _Job] = {}
        for spec in specs:
            if spec.name in jobs:
                raise ValueError(f"job {spec.name!r} is declared by two handler modules")
            try:
                times = spec.schedule.resolve(self.config, calendar)
                misfire = spec.misfire(self.config) if callable(spec.misfire) else spec.misfire
            except ValueError as exc:
                raise ValueError(f"job {spec.name!r}: {exc}") from None
            jobs[spec.name] = _Job(spec, times, spec.period or times.default_period, misfire or times.default_misfire)
        return jobs

    # -- introspection ------------------------------------------------------------------------------------------

    @property
    def job_names(self) -> list[str]:
        return list(self._jobs)

    @property
    def running(self) -> bool:
        return self._aps is not None

    def next_fire_times(self) -> dict[str, datetime | None]:
        """When APScheduler will wake each job next (empty while stopped): for a status page and the tests."""
        if self._aps is None:
            return {}
        return {job.id: job.next_run_time for job in self._aps.get_jobs() if job.id in self._jobs}

    def describe(self) -> dict[str, str]:
        return {name: job.times.describe() for name, job in self._jobs.items()}

    # -- running what is due ------------------------------------------------------------------------------------

    async def run_due(
        self, now: datetime | None = None, *, jobs: Iterable[str] | None = None, reason: str = "manual"
    ) -> list[JobRunResult]:
        """Run every job (or those named) whose latest fire at ``now`` is due and whose run key is still free.

        ``now``: aware, or naive UTC as the ``Clock`` gives it; default the clock's now. Jobs run concurrently; the
        result lists one entry per job considered. Never raises for a job's failure (it is logged and recorded).
        """
        instant = self._instant(now)
        selected = list(self._jobs.values()) if jobs is None else [self._jobs[name] for name in jobs]
        return list(await asyncio.gather(*(self._run_if_due(job, instant, reason) for job in selected)))

    async def catch_up(self, now: datetime | None = None) -> list[JobRunResult]:
        """What start and a new leader do: run, once, whatever fell due while nobody was running the jobs."""
        return await self.run_due(now, reason="catch_up")

    def _instant(self, now: datetime | None) -> datetime:
        now = self.clock.now() if now is None else now
        return now.astimezone(UTC) if now.tzinfo is not None else now.replace(tzinfo=UTC)

    def period_at(self, job: str, now: datetime | None = None) -> tuple[str, datetime]:
        """The period key and fire time of ``job``'s latest fire at or before ``now`` (misfire window ignored)."""
        spec = self._jobs[job]
        fire = spec.times.latest(self._instant(now).astimezone(self.tz))
        return spec.period(fire), fire

    async def _run_if_due(self, job: _Job, instant: datetime, reason: str) -> JobRunResult:
        local_now = instant.astimezone(self.tz)
        fire = job.times.latest(local_now)
        if local_now - fire > job.misfire:
            return JobRunResult(job.name, RunOutcome.NOT_DUE, scheduled_at=fire)
        key = job.period(fire)
        stamp = instant.replace(tzinfo=None)  # the database stores naive UTC
        try:
            async with self.database.write() as session:
                won = await claim_job_run(session=session, job=job.name, period_key=key, owner=self.owner, now=stamp)
        except Exception as exc:
            # Nothing was recorded, so the next trigger, sweep or catch-up tries this period again.
            log.exception("job %s %s: could not claim the run", job.name, key)
            return JobRunResult(job.name, RunOutcome.FAILED, key, fire, error=f"claim failed: {exc!r}")
        if not won:
            log.debug("job %s %s: already claimed", job.name, key)
            return JobRunResult(job.name, RunOutcome.ALREADY_CLAIMED, key, fire)
        return await self._run_claimed(job, key, fire, local_now, stamp, reason)

    async def _run_claimed(
        self, job: _Job, key: str, fire: datetime, local_now: datetime, stamp: datetime, reason: str
    ) -> JobRunResult:
        context = JobRunContext(
            job=job.name,
            period_key=key,
            scheduled_at=fire,
            now=local_now,
            reason=reason,
            services=self.services,
            log=job_logger(logging.getLogger(job.spec.func.__module__), job.name, key),
            owner=self.owner,
        )
        started = time.monotonic()
        try:
            async with asyncio.timeout(job.spec.timeout):
                await job.spec.func(context)
        except asyncio.CancelledError:
            duration = time.monotonic() - started
            log.warning("job %s %s (%s) cancelled after %.3fs: the scheduler stopped", job.name, key, reason, duration)
            await self._finish(job, key, stamp, duration, "cancelled: the scheduler stopped during the run")
            raise
        except Exception as exc:
            duration = time.monotonic() - started
            if isinstance(exc, TimeoutError):
                error = f"timed out after {job.spec.timeout}s"
            else:
                error = "".join(traceback.format_exception(exc))[-MAX_ERROR_TEXT:]
            log.error("job %s %s (%s) failed in %.3fs", job.name, key, reason, duration, exc_info=exc)
            await self._finish(job, key, stamp, duration, error)
            return JobRunResult(job.name, RunOutcome.FAILED, key, fire, duration, error)
        duration = time.monotonic() - started
        log.info("job %s %s (%s) done in %.3fs", job.name, key, reason, duration)
        await self._finish(job, key, stamp, duration, None)
        return JobRunResult(job.name, RunOutcome.DONE, key, fire, duration)

    async def _finish(self, job: _Job, key: str, stamp: datetime, duration: float, error: str | None) -> None:
        try:
            async with self.database.write() as session:
                await finish_job_run(
                    session=session,
                    job=job.name,
                    period_key=key,
                    state=JobRunState.FAILED if error is not None else JobRunState.DONE,
                    error=error,
                    now=stamp + timedelta(seconds=duration),
                )
        except Exception:
            # The run stays "running": the period still counts as taken, which is the safe side (no double run).
            log.exception("job %s %s: could not record the end of the run", job.name, key)

    # -- APScheduler lifecycle ------------------------------------------------------------------------------------

    async def start(self, *, catch_up: bool = True) -> None:
        """Start firing the jobs (this process is the leader) and, in the background, catch up on missed runs."""
        if self._aps is not None:
            return
        # coalesce + no misfire limit: a late wake-up (blocked loop, suspended VM) still runs, once; whether it is
        # too late is decided by run_due against the job's own misfire window. max_instances=1: an interval job
        # slower than its interval does not pile up.
        aps = AsyncIOScheduler(
            timezone=self.tz, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        for job in self._jobs.values():
            aps.add_job(self._on_trigger, job.times.trigger(), args=(job.name,), id=job.name, name=job.name)
        if self.sweep_interval is not None and self._jobs:
            sweep = IntervalTrigger(seconds=self.sweep_interval.total_seconds(), timezone=self.tz)
            aps.add_job(self._on_trigger, sweep, args=(None,), id=_SWEEP_JOB_ID, name="catch-up sweep")
        aps.start()
        self._aps = aps
        log.info("scheduler started (%s, owner %s): %s", self.tz, self.owner,
                 "; ".join(f"{name}: {what}" for name, what in self.describe().items()) or "no jobs")
        if catch_up:
            self._spawn(self.catch_up())

    async def stop(self, *, grace: float | None = None) -> None:
        """Stop firing; wait up to ``grace`` seconds (default ``stop_grace``) for runs in progress, then cancel them.

        Safe to call when stopped; ``start()`` may be called again afterwards (leadership regained).
        """
        aps, self._aps = self._aps, None
        if aps is not None:
            aps.shutdown(wait=False)
            # APScheduler shuts down on the next loop iteration: let it, so no trigger slips in after the snapshot.
            await asyncio.sleep(0)
            log.info("scheduler stopped (owner %s)", self.owner)
        tasks = set(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.stop_grace if grace is None else grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def wait_idle(self) -> None:
        """Wait until no run started by a trigger or a catch-up is in progress (tests, orderly shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _on_trigger(self, name: str | None) -> None:
        if self._aps is None:
            return
        jobs, reason = ([name], "trigger") if name is not None else (None, "catch_up")
        task = self._spawn(self.run_due(jobs=jobs, reason=reason))
        try:
            # Awaited so that max_instances applies; shielded because APScheduler's shutdown cancels its job
            # tasks without waiting, while stop() gives runs a grace period first.
            await asyncio.shield(task)
        except asyncio.CancelledError:
            pass  # only APScheduler's shutdown cancels this wrapper; the run carries on under stop()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


__all__ = ["JobRunResult", "RunOutcome", "Scheduler", "default_owner"]
