"""Card callbacks (P2 §1.8, §7.1 item 4, §7.2): a press becomes a CALLBACK frame; the ACK updates the card.

The bot side is mostly the raw protocol client (frames as they travel, ACKs by hand);
the last test drives the real dingtalk-stream SDK (`sdk_card_client.py`) end to end.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from card_helpers import (CARD_TOPIC, CARDS_DIR, CLIENT_GROUP, CREATE_AND_DELIVER, INTERNAL_GROUP, REPORT_TEMPLATE, call,
                          group_card, pin_card, report_data, robot_card)
from sandbox_helpers import BOT_TOPIC, RawStreamClient, SdkBot

from sandbox.config import EmulatorConfig
from sandbox.errors import SandboxError


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    return EmulatorConfig.for_tests(card_templates_dir=CARDS_DIR)


@pytest.fixture
async def bot(sandbox, http):
    client = await RawStreamClient(sandbox, http, subscriptions=[{"type": "CALLBACK", "topic": CARD_TOPIC},
                                                                {"type": "CALLBACK", "topic": BOT_TOPIC}]).connect()
    yield client
    await client.close()


async def post_card(http, sb, token, body) -> None:
    status, answer = await call(http, sb, token, "POST", CREATE_AND_DELIVER, body)
    assert status == 200 and all(r["success"] for r in answer["result"]["deliverResults"]), answer


def respond(**response) -> str:
    """ACK data the way the Python SDK's CallbackHandler sends it: {"response": …} as a JSON string."""
    return json.dumps({"response": response})


ACKED = {"cardUpdateOptions": {"updateCardDataByKey": True},
         "cardData": {"cardParamMap": {"ackStatus": "acked", "ackLabel": "已确认", "ackColor": "green",
                                       "ackBy": "黄蕾 04-11 10:00"}}}


async def test_press_pushes_a_callback_and_the_ack_updates_the_card(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-15", userIdType=2))
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-15", "ack"))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    assert frame["headers"]["topic"] == CARD_TOPIC and frame["headers"]["appId"] == sandbox.app.unified_app_id
    data = json.loads(frame["data"])
    outsider = sandbox.world.user("黄蕾")
    content = '{"cardPrivateData":{"actionIds":["ack"],"params":{"action":"ack","reportId":"R-2026-15"}}}'
    assert data == {"extension": "{}", "corpId": outsider.corp_id, "spaceType": "im", "userIdType": 2,
                    "type": "actionCallback", "userId": outsider.union_id, "content": content,
                    "spaceId": sandbox.conversation_id(CLIENT_GROUP), "outTrackId": "report:R-15", "value": content}
    assert list(data) == ["extension", "corpId", "spaceType", "userIdType", "type", "userId", "content", "spaceId",
                          "outTrackId", "value"]
    await bot.ack(frame, data=respond(**ACKED))
    result = await press
    assert (result.outcome, result.success, result.toast) == ("ok", True, {"kind": "success", "text": "已确认，谢谢"})
    assert result.message_id == frame["headers"]["messageId"] and result.ack_code == 200
    card = await sandbox.card("report:R-15")
    assert card.data == report_data(ackStatus="acked", ackLabel="已确认", ackColor="green", ackBy="黄蕾 04-11 10:00")
    assert [(v.source, v.actor) for v in card.versions][-1] == ("callback", "huanglei")
    # The buttons are gone for everyone now (their visibility condition tests ackStatus).
    assert (await sandbox.card_view("report:R-15", "王建国"))["buttons"] == []


async def test_typed_inputs_become_the_buttons_params(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-16"))
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-16", "ask", {"question": "第3项为何延期？"}))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    content = json.loads(json.loads(frame["data"])["content"])
    assert content == {"cardPrivateData": {"actionIds": ["ask"], "params": {
        "action": "question", "reportId": "R-2026-15", "question": "第3项为何延期？"}}}
    # userIdType 1: an outsider's userId is the one of their own organization, with their corpId.
    data = json.loads(frame["data"])
    assert (data["userId"], data["corpId"]) == ("huanglei", sandbox.world.user("黄蕾").corp_id)
    await bot.ack(frame, data=respond(cardUpdateOptions={"updateCardDataByKey": True},
                                      cardData={"cardParamMap": {"ackStatus": "question", "question": "第3项为何延期？"}}))
    assert (await press).toast == {"kind": "success", "text": "问题已提交，项目经理会尽快答复"}


async def test_a_required_input_left_empty_sends_nothing(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-17"))
    result = await sandbox.press("黄蕾", "report:R-17", "ask", {"question": "  "})
    assert (result.outcome, result.sent, result.toast) == ("input-required", False,
                                                           {"kind": "hint", "text": "请填写「疑问」"})
    with pytest.raises(asyncio.TimeoutError):
        await bot.next_of("CALLBACK", timeout=0.3)


async def test_what_a_client_cannot_press_is_refused(sandbox, http, token, bot):
    await post_card(http, sandbox, token, pin_card(sandbox, "status", privateData={
        "wangjianguo": {"cardParamMap": {"canAdvance": "true", "advanceRequested": "true"}}}))
    with pytest.raises(SandboxError, match="not shown"):
        await sandbox.press("李明", "status", "advance")           # not his button (private visibility)
    with pytest.raises(SandboxError, match="disabled"):
        await sandbox.press("王建国", "status", "advance")
    with pytest.raises(SandboxError, match="no button"):
        await sandbox.press("王建国", "status", "explode")
    with pytest.raises(SandboxError, match="does not see"):
        await sandbox.press("黄蕾", "status", "deliverables")      # not a member of the internal group
    with pytest.raises(SandboxError, match="no input"):
        await sandbox.press("王建国", "status", "deliverables", {"nope": "x"})


async def test_no_ack_within_two_seconds_is_a_failure_without_update_or_redelivery(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-18"))
    await sandbox.freeze_clock()            # only advance() moves time here
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-18", "ack"))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    await sandbox.advance(1.9)
    assert not press.done()
    await sandbox.advance(0.2)
    result = await asyncio.wait_for(press, 5)
    assert (result.outcome, result.success, result.toast) == ("timeout", False,
                                                              {"kind": "failure", "text": "确认失败，请稍后重试"})
    # A late answer changes nothing, and the frame is not pushed again.
    await bot.ack(frame, data=respond(**ACKED))
    await sandbox.wait_for_ack(frame["headers"]["messageId"])
    await sandbox.advance(61)
    with pytest.raises(asyncio.TimeoutError):
        await bot.next_of("CALLBACK", timeout=0.3)
    assert len((await sandbox.card("report:R-18")).versions) == 1


async def test_the_timeout_is_configurable(sandbox, http, token, bot):
    sandbox.config.card_callback_timeout = 10
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-19"))
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-19", "ack"))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    await sandbox.advance(5)
    await bot.ack(frame, data=respond(**ACKED))
    assert (await press).outcome == "ok"


async def test_a_non_200_ack_is_a_failure(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-20"))
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-20", "ack"))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    await bot.ack(frame, code=500, message="error", data=respond(**ACKED))
    result = await press
    assert (result.outcome, result.ack_code, result.toast["kind"]) == ("rejected", 500, "failure")
    assert len((await sandbox.card("report:R-20")).versions) == 1


async def test_the_success_condition_picks_the_toast(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-21"))
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-21", "ack"))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    await bot.ack(frame)            # {"response": null}: ACKed, but ackStatus stays empty
    result = await press
    assert (result.outcome, result.success, result.toast["text"]) == ("ok", False, "确认失败，请稍后重试")
    # A button without a success condition shows no toast on success.
    await post_card(http, sandbox, token, pin_card(sandbox, "status"))
    press = asyncio.create_task(sandbox.press("李明", "status", "deliverables"))
    await bot.ack(await bot.next_of("CALLBACK", topic=CARD_TOPIC))
    result = await press
    assert (result.success, result.toast, result.space_type) == (True, None, "ONE_BOX")


async def test_private_response_applies_to_the_presser_only(sandbox, http, token, bot):
    await post_card(http, sandbox, token, pin_card(sandbox, "status", privateData={
        "wangjianguo": {"cardParamMap": {"canAdvance": "true"}}, "liuqiang": {"cardParamMap": {"canAdvance": "true"}}}))
    press = asyncio.create_task(sandbox.press("王建国", "status", "advance", pinned=True))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    data = json.loads(frame["data"])
    assert (data["spaceType"], data["spaceId"]) == ("one_box", sandbox.conversation_id(INTERNAL_GROUP))
    await bot.ack(frame, data=respond(cardUpdateOptions={"updatePrivateDataByKey": True},
                                      userPrivateData={"cardParamMap": {"advanceRequested": "true"}}))
    result = await press
    assert result.toast == {"kind": "success", "text": "已发起阶段推进审批"}
    card = await sandbox.card("status")
    assert card.private == {"wangjianguo": {"canAdvance": "true", "advanceRequested": "true"},
                            "liuqiang": {"canAdvance": "true"}}
    pm = await sandbox.card_view("status", "王建国", INTERNAL_GROUP)
    leader = await sandbox.card_view("status", "刘强", INTERNAL_GROUP)
    assert next(b for b in pm["buttons"] if b["id"] == "advance")["disabled"] is True
    assert next(b for b in leader["buttons"] if b["id"] == "advance")["disabled"] is False
    assert pm["lastPress"]["toast"]["text"] == "已发起阶段推进审批" and leader["lastPress"] is None
    assert pm["pinned"]["expiresAt"] > sandbox.now_ms()


async def test_private_data_keyed_by_user_id_in_a_response_is_applied_with_a_warning(sandbox, http, token, bot):
    await post_card(http, sandbox, token, pin_card(sandbox, "status"))
    press = asyncio.create_task(sandbox.press("李明", "status", "report_preview"))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    await bot.ack(frame, data=respond(privateData={"liming": {"cardParamMap": {"canAdvance": "true"}}}))
    assert (await press).outcome == "ok"
    assert (await sandbox.card("status")).private == {"liming": {"canAdvance": "true"}}
    assert any("privateData keyed by userId" in w.message for w in sandbox.card_warnings())


async def test_a_response_the_platform_refuses_is_a_failure(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-22"))
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-22", "ack"))
    await bot.ack(await bot.next_of("CALLBACK", topic=CARD_TOPIC),
                  data=respond(cardData={"cardParamMap": {"ackStatus": "x" * 2000}}))
    result = await press
    assert (result.outcome, result.toast["kind"]) == ("bad-response", "failure")
    assert len((await sandbox.card("report:R-22")).versions) == 1
    assert any("param.invalid" in w.message for w in sandbox.card_warnings())


async def test_only_cards_with_stream_callbacks_call_back(sandbox, http, token, bot):
    body = group_card(sandbox, "report:R-23")
    del body["callbackType"]
    await post_card(http, sandbox, token, body)
    result = await sandbox.press("黄蕾", "report:R-23", "ack")
    assert (result.outcome, result.sent, result.toast["kind"]) == ("no-callback", False, "failure")
    with pytest.raises(asyncio.TimeoutError):
        await bot.next_of("CALLBACK", timeout=0.3)


async def test_only_connections_that_subscribed_the_topic_get_callbacks(sandbox, http, token):
    messages_only = await RawStreamClient(sandbox, http, subscriptions=[{"type": "CALLBACK", "topic": BOT_TOPIC}],
                                          auto_ack=True).connect()
    try:
        await post_card(http, sandbox, token, group_card(sandbox, "report:R-24"))
        result = await sandbox.press("黄蕾", "report:R-24", "ack")
        assert (result.outcome, result.sent, result.toast["kind"]) == ("no-connection", False, "failure")
        assert (await sandbox.frame(result.message_id)).state == "dropped"
        with pytest.raises(asyncio.TimeoutError):
            await messages_only.next_of("CALLBACK", timeout=0.3)
        cards = await RawStreamClient(sandbox, http, subscriptions=[{"type": "CALLBACK", "topic": CARD_TOPIC}],
                                      auto_ack=True).connect()
        try:
            result = await sandbox.press("黄蕾", "report:R-24", "ack")
            assert result.outcome == "ok" and (await cards.next_of("CALLBACK"))["headers"]["topic"] == CARD_TOPIC
        finally:
            await cards.close()
    finally:
        await messages_only.close()


async def test_press_in_the_robot_chat(sandbox, http, token, bot):
    await post_card(http, sandbox, token, robot_card(sandbox, "remind:1", "liming", data={
        "itemId": "D-7", "item": "接口说明文档", "owner": "李明", "due": "2026-04-10", "daysLate": "3", "state": ""},
        privateData={"liming": {"cardParamMap": {"isOwner": "true"}}}))
    press = asyncio.create_task(sandbox.press("李明", "remind:1", "extend", {"newDate": "2026-04-20",
                                                                            "reason": "客户接口未就绪"}))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    data = json.loads(frame["data"])
    assert (data["spaceType"], data["spaceId"], data["userId"]) == ("im", sandbox.conversation_id("李明"), "liming")
    assert json.loads(data["content"])["cardPrivateData"]["params"] == {
        "action": "extend", "itemId": "D-7", "newDate": "2026-04-20", "reason": "客户接口未就绪", "source": "card"}
    await bot.ack(frame, data=respond(cardUpdateOptions={"updateCardDataByKey": True},
                                      cardData={"cardParamMap": {"state": "extension_requested"}}))
    assert (await press).toast == {"kind": "success", "text": "延期申请已提交"}


async def test_raw_press_sends_the_params_as_given(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-25"))
    press = asyncio.create_task(sandbox.press("王建国", "report:R-25", "ack", {"anything": [1, {"a": 2}]}, raw=True))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    assert json.loads(json.loads(frame["data"])["content"])["cardPrivateData"]["params"] == {"anything": [1, {"a": 2}]}
    await bot.ack(frame, data=respond(**ACKED))
    assert (await press).success is True


# ---- the UNCONFIRMED switches and fault injection ---------------------------------------

@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(card_templates_dir=CARDS_DIR,
                                                                     cross_org_card_callbacks=False)])
async def test_switch_clicks_by_another_org_produce_no_callback(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-26"))
    result = await sandbox.press("黄蕾", "report:R-26", "ack")
    assert (result.outcome, result.sent, result.toast) == ("cross-org", False,
                                                           {"kind": "failure", "text": "确认失败，请稍后重试"})
    with pytest.raises(asyncio.TimeoutError):
        await bot.next_of("CALLBACK", timeout=0.3)
    # Members of the app's own organization still reach the bot.
    press = asyncio.create_task(sandbox.press("王建国", "report:R-26", "ack"))
    await bot.ack(await bot.next_of("CALLBACK", topic=CARD_TOPIC), data=respond(**ACKED))
    assert (await press).outcome == "ok"


async def test_switch_clicks_by_another_org_call_back_by_default(sandbox, http, token, bot):
    assert sandbox.config.cross_org_card_callbacks is True
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-27"))
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-27", "ack"))
    frame = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    assert json.loads(frame["data"])["corpId"] != sandbox.app.corp_id
    await bot.ack(frame, data=respond(**ACKED))
    assert (await press).outcome == "ok"


async def test_duplicate_callback_frames_keep_the_message_id_and_apply_once(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-28"))
    sandbox.faults.duplicate_frames(1, topic=CARD_TOPIC)
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-28", "ack"))
    first = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    await bot.ack(first, data=respond(**ACKED))
    again = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    assert (again["headers"]["messageId"], again["data"]) == (first["headers"]["messageId"], first["data"])
    await bot.ack(again, data=respond(cardData={"cardParamMap": {"ackLabel": "不该生效"}}))
    await sandbox.wait_for_acks(first["headers"]["messageId"], 2)
    assert (await press).outcome == "ok"
    card = await sandbox.card("report:R-28")
    assert [v.source for v in card.versions] == ["create", "callback"] and card.data["ackLabel"] == "已确认"


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(card_templates_dir=CARDS_DIR,
                                                                     card_callback_redelivery=True)])
async def test_switch_redelivers_unacked_card_callbacks_like_bot_messages(sandbox, http, token, bot):
    await post_card(http, sandbox, token, group_card(sandbox, "report:R-29"))
    sandbox.faults.ignore_acks(1)
    press = asyncio.create_task(sandbox.press("黄蕾", "report:R-29", "ack"))
    first = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    await bot.ack(first, data=respond(**ACKED))          # lost on the way
    await sandbox.advance(2)
    assert (await press).outcome == "timeout"
    await sandbox.advance(59)
    again = await bot.next_of("CALLBACK", topic=CARD_TOPIC)
    assert again["headers"]["messageId"] == first["headers"]["messageId"]
    await bot.ack(again, data=respond(**ACKED))
    assert (await sandbox.wait_for_ack(first["headers"]["messageId"])).redeliveries == 1
    # The client's request had already failed: the late answer does not update the card.
    assert len((await sandbox.card("report:R-29")).versions) == 1


# ---- the real SDK ----------------------------------------------------------------------

async def test_the_real_sdk_sends_a_card_and_answers_its_button(sandbox, tmp_path):
    bot = await SdkBot.start(sandbox, Path(__file__).with_name("sdk_card_client.py"), tmp_path / "sdk.log",
                             REPORT_TEMPLATE)
    try:
        await bot.next("ready", timeout=20)
        conn = await sandbox.wait_for_connection(timeout=20)
        assert conn.callback_topics == sorted([BOT_TOPIC, CARD_TOPIC])
        # The SDK's CardReplier.create_and_deliver_card: createAndDeliver into the group the message came from.
        await sandbox.say("王建国", CLIENT_GROUP, "发周报卡片")
        out_track_id = (await bot.next("card_sent"))["outTrackId"]
        assert len(out_track_id) == 64                      # the SDK's SHA-256 card id
        message = await sandbox.next_message(CLIENT_GROUP)
        assert (message.msgtype, message.params["outTrackId"]) == ("interactiveCard", out_track_id)
        assert sandbox.card_warnings() == []
        # The client contact presses 确认已阅; the SDK's handler answers with the update in its ACK.
        result = await sandbox.press("黄蕾", out_track_id, "ack")
        seen = await bot.next("card_callback")
        assert (seen["outTrackId"], seen["action"], seen["userId"], seen["extension"]) == \
            (out_track_id, "ack", "huanglei", {})
        assert seen["corpId"] == sandbox.world.user("黄蕾").corp_id and seen["messageId"] == result.message_id
        assert seen["params"] == {"action": "ack", "reportId": "R-SDK"}
        assert (result.outcome, result.toast) == ("ok", {"kind": "success", "text": "已确认，谢谢"})
        card = await sandbox.card(out_track_id)
        assert (card.data["ackStatus"], card.data["ackBy"], card.data["project"]) == ("acked", "huanglei", "智慧工厂MES")
        view = await sandbox.card_view(out_track_id, "王建国")
        assert view["status"] == {"text": "已确认", "color": "green"} and view["buttons"] == []
    finally:
        await bot.stop()
