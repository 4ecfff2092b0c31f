"""Card platform APIs (P2 §1.2–1.7, §7.1): create, deliver, spaces, update, streaming, pinned cards, limits."""

from __future__ import annotations

import asyncio
import json

import pytest
from card_helpers import (CARDS_DIR, CLIENT_GROUP, CREATE_AND_DELIVER, INSTANCES, INTERNAL_GROUP,
                          REPORT_TEMPLATE, STATUS_TEMPLATE, call, group_card, pin_card, report_data, robot_card,
                          status_data)
from sandbox_helpers import new_token

from sandbox.__main__ import config_from, parse_args
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    return EmulatorConfig.for_tests(card_templates_dir=CARDS_DIR)


# ---- createAndDeliver -------------------------------------------------------------------

async def test_create_and_deliver_to_a_group(sandbox, http, token):
    body = group_card(sandbox, "report:R-15:v1", imGroupOpenDeliverModel={
        "robotCode": sandbox.robot_code, "atUserIds": {"huanglei": "黄蕾"}})
    body["userIdType"] = 1
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body)
    assert status == 200, answer
    assert answer["success"] is True and answer["result"]["outTrackId"] == "report:R-15:v1"
    (result,) = answer["result"]["deliverResults"]
    assert (result["spaceType"], result["spaceId"], result["success"]) == \
        ("IM_GROUP", sandbox.conversation_id(CLIENT_GROUP), True)
    assert result["carrierId"] and "errorMsg" not in result
    # The group shows a card message from the robot, previewed by lastMessageI18n.
    message = sandbox.sent(CLIENT_GROUP)[-1]
    assert (message.msgtype, message.text, message.title) == ("interactiveCard", "智慧工厂MES 周报",
                                                              "智慧工厂MES · 2026-W15 周报")
    assert message.params == {"outTrackId": "report:R-15:v1", "cardTemplateId": REPORT_TEMPLATE}
    # An outsider cannot be @'d by userId (no staff id in this org): dropped like robot sends do.
    assert message.at_user_ids == ()
    card = await sandbox.card("report:R-15:v1")
    assert card.data == report_data() and card.template_name == "weekly_report"
    assert card.placements == (("IM_GROUP", sandbox.conversation_id(CLIENT_GROUP)),)
    assert [(v.number, v.source) for v in card.versions] == [(1, "create")]
    assert sandbox.card_warnings() == []


async def test_open_space_id_types_are_case_insensitive_and_one_request_reaches_several_spaces(sandbox, http, token):
    cid = sandbox.conversation_id(INTERNAL_GROUP)
    body = {**group_card(sandbox, "multi", group=INTERNAL_GROUP),
            "openSpaceId": f"dtv1.card//im_group.{cid};im_robot.liming;one_box.{cid}",
            "imRobotOpenSpaceModel": {"supportForward": True}, "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT"},
            "topOpenSpaceModel": {"spaceType": "ONE_BOX"},
            "topOpenDeliverModel": {"expiredTimeMillis": sandbox.now_ms() + 60_000}}
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body)
    assert status == 200, answer
    results = answer["result"]["deliverResults"]
    assert [(r["spaceType"], r["success"]) for r in results] == [("IM_GROUP", True), ("IM_ROBOT", True),
                                                                ("ONE_BOX", True)]
    assert "carrierId" not in results[2]        # only IM spaces have a message to point at
    assert sandbox.sent(INTERNAL_GROUP)[-1].msgtype == "interactiveCard"
    assert sandbox.sent("李明")[-1].to_user_id == "liming"
    assert (await sandbox.top_card(INTERNAL_GROUP)).out_track_id == "multi"


async def test_robot_chat_by_user_id_and_by_union_id(sandbox, http, token):
    liming = sandbox.world.user("李明")
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER,
                                robot_card(sandbox, "oto-1", "liming", data={"item": "接口说明文档"}))
    assert status == 200 and answer["result"]["deliverResults"][0]["success"] is True
    body = robot_card(sandbox, "oto-2", liming.union_id, data={"item": "测试报告"}, userIdType=2)
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body)
    assert status == 200 and answer["result"]["deliverResults"][0]["success"] is True
    assert [m.params["outTrackId"] for m in sandbox.sent("李明")] == ["oto-1", "oto-2"]
    # An outsider (by unionId) is outside the app's range; an unknown id fails that space only.
    outsider = sandbox.world.user("黄蕾").union_id
    for out, key, id_type, reason in [("oto-3", outsider, 2, "可见范围"), ("oto-4", "nobody", 1, "可见范围"),
                                      ("oto-5", "nobody", 2, "用户不存在")]:
        status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER,
                                    robot_card(sandbox, out, key, userIdType=id_type))
        (result,) = answer["result"]["deliverResults"]
        assert status == 200 and result["success"] is False and reason in result["errorMsg"], answer


async def test_a_group_without_the_robot_fails_that_space_under_http_200(sandbox, http):
    other = sandbox.world.app("考勤助手")
    token = await new_token(http, sandbox, other.client_id, other.client_secret)
    body = group_card(sandbox, "hr-1", imGroupOpenDeliverModel={"robotCode": other.robot_code})
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body)
    assert status == 200 and answer["success"] is True
    (result,) = answer["result"]["deliverResults"]
    assert result["success"] is False and "机器人不在该群中" in result["errorMsg"]
    assert sandbox.sent(CLIENT_GROUP) == []
    # The card exists all the same (it was created; only that delivery failed).
    assert (await sandbox.card("hr-1")).placements == ()


def _without(body: dict, *keys: str) -> dict:
    return {k: v for k, v in body.items() if k not in keys}


@pytest.mark.parametrize("change, code", [
    (lambda b: {}, "param.empty"),
    (lambda b: _without(b, "outTrackId"), "param.outTrackIdEmpty"),
    (lambda b: _without(b, "cardTemplateId"), "param.cardTemplateIdEmpty"),
    (lambda b: _without(b, "openSpaceId"), "param.openSpaceIdEmpty"),
    (lambda b: _without(b, "cardData"), "param.cardPublicDataEmpty"),
    (lambda b: {**b, "openSpaceId": "IM_GROUP.cidX=="}, "param.openSpaceIdInvalid"),
    (lambda b: {**b, "openSpaceId": "dtv1.card//CHAT.cidX=="}, "param.openSpaceIdInvalid"),
    (lambda b: {**b, "openSpaceId": "dtv1.card//"}, "param.openSpaceIdInvalid"),
    (lambda b: {**b, "cardTemplateId": "nope.schema"}, "param.templateNotExist"),
    (lambda b: _without(b, "imGroupOpenDeliverModel"), "param.openDeliverModelEmpty"),
    (lambda b: {**b, "imGroupOpenDeliverModel": {"atUserIds": {}}}, "param.openDeliverModelError"),
    (lambda b: {**b, "privateData": {"nobody": {"cardParamMap": {"ackStatus": "x"}}}}, "param.userIdNotExist"),
    (lambda b: {**b, "callbackType": "stream"}, "param.invalid"),
    (lambda b: {**b, "cardData": {"cardParamMap": {"k" * 101: "v"}}}, "param.invalid"),
    (lambda b: {**b, "cardData": {"cardParamMap": {"summary": "长" * 342}}}, "param.invalid"),     # 1 026 bytes
])
async def test_create_and_deliver_errors(sandbox, http, token, change, code):
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, change(group_card(sandbox, "bad")))
    assert (status, answer["code"]) == (400, code), answer
    assert set(answer) == {"code", "message", "requestid"} and answer["message"]
    assert sandbox.emulator.cards.cards == {} and sandbox.sent(CLIENT_GROUP) == []


async def test_size_limits_are_exact(sandbox, http, token):
    ok = {"k" * 100: "长" * 341 + "x"}                   # key 100 B, value 1 024 B: at the limit
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER,
                                group_card(sandbox, "limits", data=ok))
    assert status == 200, answer
    # 64 KB per card over public and private data together.
    big = {f"v{i:02d}": "x" * 1000 for i in range(60)}
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(
        sandbox, "big", data=big, privateData={"liming": {"cardParamMap": {f"p{i}": "y" * 1000 for i in range(6)}}}))
    assert (status, answer["code"]) == (400, "param.invalid") and "64KB" in answer["message"]
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "big", data=big))
    assert status == 200


async def test_reused_out_track_id_is_refused(sandbox, http, token):
    assert (await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "once")))[0] == 200
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER,
                                group_card(sandbox, "once", data=report_data(week="2026-W16")))
    assert (status, answer["code"]) == (400, "param.cardAlreadyExist")
    assert (await sandbox.card("once")).data["week"] == "2026-W15"
    assert len(sandbox.sent(CLIENT_GROUP)) == 1


async def test_unpublished_and_unregistered_definitions(tmp_path, http):
    for name, published, ids in [("draft_card", False, {"sandbox": "draft.schema"}),
                                 ("later_card", True, {"production": "prod-only.schema"})]:
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "format": "dingpm-card/1", "name": name, "title": "草稿", "templateIds": ids, "published": published,
            "variables": [{"name": "title", "type": "string"}], "layout": {"title": "${title}"}}))
    async with Sandbox(config=EmulatorConfig.for_tests(card_templates_dir=tmp_path)) as sb:
        token = await new_token(http, sb)
        status, answer = await call(http, sb, token, "POST", CREATE_AND_DELIVER,
                                    group_card(sb, "d", template="draft.schema", data={"title": "x"}))
        assert (status, answer["code"]) == (400, "param.templateUnpublished")
        # A definition without an id for this environment is not a template here.
        status, answer = await call(http, sb, token, "POST", CREATE_AND_DELIVER,
                                    group_card(sb, "p", template="prod-only.schema", data={"title": "x"}))
        assert (status, answer["code"]) == (400, "param.templateNotExist")
        assert sb.emulator.cards.catalog.unregistered == ["later_card"]


async def test_without_definitions_every_template_id_is_accepted(http):
    async with Sandbox(config=EmulatorConfig.for_tests()) as sb:
        token = await new_token(http, sb)
        status, answer = await call(http, sb, token, "POST", CREATE_AND_DELIVER,
                                    group_card(sb, "free", template="whatever.schema", data={"title": "自由卡片",
                                                                                             "进度": "50%"}))
        assert status == 200, answer
        view = await sb.card_view("free", "李明")
        assert (view["title"], view["fields"], view["buttons"]) == ("自由卡片", [{"label": "进度", "value": "50%"}], [])


# ---- create, then deliver ---------------------------------------------------------------

async def test_create_then_deliver_and_spaces(sandbox, http, token):
    cid = sandbox.conversation_id(INTERNAL_GROUP)
    body = {"cardTemplateId": STATUS_TEMPLATE, "outTrackId": "two-step", "callbackType": "STREAM",
            "cardData": {"cardParamMap": status_data()}, "imGroupOpenSpaceModel": {"supportForward": True}}
    status, answer = await call(http, sandbox, token, "POST", INSTANCES, body)
    assert (status, answer) == (200, {"success": True, "result": "two-step"})
    assert sandbox.sent(INTERNAL_GROUP) == []           # created, not delivered
    deliver = {"outTrackId": "two-step", "userIdType": 1,
               "openSpaceId": f"dtv1.card//IM_GROUP.{cid};ONE_BOX.{cid}",
               "imGroupOpenDeliverModel": {"robotCode": sandbox.robot_code},
               "topOpenDeliverModel": {"expiredTimeMillis": sandbox.now_ms() + 60_000}}
    status, answer = await call(http, sandbox, token, "POST", f"{INSTANCES}/deliver", deliver)
    assert status == 200 and isinstance(answer["result"], list)       # a bare array, unlike createAndDeliver
    assert [(r["spaceType"], r["success"]) for r in answer["result"]] == [("IM_GROUP", True), ("ONE_BOX", False)]
    assert "PUT /v1.0/card/instances/spaces" in answer["result"][1]["errorMsg"]
    status, answer = await call(http, sandbox, token, "PUT", f"{INSTANCES}/spaces",
                                {"outTrackId": "two-step", "topOpenSpaceModel": {"spaceType": "ONE_BOX"}})
    assert (status, answer) == (200, {"success": True, "result": True})
    status, answer = await call(http, sandbox, token, "POST", f"{INSTANCES}/deliver", deliver)
    # Delivering to the group again posts nothing new and points at the same message.
    assert [r["success"] for r in answer["result"]] == [True, True]
    assert len(sandbox.sent(INTERNAL_GROUP)) == 1
    assert (await sandbox.top_card(INTERNAL_GROUP)).out_track_id == "two-step"


@pytest.mark.parametrize("body, code", [
    ({}, "param.empty"),
    ({"openSpaceId": "dtv1.card//IM_GROUP.cidX=="}, "param.outTrackIdEmpty"),
    ({"outTrackId": "c"}, "param.openSpaceIdEmpty"),
    ({"outTrackId": "c", "openSpaceId": "dtv1.card//IM_GROUP"}, "param.openSpaceIdInvalid"),
    ({"outTrackId": "c", "openSpaceId": "dtv1.card//IM_GROUP.cidX=="}, "param.openDeliverModelEmpty"),
    ({"outTrackId": "c", "openSpaceId": "dtv1.card//IM_GROUP.cidX==;IM_ROBOT.liming",
      "imGroupOpenDeliverModel": {"robotCode": "x"}}, "param.spaceDeliverModelEmpty"),
    ({"outTrackId": "nope", "openSpaceId": "dtv1.card//IM_ROBOT.liming",
      "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT"}}, "param.cardNotExist"),
])
async def test_deliver_errors(sandbox, http, token, body, code):
    status, answer = await call(http, sandbox, token, "POST", f"{INSTANCES}/deliver", body)
    assert (status, answer["code"]) == (400, code), answer


async def test_create_and_spaces_errors(sandbox, http, token):
    status, answer = await call(http, sandbox, token, "POST", INSTANCES, {"outTrackId": "x"})
    assert (status, answer["code"]) == (400, "param.cardTemplateIdEmpty")
    status, answer = await call(http, sandbox, token, "POST", INSTANCES, {
        "cardTemplateId": STATUS_TEMPLATE, "outTrackId": "x", "cardData": {"cardParamMap": {}},
        "topOpenSpaceModel": {"spaceType": "IM_GROUP"}})
    assert (status, answer["code"]) == (400, "param.openSpaceModelInvalid")
    for body, code in [({"topOpenSpaceModel": {"spaceType": "ONE_BOX"}}, "param.outTrackIdEmpty"),
                       ({"outTrackId": "x"}, "param.openSpaceModelInvalid"),
                       ({"outTrackId": "x", "topOpenSpaceModel": {"spaceType": "ONE_BOX"}}, "param.cardNotExist")]:
        status, answer = await call(http, sandbox, token, "PUT", f"{INSTANCES}/spaces", body)
        assert (status, answer["code"]) == (400, code)


# ---- updates ----------------------------------------------------------------------------

async def test_update_overwrites_unless_by_key_and_keeps_every_version(sandbox, http, token):
    await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "upd"))
    status, answer = await call(http, sandbox, token, "PUT", INSTANCES, {
        "outTrackId": "upd", "cardData": {"cardParamMap": {"ackLabel": "已确认", "ackColor": "green"}},
        "cardUpdateOptions": {"updateCardDataByKey": True}})
    assert (status, answer) == (200, {"success": True, "result": True})
    card = await sandbox.card("upd")
    assert card.data == report_data(ackLabel="已确认", ackColor="green")
    # Without cardUpdateOptions the whole public map is replaced (P2 §1.5).
    await call(http, sandbox, token, "PUT", INSTANCES, {"outTrackId": "upd",
                                                        "cardData": {"cardParamMap": {"project": "只剩这一项"}}})
    card = await sandbox.card("upd")
    assert card.data == {"project": "只剩这一项"}
    assert [(v.number, v.source, v.actor) for v in card.versions] == [
        (1, "create", "card.instances.createAndDeliver"), (2, "update", "card.instances.update"),
        (3, "update", "card.instances.update")]
    assert card.versions[1].public["ackLabel"] == "已确认" and card.versions[0].public["ackLabel"] == "待确认"
    view = await sandbox.card_view("upd", "黄蕾")
    assert view["title"] == "只剩这一项 ·  周报" and view["version"] == 3


async def test_private_data_per_user_by_user_id_and_union_id(sandbox, http, token):
    body = pin_card(sandbox, "status", privateData={"wangjianguo": {"cardParamMap": {"canAdvance": "true"}}})
    assert (await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body))[0] == 200
    pm = await sandbox.card_view("status", "王建国")
    engineer = await sandbox.card_view("status", "李明")
    assert [b["id"] for b in pm["buttons"]] == ["deliverables", "report_preview", "advance", "close"]
    assert [b["id"] for b in engineer["buttons"]] == ["deliverables", "report_preview", "close"]
    assert pm["data"]["canAdvance"] == "true" and "canAdvance" not in engineer["data"]
    # Private updates by unionId (userIdType 2) merge by key for that user only.
    status, answer = await call(http, sandbox, token, "PUT", INSTANCES, {
        "outTrackId": "status", "userIdType": 2,
        "privateData": {sandbox.world.user("李明").union_id: {"cardParamMap": {"canAdvance": "true"}},
                        sandbox.world.user("王建国").union_id: {"cardParamMap": {"advanceRequested": "true"}}},
        "cardUpdateOptions": {"updatePrivateDataByKey": True}})
    assert status == 200, answer
    card = await sandbox.card("status")
    assert card.private == {"wangjianguo": {"canAdvance": "true", "advanceRequested": "true"},
                            "liming": {"canAdvance": "true"}}
    assert card.data == status_data()                   # public data untouched
    advance = next(b for b in (await sandbox.card_view("status", "王建国"))["buttons"] if b["id"] == "advance")
    assert advance["disabled"] is True


@pytest.mark.parametrize("body, code", [
    ({}, "param.empty"),
    ({"cardData": {"cardParamMap": {"a": "b"}}}, "param.outTrackIdEmpty"),
    ({"outTrackId": "upd2"}, "param.cardDataAndPrivateDataBothEmpty"),
    ({"outTrackId": "upd2", "cardData": {"cardParamMap": {}}}, "param.cardDataAndPrivateDataBothEmpty"),
    ({"outTrackId": "nope", "cardData": {"cardParamMap": {"a": "b"}}}, "param.cardNotExist"),
    ({"outTrackId": "upd2", "privateData": {"huanglei": {"cardParamMap": {"a": "b"}}}}, "param.userIdNotExist"),
    ({"outTrackId": "upd2", "cardData": {"cardParamMap": {"question": "x" * 1025}}}, "param.invalid"),
])
async def test_update_errors(sandbox, http, token, body, code):
    await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "upd2"))
    status, answer = await call(http, sandbox, token, "PUT", INSTANCES, body)
    assert (status, answer["code"]) == (400, code), answer
    assert len((await sandbox.card("upd2")).versions) == 1


async def test_another_apps_card_does_not_exist_for_it(sandbox, http, token):
    await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "mine"))
    other = sandbox.world.app("考勤助手")
    other_token = await new_token(http, sandbox, other.client_id, other.client_secret)
    status, answer = await call(http, sandbox, other_token, "PUT", INSTANCES,
                                {"outTrackId": "mine", "cardData": {"cardParamMap": {"week": "x"}}})
    assert (status, answer["code"]) == (400, "param.cardNotExist")


async def test_data_the_client_would_ignore_is_warned_about(sandbox, http, token):
    data = {**report_data(), "ackStatus": 1, "notInTemplate": "x"}
    body = group_card(sandbox, "warn", data=data, privateData={"liming": {"cardParamMap": {"week": "私有周次"}}})
    assert (await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body))[0] == 200
    await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, pin_card(sandbox, "warn2", data=status_data(
        progress="四成", dueItems="not json")))
    messages = [(w.out_track_id, w.message) for w in sandbox.card_warnings()]
    assert len(messages) == 5, messages
    assert any("'ackStatus' is a int, not a string" in m for _, m in messages)
    assert any("'notInTemplate' is not a variable of template weekly_report" in m for _, m in messages)
    assert any("private value for 'week'" in m and "ignored" in m for _, m in messages)
    assert any("'progress' is declared number" in m for _, m in messages)
    assert any("'dueItems' is declared array" in m for _, m in messages)
    card = await sandbox.card("warn")
    assert card.data["ackStatus"] == "1" and card.private == {"liming": {}}
    assert (await sandbox.card_view("warn", "李明"))["data"]["week"] == "2026-W15"


# ---- pinned cards (吊顶) ------------------------------------------------------------------

async def test_pinned_card_expires_by_the_emulator_clock(sandbox, http, token):
    assert (await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, pin_card(sandbox, "pin", seconds=180)))[0] == 200
    top = await sandbox.top_card(INTERNAL_GROUP)
    assert top.out_track_id == "pin" and top.pinned[sandbox.conversation_id(INTERNAL_GROUP)] > sandbox.now_ms()
    assert sandbox.sent(INTERNAL_GROUP) == []           # pinning posts no message
    await sandbox.advance(179)
    assert await sandbox.top_card(INTERNAL_GROUP) is not None
    await sandbox.advance(2)
    assert await sandbox.top_card(INTERNAL_GROUP) is None
    assert (await sandbox.card("pin")).pins == ((sandbox.conversation_id(INTERNAL_GROUP), "expired",
                                                 top.pinned[sandbox.conversation_id(INTERNAL_GROUP)]),)


async def test_pin_errors_and_visibility(sandbox, http, token):
    for model, code in [({}, "param.openDeliverModelError"),
                        ({"expiredTimeMillis": sandbox.now_ms() - 1}, "param.openDeliverModelError")]:
        status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER,
                                    {**pin_card(sandbox, "p"), "topOpenDeliverModel": model})
        assert (status, answer["code"]) == (400, code)
    # Only the listed users see a pinned card with userIds.
    body = pin_card(sandbox, "only-pm", topOpenDeliverModel={
        "expiredTimeMillis": sandbox.now_ms() + 60_000, "userIds": ["wangjianguo"], "platforms": ["win", "mac"]})
    assert (await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body))[0] == 200
    assert (await sandbox.top_card(INTERNAL_GROUP, "王建国")).out_track_id == "only-pm"
    assert await sandbox.top_card(INTERNAL_GROUP, "李明") is None
    # A 1:1 chat with the robot can hold a pinned card too ([CE] pins one for 3 minutes).
    dm = sandbox.conversation_id("李明")
    body = {**pin_card(sandbox, "dm-pin"), "openSpaceId": f"dtv1.card//ONE_BOX.{dm}"}
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body)
    assert answer["result"]["deliverResults"][0]["success"] is True
    assert (await sandbox.top_card("李明")).out_track_id == "dm-pin"


async def test_close_a_pinned_card_with_either_api(sandbox, http, token):
    cid = sandbox.conversation_id(INTERNAL_GROUP)
    for out in ("a", "b"):
        await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, pin_card(sandbox, out))
    assert (await sandbox.top_card(INTERNAL_GROUP)).out_track_id == "b"      # the newest is on top
    status, answer = await call(http, sandbox, token, "POST", "/v1.0/card/tops/close",
                                params={"outTrackId": "b", "openConversationId": cid})
    assert (status, answer) == (200, {"success": True, "result": True})
    assert (await sandbox.top_card(INTERNAL_GROUP)).out_track_id == "a"
    status, answer = await call(http, sandbox, token, "POST", "/v2.0/im/topBoxes/close",
                                {"outTrackId": "a", "conversationType": 1, "openConversationId": cid})
    assert (status, answer) == (200, {"success": True})
    assert await sandbox.top_card(INTERNAL_GROUP) is None
    assert [p[1] for p in (await sandbox.card("a")).pins] == ["closed"]
    # 单聊助手: the robot's 1:1 chat, named by userId and robotCode.
    await call(http, sandbox, token, "POST", CREATE_AND_DELIVER,
               {**pin_card(sandbox, "dm"), "openSpaceId": f"dtv1.card//ONE_BOX.{sandbox.conversation_id('李明')}"})
    status, answer = await call(http, sandbox, token, "POST", "/v2.0/im/topBoxes/close",
                                {"outTrackId": "dm", "conversationType": 2, "userId": "liming",
                                 "robotCode": sandbox.robot_code})
    assert status == 200 and await sandbox.top_card("李明") is None


@pytest.mark.parametrize("params, code", [
    ({}, "param.empty"),
    ({"openConversationId": "CID"}, "param.outTrackIdEmpty"),
    ({"outTrackId": "a"}, "param.conversationIdInvalid"),
    ({"outTrackId": "a", "openConversationId": "cidNOPE=="}, "param.conversationIdInvalid"),
    ({"outTrackId": "nope", "openConversationId": "CID"}, "param.cardNotExist"),
])
async def test_tops_close_errors(sandbox, http, token, params, code):
    params = {k: sandbox.conversation_id(INTERNAL_GROUP) if v == "CID" else v for k, v in params.items()}
    status, answer = await call(http, sandbox, token, "POST", "/v1.0/card/tops/close", params=params)
    assert (status, answer["code"]) == (400, code)


async def test_top_boxes_close_errors(sandbox, http, token):
    for body, code in [({"conversationType": 1}, "MissingoutTrackId"),
                       ({"outTrackId": "a"}, "MissingconversationType"),
                       ({"outTrackId": "a", "conversationType": 1}, "MissingopenConversationId"),
                       ({"outTrackId": "a", "conversationType": 2, "userId": "liming"}, "MissingrobotCode"),
                       ({"outTrackId": "a", "conversationType": 3}, "invalidParameter.conversationType"),
                       ({"outTrackId": "a", "conversationType": 2, "userId": "nobody", "robotCode": sandbox.robot_code},
                        "param.userIdNotExist")]:
        status, answer = await call(http, sandbox, token, "POST", "/v2.0/im/topBoxes/close", body)
        assert (status, answer["code"]) == (400, code), body


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(card_templates_dir=CARDS_DIR,
                                                                     pin_in_ordinary_groups=False)])
async def test_switch_pinning_refused_in_ordinary_groups(sandbox, http, token):
    cid = sandbox.conversation_id(INTERNAL_GROUP)
    body = {**pin_card(sandbox, "status"), "openSpaceId": f"dtv1.card//IM_GROUP.{cid};ONE_BOX.{cid}",
            "imGroupOpenSpaceModel": {"supportForward": False},
            "imGroupOpenDeliverModel": {"robotCode": sandbox.robot_code}}
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body)
    assert status == 200 and answer["success"] is True
    group, top = answer["result"]["deliverResults"]
    assert group["success"] is True
    assert top["success"] is False and "吊顶" in top["errorMsg"] and "场景群" in top["errorMsg"]
    assert await sandbox.top_card(INTERNAL_GROUP) is None
    assert sandbox.sent(INTERNAL_GROUP)[-1].params["outTrackId"] == "status"      # the fallback: a normal card
    # The robot's own 1:1 chat is not a group: pinning there still works.
    body = {**pin_card(sandbox, "dm"), "openSpaceId": f"dtv1.card//ONE_BOX.{sandbox.conversation_id('李明')}"}
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, body)
    assert answer["result"]["deliverResults"][0]["success"] is True


async def test_switch_pinning_allowed_by_default(sandbox, http, token):
    assert sandbox.config.pin_in_ordinary_groups is True
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, pin_card(sandbox, "status"))
    assert answer["result"]["deliverResults"][0]["success"] is True


# ---- streaming ----------------------------------------------------------------------------

async def test_streaming_append_replace_finalize(sandbox, http, token):
    await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "ai"))
    stream = "/v1.0/card/streaming"
    base = {"outTrackId": "ai", "key": "question", "isFull": False}
    for guid, content in [("g1", "第一段"), ("g2", "第二段"), ("g2", "第二段")]:      # g2 twice: applied once
        status, answer = await call(http, sandbox, token, "PUT", stream, {**base, "guid": guid, "content": content})
        assert (status, answer) == (200, {"success": True, "result": True})
    assert (await sandbox.card("ai")).data["question"] == "第一段第二段"
    await call(http, sandbox, token, "PUT", stream, {**base, "guid": "g3", "content": "全量", "isFull": True,
                                                     "isFinalize": True})
    card = await sandbox.card("ai")
    assert (card.data["question"], card.stream_state, card.versions[-1].source) == ("全量", "finished", "streaming")
    for body, code in [({**base, "guid": "x", "key": ""}, "param.stream.keyEmpty"),
                       ({**base, "guid": "x"}, "param.stream.contentEmpty"),
                       ({**base, "content": "c"}, "param.stream.guidEmpty"),
                       ({**base, "guid": "x", "content": "c", "outTrackId": "nope"}, "param.stream.outTrackId"),
                       ({**base, "guid": "x", "content": "c", "isFull": None}, "param.stream.isFull"),
                       ({**base, "guid": "x", "content": "c" * 1025}, "param.stream.content"),
                       ({**base, "guid": "x", "content": "c", "key": "summary"}, "param.stream.isFull")]:
        status, answer = await call(http, sandbox, token, "PUT", stream, body)
        assert (status, answer["code"]) == (400, code), body


# ---- throttling, permissions, faults ----------------------------------------------------

async def test_card_apis_are_throttled_per_app_per_api(sandbox, http, token):
    await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "qps"))
    await sandbox.freeze_clock()
    update = {"outTrackId": "qps", "cardData": {"cardParamMap": {"week": "w"}},
              "cardUpdateOptions": {"updateCardDataByKey": True}}
    results = [await call(http, sandbox, token, "PUT", INSTANCES, update) for _ in range(21)]
    assert [s for s, _ in results[:20]] == [200] * 20
    status, answer = results[20]
    assert (status, answer["code"]) == (403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")
    assert len((await sandbox.card("qps")).versions) == 21           # the refused call changed nothing
    # Another card API has its own budget in the same second.
    status, _ = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "qps2"))
    assert status == 200
    await sandbox.advance(1)
    assert (await call(http, sandbox, token, "PUT", INSTANCES, update))[0] == 200


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(card_templates_dir=CARDS_DIR,
                                                                     missing_scopes=("Card.Instance.Write",))])
async def test_permission_switch(sandbox, http, token):
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "perm"))
    assert (status, answer["code"]) == (403, "Forbidden.AccessDenied.AccessTokenPermissionDenied")
    assert answer["accessdenieddetail"] == {"requiredScopes": ["Card.Instance.Write"]}
    status, answer = await call(http, sandbox, token, "POST", "/v1.0/card/tops/close",
                                params={"outTrackId": "x", "openConversationId": "y"})
    assert status == 403
    # Streaming needs its own scope, which this app still has.
    status, answer = await call(http, sandbox, token, "PUT", "/v1.0/card/streaming",
                                {"outTrackId": "perm", "guid": "g", "key": "k", "content": "c", "isFull": True})
    assert (status, answer["code"]) == (400, "param.stream.outTrackId")
    sandbox.config.missing_scopes = ()          # switchable at run time
    assert (await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "perm")))[0] == 200


async def test_injected_system_busy(sandbox, http, token):
    sandbox.faults.set("card.*", error_rate=1.0, kinds="busy", count=1)
    status, answer = await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "busy"))
    assert (status, answer["code"]) == (500, "system.busy")
    assert sandbox.emulator.cards.cards == {}
    assert (await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "busy")))[0] == 200
    assert [c.status for c in sandbox.call_log("card.instances.createAndDeliver")] == [500, 200]


async def test_wait_for_card_waits_without_polling(sandbox, http, token):
    waiter = asyncio.create_task(sandbox.wait_for_card("later", lambda c: c.data.get("week") == "2026-W16"))
    await call(http, sandbox, token, "POST", CREATE_AND_DELIVER, group_card(sandbox, "later"))
    assert not waiter.done()
    await call(http, sandbox, token, "PUT", INSTANCES, {"outTrackId": "later", "cardUpdateOptions": {
        "updateCardDataByKey": True}, "cardData": {"cardParamMap": {"week": "2026-W16"}}})
    assert (await asyncio.wait_for(waiter, 5)).versions[-1].number == 2


def test_python_dash_m_sandbox_card_flags():
    default = config_from(parse_args([]))
    assert (default.card_templates_dir, default.pin_in_ordinary_groups, default.cross_org_card_callbacks,
            default.card_callback_redelivery, default.card_template_env) == (None, True, True, False, "sandbox")
    config = config_from(parse_args(["--card-templates", str(CARDS_DIR), "--card-template-env", "test",
                                     "--no-pin-in-ordinary-groups", "--no-cross-org-card-callbacks",
                                     "--card-callback-redelivery"]))
    assert (config.card_templates_dir, config.card_template_env) == (str(CARDS_DIR), "test")
    assert (config.pin_in_ordinary_groups, config.cross_org_card_callbacks, config.card_callback_redelivery) == \
        (False, False, True)
