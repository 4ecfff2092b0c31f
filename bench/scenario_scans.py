"""Scenario 3: the overdue scan and the leaders' digest reads on 1,000 / 3,000 / 10,000 projects (42 deliverables
each, the software template), on SQLite and PostgreSQL.

Timed (median of ``--runs`` after one warm-up, each in a fresh read session, as the jobs do):

* ``overdue query``: ``storage.repo.report_queries.pending_deliverables_due`` with the job's arguments;
* ``overdue scan``: ``handlers.reminders.scan_reminders`` (that query plus planning every message, in a thread);
* ``digest query``: ``storage.repo.report_queries.digest_scan``;
* ``digest data``: ``domain.report_data.gather_digest_data`` (that query plus mapping, in a thread);
* ``digest render``: ``reports.digest.render_leaders_digest`` of that data (CPU only, for context).

Growth per 10x = t(10,000) / t(1,000); "linear" means at most 10x.

The reads run in this process, so it is made to look like the bot's: the seeded world is dropped, and once the
modules are imported and the engine is open, ``gc.freeze()`` moves everything alive out of the cyclic garbage
collector's reach, as ``bot/app.py`` does at the end of the bot's start (otherwise each full collection during a scan
would traverse the bench's own objects too). A timed run's result is dropped before the next run starts, as the job
drops its scan.
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable

from bench import report
from bench.seed import SeedOptions, build_world, database_url, drop, seed_database

TARGET_SECONDS = 0.5
TIMED = ("overdue query", "overdue scan", "digest query", "digest data", "digest render")
GATED = ("overdue scan", "digest data")  # what the jobs wait for: the targets apply to these


def add_arguments(parser: argparse.ArgumentParser) -> None:
    report.add_size_options(parser, sizes="1000,3000,10000", runs=7, name="scans",
                            runs_help="timed runs per measurement (median reported)")


async def _median(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, list[float], Any]:
    result = await fn()  # warm-up: caches, prepared statements, imports
    times = []
    for _ in range(runs):
        del result  # not alive during the next run: the job never holds two scans
        started = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times, result


async def measure(url: str, today: date, runs: int) -> dict[str, Any]:
    from bot.config import parse_config
    from handlers.reminders import scan_reminders
    from domain.report_data import DIGEST_PROJECT_STATUSES, gather_digest_data
    from reports.digest import render_leaders_digest
    from storage.db import Database
    from storage.repo.report_queries import digest_scan, pending_deliverables_due
    from storage.workdays import WorkCalendar

    config = parse_config({"dingtalk": {"client_id": "bench", "client_secret": "bench"},
                           "organization": {"leaders": ["leader1", "leader2"]}}, environ={},
                          require_real_secret=False)
    calendar = WorkCalendar()
    database = Database(url)
    out: dict[str, Any] = {}
    try:
        async def overdue_query() -> Any:
            async with database.read() as session:
                return await pending_deliverables_due(session=session, before=today, due_from=today + timedelta(days=1),
                                                      due_until=calendar.next_workday(today))

        async def overdue_scan() -> Any:
            async with database.read() as session:
                return await scan_reminders(session, today=today, calendar=calendar, config=config)

        async def digest_query() -> Any:
            async with database.read() as session:
                return await digest_scan(session=session, today=today, statuses=DIGEST_PROJECT_STATUSES)

        async def digest_data() -> Any:
            async with database.read() as session:
                return await gather_digest_data(session=session, today=today, calendar=calendar, tz=config.tz)

        data = await digest_data()

        async def digest_render() -> Any:
            return render_leaders_digest(data, today=today)

        gc.collect()  # what start-up leaves behind, then freeze the rest (the engine, its pool, the modules)
        gc.freeze()
        for name, fn in zip(TIMED, (overdue_query, overdue_scan, digest_query, digest_data, digest_render)):
            median, times, result = await _median(fn, runs)
            out[name] = {"median_s": median, "runs_s": times,
                         "rows": len(result) if isinstance(result, list) else None}
            del result
    finally:
        gc.unfreeze()  # the next size's seeding and reads start from a collectable heap
        await database.close()
    return out


def growth(small: float, large: float, factor: float) -> tuple[float, float]:
    """(ratio, exponent): ratio = large/small; exponent k in t ~ n^k (1 = linear)."""
    ratio = large / small if small > 0 else math.inf
    return ratio, math.log(ratio) / math.log(factor) if ratio > 0 and ratio != math.inf else math.inf


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kinds = [k for k in args.db.split(",") if k]
    today = date.today()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    machine = report.machine_info(**await report.database_servers(kinds, workdir))
    results: dict[str, Any] = {"scenario": "scans", "today": today.isoformat(), "machine": machine, "runs": {}}
    for kind in kinds:
        for size in sizes:
            url = database_url(kind, f"dingpm_bench_scan_{size}", workdir)
            started = time.perf_counter()
            world = build_world(size, internal_groups=True, client_groups=True)
            counts = await seed_database(url, world, SeedOptions(today=today, versions=False))
            del world  # the bot has no emulator world in its heap
            seeded = time.perf_counter() - started
            print(f"[scans] {kind} {size} projects seeded in {seeded:.1f}s {counts}", flush=True)
            timings = await measure(url, today, args.runs)
            print(f"[scans] {kind} {size}: " + ", ".join(f"{k} {v['median_s'] * 1000:.0f} ms"
                                                          for k, v in timings.items()), flush=True)
            results["runs"][f"{kind}:{size}"] = {"db": kind, "projects": size, "rows": counts, "seed_s": seeded,
                                                 "timings": timings}
            if not args.keep:
                await drop(url)
    results["summary"] = summarize(results, kinds, sizes)
    report.write_results(args.name, results, markdown(results, kinds, sizes))
    return results


def summarize(results: dict[str, Any], kinds: list[str], sizes: list[int]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    small, large = min(sizes), max(sizes)
    for kind in kinds:
        for name in TIMED:
            t_small = results["runs"][f"{kind}:{small}"]["timings"][name]["median_s"]
            t_large = results["runs"][f"{kind}:{large}"]["timings"][name]["median_s"]
            ratio, exponent = growth(t_small, t_large, large / small) if large > small else (None, None)
            entry = {"at_largest_s": t_large, "ratio": ratio, "exponent": exponent}
            if name in GATED:
                entry["target_met"] = bool(t_large <= TARGET_SECONDS and (exponent is None or exponent <= 1.1))
            summary[f"{kind}:{name}"] = entry
    return summary


def markdown(results: dict[str, Any], kinds: list[str], sizes: list[int]) -> str:
    lines = ["## Scenario 3: scans (median of runs, milliseconds)", ""]
    rows = []
    for kind in kinds:
        for size in sizes:
            run_ = results["runs"][f"{kind}:{size}"]
            t = run_["timings"]
            rows.append([kind, size, run_["rows"]["deliverables"],
                         *(t[name]["median_s"] * 1000 for name in TIMED),
                         t["overdue query"]["rows"], t["digest query"]["rows"]])
    lines.append(report.table(["db", "projects", "deliverables", *(f"{n} ms" for n in TIMED), "due rows",
                               "digest rows"], rows))
    small, large = min(sizes), max(sizes)
    lines += ["", f"Growth from {small:,} to {large:,} projects (x{large // small}); target: the overdue scan and the "
                  f"digest data at most {TARGET_SECONDS} s at {large:,} projects, growing no worse than linearly.", ""]
    grow_rows = []
    for kind in kinds:
        for name in TIMED:
            entry = results["summary"][f"{kind}:{name}"]
            met = entry.get("target_met")
            grow_rows.append([kind, name, entry["at_largest_s"] * 1000, entry["ratio"], entry["exponent"],
                              "—" if met is None else ("met" if met else "MISSED")])
    lines.append(report.table(["db", "measure", f"ms at {large:,}", f"ratio x{large // small}", "exponent",
                               "target"], grow_rows))
    return "\n".join(lines)
