"""The 看板 over HTTP: 免登 against the emulator, sessions and CSRF, who may open what by URL, downloads, error pages
and the headers every answer carries."""

from __future__ import annotations

import io
import re
import time
from http.cookies import SimpleCookie
from urllib.parse import quote, unquote

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from storage.models import DeliverableVersion, WeeklyReport
from tests.web.conftest import form_csrf
from tests.web.world import ERP, FORMULA, KICKOFF_FILE, LINK, MES, SCRIPT, WEEKLY_FILE
from web.sessions import LOGIN_COOKIE, SESSION_COOKIE

NOT_FOUND = "项目不存在，或者你不是这个项目的成员。"


async def get(client, url: str, **kwargs):
    async with client.get(url, allow_redirects=False, **kwargs) as response:
        return response, await response.read()


def text(body: bytes) -> str:
    return body.decode("utf-8")


async def test_sign_in_through_a_jsapi_code(start_site):
    site = await start_site()
    client = site.browser()
    response, body = await get(client, site.url)
    page = text(body)
    assert response.status == 200 and "正在通过钉钉登录" in page
    assert f'<script src="{site.sb.jsapi_url}"></script>' in page
    assert f'data-corp-id="{site.sb.world.corp_id}"' in page and f'data-client-id="{site.sb.client_id}"' in page
    assert site.sb.client_secret not in page
    login = SimpleCookie(response.headers["Set-Cookie"])[LOGIN_COOKIE]
    assert login["httponly"] and login["samesite"] == "Lax" and login["max-age"] == "600"

    code = await site.sb.auth_code("刘强")
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    async with client.post(site.at("/auth/code"), json={"code": code}, headers={"X-CSRF-Token": token}) as answer:
        assert answer.status == 200 and (await answer.json()) == {"name": "刘强"}
        session = SimpleCookie(answer.headers.getall("Set-Cookie")[0])[SESSION_COOKIE]
    assert session["httponly"] and session["samesite"] == "Lax" and session["max-age"] == str(8 * 3600)
    assert session["path"] == "/" and not session["secure"]  # this site runs over http (cookie_secure = false)
    response, body = await get(client, site.url)
    assert response.status == 200 and "<h1 class=\"page-title\">项目组合</h1>" in text(body)
    assert "刘强" in text(body) and "领导" in text(body)

    # The code was used: a second exchange (another tab, a replay) is refused and the page asks for a new one.
    other = site.browser()
    _, body = await get(other, site.url)
    token = re.search(r'data-csrf="([^"]+)"', text(body)).group(1)
    async with other.post(site.at("/auth/code"), json={"code": code}, headers={"X-CSRF-Token": token}) as answer:
        assert answer.status == 401 and (await answer.json())["retry"] is True
    # Without the page's token, or with someone else's, nothing is exchanged.
    fresh = await site.sb.auth_code("李明")
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        async with other.post(site.at("/auth/code"), json={"code": fresh}, headers=headers) as answer:
            assert answer.status == 403 and "登录页面已过期" in await answer.text()
    response, body = await get(other, site.url)
    assert "正在通过钉钉登录" in text(body)  # still signed out


async def test_cookies_are_secure_behind_https(start_site):
    site = await start_site(cookie_secure=True)
    response, _ = await get(site.browser(), site.url)
    login = SimpleCookie(response.headers["Set-Cookie"])[LOGIN_COOKIE]
    assert login["secure"] and login["httponly"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    # Over plain http a browser keeps a Secure cookie to itself, so signing in cannot work there: as it should.
    client = site.browser()
    _, body = await get(client, site.url)
    token = re.search(r'data-csrf="([^"]+)"', text(body)).group(1)
    async with client.post(site.at("/auth/code"), json={"code": await site.sb.auth_code("周敏")},
                           headers={"X-CSRF-Token": token}) as answer:
        assert answer.status == 403


async def test_a_code_of_someone_who_left_is_refused(start_site):
    site = await start_site()
    client = site.browser()
    _, body = await get(client, site.url)
    token = re.search(r'data-csrf="([^"]+)"', text(body)).group(1)
    code = await site.sb.auth_code("赵磊")
    await site.sb.update_user("赵磊", active=False)
    async with client.post(site.at("/auth/code"), json={"code": code}, headers={"X-CSRF-Token": token}) as answer:
        assert answer.status == 401
    assert SESSION_COOKIE not in {c.key for c in client.cookie_jar}


@pytest.mark.parametrize("sandbox_identity", [False, True])
async def test_user_param_picks_the_viewer_only_in_the_sandbox(start_site, sandbox_identity):
    site = await start_site(sandbox_identity=sandbox_identity)
    client = site.browser()
    response, body = await get(client, site.url + "?user=liuqiang")
    if not sandbox_identity:
        # Production: the parameter means nothing; no session, the sign-in page.
        assert response.status == 200 and "正在通过钉钉登录" in text(body)
        assert SESSION_COOKIE not in {c.key for c in client.cookie_jar}
        await site.sign_in("李明", client)
        _, body = await get(client, site.url + "?as=liuqiang&user=liuqiang")
        assert "李明" in text(body) and "刘强" not in text(body)  # nor does the workbench's as= change anything
        return
    assert response.status == 303 and response.headers["Location"] == "/"
    _, body = await get(client, site.url)
    assert "刘强" in text(body) and "XM-2026-002" in text(body)
    # Other parameters survive the sign-in.
    response, _ = await get(client, site.url + "?health=%E5%BB%B6%E6%9C%9F&user=liming")
    assert response.headers["Location"] == "/?health=%E5%BB%B6%E6%9C%9F"
    # The workbench opening the page for someone else ends the session: the page signs in again.
    _, body = await get(client, site.url + "?as=liuqiang")
    assert "正在通过钉钉登录" in text(body)
    # Outsiders and unknown ids are refused, with a page saying why.
    for who in ("huanglei", "xuqing", "nobody"):
        response, body = await get(site.browser(), site.url + f"?user={who}")
        assert response.status == 403 and "只有本组织的成员可以使用项目看板" in text(body)


async def test_an_engineer_cannot_reach_another_project_by_url(start_site):
    site = await start_site()
    liming = await site.sign_in("李明")
    _, body = await get(liming, site.url)
    assert MES in text(body) and "XM-2026-003" in text(body) and ERP not in text(body)

    async with site.server.board.database.read() as session:
        mes_id = site.world[MES].id
        [version] = (await session.exec(select(DeliverableVersion))).all()
        [report, _] = (await session.exec(select(WeeklyReport).where(WeeklyReport.project_id == mes_id)
                                          .order_by(WeeklyReport.id))).all()
    erp = f"/p/{ERP}"
    refused = [erp, f"{erp}/registers", f"{erp}/approvals", f"{erp}/reports", f"{erp}/audit", f"{erp}/gantt.png",
               f"{erp}/registers.xlsx", f"{erp}/documents/{quote('项目立项申请表')}.docx",
               f"{erp}/files/{version.id}", f"{erp}/weekly/{report.id}", f"{erp}/weekly/{report.id}.docx",
               "/p/XM-2099-999"]
    for path in refused:
        response, body = await get(liming, site.at(path))
        assert response.status == 404 and NOT_FOUND in text(body), path

    # His export of the portfolio holds his projects only.
    response, data = await get(liming, site.at("/portfolio.xlsx"))
    exported = [row[0] for row in load_workbook(io.BytesIO(data))["项目组合"].iter_rows(min_row=2, values_only=True)]
    assert sorted(exported) == [MES, "XM-2026-003"]

    # 陈静 (ERP's PM) cannot take MES's file or report by its id either.
    chenjing = await site.sign_in("陈静")
    for path in (f"/p/{MES}/files/{version.id}", f"/p/{MES}/weekly/{report.id}.docx", f"/p/{MES}"):
        response, body = await get(chenjing, site.at(path))
        assert response.status == 404 and NOT_FOUND in text(body), path
        assert KICKOFF_FILE[1] not in body and WEEKLY_FILE not in body

    # A leader's chart URL, opened by 李明, draws 李明's own figures, never the leader's.
    leader = await site.sign_in("刘强")
    _, leader_page = await get(leader, site.url)
    _, own_page = await get(liming, site.url)
    chart = re.compile(r'<img src="(/charts/[0-9a-f]{32}\.png\?kind=projects_by_health)"')
    leader_chart, own_chart = chart.search(text(leader_page)).group(1), chart.search(text(own_page)).group(1)
    assert leader_chart != own_chart
    _, drawn_for_liming = await get(liming, site.at(leader_chart))
    _, own = await get(liming, site.at(own_chart))
    _, leaders = await get(leader, site.at(leader_chart))
    assert drawn_for_liming == own != leaders


async def test_someone_in_no_project_sees_an_empty_portfolio(start_site):
    site = await start_site()
    client = await site.sign_in("吴涛")
    response, body = await get(client, site.url)
    assert response.status == 200 and "你还没有可以查看的项目" in text(body)
    assert MES not in text(body)


async def test_pages_show_names_and_users_text_as_text(start_site):
    site = await start_site()
    client = await site.sign_in("王建国")
    _, body = await get(client, site.at(f"/p/{MES}"))
    page = text(body)
    assert "负责人 李明" in page and "负责人 赵磊" in page and "liming" not in page  # names, not ids
    assert "逾期 16 个工作日" in page and "延期原因：交付物最长逾期 16 个工作日" in page
    assert f"/p/{MES}/files/" in page and KICKOFF_FILE[0] in page
    assert "<dt>合同编号</dt><dd class=\"pre\">HT-2026-018</dd>" in page and "1,280,000.00 元" in page
    _, body = await get(client, site.at(f"/p/{MES}/registers"))
    page = text(body)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page and SCRIPT not in page
    assert "=HYPERLINK(&#34;http://evil.example.com&#34;,&#34;点我&#34;)" in page
    _, body = await get(client, site.at(f"/p/{MES}/registers?kind={quote('实施日志')}"))
    page = text(body)
    assert LINK in page and f'href="{LINK}' not in page  # a typed address is never made a link
    _, body = await get(client, site.at(f"/p/{MES}/approvals"))
    page = text(body)
    steps = re.findall(r'<span class="s-who">(.+?)</span> <span class="s-action">(.+?)</span>', page)
    # The running change request (only submitted), then the 立项 both leaders agreed to.
    assert steps == [("王建国", "发起"), ("王建国", "发起"), ("刘强", "同意"), ("周敏", "同意")]
    assert "同意立项，注意接口风险" in page and "2026-08-24 14:00" in page  # the leader's time, in Shanghai
    _, body = await get(client, site.at(f"/p/{MES}/audit"))
    assert "（3 条，最新在前）" in text(body) and text(body).count("王建国") >= 3
    _, body = await get(client, site.at(f"/p/{MES}/reports"))
    report_id = re.search(rf'/p/{MES}/weekly/(\d+)"', text(body)).group(1)
    _, body = await get(client, site.at(f"/p/{MES}/weekly/{report_id}"))
    page = text(body)
    assert "<strong>本周完成</strong>" in page and SCRIPT not in page and "&lt;script&gt;" in page


async def test_downloads_are_attachments_and_spreadsheets_hold_no_formula(start_site):
    site = await start_site()
    client = await site.sign_in("孙丽")  # 项目管理员: every project
    _, body = await get(client, site.at(f"/p/{MES}"))
    file_url = re.search(rf'href="(/p/{MES}/files/\d+)"', text(body)).group(1)
    response, data = await get(client, site.at(file_url))
    assert data == KICKOFF_FILE[1]
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and unquote(disposition.split("UTF-8''")[1]) == KICKOFF_FILE[0]
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    _, body = await get(client, site.at(f"/p/{MES}/reports"))
    docx_url = re.search(rf'href="(/p/{MES}/weekly/\d+\.docx)"', text(body)).group(1)
    response, data = await get(client, site.at(docx_url))
    assert data.startswith(WEEKLY_FILE) and "客户项目周报_XM-2026-001_2026-W45.docx" in unquote(
        response.headers["Content-Disposition"])
    response, data = await get(client, site.at(f"/p/{MES}/documents/{quote('项目立项申请表')}.docx"))
    assert response.status == 200 and data.startswith(b"PK")

    response, data = await get(client, site.at(f"/p/{MES}/registers.xlsx"))
    sheet = load_workbook(io.BytesIO(data))["问题记录表"]
    [formula_cell] = [c for row in sheet.iter_rows() for c in row if c.value == FORMULA]
    assert formula_cell.data_type == "s" and formula_cell.quotePrefix
    response, data = await get(client, site.at("/portfolio.xlsx?sort=code"))
    assert response.status == 200
    rows = list(load_workbook(io.BytesIO(data))["项目组合"].iter_rows(values_only=True))
    assert rows[0][:3] == ("项目编号", "项目名称", "客户") and [r[0] for r in rows[1:]] == [
        MES, ERP, "XM-2026-003", "XM-2026-004"]
    assert rows[1][6:8] == ("延期", "交付物最长逾期 16 个工作日") and rows[1][8] == "王建国"

    response, data = await get(client, site.at(f"/p/{MES}/gantt.png"))
    assert response.content_type == "image/png" and data.startswith(b"\x89PNG")
    assert response.headers["Cache-Control"].startswith("private")


@pytest.mark.parametrize(("path", "status", "says"), [
    ("/?page=abc", 400, "页码「abc」不对"),
    ("/?page=0", 400, "页码「0」不对"),
    ("/?health=%E7%B4%AB", 400, "状态颜色「紫」不对：可选 延期、有风险、正常"),
    ("/?sort=drop", 400, "排序「drop」不对"),
    ("/?q=" + "很长" * 40, 400, "搜索内容太长"),
    (f"/p/{MES}/registers?kind=%E5%8F%91%E7%A5%A8", 400, "登记簿「发票」不对"),
    (f"/p/{MES}/registers?state=x", 400, "状态「x」不对"),
    (f"/p/{MES}/audit?page=-1", 400, "页码「-1」不对"),
    (f"/p/{MES}/weekly/abc", 404, "没有这个页面"),
    (f"/p/{MES}/files/99999", 404, "项目不存在"),
    (f"/p/{MES}/documents/{quote('发票')}.docx", 404, "没有这个文档"),
    ("/nothing-here", 404, "没有这个页面"),
    ("/charts/0123456789abcdef0123456789abcdef.png", 404, "没有这个图表"),
    ("/charts/0123456789abcdef0123456789abcdef.png?kind=pie", 400, "图表「pie」不对"),
])
async def test_bad_parameters_get_a_chinese_page(start_site, path, status, says):
    site = await start_site()
    client = await site.sign_in("刘强")
    response, body = await get(client, site.at(path))
    assert response.status == status and says in text(body), text(body)[-600:]
    assert "Traceback" not in text(body) and response.content_type == "text/html"


async def test_an_unexpected_failure_is_a_page_with_a_trace_id(start_site, monkeypatch, caplog):
    site = await start_site()
    client = await site.sign_in("刘强")

    async def broken(**_):
        raise RuntimeError("database exploded: password=hunter2")

    monkeypatch.setattr("web.pages.read_portfolio_view", broken)
    response, body = await get(client, site.url)
    page = text(body)
    trace = re.search(r"错误编号：([0-9a-f]{8})", page).group(1)
    assert response.status == 500 and "看板出了点问题" in page
    assert "hunter2" not in page and "RuntimeError" not in page
    assert any(trace in record.getMessage() for record in caplog.records)


async def test_every_answer_carries_the_security_headers_and_no_inline_script(start_site):
    site = await start_site()
    client = await site.sign_in("刘强")
    cookie_value = next(c.value for c in client.cookie_jar if c.key == SESSION_COOKIE)
    paths = ["/", f"/p/{MES}", f"/p/{MES}/registers", f"/p/{MES}/approvals", f"/p/{MES}/reports", f"/p/{MES}/audit",
             "/?page=abc", "/p/nothing"]
    for path in paths:
        response, body = await get(client, site.at(path))
        policy = response.headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
        assert f"script-src 'self' {site.sb.base_url};" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        page = text(body)
        for script in re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S):
            assert script == "", path  # every script is a file
        assert re.search(r"<[^>]+\son[a-z]+\s*=", page) is None, path  # no inline event handler
        assert "style=" not in page
        for secret in (site.sb.client_secret, cookie_value, "access_token"):
            assert secret not in page, path
    response, _ = await get(site.browser(), site.at("/static/board.css"))
    assert response.status == 200 and "max-age=86400" in response.headers["Cache-Control"]


async def test_signing_out_needs_the_pages_token(start_site):
    site = await start_site()
    client = await site.sign_in("刘强")
    _, body = await get(client, site.url)
    token = form_csrf(text(body))
    async with client.post(site.at("/auth/logout"), data={"csrf": "forged"}) as response:
        assert response.status == 403 and "页面已过期" in await response.text()
    _, body = await get(client, site.url)
    assert "项目组合" in text(body)  # still signed in
    async with client.post(site.at("/auth/logout"), data={"csrf": token}) as response:
        assert response.status == 200 and "已退出项目看板" in await response.text()
    _, body = await get(client, site.url)
    assert "正在通过钉钉登录" in text(body)


async def test_a_forged_or_expired_session_is_no_session(start_site):
    site = await start_site()
    signer = site.server.board.signer
    forged, _ = signer.issue_session("liuqiang", "刘强", now=time.time(), ttl=site.server.board.session_ttl)
    payload, mac = forged.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    expired, _ = signer.issue_session("liuqiang", "刘强", now=time.time() - 9 * 3600,
                                      ttl=site.server.board.session_ttl)
    for value in (tampered, expired, "garbage", forged + "x"):
        client = site.browser()
        response, body = await get(client, site.url, cookies={SESSION_COOKIE: value})
        assert "正在通过钉钉登录" in text(body), value
    response, body = await get(site.browser(), site.url, cookies={SESSION_COOKIE: forged})
    assert "刘强" in text(body) and "项目组合" in text(body)


async def test_search_filters_and_sorts_keep_to_the_viewers_projects(start_site):
    site = await start_site()
    leader = await site.sign_in("刘强")
    rows = re.compile(r'<a href="/p/(XM-\d{4}-\d{3})">')

    async def codes(client, query: str) -> list[str]:
        _, body = await get(client, site.url + query)
        return rows.findall(text(body))

    assert await codes(leader, "") == [MES, ERP, "XM-2026-003", "XM-2026-004"]  # worst first, then by code
    assert await codes(leader, "?q=erp") == [ERP]                               # a name, any case
    assert await codes(leader, "?q=" + quote("陈静")) == [ERP]                   # the PM's name
    assert await codes(leader, "?q=" + quote("某某物流")) == [ERP]                # the customer
    assert await codes(leader, "?q=%25") == []                                  # % is a character, not a wildcard
    assert await codes(leader, "?pm=chenjing") == [ERP]
    assert await codes(leader, "?status=" + quote("已暂停")) == ["XM-2026-003"]
    assert await codes(leader, "?sort=code&health=" + quote("正常")) == [ERP, "XM-2026-003", "XM-2026-004"]
    _, body = await get(leader, site.url)
    assert '<option value="chenjing">陈静</option>' in text(body)  # the PMs to choose from, by name
    # 李明 searching for a project he is not in finds nothing.
    liming = await site.sign_in("李明")
    assert await codes(liming, "?q=erp") == [] and await codes(liming, "?pm=chenjing") == []
