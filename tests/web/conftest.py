"""The 看板 served for real: ``web.server.DashboardServer`` on a free port, its 免登 exchanges going to the sandbox
emulator through the bot's ``DingTalkClient``, its data in an SQLite database seeded with ``tests.web.world``."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import Config
from bot.context import FrozenClock
from bot.dingtalk import DingTalkClient
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.templates import load_templates
from storage.workdays import WorkCalendar
from tests.web.world import NOW, dashboard_config, seed
from web.server import DashboardServer

TIMEOUT = aiohttp.ClientTimeout(total=20)
_CSRF = re.compile(r'data-csrf="([^"]+)"')
_FORM_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(config=EmulatorConfig.for_tests(), seed=17) as sb:
        yield sb


def sandbox_dashboard_config(sb: Sandbox, files_dir: Path, **dashboard: Any) -> Config:
    dingtalk = {"client_id": sb.client_id, "client_secret": sb.client_secret, "corp_id": sb.world.corp_id,
                "api_base_url": sb.base_url, "oapi_base_url": sb.base_url}
    return dashboard_config(files_dir, dingtalk=dingtalk, jsapi_url=sb.jsapi_url, **dashboard)


@dataclass
class Site:
    """A running 看板 and the people visiting it."""

    url: str  # the portfolio, ending in "/"
    sb: Sandbox
    server: DashboardServer
    world: dict[str, Any]
    files_dir: Path
    clients: list[aiohttp.ClientSession] = field(default_factory=list)

    def browser(self) -> aiohttp.ClientSession:
        """A cookie-keeping client (cookies of 127.0.0.1 too), no redirects followed unless asked."""
        client = aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.clients.append(client)
        return client

    def at(self, path: str) -> str:
        return self.url.rstrip("/") + path

    async def sign_in(self, user: str, client: aiohttp.ClientSession | None = None) -> aiohttp.ClientSession:
        """免登 as the page does it: load a page (the sign-in page), get a code as the JSAPI would, post it."""
        client = client or self.browser()
        async with client.get(self.url) as response:
            page = await response.text()
        [token] = _CSRF.findall(page)
        code = await self.sb.auth_code(user)
        async with client.post(self.at("/auth/code"), json={"code": code},
                               headers={"X-CSRF-Token": html.unescape(token)}) as response:
            assert response.status == 200, await response.text()
        return client


def form_csrf(page: str) -> str:
    return html.unescape(_FORM_CSRF.findall(page)[0])


@pytest.fixture
async def start_site(sqlite_db, sandbox: Sandbox, tmp_path: Path):
    """``await start_site(**dashboard_options)`` -> a running ``Site`` (stopped at teardown)."""
    sites: list[Site] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(**dashboard: Any) -> Site:
        files_dir = tmp_path / "files"
        world = await seed(sqlite_db, files_dir)
        config = sandbox_dashboard_config(sandbox, files_dir, **dashboard)
        http = aiohttp.ClientSession(timeout=TIMEOUT)
        sessions.append(http)
        server = DashboardServer(config, database=sqlite_db, dingtalk=DingTalkClient(config, session=http),
                                 calendar=WorkCalendar(), clock=FrozenClock(NOW, tz=config.tz),
                                 templates=load_templates())
        await server.start()
        site = Site(server.url, sandbox, server, world, files_dir)
        sites.append(site)
        return site

    yield start
    for site in sites:
        for client in site.clients:
            await client.close()
        await site.server.stop()
    for http in sessions:
        await http.close()
