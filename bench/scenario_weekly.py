"""Scenario 2: the weekly push of ``--projects`` projects under the emulator's 20 calls/s per API limit.

The database holds ``--projects`` running projects with realistic data (members, a week of logs, issues, risks,
deliverables, approvals); each has a client group (and with ``--internal`` an internal group too). Our bot runs in
its own process with the weekly-report job; the bench triggers it (SIGUSR1 -> ``Scheduler.run_due`` at this week's
Friday 17:00, the same claim -> job -> render -> outbox -> relay path as the real trigger) and waits until every
client group has its markdown message and its .docx (the charts are inside the .docx: checked), and the outbox is
quiet.

Reported: total time from the trigger; the floor the rate limit allows (calls needed per API / the limit, the largest
of the APIs, which run in parallel) and the ratio to it; throttle errors (emulator call log), retries (outbox
attempts, relay stats from /healthz), duplicates and losses (recorder per group, outbox states); the busiest second of
each API; the bot's RSS (main process, and the render pool's workers).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import time
import zipfile
from collections import Counter, defaultdict
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench import report
from bench.load import RssSampler
from bench.procs import BotProcess
from bench.scenario_chat import bot_spec
from bench.seed import TZ, SeedOptions, build_world, database_url, seed_database
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

TARGET_RATIO = 1.15
THROTTLE_CODES = {"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "90018"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--db", default="sqlite", help="sqlite or postgresql")
    parser.add_argument("--internal", action="store_true", help="bind an internal group too (twice the sends)")
    parser.add_argument("--qps", type=int, default=20, help="emulator limit per app per API per second")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator OpenAPI latency, seconds")
    parser.add_argument("--pacing-cps", type=float, default=None,
                        help="our bot's pacing.calls_per_second (default: the config default, 15)")
    parser.add_argument("--relay-sends", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    parser.add_argument("--name", default=None, help="result name (default weekly-<db>[-<projects>])")
    parser.add_argument("--workdir", default="/tmp/dingpm-bench")


def friday_17(today: date) -> datetime:
    friday = today - timedelta(days=today.weekday()) + timedelta(days=4)
    return datetime.combine(friday, dtime(17, 0, 5)).replace(tzinfo=TZ)


class Deliveries:
    """Per client group: when its markdown and its file arrived (emulator recorder), on the emulator loop."""

    def __init__(self, emulator: Any, client_groups: set[str]) -> None:
        self.groups = client_groups
        self.markdown: dict[str, list[int]] = defaultdict(list)
        self.files: dict[str, list[tuple[int, bytes | None]]] = defaultdict(list)
        self.other: Counter[str] = Counter()
        emulator.recorder.add_listener(self.on_record)

    def on_record(self, record: Any) -> None:
        if getattr(record, "direction", "") != "out":
            return
        cid = record.conversation_id
        if cid not in self.groups:
            self.other[record.msgtype] += 1
        elif record.msgtype == "markdown":
            self.markdown[cid].append(record.created_at)
        elif record.msgtype == "file":
            self.files[cid].append((record.created_at, record.file_bytes))
        else:
            self.other[record.msgtype] += 1

    def complete(self) -> int:
        return sum(1 for g in self.groups if self.markdown.get(g) and self.files.get(g))


async def outbox_report(url: str) -> dict[str, Any]:
    from sqlalchemy import text

    from storage.db import Database

    database = Database(url)
    try:
        async with database.read() as session:
            states = dict((await session.execute(text("SELECT state, COUNT(*) FROM outbox GROUP BY state"))).all())
            attempts = (await session.execute(text(
                "SELECT COALESCE(SUM(attempts), 0), COALESCE(SUM(CASE WHEN attempts > 1 THEN attempts - 1 ELSE 0 END), 0),"
                " COUNT(*) FROM outbox"))).one()
            errors = [r[0] for r in (await session.execute(text(
                "SELECT last_error FROM outbox WHERE last_error IS NOT NULL LIMIT 5"))).all()]
            created = (await session.execute(text("SELECT MIN(created_at), MAX(created_at) FROM outbox"))).one()
            weekly = (await session.execute(text("SELECT COUNT(*) FROM weekly_reports WHERE sent_at IS NOT NULL"))).scalar()
    finally:
        await database.close()
    return {"states": states, "attempts": int(attempts[0]), "retries": int(attempts[1]), "rows": int(attempts[2]),
            "errors": errors, "created_first": created[0], "created_last": created[1], "weekly_rows_sent": weekly}


def _as_epoch_ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return int(value.replace(tzinfo=timezone.utc).timestamp() * 1000)


async def health(log_path: Path) -> dict[str, Any] | None:
    import aiohttp

    match = re.search(r"health=(http://\S+)", log_path.read_text(encoding="utf-8", errors="replace"))
    if not match:
        return None
    url = match.group(1).rstrip("/")
    url = url if url.endswith("/healthz") else url + "/healthz"
    try:
        async with aiohttp.ClientSession() as session, session.get(url, timeout=aiohttp.ClientTimeout(5)) as resp:
            return await resp.json(content_type=None)
    except Exception as exc:  # noqa: BLE001
        return {"error": repr(exc)}


def docx_has_chart(data: bytes | None) -> bool:
    if not data:
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(n.startswith("word/media/") and n.endswith(".png") for n in archive.namelist())
    except zipfile.BadZipFile:
        return False


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    today = date.today()
    fire_at = friday_17(today)
    world = build_world(args.projects, internal_groups=args.internal, client_groups=True)
    url = database_url(args.db, "dingpm_bench_weekly", workdir)
    started = time.perf_counter()
    counts = await seed_database(url, world, SeedOptions(today=today, all_active=True))
    print(f"[weekly] seeded {args.db}: {counts} in {time.perf_counter() - started:.1f}s", flush=True)
    extra = {"postgresql": await report.server_version(url)} if args.db == "postgresql" else {}
    machine = report.machine_info(**extra)
    client_groups = {p.client_cid for p in world.projects if p.client_cid}
    internal_groups = {p.internal_cid for p in world.projects if p.internal_cid}
    rundir = workdir / "run-weekly"
    rundir.mkdir(parents=True, exist_ok=True)
    sb = Sandbox(world.world, EmulatorConfig.for_tests(qps_limit=args.qps))
    await sb.start()
    sb.faults.set("*", latency=args.latency)
    spec = bot_spec("ours", sb, url, None, rundir, args, mode="weekly", fire_at=fire_at.isoformat())
    proc = await BotProcess("ours", rundir, spec, endpoint=sb.base_url).start()
    sampler: RssSampler | None = None
    result: dict[str, Any] = {}
    try:
        try:
            await sb.wait_for_connection(timeout=120)
        except Exception:
            raise RuntimeError(f"the bot did not connect; its log:\n{proc.log_tail()}") from None
        deliveries: Deliveries = await sb.call(lambda: Deliveries(sb.emulator, client_groups))
        sb.reset_calls()
        sampler = RssSampler(proc.pid).start()
        await asyncio.sleep(1.0)
        t0 = sb.now_ms()
        proc.signal(__import__("signal").SIGUSR1)
        n = len(client_groups)
        last_report = time.monotonic()

        def progress() -> bool | None:
            return deliveries.complete() >= n or None

        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            try:
                await sb.run(lambda em: em.wait_until(progress, 5.0))
                break
            except (asyncio.TimeoutError, TimeoutError):
                pass
            if not proc.alive:
                raise RuntimeError(f"the bot died; its log:\n{proc.log_tail()}")
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                print(f"[weekly] {deliveries.complete()}/{n} client groups complete after "
                      f"{(sb.now_ms() - t0) / 1000:.0f}s; calls {sb.calls()}", flush=True)
        t_complete = sb.now_ms()
        # Let stragglers (internal groups, retries, duplicates) arrive: until the outbox is quiet, 60 s at most.
        for _ in range(120):
            box = await outbox_report(url)
            if not box["states"].get("pending") and not box["states"].get("sending"):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)
        t_quiet = sb.now_ms()
        box = await outbox_report(url)
        healthz = await health(proc.log_path)
        calls = sb.calls()
        log = sb.call_log()
        memory = sampler.summary()
        await sampler.stop()
        sampler = None
    finally:
        if sampler is not None:
            await sampler.stop()
        await proc.stop()
        await sb.stop()

    # ---- the figures ------------------------------------------------------------------------------------------
    completion = {}
    duplicates = Counter()
    missing = []
    charts = 0
    for g in client_groups:
        md, files = deliveries.markdown.get(g, []), deliveries.files.get(g, [])
        if not md or not files:
            missing.append(g)
            continue
        completion[g] = max(min(md), min(t for t, _ in files))
        duplicates["markdown"] += len(md) - 1
        duplicates["file"] += len(files) - 1
        charts += docx_has_chart(files[0][1])
    last_ms = max(completion.values()) if completion else None
    total_s = (last_ms - t0) / 1000 if last_ms else None
    per_group = sorted((v - t0) / 1000 for v in completion.values())
    sends_needed = 2 * len(client_groups) + 2 * len(internal_groups)
    uploads_needed = len(client_groups) + len(internal_groups)
    limit = args.qps
    floors = {"robot.groupMessages.send": sends_needed / limit, "media.upload": uploads_needed / limit}
    floor = max(floors.values())
    pacing = args.pacing_cps or 15.0
    throttled = Counter(r.api for r in log if r.error in THROTTLE_CODES)
    per_second: dict[str, Counter[int]] = defaultdict(Counter)
    for r in log:
        per_second[r.api][r.at // 1000] += 1
    busiest = {api: max(c.values()) for api, c in per_second.items()}
    job_rows_done_ms = _as_epoch_ms(box["created_last"])
    result = {
        "scenario": "weekly", "machine": machine, "params": {k: v for k, v in vars(args).items()},
        "projects": args.projects, "client_groups": len(client_groups), "internal_groups": len(internal_groups),
        "seed_rows": counts, "fire_at": fire_at.isoformat(),
        "total_s": total_s, "floor_s": floor, "floors_s": floors, "ratio_to_floor": total_s / floor if total_s else None,
        "pacing_cps": pacing, "pacing_floor_s": max(sends_needed, uploads_needed) / pacing,
        "median_group_s": per_group[len(per_group) // 2] if per_group else None,
        "first_group_s": per_group[0] if per_group else None,
        "queued_by_s": (job_rows_done_ms - t0) / 1000 if job_rows_done_ms else None,
        "quiet_after_s": (t_quiet - t0) / 1000, "wait_ended_s": (t_complete - t0) / 1000,
        "calls": calls, "throttle_errors": dict(throttled), "throttle_errors_total": sum(throttled.values()),
        "busiest_second": busiest, "outbox": box, "relay": (healthz or {}).get("outbox"),
        "duplicates": dict(duplicates), "duplicates_total": sum(duplicates.values()),
        "lost": len(missing), "dead": box["states"].get("dead", 0), "charts_in_docx": charts,
        "other_messages": dict(deliveries.other),
        "memory": {"weekly push": memory},
    }
    result["targets"] = {
        "within 1.15x floor": bool(result["ratio_to_floor"] and result["ratio_to_floor"] <= TARGET_RATIO),
        "0 duplicates": result["duplicates_total"] == 0,
        "0 lost": result["lost"] == 0 and result["dead"] == 0,
    }
    name = args.name or f"weekly-{args.db}" + ("" if args.projects == 1000 else f"-{args.projects}")
    report.write_results(name, result, markdown(result))
    print(markdown(result), flush=True)
    return result


def markdown(r: dict[str, Any]) -> str:
    status = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    t = r["targets"]
    relay = r.get("relay") or {}
    lines = [
        f"## Scenario 2: weekly push, {r['projects']} projects ({r['client_groups']} client groups"
        + (f", {r['internal_groups']} internal groups" if r["internal_groups"] else "") + f"), {r['params']['db']}", "",
        f"Emulator: {r['params']['qps']} calls/s per API, {r['params']['latency'] * 1000:.0f} ms latency. "
        f"Bot pacing: {r['pacing_cps']:g} calls/s per API.", "",
        report.table(["measure", "value"], [
            ["time until every client group has message + .docx (s)", r["total_s"]],
            ["rate-limit floor (s) = max over APIs of calls needed / limit", r["floor_s"]],
            ["  floor per API (s)", ", ".join(f"{k} {v:.0f}" for k, v in r["floors_s"].items())],
            ["ratio to floor (target ≤ 1.15)", r["ratio_to_floor"]],
            ["floor at the bot's own pacing (s)", r["pacing_floor_s"]],
            ["first / median client group complete (s)", f"{r['first_group_s']:.1f} / {r['median_group_s']:.1f}"
             if r["first_group_s"] is not None else "—"],
            ["all reports rendered and queued by (s)", r["queued_by_s"]],
            ["API calls", ", ".join(f"{k} {v}" for k, v in sorted(r["calls"].items()))],
            ["busiest second per API", ", ".join(f"{k} {v}" for k, v in sorted(r["busiest_second"].items()))],
            ["throttle errors (emulator)", r["throttle_errors_total"]],
            ["retries (outbox attempts beyond the first)", r["outbox"]["retries"]],
            ["relay stats (/healthz)", ", ".join(f"{k} {v}" for k, v in relay.items()
                                                 if k in ("sent", "retried", "dead", "maybe_sent", "uploads"))],
            ["duplicates (extra messages in a client group)", r["duplicates_total"]],
            ["lost (client groups missing a part) / dead rows", f"{r['lost']} / {r['dead']}"],
            [".docx with the charts inside", r["charts_in_docx"]],
            ["bot RSS peak / steady MB (render workers' peak sum)",
             f"{r['memory']['weekly push']['peak_mb']:.0f} / {r['memory']['weekly push']['steady_mb']:.0f} "
             f"({r['memory']['weekly push']['children_peak_mb']:.0f})"],
        ]), "",
        report.table(["target", "status"], [[k, status(v)] for k, v in t.items()]),
    ]
    return "\n".join(lines)
