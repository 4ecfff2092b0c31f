"""Scenario 5: the 看板's pages on 1,000 and 10,000 projects (the software template, 42 deliverables each), on SQLite
and PostgreSQL.

The real ``web.server.DashboardServer`` serves a seeded database (``bench/seed.py``) on a loopback port; an aiohttp
client in the same process asks each page with a signed session cookie (a leader, who sees every project, and a PM
of ~5 projects), one request at a time. Timed: the wall time of the request (HTTP, the statements, the mapping, the
template rendering in its thread), median and 90th percentile of ``--runs`` after one warm-up; the statements each
request executed are counted on the engine. Charts are timed apart: drawn once (matplotlib in a thread), then served
from the chart cache.

The process's CPU time per request is recorded too (``cpu``: the server's work plus the client's parsing, all threads):
on a shared machine it says what the request costs whatever else is running.

Targets: the portfolio of every project (a leader's first page, worst first) at most 300 ms and a project page at most
150 ms at 10,000 projects, on both databases.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import report
from bench.seed import LEADERS, SeedOptions, build_world, database_url, drop, project_code, seed_database

PORTFOLIO_TARGET_S = 0.300
PROJECT_TARGET_S = 0.150
CODE = project_code(1)
# (name, viewer, path, target): what a leader and a PM open, in the order they would.
PAGES: tuple[tuple[str, str, str, float | None], ...] = (
    ("portfolio", LEADERS[0], "/", PORTFOLIO_TARGET_S),
    ("portfolio 延期, most overdue first", LEADERS[0], "/?health=%E5%BB%B6%E6%9C%9F&sort=overdue", PORTFOLIO_TARGET_S),
    ("portfolio search", LEADERS[0], "/?q=" + quote("数字化项目12"), PORTFOLIO_TARGET_S),
    ("portfolio page 100", LEADERS[0], "/?page=100", PORTFOLIO_TARGET_S),
    ("portfolio of a PM", "pm0", "/", PORTFOLIO_TARGET_S),
    ("project overview", LEADERS[0], f"/p/{CODE}", PROJECT_TARGET_S),
    ("project registers (实施日志)", LEADERS[0], f"/p/{CODE}/registers?kind=" + quote("实施日志"), PROJECT_TARGET_S),
    ("project approvals", LEADERS[0], f"/p/{CODE}/approvals", PROJECT_TARGET_S),
    ("project reports", LEADERS[0], f"/p/{CODE}/reports", PROJECT_TARGET_S),
    ("project audit", LEADERS[0], f"/p/{CODE}/audit", PROJECT_TARGET_S),
    ("project overview, PM", "pm0", f"/p/{CODE}", PROJECT_TARGET_S),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    report.add_size_options(parser, sizes="1000,10000", runs=15, name="dashboard",
                            runs_help="timed requests per page (median and p90 reported)")


def _config(url: str) -> Any:
    from bot.config import parse_config

    return parse_config({
        "dingtalk": {"client_id": "bench", "client_secret": "bench"},
        "organization": {"leaders": list(LEADERS)},
        "database": {"url": url},
        "dashboard": {"enabled": True, "port": 0, "cookie_secure": False},
    }, environ={}, require_real_secret=False)


async def measure(url: str, runs: int) -> dict[str, Any]:
    import aiohttp
    from sqlalchemy import event

    from bot.context import SystemClock
    from storage.db import Database
    from storage.templates import load_templates
    from storage.workdays import WorkCalendar
    from web.server import DashboardServer
    from web.sessions import SESSION_COOKIE

    config = _config(url)
    database = Database(url)
    statements = [0]
    event.listen(database.engine.sync_engine, "before_cursor_execute",
                 lambda *args: statements.__setitem__(0, statements[0] + 1))
    server = DashboardServer(config, database=database, dingtalk=None, calendar=WorkCalendar(),
                             clock=SystemClock(config.tz), templates=load_templates())
    await server.start()
    board = server.board
    assert board is not None
    cookies = {user: board.signer.issue_session(user, user, now=time.time(), ttl=board.session_ttl)[0]
               for user in {viewer for _, viewer, _, _ in PAGES}}
    out: dict[str, Any] = {}
    try:
        async with aiohttp.ClientSession(base_url=server.url.rstrip("/")) as http:
            cpu: list[float] = [0.0]

            async def fetch(viewer: str, path: str) -> tuple[float, int, bytes]:
                statements[0] = 0
                started, cpu_started = time.perf_counter(), time.process_time()
                async with http.get(path, cookies={SESSION_COOKIE: cookies[viewer]}) as response:
                    body = await response.read()
                    assert response.status == 200, (path, response.status, body[-500:])
                cpu[0] = time.process_time() - cpu_started
                return time.perf_counter() - started, statements[0], body

            gc.collect()  # as the bot does once started: what start-up made is out of the collector's way
            gc.freeze()
            for name, viewer, path, target in PAGES:
                await fetch(viewer, path)  # warm-up: caches, prepared statements, the templates compiled
                times, counts, cpus = [], [], []
                for _ in range(runs):
                    took, count, body = await fetch(viewer, path)
                    times.append(took)
                    counts.append(count)
                    cpus.append(cpu[0])
                times.sort()
                out[name] = {"path": path, "viewer": viewer, "median_s": statistics.median(times),
                             "p90_s": times[int(0.9 * (len(times) - 1))], "runs_s": times,
                             "cpu_median_s": statistics.median(cpus), "statements": max(counts),
                             "bytes": len(body), "target_s": target}
            # Charts: drawn once (the first request for new data), then from the cache.
            _, _, page = await fetch(LEADERS[0], "/")
            chart = page.decode().split('<img src="', 2)[1].split('"', 1)[0].replace("&amp;", "&")
            gantt = f"/p/{CODE}/gantt.png"
            for name, path in (("chart: projects by status", chart), ("chart: Gantt of a project", gantt)):
                board.chart_store._pngs.clear()  # noqa: SLF001 - the bench times a cold draw on purpose
                cold, count, _ = await fetch(LEADERS[0], path)
                warm = sorted([(await fetch(LEADERS[0], path))[0] for _ in range(runs)])
                out[name] = {"path": path, "viewer": LEADERS[0], "cold_s": cold, "median_s": statistics.median(warm),
                             "p90_s": warm[int(0.9 * (len(warm) - 1))], "statements": count, "target_s": None}
    finally:
        gc.unfreeze()
        await server.stop()
        await database.close()
    return out


async def settle(url: str) -> None:
    """On PostgreSQL, VACUUM the bulk-loaded database, as autovacuum does to a live one (inserts alone trigger it
    since PostgreSQL 13): the visibility map it sets lets the portfolio read the overdue deliverables and the risks
    from their covering indexes alone; before it, each row is fetched from the table too."""
    if not url.startswith("postgresql"):
        return
    import asyncpg

    conn = await asyncpg.connect(user="postgres", host="127.0.0.1", port=5432, database=url.rsplit("/", 1)[1])
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kinds = [k for k in args.db.split(",") if k]
    today = date.today()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"scenario": "dashboard", "today": today.isoformat(),
                               "machine": report.machine_info(**await report.database_servers(kinds, workdir)),
                               "runs": {}}
    for kind in kinds:
        for size in sizes:
            url = database_url(kind, f"dingpm_bench_dashboard_{size}", workdir)
            started = time.perf_counter()
            world = build_world(size)
            counts = await seed_database(url, world, SeedOptions(today=today))
            del world
            await settle(url)
            print(f"[dashboard] {kind} {size} projects seeded in {time.perf_counter() - started:.1f}s {counts}",
                  flush=True)
            timings = await measure(url, args.runs)
            print(f"[dashboard] {kind} {size}: " + ", ".join(f"{k} {v['median_s'] * 1000:.0f} ms"
                                                              for k, v in timings.items()), flush=True)
            results["runs"][f"{kind}:{size}"] = {"db": kind, "projects": size, "rows": counts, "timings": timings}
            if not args.keep:
                await drop(url)
    report.write_results(args.name, results, markdown(results, kinds, sizes))
    return results


def markdown(results: dict[str, Any], kinds: list[str], sizes: list[int]) -> str:
    lines = ["## Scenario 5: the 看板's pages (milliseconds per request; statements per request)", ""]
    names = list(next(iter(results["runs"].values()))["timings"])
    headers = ["page", *(f"{kind} {size:,} median / p90 (cpu)" for kind in kinds for size in sizes), "statements",
               "target"]
    rows = []
    for name in names:
        cells: list[Any] = [name]
        target = None
        statements = set()
        for kind in kinds:
            for size in sizes:
                t = results["runs"][f"{kind}:{size}"]["timings"][name]
                extra = (f" (drawn {t['cold_s'] * 1000:.0f})" if "cold_s" in t
                         else f" ({t['cpu_median_s'] * 1000:.0f})")
                cells.append(f"{t['median_s'] * 1000:.0f} / {t['p90_s'] * 1000:.0f}{extra}")
                statements.add(t["statements"])
                target = t["target_s"]
        cells.append("–".join(str(s) for s in sorted(statements)))
        largest = [results["runs"][f"{kind}:{max(sizes)}"]["timings"][name]["median_s"] for kind in kinds]
        cells.append("—" if target is None else
                     f"≤ {target * 1000:.0f}: {'met' if all(t <= target for t in largest) else 'MISSED'}")
        rows.append(cells)
    lines.append(report.table(headers, rows))
    lines += ["", "Each page is a real HTTP request to the running server with a leader's session (every project) or "
                  "a PM's (pm0, ~5 projects); the target applies to the median at the largest size."]
    return "\n".join(lines)
