"""Job runs: a unique (job, period_key) row decides which replica runs a period (or a request), once at a time.

``claim_job_run`` inserts the row (the first claimer of a period wins); ``request_job_run`` inserts it ``pending``
instead (an on-demand job a command asks for, run after it commits); ``reclaim_job_run`` lets exactly one claimer
take over a pending run, or a run that was interrupted: a ``running`` row whose owner stopped renewing its lease
(the process died), or a ``failed`` row (cancelled at shutdown, a lost connection, a bug), up to a bound on attempts
so a job that fails every time stops being retried. ``renew_job_run_lease`` and ``finish_job_run`` only touch the row
while the caller still owns that attempt, so an owner that was presumed dead never overwrites its successor's record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import JobRun, JobRunState, utcnow
from storage.repo._sql import insert_ignoring_duplicates

DEFAULT_MAX_ATTEMPTS = 3


async def claim_job_run(
    *,
    session: AsyncSession,
    job: str,
    period_key: str,
    owner: str,
    now: datetime | None = None,
    lease_until: datetime | None = None,
) -> bool:
    """True for exactly one caller per (job, period_key), however many race; False for everyone else."""
    row = JobRun(job=job, period_key=period_key, owner=owner, started_at=now or utcnow(), lease_until=lease_until)
    return await insert_ignoring_duplicates(session, row) is not None


async def request_job_run(
    *, session: AsyncSession, job: str, period_key: str, params: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bool:
    """Ask for one run of an on-demand job, in the caller's transaction. False while a run of this key is pending or
    running (a repeated request joins it); a key whose last run finished (done or failed) is asked for again."""
    now = now or utcnow()
    row = JobRun(job=job, period_key=period_key, owner="", state=JobRunState.PENDING, attempts=0, started_at=now,
                 params=params)
    if await insert_ignoring_duplicates(session, row) is not None:
        return True
    result = await session.exec(
        update(JobRun)
        .where(JobRun.job == job, JobRun.period_key == period_key,
               JobRun.state.in_([JobRunState.DONE, JobRunState.FAILED]))  # type: ignore[attr-defined]
        .values(state=JobRunState.PENDING, owner="", attempts=0, started_at=now, finished_at=None, lease_until=None,
                params=params)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def reclaimable_job_runs(
    *, session: AsyncSession, jobs: list[str], stale_before: datetime, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    limit: int = 100,
) -> list[tuple[str, str]]:
    """(job, period_key) of these jobs' runs that a claimer may take (see ``reclaim_job_run``), oldest first."""
    if not jobs:
        return []
    query = (
        select(JobRun.job, JobRun.period_key)
        .where(JobRun.job.in_(jobs), _reclaimable(stale_before, max_attempts))  # type: ignore[attr-defined]
        .order_by(JobRun.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    return [(job, key) for job, key in (await session.exec(query)).all()]


def _reclaimable(stale_before: datetime, max_attempts: int):  # noqa: ANN202 - a SQL expression
    return and_(
        JobRun.attempts < max_attempts,
        or_(
            JobRun.state.in_([JobRunState.PENDING, JobRunState.FAILED]),  # type: ignore[attr-defined]
            # A NULL lease (a row written without one) counts as expired: nobody is renewing it.
            and_(JobRun.state == JobRunState.RUNNING,
                 or_(JobRun.lease_until.is_(None), JobRun.lease_until < stale_before)),  # type: ignore[union-attr]
        ),
    )


def is_reclaimable(run: JobRun, *, stale_before: datetime, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> bool:
    """The same test as ``reclaim_job_run``'s, on a row already read: lets a caller skip a pointless write."""
    if run.attempts >= max_attempts:
        return False
    if run.state in (JobRunState.PENDING, JobRunState.FAILED):
        return True
    return run.state == JobRunState.RUNNING and (run.lease_until is None or run.lease_until < stale_before)


async def reclaim_job_run(
    *,
    session: AsyncSession,
    job: str,
    period_key: str,
    owner: str,
    stale_before: datetime,
    lease_until: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    now: datetime | None = None,
) -> bool:
    """Take over an interrupted run; True for exactly one caller however many race.

    Reclaimable: ``pending``, ``failed``, or ``running`` with a lease that ended before ``stale_before``; and fewer than
    ``max_attempts`` claims so far. One UPDATE whose WHERE re-checks that on the row it locks (PostgreSQL re-reads
    the row after a concurrent writer commits, InnoDB's UPDATE reads the latest version, SQLite has one writer), so
    the second of two racing reclaimers matches nothing. Keeps ``error`` (the previous attempt's) until this attempt
    finishes.
    """
    result = await session.exec(
        update(JobRun)
        .where(JobRun.job == job, JobRun.period_key == period_key, _reclaimable(stale_before, max_attempts))
        .values(state=JobRunState.RUNNING, owner=owner, attempts=JobRun.attempts + 1, started_at=now or utcnow(),
                lease_until=lease_until, finished_at=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _owned(job: str, period_key: str, owner: str | None, attempt: int | None):  # noqa: ANN202
    conditions = [JobRun.job == job, JobRun.period_key == period_key]
    if owner is not None:
        conditions.append(JobRun.owner == owner)
    if attempt is not None:
        conditions.append(JobRun.attempts == attempt)
    return and_(*conditions)


async def renew_job_run_lease(
    *, session: AsyncSession, job: str, period_key: str, owner: str, attempt: int, lease_until: datetime
) -> bool:
    """Extend a running attempt's lease; False when it is no longer the caller's (taken over or finished)."""
    result = await session.exec(
        update(JobRun)
        .where(_owned(job, period_key, owner, attempt), JobRun.state == JobRunState.RUNNING)
        .values(lease_until=lease_until)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def finish_job_run(
    *,
    session: AsyncSession,
    job: str,
    period_key: str,
    state: JobRunState = JobRunState.DONE,
    error: str | None = None,
    now: datetime | None = None,
    owner: str | None = None,
    attempt: int | None = None,
) -> bool:
    """Record the end of a run; with ``owner``/``attempt``, only if that attempt still holds the row."""
    result = await session.exec(
        update(JobRun)
        .where(_owned(job, period_key, owner, attempt))
        .values(state=state, error=error, finished_at=now or utcnow(), lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def get_job_run(*, session: AsyncSession, job: str, period_key: str) -> JobRun | None:
    query = select(JobRun).where(JobRun.job == job, JobRun.period_key == period_key)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "claim_job_run",
    "finish_job_run",
    "get_job_run",
    "is_reclaimable",
    "reclaim_job_run",
    "reclaimable_job_runs",
    "renew_job_run_lease",
    "request_job_run",
]
