"""The 看板 in headless Chromium, signed in through the emulator's JSAPI stand-in exactly as a workbench launch does
(``?as=<userId>``: the stand-in mints a 免登 code, the page posts it, the server exchanges it with getuserinfo):

* a leader: every project, worst first, the charts, a filter, a project with its Gantt chart and registers;
* a PM: their projects only, a project's approvals, weekly reports and documents;
* an engineer outside a project: not in their list, and "not found" by URL;
* the sandbox as ``dingpm sandbox`` runs it: the chat page's 工作台 opens the 看板 as the chosen person.

Screenshots (phone 390 px and desktop) go to SANDBOX_WEB_SCREENSHOTS when it is set.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.sandbox_mode import start_sandbox_app
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from tests.browser import PHONE, browser_marks, chromium_context, shot
from tests.web.world import ERP, MES, SCRIPT, WAREHOUSE

pytestmark = [*browser_marks, pytest.mark.timeout(120)]
expect = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed").expect


@pytest.fixture
async def browser_page():
    async with chromium_context() as context:
        page = context.pages[0] if context.pages else await context.new_page()
        errors: list = []
        page.on("pageerror", lambda error: errors.append(error))
        yield page
    assert errors == []


async def on_a_phone(page, name: str) -> None:
    """The page at a phone's width: nothing wider than the screen (no sideways scrolling), then its screenshot."""
    await page.set_viewport_size(PHONE)
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    await shot(page, name)


async def open_as(page, site, user_id: str, path: str = "/") -> None:
    """Open the 看板 the way the workbench launches it for ``user_id``; the page signs itself in."""
    await page.goto(site.at(path) + f"?as={user_id}")
    await expect(page.locator(".who-name")).to_be_visible()


async def test_a_leader_sees_every_project_worst_first(start_site, browser_page):
    site, page = await start_site(), browser_page
    await open_as(page, site, "liuqiang")
    await expect(page.locator(".who-name")).to_have_text("刘强")
    rows = page.locator("table.projects tbody tr")
    await expect(rows).to_have_count(4)
    await expect(rows.first).to_contain_text(MES)
    await expect(rows.first.locator(".health")).to_have_text("延期")
    await expect(rows.first).to_contain_text("交付物最长逾期 16 个工作日")
    for chart in await page.locator(".charts img").all():  # drawn by the server, loaded
        await expect(chart).to_have_js_property("complete", True)
        assert await chart.evaluate("img => img.naturalWidth") > 300
    await shot(page, "dashboard-leader-portfolio-desktop")
    await on_a_phone(page, "dashboard-leader-portfolio-phone")

    # A choice in a filter applies at once (progressive JavaScript); the URL says what is shown.
    await page.set_viewport_size({"width": 1280, "height": 820})
    await page.get_by_label("状态颜色").select_option("正常")
    await expect(page).to_have_url(re.compile(r"health=%E6%AD%A3%E5%B8%B8"))
    await expect(rows).to_have_count(3)  # ERP, the closed one, and the paused one (its clock is stopped)
    await expect(page.locator(".filter-actions")).to_contain_text("清除条件")

    await page.get_by_role("link", name="清除条件").click()
    await page.get_by_role("link", name=f"{MES} 智慧工厂MES").click()
    await expect(page.locator(".project-head h1")).to_contain_text("智慧工厂MES")
    gantt = page.get_by_alt_text("项目阶段计划与实际进度（甘特图）")
    await expect(gantt).to_have_js_property("complete", True)
    assert await gantt.evaluate("img => img.naturalWidth") > 500
    await expect(page.locator(".deliverable.is-late")).to_have_count(2)
    await shot(page, "dashboard-leader-project-desktop")
    await on_a_phone(page, "dashboard-leader-project-phone")

    await page.get_by_role("link", name="登记簿").click()
    await page.set_viewport_size({"width": 1280, "height": 820})
    table = page.locator("table.register")
    await expect(table).to_contain_text(SCRIPT)  # shown as typed, never run (the page would have thrown)
    await expect(table.locator("script")).to_have_count(0)
    await on_a_phone(page, "dashboard-leader-registers-phone")


async def test_a_pm_sees_their_projects_approvals_and_reports(start_site, browser_page):
    site, page = await start_site(), browser_page
    await open_as(page, site, "wangjianguo")
    rows = page.locator("table.projects tbody tr")
    await expect(rows).to_have_count(3)
    await expect(page.locator("table.projects")).not_to_contain_text(ERP)
    await shot(page, "dashboard-pm-portfolio-desktop")

    await page.goto(site.at(f"/p/{MES}/approvals"))
    approvals = page.locator(".approval")
    await expect(approvals).to_have_count(2)
    await expect(approvals.first).to_contain_text("审批中")  # the newest first
    await expect(approvals.nth(1).locator(".steps li")).to_have_count(3)  # 发起, then each leader's 同意
    await expect(approvals.nth(1).locator(".steps")).to_contain_text("刘强 同意")
    await on_a_phone(page, "dashboard-pm-approvals-phone")
    await page.set_viewport_size({"width": 1280, "height": 820})
    await page.get_by_role("link", name="周报与文档").click()
    await expect(page.locator("table.plain tbody tr")).to_have_count(2)  # both variants of week 45
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="项目立项申请表").click()
    download = await download_info.value
    assert download.suggested_filename == f"项目立项申请表_{MES}.docx"
    assert Path(await download.path()).read_bytes().startswith(b"PK")
    await page.get_by_role("link", name="查看").first.click()
    await expect(page.locator(".report-body strong")).to_have_text("本周完成")
    await on_a_phone(page, "dashboard-pm-weekly-report-phone")


async def test_an_engineer_outside_a_project_cannot_open_it(start_site, browser_page):
    site, page = await start_site(), browser_page
    await open_as(page, site, "liming")
    rows = page.locator("table.projects tbody tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("table.projects")).to_contain_text(WAREHOUSE)
    await expect(page.locator("table.projects")).not_to_contain_text(ERP)
    response = await page.goto(site.at(f"/p/{ERP}"))
    assert response.status == 404
    await expect(page.locator(".error h1")).to_have_text("找不到页面")
    await expect(page.locator(".error-message")).to_have_text("项目不存在，或者你不是这个项目的成员。")
    await on_a_phone(page, "dashboard-engineer-not-a-member-phone")


async def test_outside_dingtalk_the_page_says_where_to_open_it(start_site, browser_page):
    site, page = await start_site(), browser_page
    await page.goto(site.url)
    await expect(page.locator("#sign-in-status")).to_have_text("请在钉钉里打开：工作台 → 项目看板。")
    await shot(page, "dashboard-outside-dingtalk", full_page=False)


INTERNAL = "【智慧工厂MES项目】内部群"
CLIENT = "【智慧工厂MES项目】客户沟通群"


async def ask(sb: Sandbox, user: str, conversation: str, text: str, *, mentions: tuple[str, ...] = ()) -> str:
    await sb.say(user, conversation, text, mentions=mentions)
    return (await sb.next_message(conversation, timeout=20)).text or ""


async def test_the_chat_pages_workbench_opens_the_dashboard_as_the_chosen_person(tmp_path, browser_page):
    page = browser_page
    async with Sandbox(config=EmulatorConfig.for_tests(allow_group_files=True), seed=17, web=True) as sb:
        app = await start_sandbox_app(sb, tmp_path / "sandbox")
        try:
            created = await ask(sb, "王建国", INTERNAL, "新建项目 智慧工厂MES 客户:华东某制造集团 类型:软件 经理:@王建国",
                                mentions=("wangjianguo",))
            assert "已新建项目 XM-" in created, created
            code = created.split("已新建项目 ")[1].split()[0]
            assert "内部群" in await ask(sb, "王建国", INTERNAL, f"绑定 {code} 内部群")
            added = await ask(sb, "王建国", INTERNAL, "成员 添加 @李明 实施工程师", mentions=("liming",))
            assert "李明" in added, added

            await page.goto(f"{sb.page_url}?user=liuqiang")
            await page.locator("#nav-workbench").click()
            async with page.expect_popup() as popup_info:
                await page.get_by_role("link", name="项目管家").click()
            board = await popup_info.value
            await expect(board.locator(".who-name")).to_have_text("刘强")
            await expect(board.locator("table.projects")).to_contain_text(code)
            assert board.url.startswith(app.dashboard.url)
            for chart in await board.locator(".charts img").all():
                await expect(chart).to_have_js_property("complete", True)
            await shot(board, "dashboard-from-workbench-leader")

            # Another person chosen on the chat page: the workbench opens the 看板 as them, not as the last one.
            await page.get_by_label("我是").select_option("liming")
            await page.locator("#nav-workbench").click()
            async with page.expect_popup() as popup_info:
                await page.get_by_role("link", name="项目管家").click()
            board = await popup_info.value
            await expect(board.locator(".who-name")).to_have_text("李明")
            await expect(board.locator("table.projects tbody tr")).to_have_count(1)
            await on_a_phone(board, "dashboard-from-workbench-engineer-phone")

            # The client's people have no workbench: the 看板 is not theirs to open.
            await page.get_by_label("我是").select_option("huanglei")
            await expect(page.locator("#workbench-view")).to_contain_text("只有本组织的成员能使用工作台应用")
        finally:
            await app.stop()
