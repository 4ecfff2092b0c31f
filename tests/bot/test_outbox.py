"""The outbox: what ``enqueue`` stores, and how the relay sends, retries, falls back and dead-letters, against a
scripted fake DingTalk client (the emulator versions of these paths are in tests/e2e)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.config import parse_config
from bot.dingtalk import InvalidRequest, ServerError, SessionWebhookExpired, Throttled, Timeout
from bot.dingtalk.robot import BatchSendResult, SendResult
from bot.outbox import OutboxRelay, RelayOptions, enqueue, group_target, reply_target, users_target
from bot.testing import make_incoming
from bot.transactions import Transactions
from domain.replies import File, Markdown, Text
from storage.models import OutboxMessage, OutboxMessageKind, OutboxState, OutboxTargetKind, utcnow

pytestmark = pytest.mark.timeout(30)

WEBHOOK = "http://dingtalk.invalid/robot/sendBySession?session=secret-session-key"


class FakeClient:
    """Records every call; ``fail[api]`` is a list of exceptions (or None for success) consumed call by call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail: dict[str, list[BaseException | None]] = {}
        self.batch_result: Callable[[list[str]], BatchSendResult] | None = None
        self.sent = asyncio.Event()

    def _next(self, api: str) -> None:
        script = self.fail.get(api)
        if script:
            error = script.pop(0)
            if error is not None:
                raise error

    async def reply_via_webhook(self, url: str, body: Any, *, expires_at: datetime | None = None) -> None:
        self.calls.append(("webhook", (url, body)))
        if expires_at is not None and expires_at <= utcnow():
            raise SessionWebhookExpired("300001", "expired")
        self._next("webhook")
        self.sent.set()

    async def send_group(self, conversation_id: str, message: Any) -> SendResult:
        self.calls.append(("group", (conversation_id, message)))
        self._next("group")
        self.sent.set()
        return SendResult("key")

    async def send_to_users(self, user_ids: list[str], message: Any) -> BatchSendResult:
        self.calls.append(("users", (list(user_ids), message)))
        self._next("users")
        self.sent.set()
        if self.batch_result is not None:
            return self.batch_result(list(user_ids))
        return BatchSendResult(sent_user_ids=tuple(user_ids))

    async def upload_media(self, kind: str, filename: str, data: bytes | None = None, *, path: Any = None) -> str:
        self.calls.append(("upload", (kind, filename, path)))
        self._next("upload")
        return f"@media-{len(self.calls)}"

    def apis(self) -> list[str]:
        return [api for api, _ in self.calls]


@pytest.fixture
def config(tmp_path: Path):
    return parse_config({"dingtalk": {"client_id": "ding-test", "client_secret": "s3cret-value"},
                         "storage": {"files_dir": str(tmp_path / "files")},
                         "pacing": {"outbox_max_attempts": 3}}, environ={}, require_real_secret=False)


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
async def relay(db, client, config):
    relay = OutboxRelay(transactions=Transactions(db), client=client, config=config, worker="me",
                        options=RelayOptions(lease_seconds=30, poll_seconds=0.05, backoff_base_seconds=0.01,
                                             backoff_max_seconds=0.02, stop_grace_seconds=2))
    yield relay
    await relay.stop()


async def rows(db) -> list[OutboxMessage]:
    async with db.read() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def settled(relay: OutboxRelay, db, count: int, states=(OutboxState.SENT, OutboxState.DEAD)) -> list:
    """Wait until ``count`` rows reached one of ``states``; re-checked whenever the relay settles a row."""
    async def done() -> bool:
        return len([r for r in await rows(db) if r.state in states]) >= count

    await relay.wait_for(done, timeout=10)
    await relay.wait_idle(5)
    return await rows(db)


def with_webhook(incoming, expires_at: datetime | None = None):
    return dataclasses.replace(incoming, session_webhook=WEBHOOK, session_webhook_expires_at=expires_at)


# ---- enqueue ----------------------------------------------------------------------------------------------------


async def test_a_reply_goes_to_the_webhook_with_the_conversation_as_fallback(db):
    incoming = with_webhook(make_incoming("帮助", sender_id="liming", conversation_id="cid-1"), datetime(2030, 1, 1))
    target = reply_target(incoming)
    assert "secret-session-key" not in repr(target)
    async with db.write() as session:
        assert await enqueue(session, "reply:1:0", target, Markdown("标题", "正文", at_user_ids=("liming",)))
        assert not await enqueue(session, "reply:1:0", target, "again")  # same key: stored once
    [row] = await rows(db)
    assert row.state == OutboxState.PENDING and row.target_kind == OutboxTargetKind.WEBHOOK
    assert row.target_ids == [WEBHOOK] and row.msg_kind == OutboxMessageKind.MARKDOWN
    assert row.params["webhook"]["at"]["atUserIds"] == ["liming"]
    assert row.params["fallback"] == {"kind": "group", "ids": ["cid-1"]}
    assert row.params["expiresAt"].startswith("2030-01-01")
    assert row.params["msgKey"] == "sampleMarkdown" and row.params["msgParam"]["title"] == "标题"


async def test_a_file_answer_is_spooled_and_sent_to_the_conversation_not_the_webhook(db, tmp_path):
    incoming = with_webhook(make_incoming("文件", group=False, sender_id="liming"))
    async with db.write() as session:
        await enqueue(session, "reply:2:0", reply_target(incoming), File("周报.docx", data=b"docx"),
                      spool_dir=tmp_path / "spool")
    [row] = await rows(db)
    assert row.target_kind == OutboxTargetKind.USER and row.target_ids == ["liming"]
    assert row.msg_kind == OutboxMessageKind.FILE and row.params["media"]["fileType"] == "docx"
    assert Path(row.attachment_path).read_bytes() == b"docx" and row.params["spooled"] is True


async def test_what_can_never_be_sent_fails_in_the_handler(db, tmp_path):
    async with db.write() as session:
        with pytest.raises(InvalidRequest):
            await enqueue(session, "k1", group_target("cid"), File("notes.txt", data=b"x"), spool_dir=tmp_path)
        with pytest.raises(InvalidRequest):
            await enqueue(session, "k2", group_target("cid"), Text("长" * 20_000))
        with pytest.raises(ValueError):
            await enqueue(session, "k" * 300, group_target("cid"), "key too long")
        with pytest.raises(ValueError):
            await enqueue(session, "k3", group_target("cid"), File("a.docx", data=b"x"))  # no spool dir
    with pytest.raises(ValueError):
        users_target([])


# ---- the relay ----------------------------------------------------------------------------------------------------


async def test_rows_of_a_unit_of_work_are_claimed_in_it_and_sent_right_after_the_commit(db, relay, client):
    async with relay.unit_of_work() as work:
        await enqueue(work.session, "n:1", group_target("cid-1"), "一")
        await enqueue(work.session, "n:2", group_target("cid-1"), "二")
        later = utcnow() + timedelta(hours=1)
        await enqueue(work.session, "n:3", group_target("cid-1"), "三", not_before=later)
        assert [r.state for r in work.claimed_outbox] == [OutboxState.SENDING, OutboxState.SENDING]
        assert client.calls == []  # nothing leaves before the commit
    current = await settled(relay, db, 2)
    assert [c[1][1].params["content"] for c in client.calls] == ["一", "二"]  # in order, without the poll loop
    assert [r.state for r in current] == [OutboxState.SENT, OutboxState.SENT, OutboxState.PENDING]


async def test_a_rolled_back_unit_of_work_sends_nothing(db, relay, client):
    with pytest.raises(RuntimeError):
        async with relay.unit_of_work() as work:
            await enqueue(work.session, "n:1", group_target("cid-1"), "一")
            raise RuntimeError("handler failed")
    await relay.wait_idle(5)
    assert client.calls == [] and await rows(db) == []


async def test_the_poll_finds_rows_queued_elsewhere_and_retries_with_backoff(db, relay, client):
    client.fail["group"] = [ServerError("503", "busy"), None]
    async with db.write() as session:  # another process, or a job outside a unit of work
        await enqueue(session, "n:1", group_target("cid-1"), "一")
    await relay.start()
    [row] = await settled(relay, db, 1)
    assert row.state == OutboxState.SENT and row.attempts == 2 and client.apis() == ["group", "group"]
    assert relay.stats.retried == 1 and relay.stats.sent == 1


async def test_retry_after_is_respected(db, relay, client):
    client.fail["group"] = [Throttled("410100", "too fast", retry_after=600)]
    async with relay.unit_of_work() as work:
        await enqueue(work.session, "n:1", group_target("cid-1"), "一")
    await relay.wait_idle(5)
    [row] = await rows(db)
    assert row.state == OutboxState.PENDING and row.next_attempt_at >= utcnow() + timedelta(seconds=590)
    assert "Throttled" in row.last_error


async def test_a_send_that_may_have_arrived_is_sent_again_and_marked_so(db, relay, client):
    client.fail["webhook"] = [Timeout("timeout", "no answer", maybe_sent=True), None]
    async with relay.unit_of_work() as work:
        await enqueue(work.session, "r:1", reply_target_for(), "答复")
    await relay.start()
    [row] = await settled(relay, db, 1)
    assert row.state == OutboxState.SENT and client.apis() == ["webhook", "webhook"]
    assert relay.stats.maybe_sent == 1


def reply_target_for(expires_at: datetime | None = None):
    return reply_target(with_webhook(make_incoming("x", conversation_id="cid-9"), expires_at))


async def test_an_expired_webhook_falls_back_to_the_group(db, relay, client):
    async with relay.unit_of_work() as work:
        await enqueue(work.session, "r:1", reply_target_for(utcnow() - timedelta(seconds=1)), "答复")
    [row] = await settled(relay, db, 1)
    assert client.apis() == ["webhook", "group"] and client.calls[1][1][0] == "cid-9"
    assert row.state == OutboxState.SENT and relay.stats.fallbacks == 1


async def test_permanent_errors_and_exhausted_attempts_are_dead_letters_with_their_error(db, relay, client):
    client.fail["group"] = [InvalidRequest("invalid.openConversationId", "no such group")]
    client.fail["users"] = [ServerError("503", "busy")] * 3
    async with relay.unit_of_work() as work:
        await enqueue(work.session, "n:1", group_target("cid-x"), "一")
        await enqueue(work.session, "n:2", users_target("liming"), "二")
    await relay.start()
    current = await settled(relay, db, 2, states=(OutboxState.DEAD,))
    group_row, user_row = current
    assert group_row.state == OutboxState.DEAD and group_row.attempts == 1
    assert "invalid.openConversationId" in group_row.last_error
    assert user_row.state == OutboxState.DEAD and user_row.attempts == 3 and "ServerError" in user_row.last_error
    assert relay.stats.dead == 2


async def test_a_partly_delivered_batch_is_narrowed_to_the_users_not_reached(db, relay, client):
    users = [f"u{n}" for n in range(25)]
    rest = tuple(users[20:])
    client.batch_result = lambda ids: (
        BatchSendResult(sent_user_ids=tuple(users[:20]), failed=((rest, ServerError("503", "busy")),))
        if len(ids) == 25 else BatchSendResult(sent_user_ids=tuple(ids)))
    async with relay.unit_of_work() as work:
        await enqueue(work.session, "n:1", users_target(users), "通知")
    await relay.start()
    [row] = await settled(relay, db, 1)
    assert row.state == OutboxState.SENT and row.target_ids == list(rest)
    assert [c[1][0] for c in client.calls] == [users, list(rest)]


async def test_an_attachment_is_uploaded_once_however_often_the_send_is_retried(db, relay, client, tmp_path):
    client.fail["group"] = [ServerError("503", "busy"), None]
    async with relay.unit_of_work() as work:
        await enqueue(work.session, "f:1", group_target("cid-1"), File("周报.docx", data=b"docx"))
    await relay.start()
    [row] = await settled(relay, db, 1)
    assert client.apis() == ["upload", "group", "group"] and row.params["mediaId"].startswith("@media")
    assert not Path(row.attachment_path).exists()  # spooled copy removed once sent


async def test_a_failed_message_holds_back_the_later_ones_of_its_conversation(db, relay, client):
    client.fail["group"] = [ServerError("503", "busy")]
    async with relay.unit_of_work() as work:
        for n in range(3):
            await enqueue(work.session, f"n:{n}", group_target("cid-1"), f"第{n}条")
    await relay.wait_idle(5)
    current = await rows(db)
    assert client.apis() == ["group"]  # the 2nd and 3rd waited for the 1st
    assert [r.attempts for r in current] == [1, 0, 0] and {r.state for r in current} == {OutboxState.PENDING}
    await relay.start()
    await settled(relay, db, 3)
    assert [c[1][1].params["content"] for c in client.calls] == ["第0条", "第0条", "第1条", "第2条"]


async def test_many_sends_finishing_together_are_recorded_sent_each_exactly_once(db, relay, client):
    async with relay.unit_of_work() as work:
        for n in range(12):  # twelve conversations: sent side by side, their outcomes recorded in shared commits
            await enqueue(work.session, f"n:{n}", group_target(f"cid-{n}"), f"消息{n}")
    current = await settled(relay, db, 12)
    assert [r.state for r in current] == [OutboxState.SENT] * 12
    assert all(r.sent_at is not None and r.claimed_by is None for r in current)
    assert len(client.calls) == 12 and relay.stats.sent == 12 and relay.stats.lost_claims == 0


async def test_a_send_whose_row_was_taken_over_meanwhile_does_not_overwrite_the_new_owner(db, relay, client):
    # Our lease ran out while DingTalk was slow: another worker re-claimed the row; our late outcome must not count.
    original = client.send_group

    async def slow_then_taken_over(conversation_id, message):
        async with db.write() as session:
            await session.exec(update(OutboxMessage).values(claimed_by="other"))
        return await original(conversation_id, message)

    client.send_group = slow_then_taken_over
    async with relay.unit_of_work() as work:
        await enqueue(work.session, "n:1", group_target("cid-1"), "一")
    await relay.wait_idle(5)
    [row] = await rows(db)
    assert row.state == OutboxState.SENDING and row.claimed_by == "other"
    assert relay.stats.lost_claims == 1


async def test_a_conversations_messages_go_out_together_not_behind_every_other_conversation(db, relay, client):
    # The weekly push: each group gets a report text and its file, more groups than send slots.
    groups = 2 * relay.options.max_concurrent_sends + 4
    async with relay.unit_of_work() as work:
        for n in range(groups):
            await enqueue(work.session, f"w:{n}:msg", group_target(f"cid-{n}"), f"周报{n}")
            await enqueue(work.session, f"w:{n}:docx", group_target(f"cid-{n}"), f"附件{n}")
    await settled(relay, db, 2 * groups)
    order = [message.params["content"] for _, (_, message) in client.calls]
    slots = relay.options.max_concurrent_sends
    for n in range(groups):
        assert order.index(f"附件{n}") - order.index(f"周报{n}") <= slots
