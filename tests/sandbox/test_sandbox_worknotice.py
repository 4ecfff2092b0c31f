"""工作通知 (P2 §6, §7.1 item 9): asyncsend_v2, the silent daily limits that getsendresult reports, the pane."""

from __future__ import annotations

import asyncio

import pytest
from test_web_api import get, post

from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from sandbox.todo import start_of_day_ms

BASE = "/topapi/message/corpconversation"
MARKDOWN = {"msgtype": "markdown", "markdown": {"title": "交付物提醒", "text": "**《接口说明文档》** 明天到期"}}


async def old_token(http, sb) -> str:
    async with http.get(f"{sb.base_url}/gettoken", params={"appkey": sb.client_id,
                                                           "appsecret": sb.client_secret}) as r:
        return (await r.json())["access_token"]


async def oapi(http, sb, path: str, body: dict) -> dict:
    async with http.post(f"{sb.base_url}{BASE}/{path}", params={"access_token": await old_token(http, sb)},
                         json=body) as r:
        assert r.status == 200
        return await r.json()


async def send(http, sb, msg: dict = MARKDOWN, **fields) -> dict:
    return await oapi(http, sb, "asyncsend_v2", {"agent_id": sb.app.agent_id, "msg": msg, **fields})


async def result(http, sb, task_id: int) -> dict:
    answer = await oapi(http, sb, "getsendresult", {"agent_id": sb.app.agent_id, "task_id": task_id})
    assert answer["errcode"] == 0, answer
    return answer["send_result"]


async def test_send_deliver_and_read(sandbox, http):
    answer = await send(http, sandbox, userid_list="liming,zhaolei")
    assert answer["errcode"] == 0 and isinstance(answer["task_id"], int) and answer["request_id"]
    [notice] = await sandbox.work_notices("李明")
    assert (notice["app"]["name"], notice["title"], notice["markdown"], notice["read"]) == (
        "项目管家", "交付物提醒", True, False)
    sent = await result(http, sandbox, answer["task_id"])
    assert (sent["unread_user_id_list"], sent["read_user_id_list"]) == (["liming", "zhaolei"], [])
    assert await sandbox.read_work_notices("李明") == 1
    sent = await result(http, sandbox, answer["task_id"])
    assert (sent["unread_user_id_list"], sent["read_user_id_list"]) == (["zhaolei"], ["liming"])
    assert sent["forbidden_list"] == [] and sent["failed_user_id_list"] == []


async def test_who_cannot_receive(sandbox, http):
    await sandbox.update_user("赵磊", active=False)
    answer = await send(http, sandbox, userid_list="liming,nobody,huanglei,zhaolei", dept_id_list="99")
    sent = await result(http, sandbox, answer["task_id"])
    assert sent["invalid_user_id_list"] == ["nobody"]
    assert sent["forbidden_user_id_list"] == ["huanglei", "zhaolei"]
    assert sent["invalid_dept_id_list"] == [99] and sent["unread_user_id_list"] == ["liming"]
    assert await sandbox.work_notices("黄蕾") == []


async def test_departments_include_their_children_and_everyone_means_everyone(sandbox, http):
    sent = await result(http, sandbox, (await send(http, sandbox, dept_id_list="2"))["task_id"])
    delivery = {u.user_id for u in sandbox.world.internal_users() if {2, 6} & set(u.department_ids)}
    assert set(sent["unread_user_id_list"]) == delivery and "zhangwei" in delivery   # 测试组 sits under 交付中心
    sent = await result(http, sandbox, (await send(http, sandbox, {"msgtype": "text", "text": {"content": "全员"}},
                                                   to_all_user=True))["task_id"])
    assert set(sent["unread_user_id_list"]) == {u.user_id for u in sandbox.world.internal_users() if u.active}


async def test_same_content_once_a_day_per_person(sandbox, http):
    first = await send(http, sandbox, userid_list="liming")
    again = await send(http, sandbox, userid_list="liming")
    assert again["errcode"] == 0                                  # the call succeeds; the message is dropped
    sent = await result(http, sandbox, again["task_id"])
    assert sent["forbidden_list"] == [{"code": "143106", "count": 1, "userid": "liming"}]
    assert sent["unread_user_id_list"] == [] and len(await sandbox.work_notices("李明")) == 1
    assert (await result(http, sandbox, first["task_id"]))["unread_user_id_list"] == ["liming"]
    # The next day (China time) it goes through again.
    await sandbox.advance((start_of_day_ms(sandbox.now_ms()) + 86_400_000 - sandbox.now_ms()) / 1000 + 1)
    assert (await result(http, sandbox, (await send(http, sandbox, userid_list="liming"))["task_id"]))[
        "unread_user_id_list"] == ["liming"]


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(work_notice_daily_cap=2)])
async def test_daily_cap_per_person(sandbox, http, sandbox_config):
    for i in range(2):
        await send(http, sandbox, {"msgtype": "text", "text": {"content": f"第{i}条"}}, userid_list="liming")
    over = await send(http, sandbox, {"msgtype": "text", "text": {"content": "第3条"}}, userid_list="liming,zhaolei")
    sent = await result(http, sandbox, over["task_id"])
    assert sent["forbidden_list"] == [{"code": "143105", "count": 2, "userid": "liming"}]
    assert sent["unread_user_id_list"] == ["zhaolei"] and len(await sandbox.work_notices("李明")) == 2


@pytest.mark.parametrize(("fields", "errcode", "text"), [
    ({"agent_id": 1}, 40056, "agentid"),
    ({"agent_id": None}, 40035, "agent_id"),
    ({"msg": None}, 40035, "msg"),
    ({"msg": {"msgtype": "sms", "sms": {}}}, 40035, "msgtype"),
    ({"msg": {"msgtype": "link", "link": {"title": "t", "text": "x"}}}, 40035, "messageUrl"),
    ({"msg": {"msgtype": "text", "text": {"content": "字" * 700}}}, 40035, "2048"),
    ({"msg": {"msgtype": "markdown", "markdown": {"title": "t", "text": "a" * 5001}}}, 40035, "5000"),
    ({"userid_list": ",".join(f"u{i}" for i in range(101))}, 40035, "100"),
    ({"userid_list": ["liming"]}, 40035, "逗号分隔"),
    ({"dept_id_list": ",".join(str(i) for i in range(21))}, 40035, "20"),
    ({"userid_list": ""}, 40035, "缺少参数"),
])
async def test_send_errors(sandbox, http, fields, errcode, text):
    body = {"agent_id": sandbox.app.agent_id, "msg": MARKDOWN, "userid_list": "liming", **fields}
    answer = await oapi(http, sandbox, "asyncsend_v2", {k: v for k, v in body.items() if v is not None})
    assert answer["errcode"] == errcode and text in answer["errmsg"], answer
    assert await sandbox.work_notices("李明") == []


async def test_result_errors_and_24_hours(sandbox, http):
    task_id = (await send(http, sandbox, userid_list="liming"))["task_id"]
    assert (await oapi(http, sandbox, "getsendresult", {"agent_id": sandbox.app.agent_id, "task_id": 1}))[
        "errcode"] == 40035
    await sandbox.advance(86_401)
    answer = await oapi(http, sandbox, "getsendresult", {"agent_id": sandbox.app.agent_id, "task_id": task_id})
    assert answer["errcode"] == 40035 and "24" in answer["errmsg"]


async def test_qps_limit(sandbox, http):
    token = await old_token(http, sandbox)
    await sandbox.freeze_clock()
    sandbox.config.qps_limit = 2
    codes = []
    for _ in range(3):
        async with http.post(f"{sandbox.base_url}{BASE}/asyncsend_v2", params={"access_token": token}, json={
                "agent_id": sandbox.app.agent_id, "msg": MARKDOWN, "userid_list": "liming"}) as r:
            codes.append((await r.json())["errcode"])
    assert codes == [0, 0, 90018]


async def test_page_pane_long_polls_and_reads(http):
    async with Sandbox(config=EmulatorConfig.for_tests(), web=True) as web:
        _, first = await get(http, web, "/notices", user="liming")
        assert (first["notices"], first["unread"]) == ([], 0)
        poll = asyncio.create_task(get(http, web, "/notices", user="liming", fingerprint=first["fingerprint"],
                                       wait=20))
        await asyncio.sleep(0)
        await send(http, web, {"msgtype": "action_card", "action_card": {
            "title": "周报已生成", "markdown": "本周进度 **80%**", "single_title": "查看", "single_url": "https://x/r"}},
            userid_list="liming")
        _, answer = await asyncio.wait_for(poll, 10)
        assert answer["unread"] == 1
        [notice] = answer["notices"]
        assert notice["buttons"] == [{"title": "查看", "url": "https://x/r"}] and notice["markdown"] is True
        status, read = await post(http, web, "/notices/read", {"user": "liming"})
        assert status == 200 and read["read"] == 1 and read["unread"] == 0
