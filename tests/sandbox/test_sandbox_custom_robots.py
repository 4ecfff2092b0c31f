"""External groups without the app's robot, and custom robots (issue 12 item 7; P1 §4, §10, §11.2; P2 §4):
the emulator's switch, the signed webhook, its message types, errors, the 20-a-minute limit and its recovery."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote_plus

import aiohttp
import pytest
from sandbox_helpers import (BOT_TOPIC, CLIENT_GROUP, INTERNAL_GROUP, RawStreamClient, new_api, new_token,
                             sandbox_process)

from sandbox.config import EmulatorConfig
from sandbox.custom_robots import sign, signed_url
from sandbox.harness import Sandbox

API = "/sandbox/api"
SEND = "/v1.0/robot/groupMessages/send"
HOUR_MS = 3_600_000


@pytest.fixture
async def web():
    async with Sandbox(seed=5, web=True) as sb:
        yield sb


async def push(http, url, body) -> dict:
    async with http.post(url, json=body) as r:
        assert r.status == 200          # webhook errors are errcodes under HTTP 200
        return await r.json(content_type=None)


def text(content: str) -> dict:
    return {"msgtype": "text", "text": {"content": content}}


def group_send(sb, group: str) -> dict:
    return {"msgKey": "sampleText", "msgParam": '{"content":"周报"}', "robotCode": sb.robot_code,
            "openConversationId": sb.conversation_id(group)}


# ---- app robots refused in external groups ------------------------------------------------------

async def test_refused_app_robot_hears_nothing_from_an_external_group_and_cannot_send_there(sandbox, http):
    client = await RawStreamClient(sandbox, http, subscriptions=[{"type": "CALLBACK", "topic": BOT_TOPIC}],
                                   auto_ack=True).connect()
    try:
        before = await sandbox.say("黄蕾", CLIENT_GROUP, "项目")         # allowed by default
        assert before.delivered and json.loads((await client.next_of("CALLBACK"))["data"])["senderNick"] == "黄蕾"

        sandbox.refuse_app_robots_in_external_groups()
        for who in ("黄蕾", "王建国"):
            received = await sandbox.say(who, CLIENT_GROUP, "项目")
            assert (received.delivered, received.bot_absent, received.message_id) == (False, True, None)
            assert received.session_webhook == ""
        inside = await sandbox.say("王建国", INTERNAL_GROUP, "项目")       # an internal group is unaffected
        frame = await client.next_of("CALLBACK")
        assert frame["headers"]["messageId"] == inside.message_id     # nothing from the client group came first
    finally:
        await client.close()

    token = await new_token(http, sandbox)
    status, body = await new_api(http, sandbox, "POST", SEND, token, json_body=group_send(sandbox, CLIENT_GROUP))
    assert (status, body["code"]) == (400, "invalid.openConversationId")
    status, _ = await new_api(http, sandbox, "POST", SEND, token, json_body=group_send(sandbox, INTERNAL_GROUP))
    assert status == 200
    # A session webhook handed out before the switch no longer reaches the group.
    assert await push(http, before.session_webhook, text("迟到的回复")) == {"errcode": 300001, "errmsg": "session 不存在"}
    # The member APIs and the robot's group list agree: the robot is not in the client group.
    status, body = await new_api(http, sandbox, "POST", "/v1.0/im/sceneGroups/members/batchQuery", token,
                                 json_body={"openConversationId": sandbox.conversation_id(CLIENT_GROUP),
                                            "maxResults": 10})
    assert (status, body["code"]) == (400, "groupPermissionDenied")
    status, body = await new_api(http, sandbox, "POST", "/v1.0/robot/groups/query", token, json_body={
        "robotCode": sandbox.robot_code, "pageNumber": 1, "pageSize": 10})
    assert body["openConversationIds"] == [sandbox.conversation_id(INTERNAL_GROUP)]
    assert [m.text for m in sandbox.sent(CLIENT_GROUP)] == []


async def test_the_switch_on_the_page_api(web, http):
    async with http.post(f"{web.base_url}{API}/settings", json={"appRobotsInExternalGroups": False}) as r:
        assert r.status == 200
        assert (await r.json())["settings"]["appRobotsInExternalGroups"] is False
    async with http.get(f"{web.base_url}{API}/world") as r:
        assert (await r.json())["appRobotsInExternalGroups"] is False
    async with http.get(f"{web.base_url}{API}/conversations", params={"user": "liming"}) as r:
        convs = {c["title"]: c for c in (await r.json())["conversations"]}
    assert convs[CLIENT_GROUP]["botAvailable"] is False and convs[INTERNAL_GROUP]["botAvailable"] is True
    async with http.post(f"{web.base_url}{API}/messages", json={
            "user": "huanglei", "conversation": web.conversation_id(CLIENT_GROUP), "text": "项目"}) as r:
        view = (await r.json())["message"]
    assert (view["delivered"], view["botAbsent"], view["atBot"]) == (False, True, False)
    async with http.post(f"{web.base_url}{API}/settings", json={"appRobotsInExternalGroups": "no"}) as r:
        assert r.status == 400 and "只能是 true 或 false" in (await r.json())["error"]


async def test_python_dash_m_sandbox_refuses_app_robots_in_external_groups():
    async with sandbox_process("--no-app-robots-in-external-groups") as proc:
        lines = []
        while not any("/chat" in line for line in lines):
            lines.append((await asyncio.wait_for(proc.stdout.readline(), 20)).decode())
            assert lines[-1], "python -m sandbox ended early"
        assert any("应用机器人不能在外部群中" in line for line in lines)
        url = lines[-1].split("page:", 1)[1].split()[0].replace("/chat", "/sandbox/api/world")
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            assert (await r.json())["appRobotsInExternalGroups"] is False


# ---- custom robots ------------------------------------------------------------------------------

async def test_custom_robot_posts_every_webhook_type_into_its_group(sandbox, http):
    sandbox.refuse_app_robots_in_external_groups()      # the case custom robots are for
    robot = await sandbox.add_custom_robot(CLIENT_GROUP, "项目周报")
    assert robot.webhook == f"{sandbox.base_url}/robot/send?access_token={robot.token}" and len(robot.token) == 64
    assert robot.secret.startswith("SEC") and robot.conversation_id == sandbox.conversation_id(CLIENT_GROUP)
    bodies = [
        {**text("本周周报已生成"), "at": {"atMobiles": ["13900020001"], "atUserIds": ["wangjianguo"]}},
        {"msgtype": "markdown", "markdown": {"title": "周报", "text": "## 周报\n[下载](https://bot.example/r/1)"}},
        {"msgtype": "actionCard", "actionCard": {"title": "周报", "text": "请查收", "singleTitle": "查看",
                                                 "singleURL": "https://bot.example/r/1"}},
        {"msgtype": "link", "link": {"title": "周报", "text": "第 12 周", "messageUrl": "https://bot.example/r/1"}},
        {"msgtype": "feedCard", "feedCard": {"links": [{"title": "周报", "messageURL": "https://bot.example/r/1",
                                                        "picURL": "https://bot.example/p.png"}]}},
    ]
    for body in bodies:
        answer = await push(http, signed_url(robot.webhook, robot.secret, sandbox.now_ms()), body)
        assert answer == {"errcode": 0, "errmsg": "ok"}
    sent = sandbox.sent(CLIENT_GROUP)
    assert [m.msgtype for m in sent] == ["text", "markdown", "actionCard", "link", "feedCard"]
    assert all(m.custom_robot is robot and m.app_id == "" and m.via == "custom_robot" for m in sent)
    # @ by mobile reaches the outsider; @ by userId the insider.
    assert (sent[0].at_mobiles, sent[0].at_user_ids) == (("13900020001",), ("wangjianguo",))
    assert sandbox.calls("robot.send") == 5


async def test_signature_accepted_wrong_missing_and_expired(sandbox, http):
    robot = await sandbox.add_custom_robot(INTERNAL_GROUP, "告警")
    await sandbox.freeze_clock()
    now = sandbox.now_ms()
    stale = {"errcode": 310000, "errmsg": "invalid timestamp"}
    mismatch = {"errcode": 310000, "errmsg": "description:机器人发送签名不匹配;solution:请确认签名和生成签名的时间戳"
                                              "必须都放在调用的网址中，请确认机器人的密钥加密和填写正确;"}
    cases = [
        (signed_url(robot.webhook, robot.secret, now - HOUR_MS + 1000), 0),        # 59:59 old: fine
        (signed_url(robot.webhook, robot.secret, now + HOUR_MS - 1000), 0),        # clocks differ a little: fine
        (signed_url(robot.webhook, "SECwrong", now), mismatch),
        (f"{robot.webhook}&timestamp={now}&sign={quote_plus(sign(robot.secret, now - 1))}", mismatch),
        (f"{robot.webhook}&timestamp={now}", mismatch),                              # no sign
        (robot.webhook, mismatch),                                                    # neither
        (signed_url(robot.webhook, robot.secret, now - HOUR_MS - 1000), stale),
        (signed_url(robot.webhook, robot.secret, now + HOUR_MS + 1000), stale),
        (f"{robot.webhook}&timestamp=yesterday&sign=x", stale),
    ]
    for url, expected in cases:
        answer = await push(http, url, text("签名测试"))
        assert answer == (expected or {"errcode": 0, "errmsg": "ok"}), url
    assert len(sandbox.sent(INTERNAL_GROUP)) == 2


async def test_unknown_removed_and_malformed(sandbox, http):
    robot = await sandbox.add_custom_robot(CLIENT_GROUP, "周报")
    unknown = signed_url(f"{sandbox.base_url}/robot/send?access_token={'0' * 64}", robot.secret, sandbox.now_ms())
    assert await push(http, unknown, text("x")) == {"errcode": 300005, "errmsg": "token is not exist"}
    url = signed_url(robot.webhook, robot.secret, sandbox.now_ms())
    big = text("长" * 7000)                              # 21 000 bytes of UTF-8
    assert (await push(http, url, big))["errcode"] == 460101
    for bad in ({"msgtype": "image", "image": {"picURL": "x"}}, {"msgtype": "text", "text": {}}, {}):
        assert (await push(http, url, bad))["errcode"] == 40035
    await sandbox.remove_custom_robot(robot.robot_id)
    assert (await push(http, url, text("x")))["errcode"] == 300005
    assert sandbox.sent(CLIENT_GROUP) == []
    with pytest.raises(Exception, match="custom robots post into groups only"):
        await sandbox.add_custom_robot("李明", "单聊不行")


async def test_twenty_a_minute_then_ten_minutes_throttled(sandbox, http):
    robot = await sandbox.add_custom_robot(CLIENT_GROUP, "周报")
    await sandbox.freeze_clock()

    async def send(n: int) -> int:
        return (await push(http, signed_url(robot.webhook, robot.secret, sandbox.now_ms()), text(f"第{n}条")))["errcode"]

    assert [await send(n) for n in range(20)] == [0] * 20
    assert await send(20) == 410100
    await sandbox.advance(61)                          # a new minute, but still within the 10 minutes
    assert await send(21) == 410100
    await sandbox.advance(600 - 61 - 1)
    assert await send(22) == 410100
    await sandbox.advance(1)                           # 10 minutes after the 21st message
    assert await send(23) == 0
    assert len(sandbox.sent(CLIENT_GROUP)) == 21
    assert [c.error for c in sandbox.call_log("robot.send")].count("410100") == 3

    # A sliding minute: 19 now, 1 more a little later, and once the first ones are a minute old, room again.
    other = await sandbox.add_custom_robot(INTERNAL_GROUP, "告警")

    async def send_other() -> int:
        return (await push(http, signed_url(other.webhook, other.secret, sandbox.now_ms()), text("告警")))["errcode"]

    assert [await send_other() for _ in range(19)] == [0] * 19
    await sandbox.advance(30)
    assert await send_other() == 0
    await sandbox.advance(31)                          # the first 19 are now over a minute old
    assert [await send_other() for _ in range(19)] == [0] * 19


async def test_faults_apply_to_custom_robot_sends(sandbox, http):
    robot = await sandbox.add_custom_robot(CLIENT_GROUP, "周报")
    sandbox.faults.set("robot.send", error_rate=1.0, kinds="5xx", count=1)
    async with http.post(signed_url(robot.webhook, robot.secret, sandbox.now_ms()), json=text("x")) as r:
        assert r.status == 502 and "Bad Gateway" in await r.text()
    assert await push(http, signed_url(robot.webhook, robot.secret, sandbox.now_ms()), text("x")) == \
        {"errcode": 0, "errmsg": "ok"}


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(custom_robot_per_minute=2,
                                                                      custom_robot_throttle=30)])
async def test_custom_robot_limits_are_configurable(sandbox, http):
    robot = await sandbox.add_custom_robot(CLIENT_GROUP, "周报")
    await sandbox.freeze_clock()
    codes = [(await push(http, signed_url(robot.webhook, robot.secret, sandbox.now_ms()), text("x")))["errcode"]
             for _ in range(3)]
    assert codes == [0, 0, 410100]
    await sandbox.advance(30)
    assert (await push(http, signed_url(robot.webhook, robot.secret, sandbox.now_ms()), text("x")))["errcode"] == 0


# ---- the page API -------------------------------------------------------------------------------

async def test_custom_robots_page_api(web, http):
    cid = web.conversation_id(CLIENT_GROUP)
    async with http.post(f"{web.base_url}{API}/custom-robots", json={"conversation": cid, "name": " 项目周报 "}) as r:
        assert r.status == 200
        created = await r.json()
    robot = created["robot"]
    assert (robot["name"], robot["conversationId"], robot["conversationTitle"]) == ("项目周报", cid, CLIENT_GROUP)
    assert created["webhook"].startswith(f"{web.base_url}/robot/send?access_token=")
    assert created["secret"].startswith("SEC")
    answer = await push(http, signed_url(created["webhook"], created["secret"], web.now_ms()),
                        {"msgtype": "markdown", "markdown": {"title": "周报", "text": "**第 12 周**"}})
    assert answer["errcode"] == 0

    # Listed everywhere without its webhook token or secret.
    token = created["webhook"].rsplit("=", 1)[1]
    for path, params in [("/custom-robots", {}), ("/world", {}), ("/conversations", {"user": "huanglei"}),
                         ("/messages", {"user": "huanglei", "conversation": cid})]:
        async with http.get(f"{web.base_url}{API}{path}", params=params) as r:
            raw = await r.text()
        assert robot["id"] in raw and created["secret"] not in raw and token not in raw, path
    async with http.get(f"{web.base_url}{API}/messages", params={"user": "huanglei", "conversation": cid}) as r:
        view = (await r.json())["messages"][-1]
    assert view["sender"] == {"type": "bot", "custom": True, "id": robot["id"], "name": "项目周报", "initials": "周报"}
    assert (view["via"], view["msgtype"], view["title"]) == ("custom_robot", "markdown", "周报")
    async with http.get(f"{web.base_url}{API}/conversations", params={"user": "huanglei"}) as r:
        [conv] = (await r.json())["conversations"]
    assert [c["name"] for c in conv["customRobots"]] == ["项目周报"]

    for bad, message in [({"conversation": cid}, "name 必须是"), ({"conversation": cid, "name": "x" * 21}, "name 必须是"),
                         ({"conversation": web.conversation_id("李明"), "name": "单聊"}, "只能添加到群里"),
                         ({"name": "无群"}, "只能添加到群里")]:
        async with http.post(f"{web.base_url}{API}/custom-robots", json=bad) as r:
            assert r.status == 400 and message in (await r.json())["error"], bad
    async with http.post(f"{web.base_url}{API}/custom-robots/remove", json={"id": robot["id"]}) as r:
        assert r.status == 200
    async with http.post(f"{web.base_url}{API}/custom-robots/remove", json={"id": robot["id"]}) as r:
        assert r.status == 400 and "没有这个自定义机器人" in (await r.json())["error"]
    async with http.get(f"{web.base_url}{API}/custom-robots") as r:
        assert (await r.json())["robots"] == []
