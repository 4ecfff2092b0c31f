"""Outbox: idempotent enqueue, due-time claims, retry/dead/replay, and the stale-worker guard."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from storage.db import Database
from storage.models import OutboxMessage, OutboxMessageKind, OutboxState, OutboxTargetKind, utcnow
from storage.repo import (
    claim_due_outbox,
    enqueue_outbox,
    get_outbox_by_key,
    list_dead,
    mark_dead,
    mark_retry,
    mark_sent,
    replay_dead,
)


async def _enqueue(session, key: str, **kwargs) -> bool:
    return await enqueue_outbox(
        session=session,
        key=key,
        target_kind=OutboxTargetKind.GROUP,
        target_ids=["cidGroup=="],
        msg_kind=OutboxMessageKind.MARKDOWN,
        params={"title": "逾期提醒", "text": f"{key} 请尽快提交"},
        **kwargs,
    )


async def test_enqueue_is_idempotent_on_the_key(db: Database) -> None:
    async with db.write() as session:
        assert await _enqueue(session, "overdue:7:2026-03-02") is True
        assert await _enqueue(session, "overdue:7:2026-03-02") is False
        assert await _enqueue(session, "overdue:8:2026-03-02") is True
    async with db.write() as session:
        assert await _enqueue(session, "overdue:7:2026-03-02") is False
        stored = await get_outbox_by_key(session=session, key="overdue:7:2026-03-02")
    assert stored is not None and stored.params["text"] == "overdue:7:2026-03-02 请尽快提交"
    async with db.read() as session:
        assert len((await session.exec(select(OutboxMessage))).all()) == 2


async def test_claim_only_due_rows_in_due_order(db: Database) -> None:
    now = utcnow()
    async with db.write() as session:
        await _enqueue(session, "later", not_before=now + timedelta(minutes=5), now=now)
        await _enqueue(session, "second", not_before=now - timedelta(seconds=1), now=now)
        await _enqueue(session, "first", not_before=now - timedelta(seconds=2), now=now)
    async with db.write() as session:
        claimed = await claim_due_outbox(session=session, limit=10, worker="relay-1", lease_seconds=60, now=now)
    assert [row.idempotency_key for row in claimed] == ["first", "second"]
    assert {(row.state, row.claimed_by, row.attempts) for row in claimed} == {(OutboxState.SENDING, "relay-1", 1)}
    async with db.write() as session:
        assert await claim_due_outbox(session=session, limit=10, worker="relay-2", lease_seconds=60, now=now) == []


async def test_sent_retry_dead_and_replay(db: Database) -> None:
    now = utcnow()
    async with db.write() as session:
        for key in ("a", "b", "c"):
            await _enqueue(session, key, now=now)
    async with db.write() as session:
        a, b, c = await claim_due_outbox(session=session, limit=3, worker="r", lease_seconds=60, now=now)
        assert await mark_sent(session=session, outbox_id=a.id, worker="r", now=now)
        retry_at = now + timedelta(seconds=30)
        assert await mark_retry(session=session, outbox_id=b.id, error="429 限流", next_at=retry_at, worker="r")
        assert await mark_dead(session=session, outbox_id=c.id, error="invalid openConversationId", worker="r")
    async with db.write() as session:
        assert await claim_due_outbox(session=session, limit=10, worker="r", lease_seconds=60, now=now) == []
        again = await claim_due_outbox(session=session, limit=10, worker="r", lease_seconds=60, now=retry_at)
        assert [(row.idempotency_key, row.attempts, row.last_error) for row in again] == [("b", 2, "429 限流")]
        dead = await list_dead(session=session)
        assert [(row.idempotency_key, row.last_error) for row in dead] == [("c", "invalid openConversationId")]
        assert await replay_dead(session=session, ids=[dead[0].id], now=retry_at) == 1
        assert await replay_dead(session=session, now=retry_at) == 0
    async with db.read() as session:
        rows = {row.idempotency_key: row for row in (await session.exec(select(OutboxMessage))).all()}
    assert rows["a"].state is OutboxState.SENT and rows["a"].sent_at is not None
    assert rows["c"].state is OutboxState.PENDING and rows["c"].attempts == 0


async def test_expired_lease_is_reclaimed_and_the_stale_worker_cannot_settle(db: Database) -> None:
    now = utcnow()
    async with db.write() as session:
        await _enqueue(session, "k", now=now)
    async with db.write() as session:
        (row,) = await claim_due_outbox(session=session, limit=1, worker="old", lease_seconds=10, now=now)
    async with db.write() as session:
        later = now + timedelta(seconds=11)
        (again,) = await claim_due_outbox(session=session, limit=1, worker="new", lease_seconds=10, now=later)
        assert again.id == row.id and again.attempts == 2
        assert await mark_sent(session=session, outbox_id=row.id, worker="old") is False
        assert await mark_sent(session=session, outbox_id=row.id, worker="new") is True
