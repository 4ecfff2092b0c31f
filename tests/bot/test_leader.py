"""Leader election: one leader per database, failover when it dies, and the scheduler following leadership.

The PostgreSQL and MySQL/MariaDB tests need a server database named in ``DINGPM_TEST_DATABASE_URLS``; without one
they are skipped with the setting to use. Every wait is on an event with a deadline, and the intervals are short,
so a takeover is expected within a fraction of a second.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.config import parse_config
from bot.context import FrozenClock, Services
from bot.jobs import JobRegistry, JobRunContext, weekly
from bot.leader import LeaderElection
from bot.scheduler import Scheduler
from storage.db import Database, url_family

DATABASE_URLS_ENV = "DINGPM_TEST_DATABASE_URLS"
EXAMPLE_URLS = {
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:5432/dingpm_test",
    "mysql": "mysql+asyncmy://root@127.0.0.1:3306/dingpm_test?charset=utf8mb4",
}
RETRY = 0.05  # follower retry and leader check interval, seconds
TAKEOVER_DEADLINE = 5.0  # generous: the expected takeover is RETRY plus a connection set-up
REPO_ROOT = Path(__file__).resolve().parents[2]


def _server_url(family: str) -> str:
    for raw in os.environ.get(DATABASE_URLS_ENV, "").split(","):
        if raw.strip() and url_family(raw.strip()) == family:
            return raw.strip()
    name = "PostgreSQL" if family == "postgresql" else "MySQL/MariaDB"
    pytest.skip(
        f"{name} not configured: leader election needs a database server; "
        f"set {DATABASE_URLS_ENV}={EXAMPLE_URLS[family]} (comma-separate URLs for several backends)"
    )


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request: pytest.FixtureRequest) -> str:
    return _server_url(request.param)


@pytest.fixture
def postgresql_url() -> str:
    return _server_url("postgresql")


class Recorder:
    """on_elected / on_lost callbacks that count and can be awaited."""

    def __init__(self) -> None:
        self.elected = 0
        self.lost = 0
        self.lost_event = asyncio.Event()

    async def on_elected(self) -> None:
        self.elected += 1

    async def on_lost(self) -> None:
        self.lost += 1
        self.lost_event.set()


def election(database: object, recorder: Recorder) -> LeaderElection:
    return LeaderElection(
        database,
        on_elected=recorder.on_elected,
        on_lost=recorder.on_lost,
        retry_interval=RETRY,
        check_interval=RETRY,
        check_timeout=2.0,
    )


@pytest.fixture
async def elections() -> AsyncIterator[list[LeaderElection]]:
    started: list[LeaderElection] = []
    yield started
    for e in started:
        await e.stop()


async def kill_session(url: str, session_id: int) -> None:
    """What a database restart, a network cut or an operator does to the leader's connection."""
    admin = create_async_engine(url, poolclass=NullPool)
    try:
        async with admin.connect() as connection:
            if url_family(url) == "postgresql":
                killed = await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": session_id})
                assert killed.scalar()
            else:
                await connection.execute(text(f"KILL {int(session_id)}"))
    finally:
        await admin.dispose()


# -- SQLite: one process by design ------------------------------------------------------------------------------------


async def test_a_sqlite_process_is_always_the_leader(sqlite_db: Database) -> None:
    recorder = Recorder()
    e = election(sqlite_db, recorder)
    await e.start()
    assert e.is_leader and recorder.elected == 1
    await e.stop()
    assert not e.is_leader and recorder.lost == 1


# -- PostgreSQL and MySQL/MariaDB: two "processes" in one test ------------------------------------------------------


async def test_exactly_one_leader_and_a_follower_takes_over_when_it_stops(server_url: str, elections) -> None:
    recorders = [Recorder(), Recorder()]
    a, b = election(server_url, recorders[0]), election(server_url, recorders[1])
    elections += [a, b]
    await asyncio.gather(a.start(), b.start())
    assert [a.is_leader, b.is_leader].count(True) == 1
    leader, follower = (a, b) if a.is_leader else (b, a)
    assert leader.session_id is not None and follower.session_id is None

    started = time.monotonic()
    await leader.stop()
    await asyncio.wait_for(follower.leading.wait(), TAKEOVER_DEADLINE)
    took = time.monotonic() - started
    assert not leader.is_leader and follower.is_leader
    assert took < 2.0, f"takeover took {took:.2f}s"
    assert sorted(r.elected for r in recorders) == [1, 1] and sum(r.lost for r in recorders) == 1


async def test_a_leader_whose_connection_dies_steps_down_and_a_follower_takes_over(server_url: str, elections) -> None:
    recorders = [Recorder(), Recorder()]
    a, b = election(server_url, recorders[0]), election(server_url, recorders[1])
    elections += [a, b]
    await a.start()
    await b.start()
    assert a.is_leader and not b.is_leader

    await kill_session(server_url, a.session_id)
    await asyncio.wait_for(recorders[0].lost_event.wait(), TAKEOVER_DEADLINE)  # noticed by its health check
    await asyncio.wait_for(b.leading.wait(), TAKEOVER_DEADLINE)
    assert b.is_leader and not a.is_leader
    # The old leader campaigns again, on a new connection, and stays a follower while b holds the lock.
    await asyncio.wait_for(_retries(a, 3), TAKEOVER_DEADLINE)
    assert not a.is_leader and recorders[0].elected == 1


async def test_the_lock_session_is_named_and_dropped_by_the_server_when_its_host_vanishes(
    server_url: str, elections
) -> None:
    e = LeaderElection(server_url, check_interval=5, dead_session_timeout=30)
    elections.append(e)
    await e.start()
    assert e.is_leader
    connection = e._connection  # the dedicated lock connection: only the test looks inside like this
    assert connection is not None
    if e.family == "postgresql":
        query = ("SELECT application_name, current_setting('tcp_keepalives_idle'), "
                 "current_setting('tcp_keepalives_count') FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        assert tuple((await connection.execute(text(query))).one()) == ("dingpm-leader", "10", "3")
    else:
        assert (await connection.execute(text("SELECT @@session.wait_timeout"))).scalar() == 30


async def _retries(e: LeaderElection, n: int) -> None:
    # Observe n further failed attempts by wrapping the private attempt; only the test looks inside like this.
    seen = asyncio.Event()
    count = 0
    original = e._try_acquire

    async def counting() -> bool:
        nonlocal count
        result = await original()
        count += 1
        if count >= n:
            seen.set()
        return result

    e._try_acquire = counting  # type: ignore[method-assign]
    try:
        await seen.wait()
    finally:
        e._try_acquire = original  # type: ignore[method-assign]


# -- the scheduler follows leadership -------------------------------------------------------------------------------

CONFIG = parse_config({"dingtalk": {"client_id": "ding-test", "client_secret": "s3cret"}}, environ={},
                      require_real_secret=False)
RUNS: list[JobRunContext] = []
jobs = JobRegistry()


@jobs.scheduled("weekly_report", weekly(day="fri", at="17:00"))
async def weekly_report_job(run: JobRunContext) -> None:
    RUNS.append(run)


async def test_two_processes_wired_to_leadership_catch_up_a_missed_run_once(db: Database) -> None:
    # The wiring bot.app does: the leader starts the scheduler (which catches up), losing leadership stops it.
    # On SQLite both "processes" lead (single process by design): the run key alone keeps the run single.
    RUNS.clear()
    databases = [Database(db.url), Database(db.url)]
    processes: list[tuple[Scheduler, LeaderElection]] = []
    try:
        for n, database in enumerate(databases):
            services = Services(config=CONFIG, clock=FrozenClock(datetime(2026, 11, 28, 2, 0)), database=database)
            scheduler = Scheduler(services, [jobs], owner=f"bot-{n}:1")
            leadership = LeaderElection(database, on_elected=scheduler.start, on_lost=scheduler.stop,
                                        retry_interval=RETRY, check_interval=RETRY)
            processes.append((scheduler, leadership))
        await asyncio.gather(*(leadership.start() for _, leadership in processes))
        leaders = [leadership.is_leader for _, leadership in processes]
        assert leaders == [True, True] if db.family == "sqlite" else sorted(leaders) == [False, True]
        assert all(scheduler.running == leadership.is_leader for scheduler, leadership in processes)
        for scheduler, _ in processes:
            await asyncio.wait_for(scheduler.wait_idle(), TAKEOVER_DEADLINE)
        assert [run.period_key for run in RUNS] == ["2026-W48"]

        if db.family != "sqlite":
            (old, old_leadership), (new, new_leadership) = sorted(processes, key=lambda p: not p[1].is_leader)
            await old_leadership.stop()
            assert not old.running
            await asyncio.wait_for(new_leadership.leading.wait(), TAKEOVER_DEADLINE)
            assert new.running
            await asyncio.wait_for(new.wait_idle(), TAKEOVER_DEADLINE)  # its catch-up found the key taken
            assert [run.period_key for run in RUNS] == ["2026-W48"]
    finally:
        for _, leadership in processes:
            await leadership.stop()
        for database in databases:
            await database.close()


# -- two real processes ---------------------------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from bot.leader import LeaderElection

async def main(url):
    async def elected():
        print("elected", flush=True)

    election = LeaderElection(url, on_elected=elected, retry_interval=0.05, check_interval=0.05)
    await election.start()
    if not election.is_leader:
        print("following", flush=True)
    await asyncio.Event().wait()  # until killed

asyncio.run(main(sys.argv[1]))
"""


async def _line(process: asyncio.subprocess.Process, timeout: float = 20.0) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), timeout)).decode().strip()


async def test_two_bot_processes_elect_one_leader_and_fail_over_when_it_is_killed(postgresql_url: str) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, postgresql_url, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    try:
        first = await asyncio.gather(*(_line(p) for p in processes))
        assert sorted(first) == ["elected", "following"], first
        leader, follower = processes if first[0] == "elected" else processes[::-1]

        leader.kill()  # SIGKILL: no clean-up, the server sees the socket close
        await leader.wait()
        started = time.monotonic()
        assert await _line(follower, TAKEOVER_DEADLINE) == "elected"
        took = time.monotonic() - started
        assert took < 2.0, f"takeover took {took:.2f}s"
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
