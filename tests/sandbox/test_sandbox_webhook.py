"""Session webhook replies (§4, §13.1 item 7)."""

from __future__ import annotations

import json

import pytest

from sandbox_helpers import CLIENT_GROUP, INTERNAL_GROUP

from sandbox.config import EmulatorConfig



async def post(http, url: str, body) -> tuple[int, dict]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False)
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json(content_type=None)


@pytest.mark.parametrize("body, msgtype, title, text", [
    ({"msgtype": "text", "text": {"content": "Q: 1+1\nA: 2"}}, "text", None, "Q: 1+1\nA: 2"),
    ({"msgtype": "markdown", "markdown": {"title": "周报", "text": "## 本周完成"}}, "markdown", "周报", "## 本周完成"),
    ({"msgtype": "actionCard", "actionCard": {"title": "t", "text": "md", "singleTitle": "查看详情",
                                              "singleURL": "https://example.com", "btnOrientation": "0"}},
     "actionCard", "t", "md"),
    ({"msgtype": "actionCard", "actionCard": {"title": "t", "text": "md", "btnOrientation": "1",
                                              "btns": [{"title": "A", "actionURL": "https://example.com/a"}]}},
     "actionCard", "t", "md"),
    ({"msgtype": "link", "link": {"title": "t", "text": "正文", "messageUrl": "https://example.com",
                                  "picUrl": "https://example.com/p.png"}}, "link", "t", "正文"),
    ({"msgtype": "feedCard", "feedCard": {"links": [{"title": "一", "messageURL": "https://e.com/1",
                                                     "picURL": "https://e.com/1.png"}]}}, "feedCard", "一", "一"),
])
async def test_webhook_message_types_are_recorded(sandbox, http, body, msgtype, title, text):
    received = await sandbox.say("王建国", INTERNAL_GROUP, "周报")
    status, answer = await post(http, received.session_webhook, body)
    assert (status, answer) == (200, {"errcode": 0, "errmsg": "ok"})
    message = await sandbox.next_message(INTERNAL_GROUP)
    assert (message.via, message.msgtype, message.title, message.text) == ("webhook", msgtype, title, text)
    assert message.raw == body


async def test_webhook_at_only_reaches_group_members(sandbox, http):
    received = await sandbox.say("王建国", CLIENT_GROUP, "进度")
    body = {"msgtype": "text", "text": {"content": "@wangjianguo 已更新"},
            "at": {"atUserIds": ["wangjianguo", "zhoumin"], "atMobiles": ["13800010002", "13800010006"],
                   "isAtAll": False}}
    status, answer = await post(http, received.session_webhook, body)
    assert answer["errcode"] == 0
    message = await sandbox.next_message(CLIENT_GROUP)
    assert message.at_user_ids == ("wangjianguo",)      # 周敏 is not in the client group
    assert message.at_mobiles == ("13800010002",)


async def test_private_webhook_reply_goes_to_the_one_to_one_conversation(sandbox, http):
    received = await sandbox.dm("李明", "我的任务")
    await post(http, received.session_webhook, {"msgtype": "text", "text": {"content": "无待办"}})
    message = await sandbox.next_message("李明")
    assert message.conversation_type == "1" and message.to_user_id == "liming"


async def test_webhook_expires_90_minutes_after_create_at(sandbox, http):
    received = await sandbox.say("王建国", INTERNAL_GROUP, "周报")
    assert received.payload["sessionWebhookExpiredTime"] - received.payload["createAt"] == 5_400_000
    await sandbox.advance(5399)
    status, answer = await post(http, received.session_webhook, {"msgtype": "text", "text": {"content": "a"}})
    assert answer == {"errcode": 0, "errmsg": "ok"}
    await sandbox.advance(2)
    status, answer = await post(http, received.session_webhook, {"msgtype": "text", "text": {"content": "b"}})
    assert (status, answer) == (200, {"errcode": 300001, "errmsg": "session 不存在"})
    assert [m.text for m in sandbox.sent(INTERNAL_GROUP)] == ["a"]


async def test_unknown_session(sandbox, http):
    status, answer = await post(http, f"{sandbox.base_url}/robot/sendBySession?session=deadbeef",
                                {"msgtype": "text", "text": {"content": "x"}})
    assert (status, answer["errcode"]) == (200, 300001)


async def test_webhook_rejects_bodies_over_20000_bytes(sandbox, http):
    received = await sandbox.say("王建国", INTERNAL_GROUP, "周报")
    status, answer = await post(http, received.session_webhook,
                                {"msgtype": "text", "text": {"content": "字" * 7000}})
    assert status == 200 and answer["errcode"] != 0 and "body 大小不合法" in answer["errmsg"]
    assert sandbox.sent(INTERNAL_GROUP) == []


@pytest.mark.parametrize("body", [
    {"msgtype": "image", "image": {"mediaId": "@x"}},
    {"msgtype": "file", "file": {"mediaId": "@x"}},
    {"msgtype": "text"},
    {"msgtype": "markdown", "markdown": {"text": "no title"}},
    {"text": {"content": "no msgtype"}},
    b"{not json",
])
async def test_webhook_rejects_bad_bodies(sandbox, http, body):
    received = await sandbox.say("王建国", INTERNAL_GROUP, "周报")
    status, answer = await post(http, received.session_webhook, body)
    assert status == 200 and answer["errcode"] == 40035
    assert sandbox.sent(INTERNAL_GROUP) == []


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(session_webhook_per_minute=2)])
async def test_optional_per_session_rate_limit(sandbox, http):
    received = await sandbox.say("王建国", INTERNAL_GROUP, "周报")
    await sandbox.freeze_clock()
    results = [(await post(http, received.session_webhook, {"msgtype": "text", "text": {"content": str(i)}}))[1]
               for i in range(3)]
    assert [r["errcode"] for r in results] == [0, 0, 660026]
    await sandbox.advance(60)
    status, answer = await post(http, received.session_webhook, {"msgtype": "text", "text": {"content": "ok"}})
    assert answer["errcode"] == 0
