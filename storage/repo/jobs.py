"""Scheduled job runs: a unique (job, period_key) row decides which replica runs a period, exactly once.

Claim in the same transaction as the job's work (its outbox rows): if the work fails and rolls back, the claim rolls
back with it and the next tick retries; once committed, the period is done for every replica, before or after a
restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import JobRun, JobRunState, utcnow
from storage.repo._sql import insert_ignoring_duplicates


async def claim_job_run(
    *, session: AsyncSession, job: str, period_key: str, owner: str, now: datetime | None = None
) -> bool:
    """True for exactly one caller per (job, period_key), however many race; False for everyone else."""
    row = JobRun(job=job, period_key=period_key, owner=owner, started_at=now or utcnow())
    return await insert_ignoring_duplicates(session, row) is not None


async def finish_job_run(
    *,
    session: AsyncSession,
    job: str,
    period_key: str,
    state: JobRunState = JobRunState.DONE,
    error: str | None = None,
    now: datetime | None = None,
) -> None:
    await session.exec(
        update(JobRun)
        .where(JobRun.job == job, JobRun.period_key == period_key)
        .values(state=state, error=error, finished_at=now or utcnow())
    )


async def get_job_run(*, session: AsyncSession, job: str, period_key: str) -> JobRun | None:
    query = select(JobRun).where(JobRun.job == job, JobRun.period_key == period_key)
    return (await session.exec(query)).first()


__all__ = ["claim_job_run", "finish_job_run", "get_job_run"]
