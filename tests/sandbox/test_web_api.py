"""The web chat page's JSON API (no browser): validation, sending, long-poll, files, approvals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from urllib.parse import unquote

import aiohttp
import pytest
from sandbox_helpers import BOT_TOPIC, CLIENT_GROUP, INTERNAL_GROUP, RawStreamClient, new_api, new_token

from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

API = "/sandbox/api"


@pytest.fixture
async def web(sandbox_config):
    async with Sandbox(config=sandbox_config, seed=11, web=True) as sb:
        yield sb


async def get(http, sb, path, **params):
    async with http.get(f"{sb.base_url}{API}{path}", params=params) as r:
        return r.status, await r.json()


async def post(http, sb, path, body):
    async with http.post(f"{sb.base_url}{API}{path}", json=body) as r:
        return r.status, await r.json()


async def post_file(http, sb, user, conversation, name, data, kind=None):
    form = aiohttp.FormData()
    form.add_field("user", user)
    form.add_field("conversation", conversation)
    if kind:
        form.add_field("kind", kind)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    async with http.post(f"{sb.base_url}{API}/files", data=form) as r:
        return r.status, await r.json()


async def start_approval(http, sb, approvers=("liuqiang",)) -> str:
    token = await new_token(http, sb)
    status, body = await new_api(http, sb, "POST", "/v1.0/workflow/forms", token, json_body={
        "name": "项目阶段验收审批", "formComponents": [
            {"componentType": "TextField", "props": {"componentId": "TextField_1", "label": "项目名称"}},
            {"componentType": "DDMultiSelectField", "props": {"componentId": "M_1", "label": "交付物"}}]})
    assert status == 200, body
    status, body = await new_api(http, sb, "POST", "/v1.0/workflow/processInstances", token, json_body={
        "processCode": body["result"]["processCode"], "originatorUserId": "wangjianguo",
        "approvers": [{"actionType": "NONE", "userIds": [u]} for u in approvers],
        "formComponentValues": [{"name": "项目名称", "value": "智慧工厂MES"},
                                {"name": "交付物", "value": '["上线报告","验收单"]'}]})
    assert status == 200, body
    return body["instanceId"]


async def test_page_and_static_files_are_served(web, http):
    assert web.page_url == f"{web.base_url}/chat"
    for path in ("/", "/chat"):
        async with http.get(web.base_url + path) as r:
            assert r.status == 200 and r.content_type == "text/html"
            html = await r.text()
            assert "钉钉模拟器" in html and "/sandbox/static/app.js" in html
            assert "http://" not in html and "https://" not in html     # no external assets
    async with http.get(f"{web.base_url}/sandbox/static/app.js") as r:
        assert r.status == 200 and "javascript" in r.content_type
    for bad in ("/sandbox/static/..%2Fweb.py", "/sandbox/static/nope.js", "/sandbox/static/.hidden.js"):
        async with http.get(web.base_url + bad) as r:
            assert r.status == 404
    status, body = await get(http, web, "/nothing")
    assert status == 404 and "没有这个接口" in body["error"]


async def test_page_url_needs_the_web_extension():
    async with Sandbox() as sb:
        with pytest.raises(RuntimeError, match="web=True"):
            sb.page_url
        async with aiohttp.ClientSession() as http, http.get(f"{sb.base_url}/chat") as r:
            assert r.status == 404


async def test_world_and_conversations(web, http):
    status, world = await get(http, web, "/world")
    assert status == 200 and world["sandboxOnly"] is True and world["allowGroupFiles"] is False
    roles = {u["name"]: u["role"] for u in world["users"]}
    assert roles["李明"] == "team" and roles["刘强"] == "leader" and roles["黄蕾"] == "client"
    assert world["bot"]["name"] == "项目管家"
    assert {g["title"]: g["kind"] for g in world["groups"]} == {INTERNAL_GROUP: "internal", CLIENT_GROUP: "client"}

    status, body = await get(http, web, "/conversations", user="liming")
    convs = body["conversations"]
    assert [(c["type"], c["title"]) for c in convs] == [
        ("group", INTERNAL_GROUP), ("group", CLIENT_GROUP), ("single", "项目管家"), ("single", "考勤助手")]
    assert convs[2]["id"] == web.conversation_id("李明")
    assert [c["canSendFile"] for c in convs] == [False, False, True, True]
    # A client contact sees only the client group: no 1:1 with another org's bot.
    status, body = await get(http, web, "/conversations", user="黄蕾")
    assert [c["title"] for c in body["conversations"]] == [CLIENT_GROUP]


@pytest.mark.parametrize("params, message", [
    ({}, "请先选择身份"),
    ({"user": "nobody"}, "未知用户：nobody"),
    ({"user": "liming"}, "请先选择会话"),
    ({"user": "liming", "conversation": "cidNOPE=="}, "未知会话"),
    ({"user": "huanglei", "conversation": INTERNAL_GROUP}, "黄蕾不在群"),
    ({"user": "liming", "conversation": "ZHAOLEI_DM"}, "他人"),
    ({"user": "liming", "conversation": INTERNAL_GROUP, "after": "-1"}, "after 必须是非负整数"),
])
async def test_bad_input_is_a_400_in_chinese(web, http, params, message):
    params = dict(params)
    if params.get("conversation") == INTERNAL_GROUP:
        params["conversation"] = web.conversation_id(INTERNAL_GROUP)
    if params.get("conversation") == "ZHAOLEI_DM":
        params["conversation"] = web.conversation_id("赵磊")
    status, body = await get(http, web, "/messages", **params)
    assert status == 400 and message in body["error"]


async def test_send_as_a_user_reaches_the_bot_with_real_at_users(web, http):
    client = await RawStreamClient(web, http, subscriptions=[{"type": "CALLBACK", "topic": BOT_TOPIC}],
                                   auto_ack=True).connect()
    try:
        gid = web.conversation_id(INTERNAL_GROUP)
        status, body = await post(http, web, "/messages", {
            "user": "liming", "conversation": gid, "text": "@赵磊 @周敏 看下进度", "mentions": ["zhaolei"]})
        assert status == 200, body
        view = body["message"]
        assert (view["direction"], view["sender"]["name"], view["atBot"], view["botName"]) == ("in", "李明", True, "项目管家")
        assert view["atNames"] == ["赵磊", "周敏"]
        frame = await client.next_of("CALLBACK")
        data = json.loads(frame["data"])
        assert data["text"]["content"] == " @赵磊 @周敏 看下进度" and data["senderStaffId"] == "liming"
        assert [a.get("staffId") for a in data["atUsers"]] == [None, "zhaolei", "zhoumin"]

        # Not to the bot: recorded for the page, never pushed.
        status, body = await post(http, web, "/messages", {
            "user": "zhaolei", "conversation": gid, "text": "收到", "atBot": False})
        assert status == 200 and body["message"]["delivered"] is False
        assert web.received(INTERNAL_GROUP)[-1].delivered is False

        for bad, message in [({"text": "  "}, "消息不能为空"), ({"text": "x" * 5001}, "不能超过"),
                             ({"text": "hi", "mentions": ["huanglei"]}, "只能@本群成员"),
                             ({"text": "hi", "mentions": "zhaolei"}, "mentions")]:
            status, body = await post(http, web, "/messages", {"user": "liming", "conversation": gid, **bad})
            assert status == 400 and message in body["error"], body
        async with http.post(f"{web.base_url}{API}/messages", data=b"[1]") as r:
            assert r.status == 400 and "JSON" in (await r.json())["error"]
    finally:
        await client.close()


async def test_long_poll_wakes_on_a_visible_message_only(web, http):
    status, first = await get(http, web, "/updates", user="liming", after=0)
    assert status == 200 and first["messages"] == []
    poll = asyncio.create_task(get(http, web, "/updates", user="liming", after=first["last"], wait=10,
                                   approvals=first["approvals"]))
    # Someone else's 1:1 with the bot is not visible to 李明: the poll keeps waiting.
    other = await web.dm("赵磊", "私聊")
    mine = await web.say("王建国", INTERNAL_GROUP, "周报")
    status, body = await asyncio.wait_for(poll, 5)
    assert [m["seq"] for m in body["messages"]] == [mine.seq] and body["last"] >= mine.seq > other.seq
    assert body["messages"][0]["text"] == "周报" and body["messages"][0]["conversationId"] == mine.conversation_id
    # History of one conversation, after a seq.
    status, body = await get(http, web, "/messages", user="liming", conversation=mine.conversation_id, after=0)
    assert [m["seq"] for m in body["messages"]] == [mine.seq]
    status, body = await get(http, web, "/messages", user="liming", conversation=mine.conversation_id,
                             after=mine.seq)
    assert body["messages"] == []
    # Nothing new: the poll ends empty when `wait` runs out.
    status, body = await get(http, web, "/updates", user="liming", after=body["last"], wait=0.2,
                             approvals=first["approvals"])
    assert status == 200 and body["messages"] == []


async def test_bot_messages_are_drawn_as_dingtalk_shows_them(web, http):
    received = await web.say("李明", INTERNAL_GROUP, "帮助")
    bodies = [
        {"msgtype": "markdown", "markdown": {"title": "周报", "text": "**粗**"}, "at": {"atUserIds": ["liming"]}},
        {"msgtype": "actionCard", "actionCard": {"title": "确认", "text": "请确认", "btnOrientation": "1",
                                                 "btns": [{"title": "同意", "actionURL": "https://e.com/a"},
                                                          {"title": "拒绝", "actionURL": "https://e.com/b"}]}},
        {"msgtype": "actionCard", "actionCard": {"title": "单", "text": "x", "singleTitle": "查看",
                                                 "singleURL": "https://e.com"}},
    ]
    for body in bodies:
        async with http.post(received.session_webhook, json=body) as r:
            assert (await r.json())["errcode"] == 0
    status, body = await get(http, web, "/messages", user="liming", conversation=received.conversation_id)
    views = body["messages"][1:]
    assert (views[0]["msgtype"], views[0]["title"], views[0]["atNames"]) == ("markdown", "周报", ["李明"])
    assert views[1]["buttons"] == [{"title": "同意", "url": "https://e.com/a"}, {"title": "拒绝", "url": "https://e.com/b"}]
    assert views[1]["orientation"] == "1"
    assert views[2]["buttons"] == [{"title": "查看", "url": "https://e.com"}]
    assert (views[0]["sender"]["type"], views[0]["sender"]["name"]) == ("bot", "项目管家")


async def test_files_follow_the_group_rule_and_download(web, http):
    gid = web.conversation_id(INTERNAL_GROUP)
    status, body = await post_file(http, web, "liming", gid, "周报.docx", b"doc")
    assert status == 400 and "--allow-group-files" in body["error"]
    status, body = await post_file(http, web, "liming", web.conversation_id("李明"), "周报.docx", b"doc-bytes")
    assert status == 200, body
    view = body["message"]
    assert (view["msgtype"], view["file"]["name"], view["file"]["size"]) == ("file", "周报.docx", 9)
    async with http.get(web.base_url + view["file"]["url"] + "&download=1") as r:
        assert r.status == 200 and await r.read() == b"doc-bytes"
        assert unquote(r.headers["Content-Disposition"]).endswith("''周报.docx")
    # Pictures are allowed in groups (§3.1) and shown inline.
    status, body = await post_file(http, web, "liming", gid, "现场.png", b"\x89PNG fake")
    assert status == 200 and body["message"]["msgtype"] == "picture"
    async with http.get(web.base_url + body["message"]["imageUrl"]) as r:
        assert r.headers["Content-Disposition"].startswith("inline") and await r.read() == b"\x89PNG fake"
    status, body = await post_file(http, web, "liming", gid, "a.txt", b"x", kind="picture")
    assert status == 400 and "图片只支持" in body["error"]
    status, body = await post_file(http, web, "liming", gid, "empty.pdf", b"")
    assert status == 400 and "空" in body["error"]
    status, body = await get(http, web, "/media", id="@nope")
    assert status == 404


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(allow_group_files=True)])
async def test_group_files_when_allowed(web, http):
    status, body = await post_file(http, web, "liming", web.conversation_id(INTERNAL_GROUP), "验收单.pdf", b"%PDF")
    assert status == 200 and body["message"]["file"]["name"] == "验收单.pdf"
    assert web.received(INTERNAL_GROUP)[-1].media.data == b"%PDF"


async def test_approvals_inbox_and_decision(web, http):
    status, before = await get(http, web, "/updates", user="liuqiang", after=0)
    poll = asyncio.create_task(get(http, web, "/updates", user="liuqiang", after=before["last"], wait=10,
                                   approvals=before["approvals"]))
    instance_id = await start_approval(http, web, approvers=("liuqiang", "zhoumin"))
    status, woke = await asyncio.wait_for(poll, 5)
    assert woke["messages"] == [] and woke["approvals"] != before["approvals"]

    status, inbox = await get(http, web, "/approvals", user="liuqiang")
    assert [i["id"] for i in inbox["pending"]] == [instance_id] and inbox["done"] == []
    item = inbox["pending"][0]
    assert (item["title"], item["originator"]["name"], item["statusLabel"], item["canAct"]) == \
        ("王建国提交的项目阶段验收审批", "王建国", "审批中", True)
    assert item["form"] == [{"name": "项目名称", "value": "智慧工厂MES"}, {"name": "交付物", "value": "上线报告、验收单"}]
    assert [s["users"][0]["name"] for s in item["steps"]] == ["刘强", "周敏"]
    status, body = await get(http, web, "/approvals", user="zhoumin")
    assert body["pending"] == [] and body["done"] == []      # not their turn yet
    status, body = await get(http, web, "/approvals", user="wangjianguo")
    assert [i["id"] for i in body["started"]] == [instance_id] and body["started"][0]["canAct"] is False

    for who, result, message in [("zhoumin", "agree", "没有待处理的任务"), ("liuqiang", "maybe", "result"),
                                 ("nobody", "agree", "未知用户")]:
        status, body = await post(http, web, "/approvals/act",
                                  {"user": who, "instanceId": instance_id, "result": result})
        assert status == 400 and message in body["error"]
    status, body = await post(http, web, "/approvals/act", {"user": "liuqiang", "instanceId": "nope", "result": "agree"})
    assert status == 400 and "审批实例不存在" in body["error"]

    status, body = await post(http, web, "/approvals/act",
                              {"user": "liuqiang", "instanceId": instance_id, "result": "agree", "remark": "同意"})
    assert status == 200 and body["instance"]["status"] == "RUNNING" and body["instance"]["canAct"] is False
    status, body = await post(http, web, "/approvals/act",
                              {"user": "zhoumin", "instanceId": instance_id, "result": "refuse", "remark": "资料不全"})
    assert status == 200 and (body["instance"]["statusLabel"], body["instance"]["tone"]) == ("已拒绝", "refuse")
    instance = await web.instance(instance_id)
    assert (instance["status"], instance["result"]) == ("COMPLETED", "refuse")
    assert [r["remark"] for r in instance["operationRecords"][1:]] == ["同意", "资料不全"]
    status, body = await get(http, web, "/approvals", user="liuqiang")
    assert body["pending"] == [] and [i["statusLabel"] for i in body["done"]] == ["已拒绝"]


async def test_python_dash_m_sandbox_prints_the_page_url():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "sandbox", "--port", "0", "--ping-interval", "0",
                                                stdout=asyncio.subprocess.PIPE, env=env)
    try:
        line = ""
        while "/chat" not in line:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line, "python -m sandbox ended without printing the page URL"
        assert "网页聊天" in line and "群内发文件：已允许" in line
        url = line.split("page:", 1)[1].split()[0]
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                assert r.status == 200 and "钉钉模拟器" in await r.text()
            async with http.get(url.replace("/chat", "/sandbox/api/world")) as r:
                assert (await r.json())["allowGroupFiles"] is True
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
