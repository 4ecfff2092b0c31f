"""Stream gateway: registration, tickets, frame shapes, ACKs, redelivery, dispatch, SYSTEM frames."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from urllib.parse import quote_plus

import pytest
import websockets
from websockets.asyncio.client import connect

from sandbox.config import EmulatorConfig
from sandbox_helpers import CLIENT_GROUP, INTERNAL_GROUP, BOT_TOPIC, RawStreamClient, open_connection



async def test_open_connection_returns_endpoint_and_ticket(sandbox, http):
    status, body = await open_connection(http, sandbox)
    assert status == 200
    assert set(body) == {"endpoint", "ticket"}
    assert body["endpoint"] == f"ws://{sandbox.base_url.removeprefix('http://')}/connect"


@pytest.mark.parametrize("secret", ["wrong-secret"])
async def test_open_connection_rejects_bad_credentials(sandbox, http, secret):
    status, body = await open_connection(http, sandbox, client_secret=secret)
    assert status == 400
    assert body["code"] == "invalidClientIdOrSecret"
    assert body["message"] == "无效的clientId或者clientSecret"
    assert body["requestid"]
    status, body = await open_connection(http, sandbox, client_id="dingunknownapp")
    assert (status, body["code"]) == (400, "invalidClientIdOrSecret")


async def test_ticket_opens_exactly_one_connection(sandbox, http):
    _, body = await open_connection(http, sandbox)
    uri = f"{body['endpoint']}?ticket={quote_plus(body['ticket'])}"
    async with connect(uri, ping_interval=None):
        with pytest.raises(websockets.InvalidStatus) as exc:
            async with connect(uri, ping_interval=None):
                pass
        assert exc.value.response.status_code == 401


async def test_ticket_expires_after_90_seconds(sandbox, http):
    _, body = await open_connection(http, sandbox)
    await sandbox.advance(91)
    with pytest.raises(websockets.InvalidStatus):
        async with connect(f"{body['endpoint']}?ticket={quote_plus(body['ticket'])}", ping_interval=None):
            pass
    # A fresh ticket still works.
    _, body = await open_connection(http, sandbox)
    await sandbox.advance(89)
    async with connect(f"{body['endpoint']}?ticket={quote_plus(body['ticket'])}", ping_interval=None):
        pass


async def test_group_text_message_frame_is_faithful(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    conn = await sandbox.wait_for_connection()
    received = await sandbox.say("王建国", INTERNAL_GROUP, "@项目管家 本周周报 @李明 请看")
    frame = await client.next_of("CALLBACK")
    raw = json.loads(client.raw_frames[-1])
    assert list(raw) == ["specVersion", "type", "headers", "data"]
    assert raw["specVersion"] == "1.0"
    headers = frame["headers"]
    assert list(headers) == ["appId", "connectionId", "contentType", "messageId", "time", "topic"]
    assert all(isinstance(v, str) for v in headers.values())
    assert headers["topic"] == BOT_TOPIC
    assert headers["connectionId"] == conn.id
    assert headers["messageId"] == received.message_id
    assert headers["time"].isdigit()
    assert isinstance(frame["data"], str)
    data = json.loads(frame["data"])
    group = sandbox.world.group(INTERNAL_GROUP)
    pm, engineer = sandbox.world.user("王建国"), sandbox.world.user("李明")
    assert data["conversationType"] == "2"
    assert data["conversationId"] == group.conversation_id
    assert data["conversationTitle"] == INTERNAL_GROUP
    assert data["isInAtList"] is True
    assert data["msgtype"] == "text"
    assert data["text"] == {"content": " 本周周报 @李明 请看"}
    assert data["atUsers"] == [{"dingtalkId": sandbox.app.chatbot_user_id},
                               {"dingtalkId": engineer.dingtalk_id, "staffId": "liming"}]
    assert data["senderStaffId"] == pm.user_id and data["senderNick"] == "王建国"
    assert data["senderId"].startswith("$:LWCP_v1:$")
    assert data["robotCode"] == sandbox.robot_code
    assert data["msgId"].startswith("msg")
    assert isinstance(data["createAt"], int)
    assert data["sessionWebhookExpiredTime"] == data["createAt"] + 5_400_000
    assert data["sessionWebhook"].startswith(f"{sandbox.base_url}/robot/sendBySession?session=")
    await client.close()


async def test_mention_is_prepended_when_not_typed(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    await sandbox.say("李明", INTERNAL_GROUP, "帮助")
    data = json.loads((await client.next_of("CALLBACK"))["data"])
    assert data["text"]["content"] == " 帮助"
    assert data["atUsers"] == [{"dingtalkId": sandbox.app.chatbot_user_id}]
    await client.close()


async def test_private_message_fields(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    await sandbox.dm("赵磊", "我的任务")
    data = json.loads((await client.next_of("CALLBACK"))["data"])
    assert data["conversationType"] == "1"
    assert data["conversationId"] == sandbox.conversation_id("赵磊")
    assert "conversationTitle" not in data and "isInAtList" not in data and "atUsers" not in data
    assert data["text"] == {"content": "我的任务"}
    await client.close()


async def test_external_contact_has_no_staff_id(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    await sandbox.say("黄蕾", CLIENT_GROUP, "进度如何")
    data = json.loads((await client.next_of("CALLBACK"))["data"])
    assert "senderStaffId" not in data
    assert data["senderCorpId"] != data["chatbotCorpId"]
    await client.close()


async def test_group_message_without_at_is_not_pushed(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    quiet = await sandbox.say("陈静", INTERNAL_GROUP, "大家辛苦了", at_bot=False)
    assert quiet.delivered is False and quiet.message_id is None
    loud = await sandbox.say("陈静", INTERNAL_GROUP, "状态")
    frame = await client.next_of("CALLBACK")
    assert frame["headers"]["messageId"] == loud.message_id
    await client.close()


async def test_ack_is_matched_by_message_id(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    msg = await sandbox.say("王建国", INTERNAL_GROUP, "项目列表")
    frame = await client.next_of("CALLBACK")
    await client.ack(frame)
    info = await sandbox.wait_for_ack(msg.message_id)
    assert info.state == "acked" and info.acks[0].code == 200
    # After an ACK nothing comes again, even past the redelivery timeout.
    await sandbox.advance(61)
    with pytest.raises(asyncio.TimeoutError):
        await client.next_of("CALLBACK", timeout=0.3)
    await client.close()


async def test_unacked_frame_is_redelivered_once_with_same_message_id(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    msg = await sandbox.say("王建国", INTERNAL_GROUP, "项目列表")
    first = await client.next_of("CALLBACK")
    await sandbox.advance(59)
    with pytest.raises(asyncio.TimeoutError):
        await client.next_of("CALLBACK", timeout=0.2)
    await sandbox.advance(2)
    second = await client.next_of("CALLBACK")
    assert second["headers"]["messageId"] == first["headers"]["messageId"] == msg.message_id
    assert second["data"] == first["data"]
    # Default: redelivered once only.
    await sandbox.advance(61)
    with pytest.raises(asyncio.TimeoutError):
        await client.next_of("CALLBACK", timeout=0.2)
    info = await sandbox.frame(msg.message_id)
    assert info.state == "expired" and info.redeliveries == 1 and len(info.deliveries) == 2
    await client.close()


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(redelivery_timeout=5, redelivery_count=3)])
async def test_redelivery_timeout_and_count_are_configurable(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    msg = await sandbox.say("王建国", INTERNAL_GROUP, "项目列表")
    await client.next_of("CALLBACK")
    for _ in range(3):
        await sandbox.advance(5)
        frame = await client.next_of("CALLBACK")
        assert frame["headers"]["messageId"] == msg.message_id
    await client.ack(frame)
    assert (await sandbox.wait_for_ack(msg.message_id)).redeliveries == 3
    await client.close()


async def test_non_200_ack_counts_as_failure(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    msg = await sandbox.say("王建国", INTERNAL_GROUP, "项目列表")
    await client.ack(await client.next_of("CALLBACK"), code=500, message="client internal error")
    await sandbox.advance(61)
    again = await client.next_of("CALLBACK")
    assert again["headers"]["messageId"] == msg.message_id
    await client.close()


async def test_frames_wait_for_a_connection_within_retention(sandbox, http):
    early = await sandbox.say("王建国", INTERNAL_GROUP, "早到的消息")
    await sandbox.advance(200)
    client = await RawStreamClient(sandbox, http).connect()
    frame = await client.next_of("CALLBACK")
    assert frame["headers"]["messageId"] == early.message_id
    await client.close()


async def test_frames_are_dropped_after_retention(sandbox, http):
    late = await sandbox.say("王建国", INTERNAL_GROUP, "过期的消息")
    await sandbox.advance(301)
    client = await RawStreamClient(sandbox, http).connect()
    with pytest.raises(asyncio.TimeoutError):
        await client.next_of("CALLBACK", timeout=0.3)
    assert (await sandbox.frame(late.message_id)).state == "dropped"
    await client.close()


async def test_each_push_goes_to_one_random_connection(sandbox, http):
    clients = [await RawStreamClient(sandbox, http, auto_ack=True).connect() for _ in range(3)]
    await sandbox.wait_for_connection(count=3)
    sent = [await sandbox.say("李明", INTERNAL_GROUP, f"消息{i}") for i in range(30)]
    for msg in sent:
        await sandbox.wait_for_ack(msg.message_id)
    per_client = Counter()
    seen = []
    for index, client in enumerate(clients):
        while not client.frames.empty():
            seen.append(client.frames.get_nowait()["headers"]["messageId"])
            per_client[index] += 1
    assert sorted(seen) == sorted(m.message_id for m in sent)     # each exactly once
    assert len(per_client) == 3                                     # spread over all of them
    for client in clients:
        await client.close()


async def test_events_only_reach_connections_that_subscribed(sandbox, http):
    client = await RawStreamClient(sandbox, http, subscriptions=[{"type": "CALLBACK", "topic": BOT_TOPIC}]).connect()
    frame = await sandbox.call(sandbox.emulator.gateway.push_event, sandbox.app, "bpms_instance_change", {"a": 1})
    assert frame.state == "dropped"
    with pytest.raises(asyncio.TimeoutError):
        await client.next_of("EVENT", timeout=0.2)
    await client.close()


async def test_event_frame_headers(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    await sandbox.call(sandbox.emulator.gateway.push_event, sandbox.app, "bpms_task_change", {"type": "start"})
    frame = await client.next_of("EVENT")
    headers = frame["headers"]
    assert headers["topic"] == "*"
    assert headers["eventType"] == "bpms_task_change"
    assert headers["eventCorpId"] == sandbox.world.corp_id
    assert headers["eventUnifiedAppId"] == sandbox.app.unified_app_id
    assert headers["eventBornTime"].isdigit() and headers["eventId"]
    assert all(isinstance(v, str) for v in headers.values())
    assert json.loads(frame["data"]) == {"type": "start"}
    await client.close()


async def test_event_ack_with_status_later_is_redelivered(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    pushed = await sandbox.call(sandbox.emulator.gateway.push_event, sandbox.app, "bpms_task_change", {"x": 1})
    frame = await client.next_of("EVENT")
    await client.ack(frame, data=json.dumps({"status": "LATER", "message": "db down"}))
    await sandbox.advance(61)
    again = await client.next_of("EVENT")
    assert again["headers"]["messageId"] == pushed.message_id
    # The Python SDK's echo of the event data (no status) counts as success.
    await client.ack(again, data=again["data"])
    assert (await sandbox.wait_for_ack(pushed.message_id)).state == "acked"
    await client.close()


async def test_ping_frame_and_ack_echo(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    conn = await sandbox.wait_for_connection()
    waiting = asyncio.create_task(sandbox.ping(conn.id))
    ping = await client.next_of("SYSTEM")
    assert ping["headers"]["topic"] == "ping"
    assert set(ping["headers"]) == {"contentType", "messageId", "time", "topic"}
    assert set(json.loads(ping["data"])) == {"opaque"}
    await client.ack(ping, data=ping["data"])
    ack = await waiting
    assert ack.message_id == ping["headers"]["messageId"]
    assert ack.code == 200 and ack.data_obj == json.loads(ping["data"])
    await client.close()


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(ping_interval=30)])
async def test_periodic_ping_frames(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    await sandbox.wait_for_connection()
    await sandbox.advance(30)
    first = await client.next_of("SYSTEM", topic="ping")
    await sandbox.advance(30)
    second = await client.next_of("SYSTEM", topic="ping")
    assert first["headers"]["messageId"] != second["headers"]["messageId"]
    await client.close()


async def test_websocket_pings_are_answered(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    pong = await client.ws.ping()
    await asyncio.wait_for(pong, 2)
    await client.close()


async def test_disconnect_frame_then_tcp_close_after_grace(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    conn_id = await sandbox.disconnect()
    frame = await client.next_of("SYSTEM", topic="disconnect")
    assert json.loads(frame["data"]) == {"reason": "persistent connection is timeout"}
    # Draining: new pushes wait for another connection instead of going here.
    msg = await sandbox.say("王建国", INTERNAL_GROUP, "断开期间的消息")
    await sandbox.advance(9)
    assert not client.closed.is_set()
    await sandbox.advance(1.5)
    await asyncio.wait_for(client.closed.wait(), 5)
    info = await sandbox.wait_for_close(conn_id)
    assert info.closed_by == "disconnect-timeout"
    assert isinstance(client.close_exc, websockets.ConnectionClosedError)
    assert client.received_close is None        # a TCP close, no WebSocket close frame
    replacement = await RawStreamClient(sandbox, http).connect()
    frame = await replacement.next_of("CALLBACK")
    assert frame["headers"]["messageId"] == msg.message_id
    await replacement.close()


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(periodic_disconnect=7200)])
async def test_periodic_disconnect(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    await sandbox.wait_for_connection()
    await sandbox.advance(7200)
    frame = await client.next_of("SYSTEM", topic="disconnect")
    assert json.loads(frame["data"])["reason"] == "persistent connection is timeout"
    await client.close()


async def test_client_close_is_noticed(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    conn = await sandbox.wait_for_connection()
    await client.close()
    info = await sandbox.wait_for_close(conn.id)
    assert info.closed_by == "client" and info.close_code == 1000


async def test_server_normal_close(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    await sandbox.wait_for_connection()
    await sandbox.close(code=1000)
    await asyncio.wait_for(client.closed.wait(), 5)
    assert client.close_exc is None
    assert client.received_close is not None and client.received_close.code == 1000
