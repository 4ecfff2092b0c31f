"""Two bot processes on one PostgreSQL database against one emulator: each of 500 commands runs once, wherever its
frame lands; the scheduled job runs once per period, and killing the leader moves the scheduler to the other process.

Needs a PostgreSQL URL in ``DINGPM_TEST_DATABASE_URLS`` (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/dingpm_test);
the test creates its own fresh database on that server and drops it afterwards.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import func, select

from e2e_commands import JOB_ACTION, RECORD_ACTION, TICK_USER
from e2e_support import GROUP, wait_emulator
from processes import BotProcess, raw_config
from sandbox.config import EmulatorConfig
from storage.db import Database
from storage.migrations import upgrade
from storage.models import AuditLog, InboxMessage, InboxState, JobRun

pytestmark = [pytest.mark.timeout(180)]

COMMANDS = 500
TICK = re.compile(r"^tick (\S+) (\S+)$")


def postgres_url() -> str | None:
    for raw in os.environ.get("DINGPM_TEST_DATABASE_URLS", "").split(","):
        if raw.strip().startswith("postgresql"):
            return raw.strip()
    return None


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    return EmulatorConfig.for_tests(qps_limit=0)


@pytest.fixture
async def fresh_postgres():
    url = postgres_url()
    if url is None:
        pytest.skip("two-process test needs PostgreSQL: set DINGPM_TEST_DATABASE_URLS="
                    "postgresql+asyncpg://postgres@127.0.0.1:5432/dingpm_test")
    import asyncpg

    server = make_url(url)
    name = f"dingpm_e2e_{uuid.uuid4().hex[:8]}"
    admin_dsn = server.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    fresh = server.set(database=name).render_as_string(hide_password=False)
    await upgrade(fresh)  # server databases are migrated by `dingpm db upgrade`, not by the bot
    yield fresh
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def ticks(sb) -> list[tuple[str, str]]:
    found = []
    for message in sb.sent(TICK_USER):
        matched = TICK.match(message.text or "")
        if matched:
            found.append((matched.group(1), matched.group(2)))
    return found


async def test_two_processes_run_500_commands_once_and_one_scheduler(sandbox, tmp_path, fresh_postgres):
    config = raw_config(sandbox, fresh_postgres, tmp_path / "files", max_concurrent_messages=32)
    bots = [BotProcess(f"bot{n}", tmp_path, config, jobs=True) for n in (1, 2)]
    try:
        for bot in bots:
            await bot.start()
        await sandbox.wait_for_connection(count=2, timeout=30)
        # The scheduler runs in exactly one of them: wait for its first ticks.
        await wait_emulator(sandbox, lambda em: len(ticks(sandbox)) >= 2 or None, timeout=20)

        started = time.perf_counter()
        for number in range(COMMANDS):
            await sandbox.say("王建国", GROUP, f"记录 {number}")
        wanted = {f"已记录 {n}" for n in range(COMMANDS)}
        await wait_emulator(sandbox, lambda em: wanted <= {m.text for m in em.recorder.sent()} or None, timeout=90)
        elapsed = time.perf_counter() - started

        # Kill the leader; the follower must take the scheduler over.
        leader_worker = ticks(sandbox)[-1][1]
        leader = next(b for b in bots if b.worker == leader_worker)
        follower = next(b for b in bots if b is not leader)
        leader.kill()
        await leader.wait()
        killed_at = time.perf_counter()
        await wait_emulator(sandbox, lambda em: any(w == follower.worker for _, w in ticks(sandbox)) or None,
                            timeout=20)
        takeover = time.perf_counter() - killed_at
    except BaseException:
        for bot in bots:
            print(f"{bot.name} log:\n{bot.log_tail()}")
        raise
    finally:
        for bot in bots:
            if bot.process is not None and bot.process.returncode is None:
                await bot.stop()

    replies = Counter(m.text for m in sandbox.sent(GROUP) if (m.text or "").startswith("已记录 "))
    assert set(replies) == wanted and set(replies.values()) == {1}  # no crash during the burst: no duplicate

    database = Database(fresh_postgres)
    try:
        async with database.read() as session:
            runs = Counter((await session.exec(
                select(AuditLog.entity_id).where(AuditLog.action == RECORD_ACTION))).all())
            by_worker = dict((await session.exec(
                select(InboxMessage.claimed_by, func.count()).group_by(InboxMessage.claimed_by))).all())
            states = dict((await session.exec(
                select(InboxMessage.state, func.count()).group_by(InboxMessage.state))).all())
            job_periods = Counter((await session.exec(
                select(AuditLog.entity_id).where(AuditLog.action == JOB_ACTION))).all())
            job_owners = Counter((await session.exec(select(JobRun.owner))).all())
    finally:
        await database.close()
    assert len(runs) == COMMANDS and set(runs.values()) == {1}
    assert states == {InboxState.DONE: COMMANDS}
    assert set(by_worker) == {b.worker for b in bots}, by_worker  # both processes did part of the work
    assert set(job_periods.values()) == {1}  # each period's job ran once
    assert set(job_owners) == {leader.worker, follower.worker}
    tick_periods = Counter(period for period, _ in ticks(sandbox))
    print(f"\ntwo processes on PostgreSQL: {COMMANDS} commands in {elapsed:.1f}s ({COMMANDS / elapsed:.0f}/s), "
          f"split {sorted(by_worker.values())}; scheduler moved to the follower {takeover:.1f}s after the kill; "
          f"{len(job_periods)} job periods, {sum(c - 1 for c in tick_periods.values())} repeated tick messages")
