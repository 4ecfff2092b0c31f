"""``GET /healthz``: is this process doing its job? JSON, 200 when healthy, 503 otherwise.

Healthy means: the Stream connection is up, the database answers a cheap query within a second, and the scheduler
(once it exists) is running. The inbox backlog and the outbox pending/dead counts are reported for monitoring but do
not fail the check: a dead letter needs an operator (``dingpm outbox``), not a restart of the process.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web
from sqlalchemy import text

from bot.http_site import LocalSite
from storage.repo.kernel import inbox_counts, outbox_counts

log = logging.getLogger("dingpm.health")

DB_CHECK_TIMEOUT_SECONDS = 1.0

Report = dict[str, Any]


async def database_report(database: Any) -> Report:
    """A cheap round trip, and the queue counts (these are indexed GROUP BYs on small tables)."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(DB_CHECK_TIMEOUT_SECONDS):
            async with database.read() as session:
                await session.exec(text("SELECT 1"))
                inbox = await inbox_counts(session=session)
                outbox = await outbox_counts(session=session)
    except Exception as exc:  # noqa: BLE001 - any failure is "database not ok", reported as such
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1), "inbox": inbox,
            "outbox": outbox}


Route = tuple[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]  # (path pattern, GET handler)


class HealthServer:
    """A tiny aiohttp server on ``server.health_host:health_port`` (port 0: the OS picks; see ``port``). Besides
    /healthz it serves the ``routes`` it is given (the signed download links, ``bot.downloads``)."""

    def __init__(self, host: str, port: int, report: Callable[[], Awaitable[tuple[bool, Report]]],
                 routes: Sequence[Route] = ()) -> None:
        self._host = host
        self._port = port
        self._report = report
        self._routes = tuple(routes)
        self._site = LocalSite()
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        for path, handler in self._routes:
            app.router.add_get(path, handler)
        self.port = await self._site.start(app, self._host, self._port)
        log.info("health endpoint listening on http://%s:%s/healthz", self._host, self.port)

    async def stop(self) -> None:
        await self._site.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/healthz"

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, report = await self._report()
        return web.json_response(report, status=200 if healthy else 503, dumps=_dumps)


_dumps = functools.partial(json.dumps, ensure_ascii=False, default=str)
