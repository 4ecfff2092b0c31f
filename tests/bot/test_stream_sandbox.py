"""The Stream client against the sandbox emulator: typed frames, ACK after persistence, recovery from every kind
of connection loss. Every test also runs under ``loop_watch``: nothing may block the event loop for 100 ms."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from bot.incoming import ApprovalEvent, Incoming
from bot.stream import DingTalkStream, StreamOptions

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("loop_watch")]

GROUP = "【智慧工厂MES项目】内部群"

FAST = StreamOptions(
    ping_interval=0.5, ping_timeout=2.0, watchdog_timeout=3.0, backoff_initial=0.05, backoff_max=0.5,
    open_timeout=2.0, close_timeout=1.0, disconnect_drain_seconds=0.5, stop_grace_seconds=1.0,
)


class Inbox:
    """Stands in for the app's on_frame: "persists" each item, can be held (gate) or made to fail."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[Incoming | ApprovalEvent] = asyncio.Queue()
        self.calls: list[str] = []  # message ids, in the order on_frame was entered
        self.fail_next = 0
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def __call__(self, item: Incoming | ApprovalEvent) -> None:
        self.calls.append(item.message_id)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("inbox insert failed (database unavailable)")
        self.items.put_nowait(item)

    async def next(self, timeout: float = 5.0) -> Any:
        return await asyncio.wait_for(self.items.get(), timeout)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
async def start_stream(sandbox, http, make_config, inbox):
    """``await start_stream(options)`` -> a running, connected DingTalkStream; stopped at teardown."""
    running: list[tuple[DingTalkStream, asyncio.Task]] = []

    async def start(options: StreamOptions = FAST) -> DingTalkStream:
        stream = DingTalkStream(make_config(), inbox, session=http, options=options)
        task = asyncio.create_task(stream.start())
        running.append((stream, task))
        await stream.wait_for_status(lambda s: s.connected, timeout=5)
        return stream

    yield start
    for stream, task in running:
        await asyncio.wait_for(stream.stop(), 10)
        assert task.done() and task.exception() is None


async def test_group_message_is_typed_and_acked_only_after_on_frame(sandbox, start_stream, inbox, group):
    stream = await start_stream()
    inbox.gate = asyncio.Event()  # hold "persisting"
    said = await sandbox.say("王建国", group, "周报", mentions=["李明"])
    await asyncio.wait_for(inbox.entered.wait(), 5)
    frame = await sandbox.frame(said.message_id)
    assert frame.state == "sent" and frame.acks == []  # on_frame has not returned: no ACK yet

    inbox.gate.set()
    item = await inbox.next()
    assert isinstance(item, Incoming)
    assert (item.message_id, item.msg_id, item.text, item.is_group) == (said.message_id, said.msg_id, "周报", True)
    assert item.sender_id == "wangjianguo" and "liming" in item.mentioned_staff_ids
    acked = await sandbox.wait_for_ack(said.message_id, timeout=5)
    assert acked.acks[-1].code == 200 and acked.acks[-1].data_obj == {"response": None}
    status = stream.status
    assert status.frames_acked >= 1 and status.last_frame_at is not None and status.connected_since is not None
    assert json.dumps(status.as_dict())  # /healthz can serialise it


async def test_persist_failure_is_not_acked_and_redelivered_with_the_same_message_id(sandbox, start_stream, inbox):
    stream = await start_stream()
    inbox.fail_next = 1
    said = await sandbox.dm("李明", "提交 需求说明书")
    await stream.wait_for_status(lambda s: s.frames_failed == 1, timeout=5)
    frame = await sandbox.frame(said.message_id)
    assert frame.state == "sent" and frame.acks == []

    await sandbox.advance(61)  # DingTalk pushes an unacked frame again after ~60 s
    item = await inbox.next()
    assert item.message_id == said.message_id and item.text == "提交 需求说明书"
    acked = await sandbox.wait_for_ack(said.message_id)
    assert acked.redeliveries == 1 and inbox.calls == [said.message_id, said.message_id]


async def test_approval_events_are_typed_and_acked_with_status(sandbox, start_stream, inbox, client):
    await start_stream()
    process_code = await client.create_form("阶段验收（流测试）", [
        {"componentType": "TextField", "props": {"componentId": "TextField_1", "label": "项目名称"}}])
    inbox.fail_next = 1  # the first event cannot be persisted
    instance_id = await client.create_process_instance(process_code, "wangjianguo", {"项目名称": "MES"},
                                                       approvers=["liuqiang"])
    await asyncio.wait_for(inbox.entered.wait(), 5)
    first_id = inbox.calls[0]
    task_start = await inbox.next()  # the second event went through
    assert isinstance(task_start, ApprovalEvent) and task_start.event_type == "bpms_task_change"
    assert task_start.process_instance_id == instance_id and task_start.change == "start"
    ok = await sandbox.wait_for_ack(task_start.message_id)
    assert ok.acks[-1].code == 200 and ok.acks[-1].data_obj["status"] == "SUCCESS"

    failed = await sandbox.frame(first_id)
    assert failed.state == "sent" and failed.acks[-1].code == 500
    assert failed.acks[-1].data_obj["status"] == "LATER"
    await sandbox.advance(61)
    instance_start = await inbox.next()
    assert instance_start.message_id == first_id
    assert (instance_start.event_type, instance_start.change) == ("bpms_instance_change", "start")
    assert (await sandbox.wait_for_ack(first_id)).acks[-1].data_obj["status"] == "SUCCESS"


async def test_ping_is_answered_echoing_opaque(sandbox, start_stream):
    stream = await start_stream()
    ack = await sandbox.ping(timeout=5)
    sent = sandbox.emulator.gateway.system_frames[ack.message_id]
    assert ack.code == 200 and ack.data_obj == json.loads(sent.data) and "opaque" in ack.data_obj
    assert stream.status.pings_answered == 1


async def test_abrupt_drop_is_recovered_and_messages_sent_meanwhile_arrive(sandbox, start_stream, inbox, group):
    stream = await start_stream()
    first = await sandbox.wait_for_connection()
    await sandbox.drop(first.id)  # TCP abort, no close frame
    assert (await sandbox.wait_for_close(first.id)).closed_by == "drop"
    said = await sandbox.say("王建国", group, "断线期间的消息")  # queued (or pushed to the new socket)
    await sandbox.wait_for_connection(opened=2)
    item = await inbox.next()
    assert item.message_id == said.message_id
    await sandbox.wait_for_ack(said.message_id)
    status = await stream.wait_for_status(lambda s: s.connected and s.reconnects >= 1, timeout=5)
    assert status.last_error is not None or status.reconnects == 1


async def test_disconnect_frame_opens_the_new_connection_at_once(sandbox, start_stream, inbox, group, caplog):
    caplog.set_level(logging.INFO, logger="bot.stream")
    # A long backoff would make a backoff-delayed reconnect visible; a disconnect must skip it.
    stream = await start_stream(StreamOptions(**{**FAST.__dict__, "backoff_initial": 30.0, "backoff_max": 60.0}))
    first = await sandbox.wait_for_connection()
    await sandbox.disconnect(first.id)
    second = await sandbox.wait_for_connection(opened=2, timeout=3)
    assert second.id != first.id
    closed = await sandbox.wait_for_close(first.id, timeout=3)  # we close the old one after draining
    assert closed.closed_by == "client"
    assert any("reconnect #1 in 0.00s (disconnect)" in r.getMessage() for r in caplog.records)
    said = await sandbox.say("王建国", group, "换连接之后")
    assert (await inbox.next()).message_id == said.message_id
    assert stream.status.disconnects == 1 and stream.status.connected


async def test_normal_server_close_reconnects(sandbox, start_stream, inbox):
    stream = await start_stream()
    first = await sandbox.wait_for_connection()
    await sandbox.close(first.id, code=1000)
    await sandbox.wait_for_connection(opened=2)
    said = await sandbox.dm("赵磊", "在吗")
    assert (await inbox.next()).message_id == said.message_id
    assert stream.status.reconnects >= 1


async def test_silent_freeze_is_detected_by_the_watchdog(sandbox, start_stream, inbox):
    # Keepalive pings every 0.2 s keep a healthy idle link "talking"; websockets' own ping timeout is set far
    # away so that the watchdog (1 s without any byte) is what notices the dead link.
    options = StreamOptions(**{**FAST.__dict__, "ping_interval": 0.2, "ping_timeout": 30.0, "watchdog_timeout": 1.0})
    stream = await start_stream(options)
    first = await sandbox.wait_for_connection()
    await sandbox.freeze(first.id)
    said = await sandbox.dm("李明", "冻结期间的消息")  # pushed into the dead link: lost on the way
    await stream.wait_for_status(lambda s: s.watchdog_trips == 1 and s.reconnects >= 1 and s.connected, timeout=10)
    await sandbox.wait_for_connection(opened=2)
    await sandbox.unfreeze(first.id)  # the server now reads the client's abort and drops the old link
    await sandbox.wait_for_close(first.id)
    await sandbox.advance(61)  # redelivery of the unacked message, to the new connection
    item = await inbox.next()
    assert item.message_id == said.message_id
    await sandbox.wait_for_ack(said.message_id)


async def test_healthy_idle_connection_does_not_trip_the_watchdog(sandbox, start_stream):
    options = StreamOptions(**{**FAST.__dict__, "ping_interval": 0.1, "watchdog_timeout": 0.5})
    stream = await start_stream(options)
    with pytest.raises(TimeoutError):  # nothing happens for 1.5 s (two watchdog periods and more)
        await stream.wait_for_status(lambda s: s.watchdog_trips > 0 or s.reconnects > 0, timeout=1.5)
    assert stream.status.connected


async def test_bad_credentials_back_off_and_stop_is_prompt(sandbox, http, make_config, inbox):
    config = make_config()
    bad = config.model_copy(update={"dingtalk": config.dingtalk.model_copy(update={"client_secret": "wrong"})})
    stream = DingTalkStream(bad, inbox, session=http, options=FAST)
    task = asyncio.create_task(stream.start())
    status = await stream.wait_for_status(lambda s: s.reconnects >= 3, timeout=5)
    assert not status.connected and "invalidClientIdOrSecret" in status.last_error
    assert "wrong" not in status.last_error
    await asyncio.wait_for(stream.stop(), 2)
    assert task.done() and task.exception() is None


async def test_stop_closes_the_connection_and_leaves_unfinished_frames_unacked(sandbox, start_stream, inbox, group):
    stream = await start_stream()
    conn = await sandbox.wait_for_connection()
    inbox.gate = asyncio.Event()  # a frame whose persisting never finishes in time
    said = await sandbox.say("王建国", group, "停机时的消息")
    await asyncio.wait_for(inbox.entered.wait(), 5)
    await asyncio.wait_for(stream.stop(), 5)  # bounded by stop_grace_seconds
    assert (await sandbox.wait_for_close(conn.id)).closed_by == "client"
    assert (await sandbox.frame(said.message_id)).acks == []  # DingTalk will redeliver it to the next process
    assert not stream.status.connected


async def test_sdk_blocking_helpers_are_disabled(sandbox, http, make_config, inbox):
    stream = DingTalkStream(make_config(), inbox, session=http)
    for blocked in (stream.get_access_token, stream.start_forever, lambda: stream.upload_to_dingtalk(b"")):
        with pytest.raises(NotImplementedError):
            blocked()
    assert stream.subscriptions() == [{"type": "EVENT", "topic": "*"},
                                      {"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}]


async def test_connection_uses_the_configured_base_url_not_the_sdk_env(sandbox, start_stream, monkeypatch):
    import dingtalk_stream

    # The SDK's class attribute still points at the real DingTalk (or whatever the env said at import time):
    assert "127.0.0.1" not in dingtalk_stream.DingTalkStreamClient.OPEN_CONNECTION_API
    monkeypatch.delenv("DINGTALK_OPENAPI_ENDPOINT", raising=False)
    await start_stream()
    conn = await sandbox.wait_for_connection()
    assert conn.ua.startswith("dingtalk-sdk-python/")
    assert sandbox.calls("gateway.connections.open") == 1
