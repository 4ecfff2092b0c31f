"""The harness, the world file, the subscription hooks and `python -m sandbox`."""

from __future__ import annotations

import asyncio
import textwrap

import pytest
from sandbox_helpers import CLIENT_GROUP, INTERNAL_GROUP, new_api, new_token, sandbox_process

from sandbox.config import EmulatorConfig
from sandbox.emulator import SandboxError
from sandbox.harness import Sandbox
from sandbox.recorder import ReceivedMessage, SentMessage
from sandbox.world import World, WorldError


GROUP_SEND = "/v1.0/robot/groupMessages/send"


async def reply(http, received, text: str) -> None:
    async with http.post(received.session_webhook, json={"msgtype": "text", "text": {"content": text}}) as r:
        assert (await r.json())["errcode"] == 0


def test_default_world():
    world = World.load()
    titles = {u.title for u in world.users.values()}
    assert {"项目经理", "实施工程师", "销售经理", "售后工程师", "项目管理员", "客户方信息部主任"} <= titles
    assert sum(u.title == "实施工程师" for u in world.users.values()) == 2
    assert sum(u.admin for u in world.users.values()) == 2
    # The client group's outsiders: two people of the client's organization and a personal user (issue 12).
    assert [u.name for u in world.users.values() if u.external] == ["黄蕾", "高翔", "许晴"]
    assert len(world.groups) == 2 and all(g.conversation_id.startswith("cid") for g in world.groups.values())
    assert world.default_app.client_id in world.group(INTERNAL_GROUP).bot_client_ids
    assert len(world.apps) >= 2
    # Derived ids are stable across loads.
    assert World.load().user("李明").dingtalk_id == world.user("李明").dingtalk_id


async def test_custom_world_file(tmp_path):
    path = tmp_path / "world.toml"
    path.write_text(textwrap.dedent("""
        [corp]
        corp_id = "dingtestcorp"
        name = "测试公司"
        [[users]]
        user_id = "u1"
        name = "甲"
        [[apps]]
        name = "机器人"
        client_id = "dingtestapp"
        client_secret = "s"
        [[groups]]
        title = "测试群"
        conversation_id = "cidTEST=="
        members = ["u1"]
        bots = ["dingtestapp"]
    """), encoding="utf-8")
    async with Sandbox(path) as sb:
        assert sb.client_id == "dingtestapp" and sb.conversation_id("测试群") == "cidTEST=="
        received = await sb.say("甲", "测试群", "你好")
        assert received.payload["conversationTitle"] == "测试群"
    path.write_text('[[users]]\nuser_id = "u1"\nname = "甲"\n[[apps]]\nname="a"\nclient_id="x"\nclient_secret="y"\n'
                    '[[groups]]\ntitle = "群"\nmembers = ["ghost"]\n', encoding="utf-8")
    with pytest.raises(WorldError):
        World.load(path)


async def test_next_message_pops_in_order_per_conversation(sandbox, http):
    first = await sandbox.say("王建国", INTERNAL_GROUP, "一")
    second = await sandbox.say("李明", INTERNAL_GROUP, "二")
    private = await sandbox.dm("赵磊", "三")
    await reply(http, first, "回复一")
    await reply(http, private, "私聊回复")
    await reply(http, second, "回复二")
    assert (await sandbox.next_message(INTERNAL_GROUP)).text == "回复一"
    assert (await sandbox.next_message(INTERNAL_GROUP)).text == "回复二"
    assert (await sandbox.next_message("赵磊")).text == "私聊回复"
    assert [m.text for m in sandbox.sent(INTERNAL_GROUP)] == ["回复一", "回复二"]
    assert [m.text for m in sandbox.sent()] == ["回复一", "私聊回复", "回复二"]
    with pytest.raises(TimeoutError, match="回复一"):
        await sandbox.next_message(INTERNAL_GROUP, timeout=0.1)


async def test_next_message_waits_for_a_later_message(sandbox, http):
    received = await sandbox.say("王建国", INTERNAL_GROUP, "周报")
    waiting = asyncio.create_task(sandbox.next_message(INTERNAL_GROUP, timeout=5))
    await asyncio.sleep(0)          # the waiter is queued on the emulator loop before the reply arrives
    await reply(http, received, "稍后回复")
    assert (await waiting).text == "稍后回复"


async def test_transcript_holds_both_directions(sandbox, http):
    received = await sandbox.say("陈静", CLIENT_GROUP, "报价")
    await sandbox.say("陈静", CLIENT_GROUP, "闲聊", at_bot=False)
    await reply(http, received, "已收到")
    records = sandbox.transcript(CLIENT_GROUP)
    assert [(type(r).__name__, r.text) for r in records] == [
        ("ReceivedMessage", "报价"), ("ReceivedMessage", "闲聊"), ("SentMessage", "已收到")]
    assert [r.delivered for r in sandbox.received(CLIENT_GROUP)] == [True, False]


async def test_subscription_hook_for_the_web_page(sandbox, http):
    """A web page subscribes on the emulator loop and gets every new record of a conversation."""
    cid = sandbox.conversation_id(INTERNAL_GROUP)
    subscription = await sandbox.call(sandbox.emulator.recorder.subscribe, cid)
    received = await sandbox.say("王建国", INTERNAL_GROUP, "订阅测试")
    await sandbox.say("王建国", CLIENT_GROUP, "别的群")
    await reply(http, received, "订阅回复")

    async def take_two(em):
        return [await asyncio.wait_for(subscription.__anext__(), 5) for _ in range(2)]

    records = await sandbox.run(take_two)
    await sandbox.call(subscription.close)
    assert isinstance(records[0], ReceivedMessage) and isinstance(records[1], SentMessage)
    assert [r.text for r in records] == ["订阅测试", "订阅回复"]
    # Long-poll style: wait for anything after a known sequence number.
    after = records[1].seq
    waiting = asyncio.create_task(sandbox.run(
        lambda em: em.recorder.wait_for(cid, after_seq=after, kind=(ReceivedMessage, SentMessage), timeout=5)))
    await sandbox.say("李明", INTERNAL_GROUP, "新消息")
    assert (await waiting).text == "新消息"


async def test_harness_refuses_what_a_client_cannot_do(sandbox):
    with pytest.raises(SandboxError):
        await sandbox.say("黄蕾", INTERNAL_GROUP, "我不在这个群")
    with pytest.raises(SandboxError):
        await sandbox.dm("黄蕾", "外部联系人不能私聊内部机器人")
    with pytest.raises(SandboxError):
        await sandbox.say("王建国", INTERNAL_GROUP, "x", app="考勤助手")
    with pytest.raises(SandboxError):
        sandbox.conversation_id("不存在的群")


async def test_call_counters(sandbox, http):
    token = await new_token(http, sandbox)
    body = {"msgKey": "sampleText", "msgParam": '{"content":"x"}', "robotCode": sandbox.robot_code,
            "openConversationId": sandbox.conversation_id(INTERNAL_GROUP)}
    for _ in range(3):
        await new_api(http, sandbox, "POST", GROUP_SEND, token, json_body=body)
    await new_api(http, sandbox, "POST", GROUP_SEND, token, json_body={**body, "msgKey": "bad"})
    assert sandbox.calls("robot.groupMessages.send") == 4
    assert sandbox.calls()["oauth2.accessToken"] == 1
    log = sandbox.call_log("robot.groupMessages.send")
    assert [(c.status, c.error) for c in log] == [(200, None)] * 3 + [(400, "invalidParameter.msgKey.invalid")]
    assert all(c.app_id == sandbox.client_id for c in log)
    sandbox.reset_calls()
    assert sandbox.calls() == {}


async def test_sync_start_for_code_without_a_loop():
    sb = await asyncio.to_thread(lambda: Sandbox(config=EmulatorConfig.for_tests()).start_sync())
    try:
        assert sb.base_url.startswith("http://127.0.0.1:")
    finally:
        await asyncio.to_thread(sb.stop_sync)


async def test_python_dash_m_sandbox(tmp_path):
    async with sandbox_process() as proc:
        first = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert "http://127.0.0.1:" in first
        base_url = first.rsplit(" ", 1)[-1].strip()
        rest = []
        while len(rest) < 6:
            rest.append((await asyncio.wait_for(proc.stdout.readline(), 5)).decode())
        assert any("DINGTALK_OPENAPI_ENDPOINT=" + base_url in line for line in rest)
        assert any("client_id=" in line and "client_secret=" in line for line in rest)
        import aiohttp
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base_url}/gettoken", params={"appkey": "x", "appsecret": "y"}) as r:
                assert (await r.json())["errcode"] == 40096
