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
only write lock) all that time.

So that an interrupted run is not lost for its period, the claim is a lease: the owner renews ``lease_until`` while
the job runs (every third of ``lease``). A run left ``running`` by a process that died (its lease ran out) and a run
recorded ``failed`` (cancelled at shutdown, a lost database connection, a bug) are taken over by one claimer at the
next trigger, sweep or catch-up, up to ``max_attempts`` runs per period so a job that fails every time stops. That
re-runs part of a period's work, which is safe because jobs are state-driven and idempotent: they ask what is due
and not yet done, and write through outbox idempotency keys and ``record_weekly_report`` (a client group that got its
weekly report is skipped, the others get theirs). An owner that finds its lease taken over stops its run.

On-demand jobs (``JobRegistry.on_demand``) have no schedule: a command requests a run with ``request_job`` in its own
transaction (a ``pending`` row keyed by what it is for, e.g. the project), the app calls ``start_requested`` once that
commits, and the run does its heavy work outside the command's transaction, in whichever process handled the
command. The sweep and the catch-up run the requests still to do (the process died first, or the run failed), with
the same claims, leases and bounded attempts as scheduled runs.
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
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.context import current_unit_of_work
from bot.jobs import FireTimes, JobRegistry, JobRunContext, JobSpec, PeriodFunc, job_logger
from bot.outbox import enqueue, target_from_params
from storage.models import JobRunState
from storage.repo import (
    claim_job_run,
    finish_job_run,
    get_job_run,
    is_reclaimable,
    reclaim_job_run,
    reclaimable_job_runs,
    renew_job_run_lease,
    request_job_run,
)
from storage.repo.jobs import DEFAULT_MAX_ATTEMPTS
from storage.workdays import WorkCalendar

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 8000
_SWEEP_JOB_ID = "dingpm:catch-up-sweep"
# Long enough that a busy database (a renewal waiting for SQLite's write lock) does not cost a live owner its run;
# short enough that a dead owner's run is taken over within minutes (by the next sweep after it runs out).
DEFAULT_LEASE = timedelta(minutes=2)


class RunOutcome(StrEnum):
    DONE = "done"
    FAILED = "failed"  # the job raised or timed out (recorded), or the claim itself failed (not recorded, retried)
    ALREADY_CLAIMED = "already_claimed"  # another run has the key (live, done, or out of attempts)
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
class _Claimed:
    attempt: int
    params: dict[str, Any]


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
        lease: timedelta = DEFAULT_LEASE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self.services = services
        self.config = services.config
        self.tz = self.config.tz
        self.clock = services.clock
        self.database = services.database
        self.owner = owner or default_owner()
        self.stop_grace = stop_grace
        self.sweep_interval = sweep_interval
        self.lease = lease
        self.max_attempts = max_attempts
        registries = list(registries)
        self._on_demand: dict[str, JobSpec] = {
            spec.name: spec for registry in registries for spec in registry if spec.schedule is None}
        self._jobs = self._resolve(registries)
        self._aps: AsyncIOScheduler | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def _resolve(self, registries: list[JobRegistry]) -> dict[str, _Job]:
        specs = [spec for registry in registries for spec in registry if spec.schedule is not None]
        calendar = self.services.calendar
        if calendar is None and any(spec.schedule.needs_calendar for spec in specs):  # type: ignore[union-attr]
            # The app normally passes the calendar in Services; this fallback reads the same config (and its small
            # data file, once, at start).
            cal = self.config.calendar
            calendar = WorkCalendar(cal.extra_holidays, cal.extra_workdays, cal.data_file)
        jobs: dict[str, _Job] = {}
        for spec in specs:
            if spec.name in jobs or spec.name in self._on_demand:
                raise ValueError(f"job {spec.name!r} is declared by two handler modules")
            try:
                times = spec.schedule.resolve(self.config, calendar)  # type: ignore[union-attr]
                misfire = spec.misfire(self.config) if callable(spec.misfire) else spec.misfire
            except ValueError as exc:
                raise ValueError(f"job {spec.name!r}: {exc}") from None
            jobs[spec.name] = _Job(spec, times, spec.period or times.default_period, misfire or times.default_misfire)
        return jobs

    # -- introspection ------------------------------------------------------------------------------------------

    @property
    def job_names(self) -> list[str]:
        return [*self._jobs, *self._on_demand]

    @property
    def running(self) -> bool:
        return self._aps is not None

    def next_fire_times(self) -> dict[str, datetime | None]:
        """When APScheduler will wake each job next (empty while stopped): for a status page and the tests."""
        if self._aps is None:
            return {}
        return {job.id: job.next_run_time for job in self._aps.get_jobs() if job.id in self._jobs}

    def describe(self) -> dict[str, str]:
        return {**{name: job.times.describe() for name, job in self._jobs.items()},
                **{name: "on demand" for name in self._on_demand}}

    # -- running what is due ------------------------------------------------------------------------------------

    async def run_due(
        self, now: datetime | None = None, *, jobs: Iterable[str] | None = None, reason: str = "manual"
    ) -> list[JobRunResult]:
        """Run every job (or those named) whose latest fire at ``now`` is due and whose run key is still free.

        ``now``: aware, or naive UTC as the ``Clock`` gives it; default the clock's now. Jobs run concurrently; the
        result lists one entry per job considered. Never raises for a job's failure (it is logged and recorded).
        Without ``jobs`` (the sweep, a catch-up) it also runs requested on-demand runs still to do: a request whose
        process died before running it, a failed or interrupted one (one entry each).
        """
        instant = self._instant(now)
        selected = list(self._jobs.values()) if jobs is None else [self._jobs[name] for name in jobs]
        results = list(await asyncio.gather(*(self._run_if_due(job, instant, reason) for job in selected)))
        if jobs is None and self._on_demand:
            results += await self._run_requested_backlog(instant, reason)
        return results

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
        return await self._claim_and_run(job.spec, key, fire, instant, reason, insert=True)

    async def _claim_and_run(
        self, spec: JobSpec, key: str, fire: datetime, instant: datetime, reason: str, *, insert: bool
    ) -> JobRunResult:
        stamp = instant.replace(tzinfo=None)  # the database stores naive UTC
        try:
            claimed = await self._claim(spec.name, key, stamp, insert=insert)
        except Exception as exc:
            # Nothing was recorded, so the next trigger, sweep or catch-up tries this period again.
            log.exception("job %s %s: could not claim the run", spec.name, key)
            return JobRunResult(spec.name, RunOutcome.FAILED, key, fire, error=f"claim failed: {exc!r}")
        if claimed is None:
            log.debug("job %s %s: already claimed", spec.name, key)
            return JobRunResult(spec.name, RunOutcome.ALREADY_CLAIMED, key, fire)
        return await self._run_claimed(spec, key, fire, instant.astimezone(self.tz), stamp, reason, claimed)

    async def _claim(self, job: str, key: str, stamp: datetime, *, insert: bool) -> _Claimed | None:
        """What this process now runs (attempt 1: a fresh claim or a request's first run, 2+: a take-over), or None.

        ``insert``: a scheduled period's first claimer creates the row; an on-demand run's row is the request."""
        lease_until = stamp + self.lease
        async with self.database.write() if insert else self.database.read() as session:
            if insert and await claim_job_run(session=session, job=job, period_key=key, owner=self.owner, now=stamp,
                                              lease_until=lease_until):
                return _Claimed(1, {})
            previous = await get_job_run(session=session, job=job, period_key=key)
        # Almost always the period is done or running: no second write for that.
        if previous is None or not is_reclaimable(previous, stale_before=stamp, max_attempts=self.max_attempts):
            return None
        # Its own transaction: on MySQL the failed INSERT keeps a shared lock on the key, and two reclaimers each
        # holding one while asking for the UPDATE's exclusive lock would deadlock.
        async with self.database.write() as session:
            if not await reclaim_job_run(session=session, job=job, period_key=key, owner=self.owner,
                                         stale_before=stamp, lease_until=lease_until,
                                         max_attempts=self.max_attempts, now=stamp):
                return None
            taken = await get_job_run(session=session, job=job, period_key=key)
        attempt = taken.attempts if taken is not None else previous.attempts + 1
        params = dict((taken.params if taken is not None else previous.params) or {})
        if previous.state != JobRunState.PENDING:
            why = "its owner's lease ran out" if previous.state == JobRunState.RUNNING else "it failed"
            last_error = next(iter((previous.error or "").strip().splitlines()[-1:]), "")
            log.warning("job %s %s: running it again (attempt %d of %d): %s (owner %s) %s", job, key, attempt,
                        self.max_attempts, why, previous.owner, last_error[:200])
        return _Claimed(attempt, params)

    # -- on-demand jobs -------------------------------------------------------------------------------------------

    def start_requested(self, runs: Iterable[tuple[str, str]]) -> None:
        """Run these requested on-demand runs in the background, now (their request has just committed).

        Any process may do it, leader or not: the claim decides who runs. A run this process cannot finish (it is
        stopped, or it dies) is picked up by the leader's next sweep."""
        for job, key in runs:
            if job in self._on_demand:
                self._spawn(self.run_requested(job, key))
            else:
                log.warning("job %s %s was requested but no handler module declares it", job, key)

    async def run_requested(self, job: str, key: str, *, reason: str = "requested",
                            now: datetime | None = None) -> JobRunResult:
        """Run one requested run of an on-demand job, unless it is done, running, or out of attempts."""
        instant = self._instant(now)
        return await self._claim_and_run(self._on_demand[job], key, instant.astimezone(self.tz), instant, reason,
                                         insert=False)

    async def _run_requested_backlog(self, instant: datetime, reason: str) -> list[JobRunResult]:
        try:
            async with self.database.read() as session:
                backlog = await reclaimable_job_runs(session=session, jobs=list(self._on_demand),
                                                     stale_before=instant.replace(tzinfo=None),
                                                     max_attempts=self.max_attempts)
        except Exception:
            log.exception("could not look for requested runs still to do")
            return []
        # One after the other: they are the heavy kind (archives, documents), and the sweep is in no hurry.
        return [await self.run_requested(job, key, reason=reason, now=instant) for job, key in backlog]

    async def _run_claimed(
        self, job: JobSpec, key: str, fire: datetime, local_now: datetime, stamp: datetime, reason: str,
        claimed: _Claimed,
    ) -> JobRunResult:
        attempt = claimed.attempt
        context = JobRunContext(
            job=job.name,
            period_key=key,
            scheduled_at=fire,
            now=local_now,
            reason=reason,
            services=self.services,
            log=job_logger(logging.getLogger(job.func.__module__), job.name, key),
            owner=self.owner,
            attempt=attempt,
            params=claimed.params,
        )
        run = asyncio.current_task()
        assert run is not None
        keeper = _LeaseKeeper(self, job.name, key, attempt, run)
        started = time.monotonic()
        try:
            try:
                async with asyncio.timeout(job.timeout):
                    await job.func(context)
            finally:
                await keeper.stop()
        except asyncio.CancelledError:
            duration = time.monotonic() - started
            if keeper.lost and run.uncancel() == 0:
                # Another worker holds the run now (we were presumed dead): it records the outcome, not us.
                log.error("job %s %s: stopped after %.3fs, another worker took the run over", job.name, key, duration)
                return JobRunResult(job.name, RunOutcome.FAILED, key, fire, duration, "lease lost")
            log.warning("job %s %s (%s) cancelled after %.3fs: the scheduler stopped", job.name, key, reason, duration)
            await self._finish(job, key, attempt, stamp, duration, "cancelled: the scheduler stopped during the run")
            raise
        except Exception as exc:
            duration = time.monotonic() - started
            if isinstance(exc, TimeoutError):
                error = f"timed out after {job.timeout}s"
            else:
                error = "".join(traceback.format_exception(exc))[-MAX_ERROR_TEXT:]
            log.error("job %s %s (%s, attempt %d) failed in %.3fs", job.name, key, reason, attempt, duration,
                      exc_info=exc)
            await self._finish(job, key, attempt, stamp, duration, error)
            await self._tell_requester(job, key, attempt, claimed.params)
            return JobRunResult(job.name, RunOutcome.FAILED, key, fire, duration, error)
        duration = time.monotonic() - started
        log.info("job %s %s (%s) done in %.3fs", job.name, key, reason, duration)
        await self._finish(job, key, attempt, stamp, duration, None)
        return JobRunResult(job.name, RunOutcome.DONE, key, fire, duration)

    async def _finish(
        self, job: JobSpec, key: str, attempt: int, stamp: datetime, duration: float, error: str | None
    ) -> None:
        try:
            async with self.database.write() as session:
                await finish_job_run(
                    session=session,
                    job=job.name,
                    period_key=key,
                    state=JobRunState.FAILED if error is not None else JobRunState.DONE,
                    error=error,
                    now=stamp + timedelta(seconds=duration),
                    owner=self.owner,
                    attempt=attempt,
                )
        except Exception:
            # The run stays "running" until its lease runs out; then it is run again (the safe side: jobs are
            # idempotent, a lost period is not).
            log.exception("job %s %s: could not record the end of the run", job.name, key)

    async def _tell_requester(self, job: JobSpec, key: str, attempt: int, params: dict[str, Any] | None) -> None:
        """A failed on-demand run tells whoever asked for it: otherwise they wait for an answer that never comes."""
        target = target_from_params((params or {}).get("target"))
        if job.doing is None or target is None:
            return
        if attempt < self.max_attempts:
            text = f"{job.doing}（{key}）这次没有完成，稍后会自动重试，完成后发到这里，无需重复发送命令。"
        else:
            text = (f"{job.doing}（{key}）已失败 {attempt} 次，不再自动重试。请联系管理员查看运行记录"
                    f"（作业 {job.name}，{key}），处理后可重新发送命令。")
        try:
            async with self.database.write() as session:
                await enqueue(session, f"job-failed:{job.name}:{key}:{attempt}", target, text)
        except Exception:
            log.exception("job %s %s: could not tell the requester about the failure", job.name, key)
            return
        outbox = getattr(self.services, "outbox", None)
        if outbox is not None:
            outbox.wake()

    def _lease_end(self) -> datetime:
        return self._instant(None).replace(tzinfo=None) + self.lease

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
        if self.sweep_interval is not None and (self._jobs or self._on_demand):
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


async def request_job(
    session: AsyncSession, job: str, key: str, params: dict[str, Any] | None = None, *, now: datetime | None = None
) -> bool:
    """Ask for one run of the on-demand ``job`` under ``key``, in the caller's transaction (a command's
    ``ctx.session``); the app starts it as soon as that transaction commits.

    ``params``: JSON-able values the run reads as ``run.params`` (where to answer, who asked). False when ``key``
    was requested before (pending, running or done): a repeated command never starts a second run.
    """
    requested = await request_job_run(session=session, job=job, period_key=key, params=params, now=now)
    work = current_unit_of_work()
    if requested and work is not None and work.session is session:
        work.requested_runs.append((job, key))
    return requested


class _LeaseKeeper:
    """Renews one run's lease in the background while the job runs; cancels the run if the lease was lost."""

    def __init__(self, scheduler: Scheduler, job: str, key: str, attempt: int, run: asyncio.Task[Any]) -> None:
        self.lost = False
        self._scheduler, self._job, self._key, self._attempt, self._run = scheduler, job, key, attempt, run
        self._task = asyncio.get_running_loop().create_task(self._renew_until_stopped(), name=f"lease:{job}:{key}")

    async def _renew_until_stopped(self) -> None:
        scheduler = self._scheduler
        interval = scheduler.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with scheduler.database.write() as session:
                    mine = await renew_job_run_lease(session=session, job=self._job, period_key=self._key,
                                                     owner=scheduler.owner, attempt=self._attempt,
                                                     lease_until=scheduler._lease_end())
            except Exception:
                # The database may be back before the lease runs out; if not, a successor takes over.
                log.warning("job %s %s: could not renew the run's lease", self._job, self._key, exc_info=True)
                continue
            if not mine:
                self.lost = True
                self._run.cancel()
                return

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


__all__ = ["JobRunResult", "RunOutcome", "Scheduler", "default_owner", "request_job"]
