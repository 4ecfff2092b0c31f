"""The 看板's HTTP server: routes, the guards every request passes, and the lifecycle the app drives.

Every request goes through ``guard``: a page without a session answers the 免登 sign-in page (a POST without one is
refused), every POST must carry its CSRF token, and whatever a handler raises becomes a Chinese error page (a
``PageError``'s own message, or "something went wrong" with a trace id for the log; never a traceback). Every answer
carries the security headers: a Content-Security-Policy without inline scripts, ``nosniff``, no framing, no referrer,
and ``no-store`` for everything but the versioned static files.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.config import Config
from bot.http_site import LocalSite
from reports.fonts import ensure_cjk_font
from web import auth, downloads, pages
from web.board import BOARD, SESSION, STATIC_DIR, VIEWER, Board
from web.errors import Failure, Forbidden, NotFound, PageError

log = logging.getLogger("dingpm.dashboard")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Reachable without a session: the assets and the 免登 exchange (which is how a session starts).
_OPEN_PATHS = ("/static/", "/auth/code")


def _routes(base: str) -> list[web.AbstractRouteDef]:
    project = base + "/p/{code}"
    return [
        web.get(base + "/", pages.portfolio),
        web.get(base + "/portfolio.xlsx", downloads.portfolio_xlsx),
        web.get(base + "/charts/{key:[0-9a-f]{32}}.png", downloads.portfolio_chart_png),
        web.get(project, pages.project_overview),
        web.get(project + "/gantt.png", downloads.gantt_png),
        web.get(project + "/registers", pages.project_registers),
        web.get(project + "/registers.xlsx", downloads.registers_xlsx),
        web.get(project + "/approvals", pages.project_approvals),
        web.get(project + "/reports", pages.project_reports),
        web.get(project + "/weekly/{report:\\d+}", pages.weekly_report),
        web.get(project + "/weekly/{report:\\d+}.docx", downloads.weekly_report_docx),
        web.get(project + "/documents/{name}.docx", downloads.document_docx),
        web.get(project + "/files/{version:\\d+}", downloads.deliverable_file),
        web.get(project + "/audit", pages.project_audit),
        web.post(base + "/auth/code", _board_handler(auth.exchange_code)),
        web.post(base + "/auth/logout", _board_handler(auth.sign_out)),
    ]


def _board_handler(handler: Callable[[Board, web.Request], Awaitable[web.StreamResponse]]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await handler(request.app[BOARD], request)

    return handle


def _security_headers(board: Board, request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", board.content_security_policy())
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    if request.path.startswith(board.base + "/static/"):
        headers["Cache-Control"] = "public, max-age=86400"  # URLs carry the assets' version
    else:
        headers.setdefault("Cache-Control", "no-store")
    if board.config.dashboard.cookie_secure:
        headers["Strict-Transport-Security"] = "max-age=31536000"


async def _error_page(board: Board, request: web.Request, error: PageError, *, trace: str = "") -> web.Response:
    return await board.page("error.html", request, status=error.status, title=error.title, error=error, trace=trace)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    board: Board = request.app[BOARD]
    try:
        response = await _admit(board, request, handler)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects (the sandbox's ?user=) keep their cookies
            _security_headers(board, request, exc)
            raise
        error = NotFound("没有这个页面。") if exc.status in (404, 405) else PageError("这个请求无法处理。")
        response = await _error_page(board, request, error)
    except PageError as exc:
        response = await _error_page(board, request, exc)
    except Exception:
        trace = uuid.uuid4().hex[:8]
        log.exception("dashboard %s %s failed (trace %s)", request.method, request.path, trace)
        response = await _error_page(board, request, Failure(), trace=trace)
    _security_headers(board, request, response)
    return response


async def _admit(board: Board, request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who is asking, and may they: the session, the sandbox's ?user=, the sign-in page, the CSRF check."""
    path = request.path
    if board.base and path == board.base:  # the bare prefix, as typed
        raise web.HTTPPermanentRedirect(board.base + "/")
    if any(path.startswith(board.base + open_path) for open_path in _OPEN_PATHS):
        if request.method == "POST" and not await auth.csrf_ok(board, request, None):
            raise Forbidden("登录页面已过期，请在钉钉工作台中重新打开项目看板。")
        return await handler(request)
    if board.config.dashboard.sandbox_identity and request.method == "GET" and request.query.get(
            auth.SANDBOX_USER_PARAM):
        await auth.sandbox_sign_in(board, request)
    session = auth.session_of(board, request)
    if session is not None:
        request[SESSION], request[VIEWER] = session, board.viewer_for(session.user_id, session.name)
    if request.method == "POST":
        if not await auth.csrf_ok(board, request, session):
            raise Forbidden("页面已过期，请刷新后再试。")
        return await handler(request)
    if session is None:
        return await auth.sign_in_page(board, request)
    return await handler(request)


class DashboardServer:
    """The 看板 on ``dashboard.host:port`` (port 0: the OS picks one; ``url`` tells which)."""

    def __init__(self, config: Config, *, database: Any, dingtalk: Any, calendar: Any, clock: Any,
                 templates: Any) -> None:
        self._config = config
        self._deps = {"database": database, "dingtalk": dingtalk, "calendar": calendar, "clock": clock,
                      "templates": templates}
        self._site = LocalSite()
        self._warm_up: asyncio.Future[None] | None = None
        self.board: Board | None = None
        self.port: int | None = None

    def build_app(self) -> web.Application:
        self.board = Board.build(config=self._config, **self._deps)
        app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
        app[BOARD] = self.board
        base = self.board.base
        app.add_routes(_routes(base))
        app.router.add_static(base + "/static", STATIC_DIR)
        return app

    async def start(self) -> None:
        app = await asyncio.to_thread(self.build_app)  # reads the templates and static files: off the loop
        dashboard = self._config.dashboard
        self.port = await self._site.start(app, dashboard.host, dashboard.port)
        assert self.board is not None
        self.board.public_url = dashboard.public_base_url.rstrip("/") or f"http://{dashboard.host}:{self.port}"
        log.info("dashboard listening on http://%s:%s (public %s)", dashboard.host, self.port, self.url)
        # matplotlib and the CJK font take a second to load: in a thread now, not in the first visitor's chart.
        self._warm_up = asyncio.get_running_loop().run_in_executor(None, _load_chart_renderer)

    async def stop(self) -> None:
        await self._site.stop()
        if self._warm_up is not None:
            await asyncio.gather(self._warm_up, return_exceptions=True)

    @property
    def url(self) -> str:
        """The portfolio's public address (what the workbench opens and the banner prints)."""
        return (self.board.public_url if self.board is not None else "") + "/"


def _load_chart_renderer() -> None:
    from matplotlib.backends import backend_agg  # noqa: F401 - what reports.charts draws with

    ensure_cjk_font()


__all__ = ["DashboardServer", "guard"]
