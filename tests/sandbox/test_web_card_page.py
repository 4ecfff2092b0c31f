"""Cards on the web page in headless Chromium: the pinned card, presses as the chosen person, live updates.

A small stand-in bot (the raw Stream client) answers card callbacks the way the real bot
will: a card update in the ACK, and for 关闭 a call of the close API.
Set SANDBOX_WEB_SCREENSHOTS=<dir> to keep the screenshots.
"""

from __future__ import annotations

import json

import pytest
from card_helpers import (CARD_TOPIC, CARDS_DIR, CREATE_AND_DELIVER, INSTANCES, INTERNAL_GROUP, call,
                          group_card, pin_card)
from sandbox_helpers import StandInBot, new_token
from test_web_page import expect, page, pytestmark, shot  # noqa: F401  (the browser fixture, marks and helpers)

from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox


@pytest.fixture
async def card_sandbox():
    async with Sandbox(config=EmulatorConfig.for_tests(card_templates_dir=CARDS_DIR), seed=7, web=True) as sb:
        yield sb


class CardBot(StandInBot):
    """ACKs card callbacks with the update the real bot would return."""

    def __init__(self, sb: Sandbox, http, token: str):
        super().__init__(sb, http, [CARD_TOPIC])
        self.sb, self.token = sb, token
        self.actions: list[tuple[str, str]] = []

    async def handle(self, frame: dict) -> None:
        data = json.loads(frame["data"])
        params = json.loads(data["content"])["cardPrivateData"]["params"]
        self.actions.append((data["userId"], params["action"]))
        response = None
        if params["action"] == "advance":
            response = {"cardUpdateOptions": {"updatePrivateDataByKey": True},
                        "userPrivateData": {"cardParamMap": {"advanceRequested": "true"}}}
        elif params["action"] == "question":
            response = {"cardUpdateOptions": {"updateCardDataByKey": True}, "cardData": {"cardParamMap": {
                "ackStatus": "question", "ackLabel": "有疑问", "ackColor": "red", "ackBy": "黄蕾",
                "question": params["question"]}}}
        elif params["action"] == "close_status":
            # A close button is a request callback whose handler calls the close API (P2 §1.7).
            status, _ = await call(self.http, self.sb, self.token, "POST", "/v1.0/card/tops/close", params={
                "outTrackId": data["outTrackId"], "openConversationId": data["spaceId"]})
            assert status == 200
        await self.client.ack(frame, data=json.dumps({"response": response}))


async def test_pinned_card_and_presses_in_the_browser(card_sandbox, page, http):
    sb = card_sandbox
    errors: list = []
    page.on("pageerror", lambda error: errors.append(error))
    token = await new_token(http, sb)
    status, answer = await call(http, sb, token, "POST", CREATE_AND_DELIVER, pin_card(
        sb, "status:P-001", privateData={"wangjianguo": {"cardParamMap": {"canAdvance": "true"}}}))
    assert status == 200, answer
    async with CardBot(sb, http, token) as bot:
        await page.goto(sb.page_url + "?user=wangjianguo")
        await page.locator(".conv", has_text=INTERNAL_GROUP).click()
        top = page.locator("#top-card")
        await expect(top.locator(".topcard-title")).to_have_text("智慧工厂MES · 项目状态")
        await expect(top.locator(".icard-status")).to_have_text("预警")
        await expect(top.locator(".icard-fields")).to_contain_text("进度42%")
        await expect(top.locator(".icard-list li")).to_have_count(2)
        await expect(top.get_by_role("button", name="推进")).to_be_enabled()
        await expect(top.get_by_role("button", name="关闭吊顶卡片")).to_be_visible()
        await shot(page, "card-pinned")

        # The PM presses 推进: the bot's answer (private data) disables it for him, with the toast.
        await top.get_by_role("button", name="推进").click()
        await expect(page.locator("#toast")).to_have_text("已发起阶段推进审批")
        await expect(top.get_by_role("button", name="推进")).to_be_disabled()
        assert bot.actions == [("wangjianguo", "advance")]
        await shot(page, "card-pressed")

        # The bot updates the card through the API: the page redraws it live.
        await call(http, sb, token, "PUT", INSTANCES, {"outTrackId": "status:P-001", "cardUpdateOptions": {
            "updateCardDataByKey": True}, "cardData": {"cardParamMap": {"progress": "60", "health": "正常",
                                                                        "healthColor": "green"}}})
        await expect(top.locator(".icard-fields")).to_contain_text("进度60%")
        await expect(top.locator(".icard-status")).to_have_text("正常")

        # A leader sees the same pinned card, without the PM's private button.
        await page.get_by_label("我是").select_option("liuqiang")
        await expect(top.locator(".topcard-title")).to_have_text("智慧工厂MES · 项目状态")
        await expect(top.get_by_role("button", name="推进")).to_have_count(0)
        await top.get_by_role("button", name="收起").click()
        await expect(top.locator(".topcard-summary")).to_contain_text("阶段 实施 · 进度 60%")
        await expect(top.locator(".bubble--icard")).to_have_count(0)

        # The client contact asks a question through the weekly report card's input.
        await call(http, sb, token, "POST", CREATE_AND_DELIVER, group_card(sb, "report:R-15"))
        await page.get_by_label("我是").select_option("huanglei")
        card = page.locator(".msg--bot .bubble--icard")
        await expect(card.locator(".icard-title")).to_have_text("智慧工厂MES · 2026-W15 周报")
        await card.get_by_role("button", name="有疑问").click()
        await expect(page.locator("#toast")).to_have_text("请填写「疑问」")
        await card.get_by_placeholder("有疑问请写在这里").fill("第3项为何延期？")
        await card.get_by_role("button", name="有疑问").click()
        await expect(page.locator("#toast")).to_have_text("问题已提交，项目经理会尽快答复")
        await expect(card.locator(".icard-status")).to_have_text("有疑问")
        await expect(card.locator(".icard-btn")).to_have_count(0)
        await expect(card.locator(".icard-fields")).to_contain_text("第3项为何延期？")
        assert (await sb.card("report:R-15")).data["question"] == "第3项为何延期？"
        await shot(page, "card-client-question")

        # The PM closes the pinned card with ×: the bot closes it, it leaves everyone's page.
        await page.get_by_label("我是").select_option("wangjianguo")
        await page.locator(".conv", has_text=INTERNAL_GROUP).click()
        await top.get_by_role("button", name="关闭吊顶卡片").click()
        await expect(top).to_be_hidden()
        assert await sb.top_card(INTERNAL_GROUP) is None
        assert bot.actions[-1] == ("wangjianguo", "close_status")
    assert errors == []
