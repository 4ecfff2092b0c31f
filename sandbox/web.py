"""The sandbox's web chat page: mount it on the emulator as an extension.

    await emulator.start(extensions=[setup_web]);  page_url(emulator.base_url)
    Sandbox(web=True) ... sb.page_url

Serves the page at `/` and `/chat`, its files at `/sandbox/static/<name>` (no build
step, no external assets) and its JSON API at `/sandbox/api/...` (see `web_api`).
None of these paths exist on the real DingTalk; they share the emulator's port only
so that one URL serves everything.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from . import web_api, web_cards, web_notices, web_todos, web_workbench

if TYPE_CHECKING:
    from .emulator import Emulator

PAGE_PATH = "/chat"
API_PREFIX = "/sandbox/api"
STATIC_PREFIX = "/sandbox/static"
STATIC_DIR = Path(__file__).parent / "static"
_STATIC_NAME = re.compile(r"^[a-z0-9_-]+\.(html|css|js|svg)$")
# The page is edited while a sandbox runs; never let the browser keep a stale copy.
_NO_CACHE = {"Cache-Control": "no-cache"}


def page_url(base_url: str) -> str:
    return f"{base_url}{PAGE_PATH}"


async def _page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "chat.html", headers=_NO_CACHE)


async def _static(request: web.Request) -> web.StreamResponse:
    # A fixed directory and a strict name pattern: nothing outside static/ can be read.
    # FileResponse stats the file off the loop and answers 404 when it is missing.
    name = request.match_info["name"]
    if not _STATIC_NAME.match(name):
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC_DIR / name, headers=_NO_CACHE)


def setup_web(app: web.Application, emulator: "Emulator") -> None:
    """Emulator extension: add the page, its static files and its JSON API."""
    app.router.add_get("/", _page)
    app.router.add_get(PAGE_PATH, _page)
    app.router.add_get(STATIC_PREFIX + "/{name}", _static)
    for method, path, handler in (*web_api.ROUTES, *web_cards.ROUTES, *web_todos.ROUTES, *web_workbench.ROUTES,
                                  *web_notices.ROUTES):
        app.router.add_route(method, API_PREFIX + path, handler)
    app.router.add_route("*", API_PREFIX + "/{tail:.*}", web_api.api_not_found)
