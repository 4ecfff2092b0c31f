"""The inbox pipeline without a network: frames in through ``on_frame``, commands run once in one unit of work,
leftovers of a crash picked up at start, rows another worker took over left alone."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.config import parse_config
from bot.context import FrozenClock, Services
from bot.dispatcher import Dispatcher
from bot.inbox import InboxOptions, InboxPipeline, _Claim, decode_item, encode_item
from bot.incoming import ApprovalEvent, Incoming, Mention, ReceivedFile
from bot.lookups import find_user, role_lookup
from bot.outbox import OutboxRelay, RelayOptions
from bot.router import Router
from bot.testing import make_incoming
from bot.transactions import Transactions
from storage.models import AuditLog, InboxMessage, InboxState, OutboxMessage, utcnow
from storage.repo import claim_pending_inbox, insert_inbox, write_audit

pytestmark = pytest.mark.timeout(30)

router = Router("inbox-test", title="测试")


@router.command("记", summary="记一笔", examples=["记"])
async def note(incoming, ctx):
    await write_audit(session=ctx.session, action="test.note", entity_id=incoming.message_id)
    return "好"


@router.command("太长", summary="回答一段发不出去的长文", examples=["太长"])
async def too_long(incoming, ctx):
    await write_audit(session=ctx.session, action="test.note", entity_id=incoming.message_id)
    return "长" * 20_000


@router.command("看", summary="只读地看一眼", examples=["看"], reads_only=True)
async def look(incoming, ctx):
    await ctx.work.write_after(lambda session: write_audit(session=session, action="test.looked",
                                                           entity_id=incoming.message_id))
    return "看好了"


GATES: list[asyncio.Event] = []  # "等" waits for the newest one: a command that stays in flight until a test lets it go
ENTERED: list[asyncio.Event] = []  # the newest one is set when a "等" or "慢看" has begun waiting


@router.command("等", summary="等测试放行", examples=["等"])
async def wait_for_gate(incoming, ctx):
    if ENTERED:
        ENTERED[-1].set()
    await GATES[-1].wait()
    await write_audit(session=ctx.session, action="test.note", entity_id=incoming.message_id)
    return "等到了"


@router.command("慢看", summary="只读地等测试放行", examples=["慢看"], reads_only=True)
async def look_slowly(incoming, ctx):
    if ENTERED:
        ENTERED[-1].set()
    await GATES[-1].wait()  # in a read transaction: the write lock stays free meanwhile
    return "看完了"


@router.command("偷写", summary="声明只读却写了", examples=["偷写"], reads_only=True)
async def sneaky_write(incoming, ctx):
    await write_audit(session=ctx.session, action="test.sneaky", entity_id=incoming.message_id)
    return "写好了"


@router.command("偷改", summary="声明只读却改了读到的行", examples=["偷改"], reads_only=True)
async def sneaky_change(incoming, ctx):
    row = (await ctx.session.exec(select(InboxMessage))).first()
    row.error = "changed"  # and no query after it: only the end of the read notices
    return "改好了"


class NullClient:
    """The relay's client; these tests look at the outbox rows, not at delivery."""

    async def reply_via_webhook(self, *args, **kwargs):
        return None

    async def send_group(self, *args, **kwargs):
        return None

    async def send_to_users(self, *args, **kwargs):
        from bot.dingtalk.robot import BatchSendResult

        return BatchSendResult()


@pytest.fixture
def config(tmp_path: Path):
    return parse_config({"dingtalk": {"client_id": "ding-test", "client_secret": "s3cret-value"},
                         "storage": {"files_dir": str(tmp_path / "files")}}, environ={}, require_real_secret=False)


@pytest.fixture
async def pipeline(db, config):
    tx = Transactions(db)
    relay = OutboxRelay(transactions=tx, client=NullClient(), config=config, worker="me",
                        options=RelayOptions(poll_seconds=0.05))
    services = Services(config=config, clock=FrozenClock(datetime(2026, 3, 2, 2)), database=db,
                        outbox=relay)
    dispatcher = Dispatcher(services, roles_of=role_lookup(config), find_user=find_user)
    dispatcher.include_routers(router)
    inbox = InboxPipeline(services=services, dispatcher=dispatcher, relay=relay, transactions=tx, worker="me",
                          max_concurrent=4, options=InboxOptions(lease_seconds=30, poll_seconds=0.05))
    yield inbox
    await inbox.stop()
    await relay.stop()


async def inbox_rows(db) -> list[InboxMessage]:
    async with db.read() as session:
        return list((await session.exec(select(InboxMessage).order_by(InboxMessage.id))).all())


async def finished(db, pipeline: InboxPipeline, count: int) -> list[InboxMessage]:
    """Wait until ``count`` inbox rows are done or failed; re-checked whenever the pipeline finishes a row."""
    async def done() -> bool:
        rows = await inbox_rows(db)
        return len([r for r in rows if r.state in (InboxState.DONE, InboxState.FAILED)]) >= count

    await pipeline.wait_for(done, timeout=10)
    return await inbox_rows(db)


def test_items_survive_the_round_trip_through_the_inbox_payload():
    incoming = Incoming(
        message_id="m1", msg_id="msg1", msgtype="text", conversation_id="cid", conversation_type="2",
        sender_id="liming", sender_nick="李明", text="提交 @王建国", conversation_title="群",
        mentions=(Mention("$:bot"), Mention("$:w", "wangjianguo")),
        files=(ReceivedFile("code-1", "方案.docx", "file", "f1", "s1"),),
        session_webhook="http://x/robot/sendBySession?session=k", session_webhook_expires_at=datetime(2026, 1, 1, 8),
        robot_code="ding", created_at=datetime(2026, 1, 1, 6, 30), is_admin=True,
    )
    assert decode_item(encode_item(incoming)) == incoming
    event = ApprovalEvent(message_id="m2", event_id="e2", event_type="bpms_instance_change",
                          process_instance_id="inst", process_code="PROC", change="finish", result="agree",
                          staff_id="liuqiang", occurred_at=datetime(2026, 1, 2), raw={"type": "finish"})
    decoded = decode_item(encode_item(event))
    assert decoded == event and decoded.raw == {"type": "finish"}


async def test_a_frame_is_stored_once_by_message_id_and_by_msg_id(db, pipeline):
    first = make_incoming("记", message_id="frame-1")
    await pipeline.on_frame(first)
    await pipeline.on_frame(first)  # redelivery: same messageId
    await pipeline.on_frame(dataclasses.replace(first, message_id="frame-2"))  # same msgId, new frame
    assert len(await inbox_rows(db)) == 1
    assert pipeline.stats.stored == 1 and pipeline.stats.duplicates == 2


async def test_a_command_its_audit_its_answer_and_the_done_mark_commit_together(db, pipeline):
    await pipeline.start()
    await pipeline.on_frame(make_incoming("记", message_id="frame-1"))
    [row] = await finished(db, pipeline, 1)
    async with db.read() as session:
        audit = (await session.exec(select(AuditLog))).all()
        outbox = (await session.exec(select(OutboxMessage))).all()
    assert row.state == InboxState.DONE and row.attempts == 1
    assert [a.entity_id for a in audit] == ["frame-1"]
    assert [o.idempotency_key for o in outbox] == [f"reply:{row.id}:0"]


async def test_leftovers_of_a_crash_run_at_start_but_a_live_claim_is_left_alone(db, pipeline):
    async with db.write() as session:
        ids = [await insert_inbox(session=session, message_id=f"f{n}", msg_id=f"f{n}",
                                  payload=encode_item(make_incoming("记", message_id=f"f{n}"))) for n in range(3)]
        # f1: claimed by a process that died (lease over); f2: claimed by a live one (lease running).
        await session.exec(update(InboxMessage).where(InboxMessage.id == ids[1]).values(
            state=InboxState.PROCESSING, claimed_by="dead", claimed_until=utcnow() - timedelta(seconds=1),
            attempts=1))
        await session.exec(update(InboxMessage).where(InboxMessage.id == ids[2]).values(
            state=InboxState.PROCESSING, claimed_by="alive", claimed_until=utcnow() + timedelta(minutes=5),
            attempts=1))
    await pipeline.start()
    current = await finished(db, pipeline, 2)
    assert [r.state for r in current] == [InboxState.DONE, InboxState.DONE, InboxState.PROCESSING]
    assert current[1].attempts == 2 and current[2].claimed_by == "alive"


@pytest.mark.parametrize("claimed_seconds_ago", [0.0, 20.0], ids=["fresh-claim", "half-lease-gone"])
async def test_a_row_another_worker_took_over_is_not_run_twice(db, pipeline, claimed_seconds_ago):
    async with db.write() as session:
        row_id = await insert_inbox(session=session, message_id="f1", msg_id="f1",
                                    payload=encode_item(make_incoming("记", message_id="f1")))
        await session.exec(update(InboxMessage).where(InboxMessage.id == row_id).values(
            state=InboxState.PROCESSING, claimed_by="other", claimed_until=utcnow() + timedelta(minutes=5)))
    async with db.read() as session:
        row = (await session.exec(select(InboxMessage))).one()
    # As if our lease had run out and "other" re-claimed the row before our unit of work began: a fresh claim runs
    # the command and finds out when it marks the row done; an older one re-asserts the claim first. Either way
    # nothing of it commits.
    await pipeline._process(_Claim(row.id, time.monotonic() - claimed_seconds_ago), row.payload)
    assert pipeline.stats.superseded == 1
    async with db.read() as session:
        assert (await session.exec(select(AuditLog))).all() == []


async def test_an_event_without_a_handler_is_kept_and_marked_done(db, pipeline):
    await pipeline.start()
    event = ApprovalEvent(message_id="m-e", event_id="e-1", event_type="bpms_task_change",
                          process_instance_id="inst", process_code="PROC", change="start")
    await pipeline.on_frame(event)
    await pipeline.on_frame(dataclasses.replace(event, message_id="m-e2"))  # same event in a new frame
    [row] = await finished(db, pipeline, 1)
    assert row.state == InboxState.DONE and row.msg_id == "event:e-1"


async def test_a_failing_event_handler_rolls_back_and_records_the_error(db, pipeline):
    async def handler(event, ctx):
        await write_audit(session=ctx.session, action="test.event")
        raise ValueError("unknown instance")

    pipeline.register(handler)
    await pipeline.start()
    await pipeline.on_frame(ApprovalEvent(message_id="m-e", event_id="e-1", event_type="bpms_task_change",
                                          process_instance_id="inst", process_code="PROC", change="start"))
    [row] = await finished(db, pipeline, 1)
    assert row.state == InboxState.FAILED and "ValueError: unknown instance" in row.error
    async with db.read() as session:
        assert (await session.exec(select(AuditLog))).all() == []
        assert (await session.exec(select(OutboxMessage))).all() == []


async def test_an_answer_that_can_never_be_sent_is_an_error_not_a_retry_loop(db, pipeline):
    await pipeline.start()
    await pipeline.on_frame(make_incoming("太长", message_id="frame-long"))
    [row] = await finished(db, pipeline, 1)
    assert row.state == InboxState.FAILED and "answer cannot be sent" in row.error
    async with db.read() as session:
        assert (await session.exec(select(AuditLog))).all() == []  # rolled back
        [answer] = (await session.exec(select(OutboxMessage))).all()
    assert answer.params["msgParam"]["content"].startswith("抱歉，处理时出错了")


def one_slot_inbox(db, config, *, backlog: int, worker: str = "me") -> tuple[InboxPipeline, OutboxRelay]:
    """One command at a time, ``backlog`` claimed rows waiting, and a poll far away: a row in the table can only
    run because a finished one looks for it."""
    tx = Transactions(db)
    relay = OutboxRelay(transactions=tx, client=NullClient(), config=config, worker=worker,
                        options=RelayOptions(poll_seconds=0.05))
    services = Services(config=config, clock=FrozenClock(datetime(2026, 3, 2, 2)), database=db, outbox=relay)
    dispatcher = Dispatcher(services, roles_of=role_lookup(config), find_user=find_user)
    dispatcher.include_routers(router)
    inbox = InboxPipeline(services=services, dispatcher=dispatcher, relay=relay, transactions=tx, worker=worker,
                          max_concurrent=1,
                          options=InboxOptions(lease_seconds=30, poll_seconds=3600, backlog=backlog))
    return inbox, relay


@pytest.mark.parametrize("backlog", [0, 1], ids=["no-backlog", "backlog-of-one"])
async def test_frames_beyond_the_free_slot_wait_claimed_or_in_the_table_and_each_runs_once(db, config, backlog):
    inbox, relay = one_slot_inbox(db, config, backlog=backlog)
    await inbox.start()
    try:
        await asyncio.gather(*(inbox.on_frame(make_incoming("记", message_id=m)) for m in "abc"))
        rows = await finished(db, inbox, 3)
    finally:
        await inbox.stop()
        await relay.stop()
    assert [r.state for r in rows] == [InboxState.DONE] * 3
    assert [r.attempts for r in rows] == [1, 1, 1]  # each ran once, whether taken at once, waiting or claimed
    # Stored claimed: the one run at once and the backlog's; the rest waited in the table for a claim.
    assert inbox.stats.taken_at_once == 1 + backlog and inbox.stats.processed == 3
    async with db.read() as session:
        assert len((await session.exec(select(AuditLog))).all()) == 3


async def test_stopping_hands_the_waiting_rows_back_for_the_next_worker(db, config):
    GATES.append(asyncio.Event())
    inbox, relay = one_slot_inbox(db, config, backlog=2)
    await inbox.start()
    await asyncio.gather(inbox.on_frame(make_incoming("等", message_id="a")),
                         *(inbox.on_frame(make_incoming("记", message_id=m)) for m in "bc"))
    GATES[-1].set()  # "a" may finish now, during the stop's grace; "b" and "c" never started
    await inbox.stop()
    await relay.stop()
    rows = await inbox_rows(db)
    assert [(r.message_id, r.state, r.attempts, r.claimed_by) for r in rows] == [
        ("a", InboxState.DONE, 1, "me"),
        ("b", InboxState.PENDING, 0, None),
        ("c", InboxState.PENDING, 0, None),
    ]
    successor, relay = one_slot_inbox(db, config, backlog=2, worker="next")
    await successor.start()  # takes them at once, without waiting for a lease to run out
    try:
        rows = await finished(db, successor, 3)
    finally:
        await successor.stop()
        await relay.stop()
    assert [(r.state, r.attempts) for r in rows] == [(InboxState.DONE, 1)] * 3



async def test_a_row_whose_lease_ran_out_while_it_waited_here_is_claimed_again_but_runs_once(db, config):
    GATES.append(asyncio.Event())
    inbox, relay = one_slot_inbox(db, config, backlog=2)
    await inbox.start()
    try:
        await asyncio.gather(inbox.on_frame(make_incoming("慢看", message_id="a")),
                             inbox.on_frame(make_incoming("记", message_id="b")))
        # "b" waits here behind "a" (one slot) until its lease runs out; the pump's next claim takes it in again.
        async with db.write() as session:
            await session.exec(update(InboxMessage).where(InboxMessage.message_id == "b")
                               .values(claimed_until=utcnow() - timedelta(seconds=1)))
        inbox._take_claimed(await inbox._claim(10))  # what the pump does when it polls
        GATES[-1].set()
        rows = await finished(db, inbox, 2)
    finally:
        await inbox.stop()
        await relay.stop()
    assert [(r.message_id, r.state, r.attempts) for r in rows] == [("a", InboxState.DONE, 1),
                                                                    ("b", InboxState.DONE, 2)]
    assert (inbox.stats.processed, inbox.stats.superseded) == (2, 0)  # "b" ran once, not once more to no avail
    async with db.read() as session:
        assert len((await session.exec(select(AuditLog))).all()) == 1


async def test_on_a_server_database_a_running_command_keeps_its_row_from_other_claimers(db, config):
    if db.family != "postgresql":
        pytest.skip("SQLite: the command's write transaction shuts every claimer out anyway; MySQL: the claim waits "
                    "for the row's lock instead of skipping it (the same guarantee, but this test would wait on it)")
    GATES.append(asyncio.Event())
    ENTERED.append(asyncio.Event())
    inbox, relay = one_slot_inbox(db, config, backlog=0)
    await inbox.start()
    try:
        await inbox.on_frame(make_incoming("等", message_id="a"))
        await asyncio.wait_for(ENTERED[-1].wait(), 10)  # inside its unit of work
        async with db.write() as session:  # another process, as if "a"'s lease had run out long ago
            taken = await claim_pending_inbox(session=session, limit=10, worker="other", lease_seconds=30,
                                              now=utcnow() + timedelta(hours=1))
        assert taken == []
        GATES[-1].set()
        [row] = await finished(db, inbox, 1)
    finally:
        await inbox.stop()
        await relay.stop()
    assert (row.state, row.claimed_by, row.attempts) == (InboxState.DONE, "me", 1)


async def test_a_read_only_command_answers_and_its_bookkeeping_is_written_after_it(db, pipeline):
    await pipeline.start()
    await pipeline.on_frame(make_incoming("看", message_id="r1"))
    [row] = await finished(db, pipeline, 1)
    assert row.state == InboxState.DONE
    async with db.read() as session:
        [audit] = (await session.exec(select(AuditLog))).all()
        [answer] = (await session.exec(select(OutboxMessage))).all()
    assert audit.action == "test.looked" and "看好了" in str(answer.params)


@pytest.mark.parametrize("command", ["偷写", "偷改"])
async def test_a_command_declared_read_only_that_writes_fails_loudly_and_keeps_nothing(db, pipeline, command):
    await pipeline.start()
    await pipeline.on_frame(make_incoming(command, message_id="r2"))
    [row] = await finished(db, pipeline, 1)
    assert row.state == InboxState.FAILED and "WriteInReadTransaction" in (row.error or "")
    async with db.read() as session:
        assert (await session.exec(select(AuditLog))).all() == []
        [apology] = (await session.exec(select(OutboxMessage))).all()
    assert "抱歉" in str(apology.params)


async def test_frames_arriving_together_are_stored_together_each_once(db, pipeline):
    await pipeline.start()
    frames = [make_incoming("记", message_id=f"burst-{n}") for n in range(15)]
    redelivered = frames[:5]  # the same frames again, in the same burst
    await asyncio.gather(*(pipeline.on_frame(frame) for frame in frames + redelivered))
    rows = await finished(db, pipeline, 15)
    assert len(rows) == 15 and all(row.state == InboxState.DONE for row in rows)
    assert pipeline.stats.stored == 15 and pipeline.stats.duplicates == 5
    async with db.read() as session:
        assert len((await session.exec(select(AuditLog))).all()) == 15
