"""Cards in the web page's JSON API (no browser): card messages, pinned cards, presses, live updates, switches."""

from __future__ import annotations

import asyncio
import json

import pytest
from card_helpers import (CARD_TOPIC, CARDS_DIR, CLIENT_GROUP, CREATE_AND_DELIVER, INSTANCES, INTERNAL_GROUP, call,
                          group_card, pin_card)
from sandbox_helpers import RawStreamClient, new_token
from test_web_api import get, post

from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

@pytest.fixture
async def web():
    async with Sandbox(config=EmulatorConfig.for_tests(card_templates_dir=CARDS_DIR), seed=11, web=True) as sb:
        yield sb


@pytest.fixture
async def token(web, http) -> str:
    return await new_token(http, web)


async def test_a_card_in_the_transcript_shows_the_latest_data_as_the_user_sees_it(web, http, token):
    status, _ = await call(http, web, token, "POST", CREATE_AND_DELIVER, pin_card(
        web, "status", openSpaceId=f"dtv1.card//IM_GROUP.{web.conversation_id(INTERNAL_GROUP)}",
        imGroupOpenSpaceModel={"supportForward": False}, imGroupOpenDeliverModel={"robotCode": web.robot_code},
        privateData={"wangjianguo": {"cardParamMap": {"canAdvance": "true"}}}))
    assert status == 200
    await call(http, web, token, "PUT", INSTANCES, {"outTrackId": "status", "cardUpdateOptions": {
        "updateCardDataByKey": True}, "cardData": {"cardParamMap": {"progress": "55"}}})
    gid = web.conversation_id(INTERNAL_GROUP)
    status, body = await get(http, web, "/messages", user="wangjianguo", conversation=gid)
    (view,) = body["messages"]
    assert (view["msgtype"], view["direction"], view["sender"]["name"]) == ("interactiveCard", "out", "项目管家")
    card = view["card"]
    assert (card["outTrackId"], card["templateId"]) == ("status", "sandbox-project-status.schema")
    assert card["data"]["progress"] == "55" and card["data"]["canAdvance"] == "true"
    assert [{"id": b["id"], "text": b["text"]} for b in card["buttons"]] == [
        {"id": "deliverables", "text": "交付物"}, {"id": "report_preview", "text": "周报预览"},
        {"id": "advance", "text": "推进"}, {"id": "close", "text": "关闭"}]
    assert (card["title"], card["status"], card["version"]) == ("智慧工厂MES · 项目状态",
                                                                {"text": "预警", "color": "orange"}, 2)
    assert {"label": "进度", "value": "55%"} in card["fields"]
    assert card["lists"][0]["items"] == ["接口说明文档（李明，04-10）", "测试报告（赵磊，04-12）"]
    # Another member sees the same message without the PM's private data.
    status, body = await get(http, web, "/messages", user="liming", conversation=gid)
    card = body["messages"][0]["card"]
    assert "canAdvance" not in card["data"] and "advance" not in [b["id"] for b in card["buttons"]]


async def test_recipients_limit_who_sees_a_group_card(web, http, token):
    body = group_card(web, "only-pm", group=INTERNAL_GROUP, imGroupOpenDeliverModel={
        "robotCode": web.robot_code, "recipients": ["wangjianguo"]})
    assert (await call(http, web, token, "POST", CREATE_AND_DELIVER, body))[0] == 200
    gid = web.conversation_id(INTERNAL_GROUP)
    assert [m["msgtype"] for m in (await get(http, web, "/messages", user="wangjianguo", conversation=gid))[1][
        "messages"]] == ["interactiveCard"]
    assert (await get(http, web, "/messages", user="liming", conversation=gid))[1]["messages"] == []
    assert (await get(http, web, "/cards", user="liming", conversation=gid))[1]["cards"] == []


async def test_conversations_carry_the_pinned_card(web, http, token):
    status, body = await get(http, web, "/conversations", user="liming")
    assert [c["topCard"] for c in body["conversations"]] == [None, None, None, None]
    await call(http, web, token, "POST", CREATE_AND_DELIVER, pin_card(web, "status"))
    status, body = await get(http, web, "/conversations", user="liming")
    internal, client = body["conversations"][:2]
    assert internal["topCard"]["outTrackId"] == "status" and client["topCard"] is None
    assert internal["topCard"]["pinned"]["expiresAt"] > web.now_ms()
    assert {"id": "close", "text": "关闭", "style": "normal", "disabled": False, "close": True} in \
        internal["topCard"]["buttons"]
    status, body = await get(http, web, "/cards", user="liming", conversation=internal["id"])
    assert body["cards"] == [] and body["topCard"]["outTrackId"] == "status"   # pinned only, no message
    await web.advance(3601)
    status, body = await get(http, web, "/conversations", user="liming")
    assert body["conversations"][0]["topCard"] is None


async def test_press_from_the_page_answers_what_the_user_saw(web, http, token):
    bot = await RawStreamClient(web, http, subscriptions=[{"type": "CALLBACK", "topic": CARD_TOPIC}]).connect()
    try:
        await call(http, web, token, "POST", CREATE_AND_DELIVER, group_card(web, "report"))
        cid = web.conversation_id(CLIENT_GROUP)
        act = asyncio.create_task(post(http, web, "/cards/act", {
            "user": "huanglei", "outTrackId": "report", "action": "ask", "params": {"question": "为何延期？"},
            "conversation": cid}))
        frame = await bot.next_of("CALLBACK")
        params = json.loads(json.loads(frame["data"])["content"])["cardPrivateData"]["params"]
        assert params == {"action": "question", "reportId": "R-2026-15", "question": "为何延期？"}
        await bot.ack(frame, data=json.dumps({"response": {
            "cardUpdateOptions": {"updateCardDataByKey": True},
            "cardData": {"cardParamMap": {"ackStatus": "question", "question": "为何延期？", "ackLabel": "有疑问"}}}}))
        status, answer = await act
        assert status == 200, answer
        assert (answer["outcome"], answer["sent"], answer["success"]) == ("ok", True, True)
        assert answer["toast"] == {"kind": "success", "text": "问题已提交，项目经理会尽快答复"}
        assert answer["messageId"] == frame["headers"]["messageId"]
        card = answer["card"]
        assert card["buttons"] == [] and card["inputs"] == [] and card["status"]["text"] == "有疑问"
        assert {"label": "疑问", "value": "为何延期？"} in card["fields"]
        assert card["lastPress"]["toast"]["text"] == "问题已提交，项目经理会尽快答复"
        # A required input left empty: the client refuses before sending anything.
        await call(http, web, token, "POST", CREATE_AND_DELIVER, group_card(web, "report2"))
        status, answer = await post(http, web, "/cards/act", {"user": "huanglei", "outTrackId": "report2",
                                                              "action": "ask", "params": {}})
        assert (status, answer["outcome"], answer["sent"], answer["toast"]) == (
            200, "input-required", False, {"kind": "hint", "text": "请填写「疑问」"})
    finally:
        await bot.close()


@pytest.mark.parametrize("body, message", [
    ({"outTrackId": "report", "action": "ack"}, "请先选择身份"),
    ({"user": "huanglei", "outTrackId": "nope", "action": "ack"}, "卡片不存在"),
    ({"user": "huanglei", "outTrackId": "report", "action": ""}, "action"),
    ({"user": "huanglei", "outTrackId": "report", "action": "ack", "params": ["x"]}, "params"),
    ({"user": "huanglei", "outTrackId": "report", "action": "ack", "params": {"question": 1}}, "params"),
    ({"user": "huanglei", "outTrackId": "report", "action": "ack", "pinned": "yes"}, "pinned"),
    ({"user": "huanglei", "outTrackId": "report", "action": "ack", "conversation": "INTERNAL"}, "不在群"),
    ({"user": "zhaolei", "outTrackId": "report", "action": "ack"}, "does not see"),
    ({"user": "huanglei", "outTrackId": "report", "action": "nope"}, "no button"),
    ({"user": "huanglei", "outTrackId": "report", "action": "ask", "params": {"question": "长" * 501}}, "at most 500"),
])
async def test_bad_presses_are_a_400_in_chinese(web, http, token, body, message):
    await call(http, web, token, "POST", CREATE_AND_DELIVER, group_card(web, "report"))
    if body.get("conversation") == "INTERNAL":
        body = {**body, "conversation": web.conversation_id(INTERNAL_GROUP)}
    status, answer = await post(http, web, "/cards/act", body)
    assert status == 400 and message in answer["error"], answer
    assert web.card_presses() == []


async def test_long_poll_wakes_when_a_visible_card_changes(web, http, token):
    await call(http, web, token, "POST", CREATE_AND_DELIVER, group_card(web, "report"))
    status, first = await get(http, web, "/updates", user="huanglei", after=0)
    assert first["cards"] and [m["msgtype"] for m in first["messages"]] == ["interactiveCard"]
    # A card in a conversation 黄蕾 cannot see leaves her fingerprint alone: the poll runs out …
    await call(http, web, token, "POST", CREATE_AND_DELIVER, pin_card(web, "internal-status"))
    status, quiet = await get(http, web, "/updates", user="huanglei", after=first["last"], wait=0.3,
                              approvals=first["approvals"], cards=first["cards"])
    assert quiet["messages"] == [] and quiet["cards"] == first["cards"]
    # … an update of her card wakes it, without any new message.
    poll = asyncio.create_task(get(http, web, "/updates", user="huanglei", after=first["last"], wait=10,
                                   approvals=first["approvals"], cards=first["cards"]))
    await call(http, web, token, "PUT", INSTANCES, {"outTrackId": "report", "cardUpdateOptions": {
        "updateCardDataByKey": True}, "cardData": {"cardParamMap": {"ackLabel": "已确认"}}})
    status, woke = await asyncio.wait_for(poll, 5)
    assert woke["messages"] == [] and woke["cards"] != first["cards"]
    status, body = await get(http, web, "/cards", user="huanglei", conversation=web.conversation_id(CLIENT_GROUP))
    assert body["cards"][0]["status"]["text"] == "已确认" and body["topCard"] is None


async def test_switches_from_the_page_api(web, http, token):
    status, body = await get(http, web, "/switches")
    assert body == {"pinInOrdinaryGroups": True, "crossOrgCardCallbacks": True, "cardCallbackRedelivery": False}
    status, body = await post(http, web, "/switches", {"pinInOrdinaryGroups": False, "crossOrgCardCallbacks": False})
    assert status == 200 and body["pinInOrdinaryGroups"] is False and body["crossOrgCardCallbacks"] is False
    status, answer = await call(http, web, token, "POST", CREATE_AND_DELIVER, pin_card(web, "status"))
    assert answer["result"]["deliverResults"][0]["success"] is False
    await call(http, web, token, "POST", CREATE_AND_DELIVER, group_card(web, "report"))
    assert (await web.press("黄蕾", "report", "ack")).outcome == "cross-org"
    for bad, message in [({"nope": True}, "没有这个开关"), ({"pinInOrdinaryGroups": "no"}, "true 或 false")]:
        status, answer = await post(http, web, "/switches", bad)
        assert status == 400 and message in answer["error"]
