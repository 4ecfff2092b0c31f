"""Everything the 看板 serves that is not a page: stored files, Word documents, Excel exports and chart images.

Each starts with the viewer's scope (a file of a project they may not see is "not found", like the project), is
rendered off the event loop (python-docx, openpyxl, matplotlib in a worker thread), and is sent as an attachment:
``Content-Disposition: attachment`` and ``nosniff`` for files people uploaded, so that an uploaded .html or .svg is
saved, never opened as a page of ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from domain.report_data import gather_project_report, phase_info
from reports.charts import phase_timeline_png
from reports.documents import MissingDocumentData, find_document
from reports.pool import render_off_loop
from reports.portfolio_xlsx import render_portfolio_xlsx
from reports.registers_xlsx import render_register_xlsx, render_registers_xlsx
from storage.repo.dashboard import visible_project, visible_version, visible_weekly_report
from storage.repo.report_queries import phases_of
from web import params
from web.board import Board, board_of, viewer_of
from web.charts_store import PORTFOLIO_CHARTS
from web.errors import BadParameter, NotFound
from web.portfolio import PortfolioQuery, chart_data, complete, gather_portfolio, select_entries
from web.project_view import REGISTER_KINDS, report_file_name

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PNG_CACHE_SECONDS = 300


def content_disposition(name: str) -> str:
    """``attachment`` with the name for every browser: an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in name) or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def attachment(data: bytes, name: str, content_type: str) -> web.Response:
    return web.Response(body=data, content_type=content_type,
                        headers={"Content-Disposition": content_disposition(name)})


def _stored(board: Board, relative: str | None) -> Path:
    """A stored file's path, only if it lies inside ``storage.files_dir`` and exists."""
    if not relative:
        raise NotFound("这个版本没有文件（可能是以链接提交的）。")
    root = Path(board.config.storage.files_dir).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound("文件已不在服务器上，请联系项目管理员。")
    return path


async def _file(board: Board, relative: str | None, name: str, content_type: str) -> web.FileResponse:
    path = await asyncio.to_thread(_stored, board, relative)
    return web.FileResponse(path, headers={"Content-Disposition": content_disposition(name),
                                           "Content-Type": content_type})


def _id(request: web.Request, key: str) -> int:
    text = request.match_info[key]
    if not text.isdigit() or len(text) > 12:
        raise NotFound()
    return int(text)


# ---- stored files -----------------------------------------------------------------------------------------------


async def deliverable_file(request: web.Request) -> web.StreamResponse:
    board = board_of(request)
    async with board.database.read() as session:
        version = await visible_version(session=session, scope=viewer_of(request).scope,
                                        code=request.match_info["code"], version_id=_id(request, "version"))
    if version is None:
        raise NotFound()
    name = version.original_name or Path(version.file_path or "file").name
    return await _file(board, version.file_path, name, "application/octet-stream")


async def weekly_report_docx(request: web.Request) -> web.StreamResponse:
    board = board_of(request)
    code = request.match_info["code"]
    async with board.database.read() as session:
        scope = viewer_of(request).scope
        project = await visible_project(session=session, scope=scope, code=code)
        report = await visible_weekly_report(session=session, scope=scope, code=code,
                                             report_id=_id(request, "report"))
    if project is None or report is None:
        raise NotFound()
    return await _file(board, report.file_path, report_file_name(project, report), DOCX)


# ---- generated on demand ------------------------------------------------------------------------------------------


async def _report_data(board: Board, request: web.Request) -> Any:
    async with board.database.read() as session:
        project = await visible_project(session=session, scope=viewer_of(request).scope,
                                        code=request.match_info["code"])
        if project is None:
            raise NotFound()
        return await gather_project_report(session=session, project=project, today=board.today(),
                                           calendar=board.calendar, tz=board.tz)


async def document_docx(request: web.Request) -> web.Response:
    """One of the standard's documents filled in with the project's data, as the 文档 command makes it."""
    board = board_of(request)
    spec = find_document(request.match_info["name"])
    if spec is None:
        raise NotFound("没有这个文档。")
    data = await _report_data(board, request)
    try:
        payload = await render_off_loop(spec, data)
    except MissingDocumentData as exc:
        raise BadParameter(str(exc)) from None
    return attachment(payload, spec.file_name(data), DOCX)


async def registers_xlsx(request: web.Request) -> web.Response:
    """The project's registers as the chat's 导出 makes them (one register with ``?kind=``)."""
    board = board_of(request)
    kind = params.choice(request.query, "kind", "登记簿", REGISTER_KINDS)
    data = await _report_data(board, request)
    if kind:
        payload = await render_off_loop(render_register_xlsx, data, kind)
        return attachment(payload, f"{kind}_{data.project.code}.xlsx", XLSX)
    payload = await render_off_loop(render_registers_xlsx, data)
    return attachment(payload, f"项目登记表_{data.project.code}.xlsx", XLSX)


async def portfolio_xlsx(request: web.Request) -> web.Response:
    """The portfolio the filters keep, every page of it, in the order asked for."""
    board, viewer = board_of(request), viewer_of(request)
    query = PortfolioQuery.parse(request.query)
    async with board.database.read() as session:
        entries = await gather_portfolio(session=session, scope=viewer.scope, today=board.today(),
                                         calendar=board.calendar, search=query.q)
        chosen = await asyncio.to_thread(select_entries, entries, query)
        chosen = await complete(session=session, entries=chosen)
    payload = await render_off_loop(render_portfolio_xlsx, chosen, today=board.today())
    return attachment(payload, f"项目组合_{board.today():%Y%m%d}.xlsx", XLSX)


# ---- charts -----------------------------------------------------------------------------------------------------


def _png(png: bytes) -> web.Response:
    # Private: the image shows what this viewer may see.
    return web.Response(body=png, content_type="image/png",
                        headers={"Cache-Control": f"private, max-age={PNG_CACHE_SECONDS}"})


async def gantt_png(request: web.Request) -> web.Response:
    """The phase plan against actuals: the weekly report's Gantt chart."""
    board = board_of(request)
    async with board.database.read() as session:
        project = await visible_project(session=session, scope=viewer_of(request).scope,
                                        code=request.match_info["code"])
        if project is None:
            raise NotFound()
        phases = tuple(phase_info(p) for p in await phases_of(session=session, project_ids=[project.id]))
    today = board.today()
    return _png(await board.chart_store.png("gantt", (phases, today), _draw_gantt))


def _draw_gantt(data: tuple[Any, Any]) -> bytes:
    phases, today = data
    return phase_timeline_png(phases, today)


async def portfolio_chart_png(request: web.Request) -> web.Response:
    board, viewer = board_of(request), viewer_of(request)
    key = request.match_info["key"]
    offered = board.chart_store.offered(viewer.scope, key)
    if offered is None:  # not drawn for this viewer here: compute it for them from the filters
        kind = params.choice(request.query, "kind", "图表", PORTFOLIO_CHARTS)
        if not kind:
            raise NotFound("没有这个图表。")
        query = PortfolioQuery.parse(request.query)
        async with board.database.read() as session:
            entries = await gather_portfolio(session=session, scope=viewer.scope, today=board.today(),
                                             calendar=board.calendar, search=query.q)
        data = await asyncio.to_thread(lambda: chart_data(select_entries(entries, query), today=board.today(),
                                                          phase_order=board.phase_order))
        offered = kind, data[kind]
    kind, data = offered
    draw: Callable[[Any], bytes] = PORTFOLIO_CHARTS[kind][1]
    return _png(await board.chart_store.png(kind, data, draw))


__all__ = ["attachment", "content_disposition", "deliverable_file", "document_docx", "gantt_png",
           "portfolio_chart_png", "portfolio_xlsx", "registers_xlsx", "weekly_report_docx"]
