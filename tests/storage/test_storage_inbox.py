"""Inbox: duplicates by messageId or msgId are dropped without breaking the transaction; claims and leases."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from storage.db import Database
from storage.models import InboxKind, InboxMessage, InboxState, utcnow
from storage.repo import claim_pending_inbox, insert_inbox, mark_inbox_done, mark_inbox_failed, pending_inbox_count


async def test_duplicate_message_id_is_dropped(db: Database) -> None:
    async with db.write() as session:
        first = await insert_inbox(session=session, message_id="frame-1", msg_id="msg-1", payload="{}")
    async with db.write() as session:
        again = await insert_inbox(session=session, message_id="frame-1", msg_id="msg-2", payload="{}")
    assert first is not None and again is None


async def test_duplicate_msg_id_in_a_new_frame_is_dropped(db: Database) -> None:
    async with db.write() as session:
        assert await insert_inbox(session=session, message_id="frame-1", msg_id="msg-1", payload="{}")
    async with db.write() as session:
        assert await insert_inbox(session=session, message_id="frame-2", msg_id="msg-1", payload="{}") is None


async def test_events_without_msg_id_never_collide(db: Database) -> None:
    async with db.write() as session:
        for n in range(3):
            assert await insert_inbox(session=session, message_id=f"evt-{n}", kind=InboxKind.EVENT, payload="{}")
    async with db.read() as session:
        assert len((await session.exec(select(InboxMessage))).all()) == 3


async def test_ids_differing_only_in_case_are_distinct(db: Database) -> None:
    # DingTalk ids are case-sensitive base64; MySQL's default *_ci collations would call these equal.
    async with db.write() as session:
        assert await insert_inbox(session=session, message_id="msgAbC==", payload="{}")
        assert await insert_inbox(session=session, message_id="msgabc==", payload="{}")


async def test_duplicate_leaves_the_transaction_usable(db: Database) -> None:
    async with db.write() as session:
        assert await insert_inbox(session=session, message_id="frame-1", payload="first")
        assert await insert_inbox(session=session, message_id="frame-1", payload="dup") is None
        assert await insert_inbox(session=session, message_id="frame-2", payload="second")
    async with db.read() as session:
        payloads = sorted(row.payload for row in (await session.exec(select(InboxMessage))).all())
    assert payloads == ["first", "second"]


async def test_claim_done_failed_and_expired_lease(db: Database) -> None:
    start = utcnow()
    async with db.write() as session:
        for n in range(3):
            received_at = start + timedelta(seconds=n)
            await insert_inbox(session=session, message_id=f"f{n}", payload=str(n), received_at=received_at)
    async with db.write() as session:
        claimed = await claim_pending_inbox(session=session, limit=2, worker="w1", lease_seconds=30, now=start)
    assert [row.payload for row in claimed] == ["0", "1"]  # oldest first
    assert all(row.state is InboxState.PROCESSING and row.attempts == 1 for row in claimed)
    async with db.write() as session:
        await mark_inbox_done(session=session, inbox_id=claimed[0].id, worker="w1")
        await mark_inbox_failed(session=session, inbox_id=claimed[1].id, error="处理失败", worker="w1")
        assert await pending_inbox_count(session=session) == 1
    # w2 crashes while holding f2; after its lease runs out another worker gets it.
    async with db.write() as session:
        taken = await claim_pending_inbox(session=session, limit=10, worker="w2", lease_seconds=30, now=start)
        assert [row.payload for row in taken] == ["2"]
    async with db.write() as session:
        assert await claim_pending_inbox(session=session, limit=10, worker="w3", lease_seconds=30, now=start) == []
        later = start + timedelta(seconds=31)
        retaken = await claim_pending_inbox(session=session, limit=10, worker="w3", lease_seconds=30, now=later)
        assert [(row.payload, row.claimed_by, row.attempts) for row in retaken] == [("2", "w3", 2)]
    async with db.read() as session:
        rows = {row.payload: row for row in (await session.exec(select(InboxMessage))).all()}
    assert rows["0"].state is InboxState.DONE and rows["0"].processed_at is not None
    assert rows["1"].state is InboxState.FAILED and rows["1"].error == "处理失败"


async def test_row_that_keeps_crashing_its_processor_is_given_up(db: Database) -> None:
    now = utcnow()
    async with db.write() as session:
        await insert_inbox(session=session, message_id="poison", payload="{}")
    for attempt in range(2):
        async with db.write() as session:
            claimed = await claim_pending_inbox(
                session=session, limit=1, worker="w", lease_seconds=1, now=now + timedelta(seconds=10 * attempt),
                max_attempts=2,
            )
            assert len(claimed) == 1
    async with db.write() as session:
        later = now + timedelta(seconds=60)
        given_up = await claim_pending_inbox(
            session=session, limit=1, worker="w", lease_seconds=1, now=later, max_attempts=2
        )
        assert given_up == []
    async with db.read() as session:
        row = (await session.exec(select(InboxMessage))).one()
    assert row.state is InboxState.FAILED and row.attempts == 2
