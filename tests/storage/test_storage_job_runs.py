"""Job runs: the (job, period_key) unique key lets one claim win; an interrupted run is taken over by one claimer."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from storage.db import Database
from storage.models import JobRunState
from storage.repo import claim_job_run, finish_job_run, get_job_run, reclaim_job_run, renew_job_run_lease
from storage.repo.jobs import DEFAULT_MAX_ATTEMPTS


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


# -- taking over an interrupted run ------------------------------------------------------------------------------------

T0 = datetime(2026, 11, 27, 9, 0)
LEASE = timedelta(minutes=2)


async def _claim_dead_run(db: Database) -> None:
    """What a process killed mid-run leaves behind: a running row whose lease nobody renews."""
    async with db.write() as session:
        assert await claim_job_run(session=session, job="weekly_report", period_key="2026-W48", owner="dead:1",
                                   now=T0, lease_until=T0 + LEASE)


async def _reclaim(db: Database, owner: str, at: datetime) -> bool:
    async with db.write() as session:
        return await reclaim_job_run(session=session, job="weekly_report", period_key="2026-W48", owner=owner,
                                     stale_before=at, lease_until=at + LEASE, now=at)


async def test_a_dead_owners_run_is_reclaimed_by_one_of_many_after_its_lease(db: Database) -> None:
    await _claim_dead_run(db)
    assert await _reclaim(db, "early", T0 + LEASE - timedelta(seconds=1)) is False  # the owner may still be alive

    # Several processes, each with its own engine, race for the stale run.
    databases = [Database(db.url) for _ in range(4)]
    after_lease = T0 + LEASE + timedelta(seconds=1)
    try:
        async with asyncio.timeout(30):
            won = await asyncio.gather(*(_reclaim(d, f"replica-{n}", after_lease) for n, d in enumerate(databases)))
    finally:
        for database in databases:
            await database.close()
    assert sorted(won) == [False, False, False, True]
    async with db.read() as session:
        run = await get_job_run(session=session, job="weekly_report", period_key="2026-W48")
    assert run is not None and run.owner == f"replica-{won.index(True)}" and run.attempts == 2
    assert run.state is JobRunState.RUNNING and run.started_at == after_lease and run.lease_until == after_lease + LEASE
    # The new owner's lease is fresh: nobody takes it over now.
    assert await _reclaim(db, "late", after_lease + timedelta(seconds=1)) is False


async def test_only_the_current_attempt_renews_and_finishes_a_run(db: Database) -> None:
    await _claim_dead_run(db)
    after_lease = T0 + LEASE + timedelta(seconds=1)
    assert await _reclaim(db, "b", after_lease)
    async with db.write() as session:
        # The presumed-dead owner wakes up: its renewal and its "done" change nothing.
        assert not await renew_job_run_lease(session=session, job="weekly_report", period_key="2026-W48",
                                             owner="dead:1", attempt=1, lease_until=after_lease + LEASE)
        assert not await finish_job_run(session=session, job="weekly_report", period_key="2026-W48",
                                        owner="dead:1", attempt=1)
        assert await renew_job_run_lease(session=session, job="weekly_report", period_key="2026-W48", owner="b",
                                         attempt=2, lease_until=after_lease + 2 * LEASE)
        assert await finish_job_run(session=session, job="weekly_report", period_key="2026-W48", owner="b",
                                    attempt=2, now=after_lease)
    async with db.read() as session:
        run = await get_job_run(session=session, job="weekly_report", period_key="2026-W48")
    assert run is not None and run.state is JobRunState.DONE and run.owner == "b" and run.lease_until is None
    assert await _reclaim(db, "c", after_lease + 3 * LEASE) is False  # done is done


async def test_a_failed_run_is_reclaimed_until_its_attempts_are_used_up(db: Database) -> None:
    async with db.write() as session:
        assert await claim_job_run(session=session, job="weekly_report", period_key="2026-W48", owner="a", now=T0,
                                   lease_until=T0 + LEASE)
    for attempt in (1, 2, 3):
        async with db.write() as session:
            assert await finish_job_run(session=session, job="weekly_report", period_key="2026-W48",
                                        state=JobRunState.FAILED, error=f"boom {attempt}", owner=None,
                                        attempt=attempt, now=T0)
        # A failed run is taken over at once (no lease to wait for), while attempts remain.
        assert await _reclaim(db, f"retry-{attempt}", T0) is (attempt < DEFAULT_MAX_ATTEMPTS)
    async with db.read() as session:
        run = await get_job_run(session=session, job="weekly_report", period_key="2026-W48")
    assert run is not None and run.state is JobRunState.FAILED and run.attempts == 3 and run.error == "boom 3"
