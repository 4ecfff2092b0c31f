"""Concurrent workers on every backend: each queue row is claimed once, each job period runs once, numbers stay unique.

The workers are asyncio tasks, each with its own connection and transaction, so the database, not Python, decides
who wins. On PostgreSQL and MariaDB the first round of outbox claims meets at a barrier while every worker still holds
its claim open: only ``SKIP LOCKED`` lets them all get there (a plain ``FOR UPDATE`` would block and time out).
SQLite serializes write transactions (``BEGIN IMMEDIATE``), so no barrier there.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from storage.db import Database
from storage.models import OutboxMessageKind, OutboxTargetKind
from storage.repo import claim_due_outbox, claim_job_run, create_project, enqueue_outbox, insert_inbox, mark_sent
from storage.repo import claim_pending_inbox

WORKERS = 6
ROWS = 60
BATCH = 4
DEADLINE_S = 30


async def test_outbox_rows_are_claimed_exactly_once(db: Database) -> None:
    async with db.write() as session:
        for n in range(ROWS):
            await enqueue_outbox(
                session=session,
                key=f"k{n}",
                target_kind=OutboxTargetKind.USER,
                target_ids=["u1"],
                msg_kind=OutboxMessageKind.TEXT,
                params={"content": f"消息{n}"},
            )
    barrier = asyncio.Barrier(WORKERS) if db.family != "sqlite" else None
    claims: Counter[int] = Counter()
    per_worker: Counter[str] = Counter()

    async def worker(name: str) -> None:
        first_round = True
        while True:
            async with db.write() as session:
                rows = await claim_due_outbox(session=session, limit=BATCH, worker=name, lease_seconds=300)
                if first_round and barrier is not None:
                    first_round = False
                    await barrier.wait()
            if not rows:
                return
            claims.update(row.id for row in rows)
            per_worker[name] += len(rows)
            async with db.write() as session:
                for row in rows:
                    assert await mark_sent(session=session, outbox_id=row.id, worker=name)

    async with asyncio.timeout(DEADLINE_S):
        await asyncio.gather(*(worker(f"relay-{n}") for n in range(WORKERS)))
    assert len(claims) == ROWS and set(claims.values()) == {1}
    if barrier is not None:
        assert len(per_worker) == WORKERS  # all held claims at the same time, on disjoint rows


async def test_inbox_rows_are_claimed_exactly_once(db: Database) -> None:
    async with db.write() as session:
        for n in range(ROWS):
            await insert_inbox(session=session, message_id=f"m{n}", payload="{}")
    claims: Counter[int] = Counter()

    async def worker(name: str) -> None:
        while True:
            async with db.write() as session:
                rows = await claim_pending_inbox(session=session, limit=BATCH, worker=name, lease_seconds=300)
            if not rows:
                return
            claims.update(row.id for row in rows)

    async with asyncio.timeout(DEADLINE_S):
        await asyncio.gather(*(worker(f"w{n}") for n in range(WORKERS)))
    assert len(claims) == ROWS and set(claims.values()) == {1}


async def test_job_run_is_claimed_once(db: Database) -> None:
    async def contender(owner: str) -> bool:
        async with db.write() as session:
            return await claim_job_run(session=session, job="weekly_report_job", period_key="2026-W10", owner=owner)

    async with asyncio.timeout(DEADLINE_S):
        results = await asyncio.gather(*(contender(f"replica-{n}") for n in range(WORKERS)))
    assert sorted(results) == [False] * (WORKERS - 1) + [True]


async def test_redelivered_frame_is_stored_once(db: Database) -> None:
    async def receive() -> int | None:
        async with db.write() as session:
            return await insert_inbox(session=session, message_id="frame-dup", msg_id="msg-dup", payload="{}")

    async with asyncio.timeout(DEADLINE_S):
        results = await asyncio.gather(*(receive() for _ in range(WORKERS)))
    assert sum(result is not None for result in results) == 1


async def test_concurrent_project_creation_gets_distinct_codes(db: Database) -> None:
    async def create(n: int) -> str:
        async with db.write() as session:
            project = await create_project(session=session, name=f"并发项目{n}", template="软件实施", year=2026)
            return project.code

    async with asyncio.timeout(DEADLINE_S):
        codes = await asyncio.gather(*(create(n) for n in range(5)))
    assert sorted(codes) == [f"XM-2026-{n:03d}" for n in range(1, 6)]
