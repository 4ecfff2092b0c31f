"""Job runs: the (job, period_key) unique key lets one claim win."""

from __future__ import annotations

from storage.db import Database
from storage.models import JobRunState
from storage.repo import claim_job_run, finish_job_run, get_job_run


async def test_claim_once_per_period(db: Database) -> None:
    async with db.write() as session:
        assert await claim_job_run(session=session, job="weekly_report_job", period_key="2026-W10", owner="a") is True
        assert await claim_job_run(session=session, job="weekly_report_job", period_key="2026-W10", owner="b") is False
        assert await claim_job_run(session=session, job="weekly_report_job", period_key="2026-W11", owner="b") is True
        assert await claim_job_run(session=session, job="overdue_job", period_key="2026-W10", owner="b") is True
    async with db.write() as session:
        assert await claim_job_run(session=session, job="weekly_report_job", period_key="2026-W10", owner="c") is False
        await finish_job_run(session=session, job="weekly_report_job", period_key="2026-W10")
    async with db.read() as session:
        run = await get_job_run(session=session, job="weekly_report_job", period_key="2026-W10")
    assert run is not None and run.owner == "a" and run.state is JobRunState.DONE and run.finished_at is not None


async def test_a_rolled_back_claim_frees_the_period(db: Database) -> None:
    class JobFailed(Exception):
        pass

    try:
        async with db.write() as session:
            assert await claim_job_run(session=session, job="j", period_key="p", owner="a")
            raise JobFailed
    except JobFailed:
        pass
    async with db.write() as session:
        assert await claim_job_run(session=session, job="j", period_key="p", owner="b") is True
