"""待办, 工作台 and 工作通知 in headless Chromium: a person's todo list with its red dot, deleting a todo, the
workbench opening an H5 page that gets a 免登 code from the JSAPI stand-in and exchanges it, and the 工作通知 pane.

The H5 app is a tiny aiohttp server run by the test (the bot's 看板 does the same, on its own port): its page loads
the stand-in from the emulator, asks for a code, and its backend exchanges the code with getuserinfo.
Set SANDBOX_WEB_SCREENSHOTS=<dir> to keep screenshots.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from sandbox_helpers import RawStreamClient, new_token
from test_sandbox_todo import DAY_MS, created
from test_web_page import expect, page, pytestmark, shot  # noqa: F401  (Chromium fixture, browser marker)

from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

APP_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>项目看板（测试）</title>
<script src="{jsapi}"></script><script src="/board.js" defer></script></head>
<body data-client-id="{client_id}"><h1>项目看板</h1><p id="platform"></p><p id="who">免登中…</p></body></html>"""

APP_SCRIPT = """
dd.ready(function () {
  document.getElementById("platform").textContent = dd.env.platform;
  dd.requestAuthCode({
    corpId: new URLSearchParams(location.search).get("corpid") || "",
    clientId: document.body.dataset.clientId,
    onSuccess: function (result) {
      fetch("/login", {method: "POST", headers: {"Content-Type": "application/json"},
                       body: JSON.stringify({code: result.code})})
        .then(function (r) { return r.json(); })
        .then(function (user) {
          document.getElementById("who").textContent = "免登成功：" + user.name + "（" + user.userid + "）";
        });
    },
    onFail: function (error) { document.getElementById("who").textContent = "免登失败：" + error.errorCode; },
  });
});
"""


class H5App:
    """A stand-in for the bot's 看板: page + backend exchanging codes; also serves todo detail pages."""

    def __init__(self, sb: Sandbox, http):
        self.sb, self.http = sb, http
        self.logins: list[dict] = []
        self.runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> "H5App":
        app = web.Application()
        app.router.add_get("/", self.home)
        app.router.add_get("/board.js", self.script)
        app.router.add_post("/login", self.login)
        app.router.add_get("/deliverable/{id}", self.deliverable)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()

    async def home(self, request: web.Request) -> web.Response:
        return web.Response(text=APP_PAGE.format(jsapi=self.sb.jsapi_url, client_id=self.sb.client_id),
                            content_type="text/html")

    async def script(self, request: web.Request) -> web.Response:
        return web.Response(text=APP_SCRIPT, content_type="text/javascript")

    async def deliverable(self, request: web.Request) -> web.Response:
        return web.Response(text=f"<!doctype html><meta charset=utf-8><h1>交付物详情 {request.match_info['id']}</h1>",
                            content_type="text/html")

    async def login(self, request: web.Request) -> web.Response:
        code = (await request.json())["code"]
        token = await app_token(self.http, self.sb)
        async with self.http.post(f"{self.sb.base_url}/topapi/v2/user/getuserinfo", params={"access_token": token},
                                  json={"code": code}) as r:
            answer = await r.json()
        self.logins.append(answer)
        return web.json_response(answer.get("result") or {"name": "?", "userid": answer["errcode"]})


@pytest.fixture
async def web_sandbox():
    async with Sandbox(config=EmulatorConfig.for_tests(), seed=16, web=True) as sb:
        yield sb


async def test_todos_red_dot_detail_and_delete(web_sandbox, page, http):  # noqa: F811
    sb = web_sandbox
    errors: list = []
    page.on("pageerror", lambda error: errors.append(error))
    bot = await RawStreamClient(sb, http, auto_ack=True, subscriptions=[{"type": "EVENT", "topic": "*"}]).connect()
    async with H5App(sb, http) as site:
        token = await new_token(http, sb)
        now = sb.now_ms()
        detail = {"appUrl": f"{site.base_url}/deliverable/7?m=1", "pcUrl": f"{site.base_url}/deliverable/7"}
        late = await created(http, sb, token, sourceId="d:7", subject="《接口说明文档》· 智慧工厂MES",
                             dueTime=now - DAY_MS, detailUrl=detail)
        await created(http, sb, token, sourceId="d:8", subject="《上线方案》· 智慧工厂MES", dueTime=now + 7 * DAY_MS)

        await page.goto(f"{sb.page_url}?user=liming")
        await expect(page.locator("#todo-badge")).to_have_text("1")
        await page.locator("#nav-todos").click()
        items = page.locator(".todo")
        await expect(items).to_have_count(2)
        first = items.first
        await expect(first.locator(".todo-subject")).to_have_text("《接口说明文档》· 智慧工厂MES")
        await expect(first.locator(".todo-due")).to_contain_text("已逾期")
        await expect(items.nth(1).locator(".todo-due")).to_contain_text("截止")

        # The bot adds one due in an hour while the page is open: it appears, and the red dot counts it.
        await created(http, sb, token, sourceId="d:9", subject="《周报》· 智慧工厂MES", dueTime=sb.now_ms() + 60_000)
        await expect(items).to_have_count(3)
        await expect(page.locator("#todo-badge")).to_have_text("2")
        await shot(page, "todos")

        # The title opens the detail page in a new tab.
        async with page.expect_popup() as popup_info:
            await first.get_by_role("link", name="《接口说明文档》· 智慧工厂MES").click()
        detail_page = await popup_info.value
        await expect(detail_page.locator("h1")).to_have_text("交付物详情 7")
        assert detail_page.url == detail["pcUrl"]
        await detail_page.close()

        # 李明 deletes it in DingTalk: it leaves his list and the bot hears of it.
        page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await first.get_by_role("button", name="删除待办 《接口说明文档》· 智慧工厂MES").click()
        await expect(items).to_have_count(2)
        await expect(page.locator("#todo-badge")).to_have_text("1")
        frame = await bot.next_of("EVENT")
        assert frame["headers"]["eventType"] == "todo_task_update"
        assert json.loads(frame["data"])["taskId"] == late["id"]
        assert sb.union_id("李明") not in (await sb.todo(late["id"]))["executorIds"]
        await shot(page, "todos-after-delete")

        # The PM who created them finds them under 我发起的, with who executes them; his red dot stays off.
        await page.get_by_label("我是").select_option("wangjianguo")
        await expect(page.locator("#todos-view .todo-none")).to_have_text("没有要你执行的待办")
        await page.get_by_role("tab", name="我发起的").click()
        await expect(items).to_have_count(3)
        await expect(items.filter(has_text="《接口说明文档》")).to_contain_text("无执行人")
        await expect(items.filter(has_text="《上线方案》")).to_contain_text("执行人 李明")
        await expect(page.locator("#todo-badge")).to_be_hidden()
        await shot(page, "todos-creator")
    await bot.close()
    assert errors == []


async def test_workbench_opens_the_app_logged_in(web_sandbox, page, http):  # noqa: F811
    sb = web_sandbox
    errors: list = []
    page.on("pageerror", lambda error: errors.append(error))
    async with H5App(sb, http) as site:
        # The bot registers its homepage when it starts.
        async with http.post(f"{sb.base_url}/sandbox/api/apps/homepage",
                             json={"app": "项目管家", "url": f"{site.base_url}/?corpid=$CORPID$"}) as r:
            assert r.status == 200
        await page.goto(f"{sb.page_url}?user=liuqiang")
        await page.locator("#nav-workbench").click()
        tile = page.get_by_role("link", name="项目管家")
        await expect(tile).to_be_visible()
        await expect(page.locator(".wb-app.is-disabled")).to_contain_text("考勤助手")
        await shot(page, "workbench")
        async with page.expect_popup() as popup_info:
            await tile.click()
        board = await popup_info.value
        await expect(board.locator("#who")).to_have_text("免登成功：刘强（liuqiang）")
        await expect(board.locator("#platform")).to_have_text("pc")
        assert board.url == f"{site.base_url}/?corpid={sb.world.corp_id}&as=liuqiang"
        assert "DingTalk/7.6.0" in await board.evaluate("navigator.userAgent")
        await shot(board, "workbench-h5-login")
        # Later pages of the tab keep the identity without ?as= (the stand-in remembers it for the tab).
        await board.goto(f"{site.base_url}/?corpid={sb.world.corp_id}")
        await expect(board.locator("#who")).to_have_text("免登成功：刘强（liuqiang）")
        assert [login["result"]["userid"] for login in site.logins] == ["liuqiang", "liuqiang"]

        # Opened outside the workbench, the page is not in DingTalk and gets no code.
        outside = await page.context.new_page()
        await outside.goto(f"{site.base_url}/?corpid={sb.world.corp_id}")
        await expect(outside.locator("#who")).to_have_text("免登失败：10001")
        await expect(outside.locator("#platform")).to_have_text("notInDingTalk")
        await outside.close()

        # An external contact has no workbench.
        await page.get_by_label("我是").select_option("huanglei")
        await expect(page.locator("#workbench-view")).to_contain_text("只有本组织的成员能使用工作台应用")
    assert len(site.logins) == 2
    assert errors == []


async def test_work_notices_pane(web_sandbox, page, http):  # noqa: F811
    sb = web_sandbox
    errors: list = []
    page.on("pageerror", lambda error: errors.append(error))
    await page.goto(f"{sb.page_url}?user=liming")
    await expect(page.locator("#user-select")).to_have_value("liming")
    answer = await send_notice(http, sb, {"msgtype": "oa", "oa": {
        "message_url": "http://127.0.0.1:9/m", "pc_message_url": "http://127.0.0.1:9/pc",
        "head": {"bgcolor": "FFBBBBBB", "text": "项目管家"}, "status_bar": {"status_value": "待提交"},
        "body": {"title": "交付物即将到期", "form": [{"key": "项目：", "value": "智慧工厂MES"},
                                                    {"key": "交付物：", "value": "《接口说明文档》"}],
                 "content": "<b>请在周五前提交</b>"}}})
    await expect(page.locator("#notice-badge")).to_have_text("1")
    await page.locator("#nav-notices").click()
    card = page.locator(".nt").first
    await expect(card.locator(".nt-title")).to_have_text("交付物即将到期")
    await expect(card.locator(".nt-form")).to_contain_text("《接口说明文档》")
    await expect(card.locator(".nt-body")).to_have_text("<b>请在周五前提交</b>")      # text, never markup
    await expect(card.get_by_role("link", name="查看详情")).to_have_attribute("href", "http://127.0.0.1:9/pc")
    await expect(page.locator("#notice-badge")).to_be_hidden()                         # opening the pane read it
    await shot(page, "work-notices")
    async with http.post(f"{sb.base_url}/topapi/message/corpconversation/getsendresult",
                         params={"access_token": await app_token(http, sb)},
                         json={"agent_id": sb.app.agent_id, "task_id": answer["task_id"]}) as r:
        assert (await r.json())["send_result"]["read_user_id_list"] == ["liming"]
    assert errors == []


async def app_token(http, sb: Sandbox) -> str:
    async with http.get(f"{sb.base_url}/gettoken", params={"appkey": sb.client_id,
                                                           "appsecret": sb.client_secret}) as r:
        return (await r.json())["access_token"]


async def send_notice(http, sb: Sandbox, msg: dict) -> dict:
    async with http.post(f"{sb.base_url}/topapi/message/corpconversation/asyncsend_v2",
                         params={"access_token": await app_token(http, sb)},
                         json={"agent_id": sb.app.agent_id, "userid_list": "liming", "msg": msg}) as r:
        answer = await r.json()
        assert answer["errcode"] == 0, answer
        return answer
