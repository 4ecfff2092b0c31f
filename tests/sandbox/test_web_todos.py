"""The page's 待办 and 工作台 JSON API (no browser): lists, red dot, long-poll, deleting, homepages."""

from __future__ import annotations

import asyncio

import pytest
from sandbox_helpers import new_token
from test_sandbox_todo import DAY_MS, DETAIL, ENGINEER, PM, created
from test_web_api import get, post

from sandbox.harness import Sandbox
from sandbox.todo import start_of_day_ms

HOUR_MS = 3_600_000


@pytest.fixture
async def web(sandbox_config):
    async with Sandbox(config=sandbox_config, seed=16, web=True) as sb:
        yield sb


@pytest.fixture
async def token(web, http) -> str:
    return await new_token(http, web)


async def test_a_persons_todos_and_their_red_dot(web, http, token):
    now = web.now_ms()
    later = await created(http, web, token, sourceId="later", dueTime=now + 6 * DAY_MS)
    overdue = await created(http, web, token, sourceId="overdue", dueTime=now - DAY_MS)
    no_due = await created(http, web, token, sourceId="none", dueTime=None)
    finished = await created(http, web, token, sourceId="done", dueTime=now - 2 * DAY_MS)
    await web.set_todo_done(PM, finished["id"])
    status, body = await get(http, web, "/todos", user="liming")
    assert status == 200
    assert [t["id"] for t in body["todos"]] == [overdue["id"], later["id"], no_due["id"], finished["id"]]
    assert [t["dueState"] for t in body["todos"]] == ["overdue", "later", "none", "overdue"]
    assert [t["done"] for t in body["todos"]] == [False, False, False, True]
    first = body["todos"][0]
    assert {k: first[k] for k in ("id", "subject", "dueTime", "done", "detailUrl", "sourceId")} == {
        "id": overdue["id"], "subject": overdue["subject"], "dueTime": now - DAY_MS, "done": False,
        "detailUrl": DETAIL, "sourceId": "overdue"}
    assert first["openUrl"] == DETAIL["pcUrl"] and first["creator"]["name"] == PM and first["app"]["name"] == "项目管家"
    assert body["dueCount"] == 1 and body["fingerprint"] and body["now"] >= now
    assert await web.todo_due_count(ENGINEER) == 1
    # Names work as well as ids. The creator sees them under 我发起的, but his red dot counts only what he executes.
    _, creator = await get(http, web, "/todos", user="王建国")
    assert [t["roles"] for t in creator["todos"]] == [["creator"]] * 4 and creator["dueCount"] == 0
    assert creator["todos"][0]["executors"] == [{"id": "liming", "name": "李明", "initials": "李明"}]
    _, nobody = await get(http, web, "/todos", user="zhaolei")
    assert (nobody["todos"], nobody["dueCount"]) == ([], 0)


async def test_only_web_links_open_from_the_page(web, http, token):
    await created(http, web, token, detailUrl={"appUrl": "dingtalk://dingtalkclient/page/link?url=x",
                                               "pcUrl": "javascript:alert(1)"})
    [todo] = (await get(http, web, "/todos", user="liming"))[1]["todos"]
    assert todo["openUrl"] is None and todo["detailUrl"]["pcUrl"] == "javascript:alert(1)"


async def test_long_poll_answers_when_the_list_changes(web, http, token):
    task = await created(http, web, token)
    _, first = await get(http, web, "/todos", user="liming")
    poll = asyncio.create_task(get(http, web, "/todos", user="liming", fingerprint=first["fingerprint"], wait=20))
    await asyncio.sleep(0)
    assert await web.delete_todo(PM, task["id"]) == "deleted"
    status, answer = await asyncio.wait_for(poll, 10)
    assert status == 200 and answer["todos"] == [] and answer["fingerprint"] != first["fingerprint"]


async def test_long_poll_answers_when_a_todo_falls_due_by_the_emulator_clock(web, http, token):
    noon_in_three_days = start_of_day_ms(web.now_ms()) + 3 * DAY_MS + 12 * HOUR_MS    # China time
    await created(http, web, token, dueTime=noon_in_three_days)
    _, first = await get(http, web, "/todos", user="liming")
    assert first["dueCount"] == 0 and first["todos"][0]["dueState"] == "later"
    poll = asyncio.create_task(get(http, web, "/todos", user="liming", fingerprint=first["fingerprint"], wait=20))
    await web.advance((noon_in_three_days - web.now_ms()) / 1000 - 60)      # 11:59 that day: due today
    status, answer = await asyncio.wait_for(poll, 10)
    assert answer["dueCount"] == 1 and answer["todos"][0]["dueState"] == "today"
    poll = asyncio.create_task(get(http, web, "/todos", user="liming", fingerprint=answer["fingerprint"], wait=20))
    await web.advance(120)
    status, answer = await asyncio.wait_for(poll, 10)
    assert answer["dueCount"] == 1 and answer["todos"][0]["dueState"] == "overdue"


async def test_deleting_in_dingtalk(web, http, token):
    task = await created(http, web, token)
    status, body = await post(http, web, "/todos/delete", {"user": "liming", "id": task["id"]})
    assert status == 200 and body["result"] == "left" and body["todos"] == [] and body["dueCount"] == 0
    assert (await web.todo(task["id"]))["executorIds"] == []               # the task goes on without him
    status, body = await post(http, web, "/todos/delete", {"user": "liming", "id": task["id"]})
    assert status == 400 and "没有这一项" in body["error"]
    status, body = await post(http, web, "/todos/delete", {"user": "wangjianguo", "id": task["id"]})
    assert (status, body["result"]) == (200, "deleted")
    assert await web.todo(task["id"]) is None
    assert [e.event_type for e in web.events()] == ["todo_task_update", "todo_task_delete"]
    for bad, text in (({"user": "liming"}, "请指定要删除的待办"), ({"id": task["id"]}, "请先选择身份"),
                      ({"user": "nobody", "id": "x"}, "未知用户")):
        status, body = await post(http, web, "/todos/delete", bad)
        assert status == 400 and text in body["error"]
    assert len(web.events()) == 2


async def test_workbench_apps_and_homepages(web, http):
    status, body = await get(http, web, "/apps", user="liming")
    assert status == 200 and body["canUse"] is True and body["corpId"] == web.world.corp_id
    assert [(a["name"], a["homepage"], a["launchUrl"]) for a in body["apps"]] == [
        ("项目管家", None, None), ("考勤助手", None, None)]
    status, body = await post(http, web, "/apps/homepage", {"app": "项目管家",
                                                            "url": "http://127.0.0.1:8090/?corpid=$CORPID$"})
    assert status == 200 and body["app"]["homepage"] == "http://127.0.0.1:8090/?corpid=$CORPID$"
    _, body = await get(http, web, "/apps", user="liming")
    assert body["apps"][0]["launchUrl"] == f"http://127.0.0.1:8090/?corpid={web.world.corp_id}&as=liming"
    _, body = await get(http, web, "/apps", user="huanglei")
    assert body["canUse"] is False and body["apps"][0]["launchUrl"] is None
    for bad, text in (({"app": "项目管家", "url": "ftp://x"}, "http://"), ({"app": "不存在", "url": ""}, "未知应用"),
                      ({"url": "http://x"}, "请指定应用"), ({"app": "项目管家"}, "请给出首页地址")):
        status, body = await post(http, web, "/apps/homepage", bad)
        assert status == 400 and text in body["error"]
    # "" removes it again.
    assert (await post(http, web, "/apps/homepage", {"app": web.client_id, "url": ""}))[1]["app"]["homepage"] is None
