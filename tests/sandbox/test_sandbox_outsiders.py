"""Outsiders in bot callbacks (P2 §4, §7.1 item 7): what the bot receives from and about people of other
organizations and personal DingTalk users in an external group."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sandbox_helpers import BOT_TOPIC, CLIENT_GROUP, INTERNAL_GROUP, RawStreamClient

from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from sandbox.world import World

OUR_CORP = "ding5a7c0d1e9f3b2a68"
CLIENT_CORP = "dingc1e2n7t0a9b8c3d4"


async def test_a_client_contacts_message_has_no_staff_id_and_her_own_corp(sandbox, http):
    client = await RawStreamClient(sandbox, http, subscriptions=[{"type": "CALLBACK", "topic": BOT_TOPIC}],
                                   auto_ack=True).connect()
    try:
        await sandbox.say("黄蕾", CLIENT_GROUP, "项目进度如何", mentions=["gaoxiang", "wangjianguo"])
        data = json.loads((await client.next_of("CALLBACK"))["data"])
    finally:
        await client.close()
    huanglei = sandbox.world.user("黄蕾")
    assert "senderStaffId" not in data
    assert (data["senderCorpId"], data["chatbotCorpId"]) == (CLIENT_CORP, OUR_CORP)
    assert (data["senderUnionId"], data["senderId"]) == (huanglei.union_id, huanglei.dingtalk_id)
    assert data["isAdmin"] is False and data["senderNick"] == "黄蕾"
    # The bot itself, then an outsider (dingtalkId only) and an insider (dingtalkId + staffId).
    assert data["atUsers"] == [{"dingtalkId": sandbox.app.chatbot_user_id},
                               {"dingtalkId": sandbox.world.user("高翔").dingtalk_id},
                               {"dingtalkId": sandbox.world.user("王建国").dingtalk_id, "staffId": "wangjianguo"}]


async def test_a_personal_user_has_no_corp_at_all(sandbox):
    received = await sandbox.say("许晴", CLIENT_GROUP, "@黄蕾 监理意见已上传")
    payload = received.payload
    assert "senderStaffId" not in payload and "senderCorpId" not in payload
    assert payload["senderUnionId"] == sandbox.world.user("许晴").union_id and payload["isAdmin"] is False
    assert payload["atUsers"][1] == {"dingtalkId": sandbox.world.user("黄蕾").dingtalk_id}


async def test_insiders_get_a_union_id_too(sandbox):
    group = (await sandbox.say("刘强", INTERNAL_GROUP, "周报")).payload
    private = (await sandbox.dm("李明", "项目")).payload
    assert (group["senderStaffId"], group["senderCorpId"], group["isAdmin"]) == ("liuqiang", OUR_CORP, True)
    assert group["senderUnionId"] == sandbox.world.user("刘强").union_id
    assert private["senderUnionId"] == sandbox.world.user("李明").union_id and private["isAdmin"] is False


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(at_users_union_id=True)])
async def test_at_users_can_carry_union_ids_by_switch(sandbox):
    payload = (await sandbox.say("王建国", CLIENT_GROUP, "@高翔 @李明 请确认")).payload
    assert payload["atUsers"] == [
        {"dingtalkId": sandbox.app.chatbot_user_id},
        {"dingtalkId": sandbox.world.user("高翔").dingtalk_id, "unionId": sandbox.world.user("高翔").union_id},
        {"dingtalkId": sandbox.world.user("李明").dingtalk_id, "staffId": "liming",
         "unionId": sandbox.world.user("李明").union_id}]


async def test_a_shared_name_is_mentioned_only_when_picked():
    world = World.load()
    group = world.group(INTERNAL_GROUP)
    # Both 张伟 in one group: typing "@张伟" says nobody in particular; a pick says which.
    world.groups[group.conversation_id] = replace(group, member_ids=group.member_ids + ("zhangwei", "zhangwei.sales"))
    async with Sandbox(world) as sb:
        typed = (await sb.say("王建国", INTERNAL_GROUP, "@张伟 看下")).payload
        picked = (await sb.say("王建国", INTERNAL_GROUP, "@张伟 看下", mentions=["zhangwei.sales"])).payload
    assert [a.get("staffId") for a in typed["atUsers"]] == [None]
    assert [a.get("staffId") for a in picked["atUsers"]] == [None, "zhangwei.sales"]
