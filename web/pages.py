"""The 看板's HTML pages: the portfolio and a project's tabs (概况 · 登记簿 · 审批 · 周报与文档 · 操作记录).

Each handler reads in one read transaction, scoped by the viewer (``web.board.viewer_of``), maps the rows off the loop
where there are many, and renders its template in a worker thread (``Board.page``). Read-only: nothing here writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from reports.documents import DOCUMENTS
from storage.models import Project
from storage.repo.dashboard import visible_weekly_report
from storage.repo.directory import display_names
from web import params
from web.board import board_of, viewer_of
from web.charts_store import PORTFOLIO_CHARTS
from web.errors import NotFound
from web.markdown_view import markdown_html
from web.portfolio import PROJECT_STATUSES, SORTS, PortfolioQuery, complete, read_portfolio_view
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

REGISTER_PAGE = 50
AUDIT_PAGE = 100


async def portfolio(request: web.Request) -> web.Response:
    board, viewer = board_of(request), viewer_of(request)
    query = PortfolioQuery.parse(request.query)
    today = board.today()
    async with board.database.read() as session:
        view = await read_portfolio_view(session=session, scope=viewer.scope, query=query, today=today,
                                         calendar=board.calendar, page_size=board.config.dashboard.page_size,
                                         phase_order=board.phase_order)
        shown = await complete(session=session, entries=view.page.items)
        pm_names = await display_names(session=session, user_ids=view.options.pm_ids)
    pms = sorted(((user_id, pm_names.get(user_id, user_id)) for user_id in view.options.pm_ids),
                 key=lambda pm: (pm[1], pm[0]))
    charts = {kind: board.chart_store.offer(viewer.scope, kind, data) for kind, data in view.charts.items()}
    return await board.page(
        "portfolio.html", request, title="项目组合", query=query, view=view, page=view.page, shown=shown, pms=pms,
        statuses=PROJECT_STATUSES, sorts={name: label for name, (label, _, _) in SORTS.items()}, charts=charts,
        chart_titles=PORTFOLIO_CHARTS)


# ---- a project --------------------------------------------------------------------------------------------------

TabLoader = Callable[[Any, Project], Awaitable[dict[str, Any]]]


async def _project_tab(request: web.Request, template: str, tab: str, label: str, load: TabLoader) -> web.Response:
    """A project's tab: the project (if the viewer may see it) and what ``load(session, project)`` reads for the tab,
    in one read transaction, rendered with ``template``."""
    board = board_of(request)
    async with board.database.read() as session:
        project, entry = await project_and_entry(session=session, scope=viewer_of(request).scope,
                                                 code=request.match_info["code"], today=board.today(),
                                                 calendar=board.calendar)
        context = await load(session, project)
    title = f"{project.name} · {label}" if label else project.name
    return await board.page(template, request, title=title, project=project, entry=entry, tab=tab, **context)


def _pages(total: int, size: int, asked: int) -> dict[str, int]:
    count = max(1, -(-total // size))
    return {"number": min(asked, count), "pages": count}


async def project_overview(request: web.Request) -> web.Response:
    board = board_of(request)

    async def load(session: Any, project: Project) -> dict[str, Any]:
        return {"view": await overview(session=session, project=project, today=board.today(),
                                       calendar=board.calendar, tz=board.tz)}

    return await _project_tab(request, "project_overview.html", "overview", "", load)


async def project_registers(request: web.Request) -> web.Response:
    board = board_of(request)
    kind = params.choice(request.query, "kind", "登记簿", REGISTER_KINDS, default=REGISTER_KINDS[0])
    state = params.choice(request.query, "state", "状态", REGISTER_STATES)
    text = params.text(request.query, "q", "搜索内容")
    number = params.page_number(request.query)

    async def load(session: Any, project: Project) -> dict[str, Any]:
        view = await register_view(session=session, project=project, kind=kind, state=state, text=text,
                                   limit=REGISTER_PAGE, offset=(number - 1) * REGISTER_PAGE, tz=board.tz)
        return {"view": view, "kinds": REGISTER_KINDS, "states": REGISTER_STATES, "state": state, "text": text,
                **_pages(view.total, REGISTER_PAGE, number)}

    return await _project_tab(request, "project_registers.html", "registers", "登记簿", load)


async def project_approvals(request: web.Request) -> web.Response:
    tz = board_of(request).tz

    async def load(session: Any, project: Project) -> dict[str, Any]:
        return {"approvals": await approvals(session=session, project=project, tz=tz)}

    return await _project_tab(request, "project_approvals.html", "approvals", "审批", load)


async def project_reports(request: web.Request) -> web.Response:
    tz = board_of(request).tz

    async def load(session: Any, project: Project) -> dict[str, Any]:
        return {"reports": await weekly_reports(session=session, project=project, tz=tz),
                "documents": list(DOCUMENTS.values())}

    return await _project_tab(request, "project_reports.html", "reports", "周报与文档", load)


async def weekly_report(request: web.Request) -> web.Response:
    scope = viewer_of(request).scope
    report_id = int(request.match_info["report"])  # digits only: the route says so

    async def load(session: Any, project: Project) -> dict[str, Any]:
        report = await visible_weekly_report(session=session, scope=scope, code=project.code, report_id=report_id)
        if report is None:
            raise NotFound("没有这份周报。")
        return {"report": report, "label": weekly_label(report),
                "body": await asyncio.to_thread(markdown_html, report.content_md)}

    return await _project_tab(request, "weekly_report.html", "reports", "周报", load)


async def project_audit(request: web.Request) -> web.Response:
    tz = board_of(request).tz
    number = params.page_number(request.query)

    async def load(session: Any, project: Project) -> dict[str, Any]:
        items, total = await audit_trail(session=session, project=project, limit=AUDIT_PAGE,
                                         offset=(number - 1) * AUDIT_PAGE, tz=tz)
        return {"items": items, "total": total, **_pages(total, AUDIT_PAGE, number)}

    return await _project_tab(request, "project_audit.html", "audit", "操作记录", load)


__all__ = ["portfolio", "project_approvals", "project_audit", "project_overview", "project_registers",
           "project_reports", "weekly_report"]
