"""The web chat page in headless Chromium: chat with a bot, files both ways, an approval.

The real bot does not exist yet, so a tiny responder (the raw Stream client) stands in:
it connects to the emulator's gateway, ACKs each callback and answers through the
session webhook with markdown. Set SANDBOX_WEB_SCREENSHOTS=<dir> to keep screenshots.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from sandbox_helpers import BOT_TOPIC, CLIENT_GROUP, INTERNAL_GROUP, RawStreamClient, StandInBot, new_api, new_token, upload

from sandbox.config import EmulatorConfig
from sandbox.custom_robots import signed_url
from sandbox.harness import Sandbox
from sandbox.world import World

CHROMIUM = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium at /usr/bin/chromium or on PATH "
                                                "(apt-get install chromium); the page test needs a browser"),
]

playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
expect = playwright_api.expect


@pytest.fixture
async def web_sandbox():
    # Files in groups on, as `python -m sandbox` runs the page by default.
    async with Sandbox(config=EmulatorConfig.for_tests(allow_group_files=True), seed=7, web=True) as sb:
        yield sb


@pytest.fixture
async def page():
    expect.set_options(timeout=TIMEOUT_MS)
    async with playwright_api.async_playwright() as pw:
        with tempfile.TemporaryDirectory(prefix="sandbox-web-profile-") as profile:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, locale="zh-CN",
                viewport={"width": 1280, "height": 820}, accept_downloads=True)
            context.set_default_timeout(TIMEOUT_MS)
            try:
                yield context.pages[0] if context.pages else await context.new_page()
            finally:
                await context.close()


class Responder(StandInBot):
    """A stand-in bot: ACK every callback, answer in markdown through the session webhook."""

    def __init__(self, sb: Sandbox, http):
        super().__init__(sb, http, [BOT_TOPIC])
        self.received: list[dict] = []

    async def handle(self, frame: dict) -> None:
        await self.client.ack(frame)
        data = json.loads(frame["data"])
        self.received.append(data)
        asked = (data.get("text") or {}).get("content", "").strip() or data.get("msgtype")
        body = {"msgtype": "markdown", "markdown": {
            "title": "收到", "text": f"**已收到**：{asked}\n\n- 第一项\n- 第二项 `code`"}}
        async with self.http.post(data["sessionWebhook"], json=body) as resp:
            assert (await resp.json())["errcode"] == 0


async def shot(page, name: str) -> None:
    target = os.environ.get("SANDBOX_WEB_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(target) / f"{name}.png"))


async def test_chat_files_and_approval_in_the_browser(web_sandbox, page, http):
    sb = web_sandbox
    errors: list = []
    page.on("pageerror", lambda error: errors.append(error))
    async with Responder(sb, http) as bot:
        await page.goto(sb.page_url)
        # Who am I, and where: an engineer in the internal project group.
        await page.get_by_label("我是").select_option("liming")
        await expect(page.locator("#me-title")).to_have_text("交付中心")
        await page.locator(".conv", has_text=INTERNAL_GROUP).click()
        await expect(page.locator("#chat-title")).to_have_text(INTERNAL_GROUP)

        # Type, @ a colleague through the picker (keyboard), Enter sends as an @ of the bot.
        box = page.get_by_label("输入消息")
        await box.press_sequentially("本周进度 @赵")
        await expect(page.locator("#mention-picker .mention-item")).to_have_count(1)
        await box.press("Enter")
        await expect(box).to_have_value("本周进度 @赵磊 ")
        await box.press_sequentially("请看")
        await box.press("Enter")

        mine = page.locator(".msg--mine .bubble--text").last
        await expect(mine).to_contain_text("@项目管家 本周进度 @赵磊 请看")
        await expect(mine.locator(".mention")).to_have_count(2)
        # The bot's markdown reply arrives live and is rendered.
        reply = page.locator(".msg--bot .bubble--markdown").last
        await expect(reply.locator("strong")).to_have_text("已收到")
        await expect(reply.locator("li")).to_have_count(2)
        await expect(reply.locator("code")).to_have_text("code")
        await expect(page.locator(".msg--bot .msg-name").last).to_have_text("项目管家")
        payload = bot.received[0]
        assert payload["conversationType"] == "2" and payload["senderStaffId"] == "liming"
        assert payload["text"]["content"].strip() == "本周进度 @赵磊 请看"
        assert {"dingtalkId": sb.world.user("赵磊").dingtalk_id, "staffId": "zhaolei"} in payload["atUsers"]

        # The bot sends a .docx through the robot API: a file card whose link downloads it.
        docx = b"PK\x03\x04" + b"x" * 1200    # 1 204 bytes: shown as 1.2 KB
        token = await new_token(http, sb)
        media_id = (await upload(http, sb, token, "file", "周报.docx", docx))["media_id"]
        status, body = await new_api(http, sb, "POST", "/v1.0/robot/groupMessages/send", token, json_body={
            "msgKey": "sampleFile", "robotCode": sb.robot_code, "openConversationId": sb.conversation_id(INTERNAL_GROUP),
            "msgParam": json.dumps({"mediaId": media_id, "fileName": "周报.docx", "fileType": "docx"})})
        assert status == 200, body
        card = page.locator(".msg--bot .bubble--file").last
        await expect(card.locator(".file-name")).to_have_text("周报.docx")
        await expect(card.locator(".file-size")).to_have_text("1.2 KB")
        async with page.expect_download() as download_info:
            await card.get_by_role("link", name="下载 周报.docx").click()
        download = await download_info.value
        assert download.suggested_filename == "周报.docx"
        assert Path(await download.path()).read_bytes() == docx

        # A deliverable from the page into the group (allowed in this sandbox).
        deliverable = b"%PDF-1.4 acceptance report"
        await page.locator("#file-input").set_input_files(
            files=[{"name": "验收报告.pdf", "mimeType": "application/pdf", "buffer": deliverable}])
        await expect(page.locator(".msg--mine .bubble--file .file-name").last).to_have_text("验收报告.pdf")
        sent_file = sb.received(INTERNAL_GROUP)[-1]
        assert sent_file.msgtype == "file" and sent_file.media.data == deliverable
        await expect(page.locator(".msg--bot .bubble--markdown strong")).to_have_count(2)
        await shot(page, "chat")

    # A leader's approvals inbox: the task appears live, is approved with a remark.
    await page.get_by_label("我是").select_option("liuqiang")
    await page.locator("#nav-approvals").click()
    await expect(page.locator(".ap-none")).to_have_text("没有待处理的审批")
    token = await new_token(http, sb)
    status, body = await new_api(http, sb, "POST", "/v1.0/workflow/forms", token, json_body={
        "name": "项目阶段验收审批", "formComponents": [
            {"componentType": "TextField", "props": {"componentId": "TextField_1", "label": "项目名称", "required": True}},
            {"componentType": "DDSelectField", "props": {"componentId": "DDSelectField_1", "label": "阶段",
                                                         "options": [{"key": "a", "value": "上线"}]}},
            {"componentType": "TextareaField", "props": {"componentId": "TextareaField_1", "label": "说明"}}]})
    assert status == 200, body
    status, body = await new_api(http, sb, "POST", "/v1.0/workflow/processInstances", token, json_body={
        "processCode": body["result"]["processCode"], "originatorUserId": "wangjianguo",
        "approvers": [{"actionType": "NONE", "userIds": ["liuqiang"]}],
        "formComponentValues": [{"name": "项目名称", "value": "智慧工厂MES"}, {"name": "阶段", "value": "上线"},
                                {"name": "说明", "value": "上线阶段交付物已齐全，申请验收。"}]})
    assert status == 200, body
    instance_id = body["instanceId"]

    item = page.locator(".ap-item", has_text="王建国提交的项目阶段验收审批")
    await expect(item).to_be_visible()
    await expect(page.locator("#approval-badge")).to_have_text("1")
    await item.click()
    detail = page.locator(".ap-card")
    await expect(detail.locator(".ap-form")).to_contain_text("智慧工厂MES")
    await expect(detail.locator(".status")).to_have_text("审批中")
    await page.get_by_label("审批意见").fill("资料齐全，同意验收")
    await shot(page, "approvals")
    await detail.get_by_role("button", name="同意").click()

    await expect(detail.locator(".status")).to_have_text("已同意")
    await expect(detail.locator(".tl-remark")).to_have_text("资料齐全，同意验收")
    await expect(page.locator(".ap-tab.is-active")).to_have_text("我已处理")
    await expect(page.locator("#approval-badge")).to_be_hidden()
    instance = await sb.instance(instance_id)
    assert (instance["status"], instance["result"]) == ("COMPLETED", "agree")
    assert instance["operationRecords"][-1]["remark"] == "资料齐全，同意验收"
    await shot(page, "approvals-done")
    assert errors == []


async def test_markdown_renderer_is_safe_and_complete(web_sandbox, page):
    await page.goto(web_sandbox.page_url)
    await expect(page.locator("#user-select option")).not_to_have_count(0)
    render = """async (src) => (await import('/sandbox/static/markdown.js')).renderMarkdown(src)"""
    html = await page.evaluate(render, "# 标题\n\n**粗** *斜* `a<b`\n第二行\n\n1. 一\n2. 二\n   - 子项\n\n"
                                       "[链接](https://example.com/x?a=1&b=2) ![图](@lADPmedia)\n\n> 引用")
    assert "<h1>标题</h1>" in html
    assert "<strong>粗</strong> <em>斜</em> <code>a&lt;b</code><br>第二行" in html
    assert "<ol><li>一</li><li>二<ul><li>子项</li></ul></li></ol>" in html
    assert 'href="https://example.com/x?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">链接</a>' in html
    assert 'src="/sandbox/api/media?id=%40lADPmedia"' in html
    assert "<blockquote><p>引用</p></blockquote>" in html
    evil = await page.evaluate(render, '<img src=x onerror=alert(1)> <script>alert(1)</script> '
                                       '[x](javascript:alert(1)) ![y](data:text/html,<b>) '
                                       '[q](https://a.com/"onmouseover="alert(1)) <font color="red;x:expression(1)">f</font>')
    # Only our own tags survive: no script, no event handler, no unsafe URL, no style injection.
    assert "<img" not in evil and "<script" not in evil and "<span style" not in evil
    assert "javascript:" not in evil and 'href="data:' not in evil and 'onmouseover="' not in evil
    assert "&lt;script&gt;" in evil
    # dtmd:// links turn into "send this text" actions instead of navigation.
    link = await page.evaluate(render, "[确认](dtmd://dingtalkclient/sendMessage?content=%E7%A1%AE%E8%AE%A4)")
    assert 'class="md-send" data-send="确认"' in link


async def test_client_contact_mentions_with_the_picker_and_a_custom_robot_is_drawn(web_sandbox, page, http):
    sb = web_sandbox
    errors: list = []
    page.on("pageerror", lambda error: errors.append(error))
    async with Responder(sb, http) as bot:
        await page.goto(sb.page_url)
        # A client contact of the client's organization, labelled with it in the chooser.
        chooser = page.get_by_label("我是")
        await expect(chooser.locator("option[value=huanglei]")).to_have_text("黄蕾（华东某制造集团·客户方信息部主任）")
        await expect(chooser.locator("option[value=xuqing]")).to_have_text("许晴（个人用户·监理顾问）")
        await chooser.select_option("huanglei")
        await expect(page.locator("#me-title")).to_have_text("华东某制造集团")
        await expect(page.locator(".conv")).to_have_count(1)
        await page.locator(".conv", has_text=CLIENT_GROUP).click()
        await expect(page.locator("#chat-sub")).to_contain_text("7 人 · 外部群（含客户）")

        # @ another outsider and an insider through the picker; the outsider shows her organization.
        box = page.get_by_label("输入消息")
        await box.press_sequentially("请 @高")
        item = page.locator("#mention-picker .mention-item")
        await expect(item).to_have_count(1)
        await expect(item.locator(".org-tag")).to_have_text("华东某制造集团")
        await shot(page, "client-picker")
        await box.press("Enter")
        await box.press_sequentially("和 @王")
        await expect(item).to_have_count(1)
        await item.first.dispatch_event("mousedown")
        await box.press_sequentially("确认上线排期")
        await expect(box).to_have_value("请 @高翔 和 @王建国 确认上线排期")
        await box.press("Enter")

        mine = page.locator(".msg--mine .bubble--text").last
        await expect(mine).to_contain_text("@项目管家 请 @高翔 和 @王建国 确认上线排期")
        await expect(mine.locator(".mention")).to_have_count(3)
        await expect(page.locator(".msg--bot .bubble--markdown strong").last).to_have_text("已收到")
        payload = bot.received[-1]
        assert "senderStaffId" not in payload and payload["senderCorpId"] == "dingc1e2n7t0a9b8c3d4"
        assert payload["senderUnionId"] == sb.world.user("黄蕾").union_id and payload["isAdmin"] is False
        assert payload["atUsers"][1:] == [{"dingtalkId": sb.world.user("高翔").dingtalk_id},
                                          {"dingtalkId": sb.world.user("王建国").dingtalk_id, "staffId": "wangjianguo"}]

    # The app's robot refused in external groups; the weekly report comes through a custom robot.
    sb.refuse_app_robots_in_external_groups()
    robot = await sb.add_custom_robot(CLIENT_GROUP, "项目周报")
    markdown = ("## 智慧工厂MES项目 第 12 周周报\n\n- 本周完成：上线试运行\n- 下周计划：验收准备\n\n"
                "[下载周报（.docx）](https://bot.example/reports/w12.docx?sig=abc)")
    answer = await (await http.post(signed_url(robot.webhook, robot.secret, sb.now_ms()), json={
        "msgtype": "markdown", "markdown": {"title": "第 12 周周报", "text": markdown}})).json()
    assert answer == {"errcode": 0, "errmsg": "ok"}
    drawn = page.locator(".msg--bot", has=page.locator(".msg-name", has_text="项目周报"))
    await expect(drawn.locator(".bot-tag")).to_have_text("机器人")
    await expect(drawn.locator("h2")).to_have_text("智慧工厂MES项目 第 12 周周报")
    await expect(drawn.get_by_role("link", name="下载周报（.docx）")).to_have_attribute(
        "href", "https://bot.example/reports/w12.docx?sig=abc")
    await shot(page, "client-group-custom-robot")

    # Reopened as the other client contact: no @机器人 toggle, a note, and her message never reaches the bot.
    await page.goto(f"{sb.page_url}?user=gaoxiang")
    await expect(page.locator("#chat-sub")).to_contain_text("群机器人「项目管家」不可用（外部群）")
    await expect(page.locator("#chat-sub")).to_contain_text("自定义机器人「项目周报」")
    await expect(page.locator("#at-bot-wrap")).to_be_hidden()
    await expect(page.locator("#composer-note")).to_have_text("应用机器人不能在外部群中（模拟器开关），这里的消息它收不到")
    box = page.get_by_label("输入消息")
    await box.press_sequentially("@")
    await expect(page.locator("#mention-picker .mention-item")).to_have_count(6)      # members only, no robot
    await box.press("Escape")
    await box.fill("收到，谢谢")
    await box.press("Enter")
    await expect(page.locator(".msg--mine .note-warn").last).to_have_text("应用机器人不在此外部群，收不到")
    assert sb.received(CLIENT_GROUP)[-1].delivered is False
    await shot(page, "client-group-refused")
    assert errors == []


async def test_the_picker_tells_two_people_of_the_same_name_apart(page, http):
    world = World.load()
    group = world.group(INTERNAL_GROUP)
    world.groups[group.conversation_id] = replace(group, member_ids=group.member_ids + ("zhangwei", "zhangwei.sales"))
    async with Sandbox(world, seed=9, web=True) as sb:
        await page.goto(f"{sb.page_url}?user=wangjianguo")
        await page.locator(".conv", has_text=INTERNAL_GROUP).click()
        box = page.get_by_label("输入消息")
        await box.press_sequentially("@张伟")
        items = page.locator("#mention-picker .mention-item")
        await expect(items).to_have_count(2)
        await expect(items.locator(".mention-title")).to_have_text(["测试组·测试工程师", "销售部·售前顾问"])
        await shot(page, "picker-same-name-open")
        await items.nth(1).dispatch_event("mousedown")
        await box.press_sequentially("报价单请过目")
        await box.press("Enter")
        await expect(page.locator(".msg--mine .bubble--text").last).to_contain_text("@张伟 报价单请过目")
        received = sb.received(INTERNAL_GROUP)[-1]
        assert [a.get("staffId") for a in received.payload["atUsers"]] == [None, "zhangwei.sales"]
        await shot(page, "picker-same-name")
