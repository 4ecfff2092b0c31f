"""The unmodified dingtalk-stream SDK from PyPI against the emulator.

The SDK blocks its own event loop with `requests` calls, so it runs in a subprocess
(`sdk_stream_client.py`) with DINGTALK_OPENAPI_ENDPOINT pointing at the emulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sandbox_helpers import INTERNAL_GROUP, SdkBot, new_api, new_token


SCRIPT = Path(__file__).with_name("sdk_stream_client.py")


@pytest.fixture
async def sdk_bot(sandbox, tmp_path):
    bot = await SdkBot.start(sandbox, SCRIPT, tmp_path / "sdk.log")
    try:
        ready = await bot.next("ready", timeout=20)
        assert ready["endpoint"] == f"{sandbox.base_url}/v1.0/gateway/connections/open"
        await sandbox.wait_for_connection(timeout=20)
        yield bot
    finally:
        await bot.stop()


async def test_sdk_receives_a_group_message_and_acks(sandbox, sdk_bot):
    sent = await sandbox.say("王建国", INTERNAL_GROUP, "项目列表")
    line = await sdk_bot.next("callback")
    assert line["messageId"] == sent.message_id
    assert line["text"] == " 项目列表" and line["conversationType"] == "2"
    info = await sandbox.wait_for_ack(sent.message_id)
    assert info.acks[-1].code == 200
    assert json.loads(info.acks[-1].data) == {"response": "OK"}


async def test_sdk_gets_an_unacked_frame_again_with_the_same_message_id(sandbox, sdk_bot):
    sent = await sandbox.say("王建国", INTERNAL_GROUP, "hold 这一条")
    first = await sdk_bot.next("callback")
    assert first["messageId"] == sent.message_id and first["first"] is True
    await sandbox.advance(61)
    again = await sdk_bot.next("callback")
    assert again["messageId"] == sent.message_id and again["first"] is False
    assert again["msgId"] == first["msgId"]
    info = await sandbox.wait_for_ack(sent.message_id)
    assert info.redeliveries == 1


async def test_sdk_answers_a_ping_by_echoing_opaque(sandbox, sdk_bot):
    ack = await sandbox.ping()
    assert ack.code == 200
    assert set(ack.data_obj) == {"opaque"}
    frame = sandbox.emulator.gateway.system_frames[ack.message_id]
    assert ack.data_obj == json.loads(frame.data)


async def test_sdk_reconnects_after_a_disconnect(sandbox, sdk_bot):
    first = await sandbox.wait_for_connection()
    await sandbox.disconnect(first.id)
    closed = await sandbox.wait_for_close(first.id)
    assert closed.closed_by == "client"          # the SDK ACKs and closes by itself
    second = await sandbox.wait_for_connection(opened=2, timeout=20)
    assert second.id != first.id
    sent = await sandbox.say("李明", INTERNAL_GROUP, "重连后的消息")
    assert (await sdk_bot.next("callback"))["messageId"] == sent.message_id


async def test_sdk_replies_through_the_session_webhook(sandbox, sdk_bot):
    await sandbox.say("李明", INTERNAL_GROUP, "reply 你好")
    replied = await sdk_bot.next("replied")
    assert replied["body"] == {"errcode": 0, "errmsg": "ok"}
    message = await sandbox.next_message(INTERNAL_GROUP)
    assert message.via == "webhook" and message.msgtype == "text"
    assert message.text == "收到：reply 你好"
    assert message.at_user_ids == ("liming",)


async def test_sdk_downloads_a_picture_sent_in_a_private_chat(sandbox, sdk_bot):
    picture = b"\x89PNG\r\n\x1a\n" + b"0" * 1000
    await sandbox.send_picture("赵磊", None, picture, "现场照片.png")
    downloaded = await sdk_bot.next("downloaded")
    assert downloaded["size"] == len(picture)
    assert sandbox.calls("robot.messageFiles.download") == 1
    assert sandbox.calls("oauth2.accessToken") == 1


async def test_sdk_receives_approval_events(sandbox, sdk_bot, http):
    token = await new_token(http, sandbox)
    status, body = await new_api(http, sandbox, "POST", "/v1.0/workflow/forms", token, json_body={
        "name": "SDK事件测试", "formComponents": [{"componentType": "TextField", "props": {"label": "事项"}}]})
    assert status == 200
    status, body = await new_api(http, sandbox, "POST", "/v1.0/workflow/processInstances", token, json_body={
        "processCode": body["result"]["processCode"], "originatorUserId": "wangjianguo",
        "approvers": [{"actionType": "NONE", "userIds": ["liuqiang"]}],
        "formComponentValues": [{"name": "事项", "value": "验收"}]})
    assert status == 200
    first = await sdk_bot.next("event")
    second = await sdk_bot.next("event")
    assert (first["eventType"], first["data"]["type"]) == ("bpms_instance_change", "start")
    assert (second["eventType"], second["data"]["type"]) == ("bpms_task_change", "start")
    await sandbox.approve(body["instanceId"], "刘强", "同意")
    third = await sdk_bot.next("event")
    fourth = await sdk_bot.next("event")
    assert (third["data"]["type"], third["data"]["result"]) == ("finish", "agree")
    assert (fourth["eventType"], fourth["data"]["type"], fourth["data"]["result"]) == \
        ("bpms_instance_change", "finish", "agree")
    # The Python SDK echoes the event data in its ACK: the emulator counts code 200 as success.
    assert (await sandbox.wait_for_ack(fourth["messageId"])).state == "acked"
