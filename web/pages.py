"""The 看板's HTML pages: the portfolio and a project's tabs (概况 · 登记簿 · 审批 · 周报与文档 · 操作记录).

Each handler reads in one read transaction, scoped by the viewer (``web.board.viewer_of``), maps the rows off the loop
where there are many, and renders its template in a worker thread (``Board.page``). Read-only: nothing here writes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from reports.documents import DOCUMENTS
from web import params
from web.board import board_of, viewer_of
from web.charts_store import PORTFOLIO_CHARTS
from web.errors import NotFound
from web.markdown_view import markdown_html
from web.portfolio import PROJECT_STATUSES, SORTS, PortfolioQuery, complete, portfolio_view, read_portfolio
from web.project_view import (
    REGISTER_KINDS,
    REGISTER_STATES,
    approvals,
    audit_trail,
    overview,
    project_and_entry,
    register_view,
    weekly_label,
    weekly_reports,
)
from storage.repo.dashboard import visible_weekly_report
from storage.repo.report_queries import names_of

REGISTER_PAGE = 50
AUDIT_PAGE = 100


async def _project(request: web.Request, session: Any) -> tuple[Any, Any]:
    """The project of the URL, if the viewer may see it, with its portfolio line (``NotFound`` otherwise)."""
    board = board_of(request)
    return await project_and_entry(session=session, scope=viewer_of(request).scope, code=request.match_info["code"],
                                   today=board.today(), calendar=board.calendar)


async def portfolio(request: web.Request) -> web.Response:
    board, viewer = board_of(request), viewer_of(request)
    query = PortfolioQuery.parse(request.query)
    today = board.today()
    async with board.database.read() as session:
        reads = await read_portfolio(session=session, scope=viewer.scope, today=today, search=query.q)
        view = await asyncio.to_thread(lambda: portfolio_view(
            reads.entries(today=today, calendar=board.calendar), query, today=today,
            page_size=board.config.dashboard.page_size, phase_order=board.phase_order))
        shown = await complete(session=session, entries=view.page.items)
        pm_names = await names_of(session=session, user_ids=view.options.pm_ids)
    pms = sorted(((user_id, pm_names.get(user_id, user_id)) for user_id in view.options.pm_ids),
                 key=lambda pm: (pm[1], pm[0]))
    charts = {kind: board.chart_store.offer(viewer.scope, kind, data) for kind, data in view.charts.items()}
    return await board.page(
        "portfolio.html", request, title="项目组合", query=query, view=view, page=view.page, shown=shown, pms=pms,
        statuses=PROJECT_STATUSES, sorts={name: label for name, (label, _, _) in SORTS.items()}, charts=charts,
        chart_titles=PORTFOLIO_CHARTS)


# ---- a project --------------------------------------------------------------------------------------------------


async def project_overview(request: web.Request) -> web.Response:
    board = board_of(request)
    async with board.database.read() as session:
        project, entry = await _project(request, session)
        view = await overview(session=session, project=project, today=board.today(), calendar=board.calendar,
                              tz=board.tz)
    return await board.page("project_overview.html", request, title=project.name, project=project,
                            entry=entry, tab="overview", view=view)


async def project_registers(request: web.Request) -> web.Response:
    board = board_of(request)
    kind = params.choice(request.query, "kind", "登记簿", REGISTER_KINDS, default=REGISTER_KINDS[0])
    state = params.choice(request.query, "state", "状态", REGISTER_STATES)
    text = params.text(request.query, "q", "搜索内容")
    number = params.page_number(request.query)
    async with board.database.read() as session:
        project, entry = await _project(request, session)
        view = await register_view(session=session, project=project, kind=kind, state=state, text=text,
                                   limit=REGISTER_PAGE, offset=(number - 1) * REGISTER_PAGE, tz=board.tz)
    pages = max(1, -(-view.total // REGISTER_PAGE))
    return await board.page("project_registers.html", request, title=f"{project.name} · 登记簿",
                            project=project, entry=entry, tab="registers", view=view, kinds=REGISTER_KINDS,
                            states=REGISTER_STATES, state=state, text=text, number=min(number, pages), pages=pages)


async def project_approvals(request: web.Request) -> web.Response:
    board = board_of(request)
    async with board.database.read() as session:
        project, entry = await _project(request, session)
        items = await approvals(session=session, project=project, tz=board.tz)
    return await board.page("project_approvals.html", request, title=f"{project.name} · 审批",
                            project=project, entry=entry, tab="approvals", approvals=items)


async def project_reports(request: web.Request) -> web.Response:
    board = board_of(request)
    async with board.database.read() as session:
        project, entry = await _project(request, session)
        reports = await weekly_reports(session=session, project=project, tz=board.tz)
    return await board.page("project_reports.html", request, title=f"{project.name} · 周报与文档",
                            project=project, entry=entry, tab="reports", reports=reports,
                            documents=list(DOCUMENTS.values()))


async def weekly_report(request: web.Request) -> web.Response:
    board, viewer = board_of(request), viewer_of(request)
    report_id = _int(request.match_info["report"])
    async with board.database.read() as session:
        project, entry = await _project(request, session)
        report = await visible_weekly_report(session=session, scope=viewer.scope, code=project.code,
                                             report_id=report_id)
    if report is None:
        raise NotFound("没有这份周报。")
    body = await asyncio.to_thread(markdown_html, report.content_md)
    return await board.page("weekly_report.html", request, title=f"{project.name} · {weekly_label(report)}",
                            project=project, entry=entry, tab="reports", report=report, label=weekly_label(report),
                            body=body)


async def project_audit(request: web.Request) -> web.Response:
    board = board_of(request)
    number = params.page_number(request.query)
    async with board.database.read() as session:
        project, entry = await _project(request, session)
        items, total = await audit_trail(session=session, project=project, limit=AUDIT_PAGE,
                                         offset=(number - 1) * AUDIT_PAGE, tz=board.tz)
    pages = max(1, -(-total // AUDIT_PAGE))
    return await board.page("project_audit.html", request, title=f"{project.name} · 操作记录",
                            project=project, entry=entry, tab="audit", items=items, total=total,
                            number=min(number, pages), pages=pages)


def _int(text: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise NotFound()
    return int(text)


__all__ = ["portfolio", "project_approvals", "project_audit", "project_overview",
           "project_registers",
           "project_reports", "weekly_report"]
