"""The sandbox page with the real bot, in headless Chromium: the internal group's pinned status card is drawn at
the top, its buttons act as the chosen person, and the bot's answer shows (a list in the chat, a refusal on the
card for the presser alone). Set SANDBOX_WEB_SCREENSHOTS=<dir> to keep the screenshots."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cards_chat import cards_emulator_config, settled, start_cards_app
from lifecycle_chat import CLIENT, INTERNAL, PM, LifecycleChat, create_project
from sandbox.harness import Sandbox
from tests.browser import browser_marks, chromium_context, shot

pytestmark = browser_marks


async def test_the_page_draws_the_pinned_card_and_its_buttons_work(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with Sandbox(config=cards_emulator_config(), seed=20240601, web=True) as sandbox:
        app = await start_cards_app(sandbox, tmp_path)
        try:
            chat = LifecycleChat(sandbox, app, tmp_path / "files")
            code = await create_project(chat, "软件", "智慧工厂MES")
            await settled(app)
            async with chromium_context() as context:
                page = await context.new_page()
                errors: list = []
                page.on("pageerror", lambda error: errors.append(error))
                await page.goto(sandbox.page_url + "?user=liming")  # 李明, an engineer
                await page.locator(".conv", has_text=INTERNAL).click()
                top = page.locator("#top-card")
                await expect(top.locator(".topcard-title")).to_have_text(f"智慧工厂MES（{code}） · 项目状态")
                await expect(top.locator(".icard-fields")).to_contain_text("阶段启动")
                await expect(top.locator(".icard-list li")).to_have_count(3)
                await shot(page, "status-card-pinned")

                # 交付物: the list arrives in the chat, as if typed.
                await top.get_by_role("button", name="交付物").click()
                await expect(page.locator(".msg").last).to_contain_text("交付物")
                await shot(page, "status-card-deliverables-pressed")

                # 推进, by an engineer: refused on the card, for him alone.
                await top.get_by_role("button", name="推进").click()
                await expect(top.locator(".icard-fields")).to_contain_text("项目经理")
                await shot(page, "status-card-advance-refused")
                assert errors == []
        finally:
            await asyncio.wait_for(app.stop(), 30)


async def test_the_client_confirms_the_weekly_report_on_the_page(tmp_path: Path) -> None:
    from playwright.async_api import expect

    async with Sandbox(config=cards_emulator_config(), seed=20240601, web=True) as sandbox:
        app = await start_cards_app(sandbox, tmp_path)
        try:
            chat = LifecycleChat(sandbox, app, tmp_path / "files")
            await create_project(chat, "软件", "智慧工厂MES")
            assert "已立项" in (await chat.ask(PM, INTERNAL, "立项")).text
            await chat.ask(PM, INTERNAL, "周报 发送", replies=3)
            await asyncio.wait_for(app.scheduler.wait_idle(), 60)
            await settled(app)
            async with chromium_context() as context:
                page = await context.new_page()
                await page.goto(sandbox.page_url + "?user=huanglei")  # 黄蕾, the client
                await page.locator(".conv", has_text=CLIENT).click()
                card = page.locator(".bubble--icard", has_text="周报").last
                await expect(card.locator(".icard-status")).to_have_text("待确认")
                await shot(page, "weekly-report-card")
                await card.get_by_role("button", name="确认已阅").click()
                await expect(page.locator("#toast")).to_have_text("已确认，谢谢")
                await expect(card.locator(".icard-status")).to_have_text("已确认")
                await expect(card.locator(".icard-fields")).to_contain_text("黄蕾")
                await shot(page, "weekly-report-card-confirmed")
            await settled(app)
            # Answered on the card alone: nothing said in the client group after the card and its file.
            assert [m.msgtype for m in sandbox.sent(CLIENT)][-2:] == ["interactiveCard", "file"]
        finally:
            await asyncio.wait_for(app.stop(), 30)
