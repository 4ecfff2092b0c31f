"""Scenario 2: the weekly push of ``--projects`` projects under the emulator's 20 calls/s per API limit.

The database holds ``--projects`` running projects with realistic data (members, a week of logs, issues, risks,
deliverables, approvals); each has a client group (and with ``--internal`` an internal group too). Our bot runs in
its own process with the weekly-report jobs, as the product runs them (variant ``prerendered``): the bench triggers
the pre-render at Friday 16:00 (SIGUSR2 -> ``Scheduler.run_due``) and waits for it to finish, then the push at 17:00
(SIGUSR1: the same claim -> job -> render or reuse -> outbox -> relay path as the real trigger), and waits until
every client group has its markdown message and its .docx (the charts are inside the .docx: checked) and the outbox is
quiet. Variant ``cold``: the push alone, as when the pre-render was missed (every report rendered in the push).
Each variant gets a fresh copy of the seeded database, a fresh emulator and a fresh bot process.

Reported per variant: the pre-render's duration; the push's time from the trigger; the floor the rate limit allows
(calls needed per API / the limit, the largest of the APIs, which run in parallel) and the ratio to it; throttle
errors (emulator call log), retries (outbox attempts, relay stats from /healthz), duplicates and losses (recorder per
group, outbox states); the busiest second of each API; how many reports were rendered ahead and reused; the slowest
/healthz answer while rendering (the event loop's responsiveness); the bot's RSS (main process, and the render
workers' sum) during the pre-render and during the push.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import shutil
import signal
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
from bench.seed import TZ, SeedOptions, build_world, database_url, fresh_copy, seed_database
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

TARGET_RATIO = 1.15
VARIANTS = ("prerendered", "cold")
THROTTLE_CODES = {"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", "90018"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument("--db", default="sqlite", help="sqlite or postgresql")
    parser.add_argument("--internal", action="store_true", help="bind an internal group too (twice the sends)")
    parser.add_argument("--qps", type=int, default=20, help="emulator limit per app per API per second")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator OpenAPI latency, seconds")
    parser.add_argument("--pacing-cps", type=float, default=None,
                        help="our bot's pacing.calls_per_second (default: the config default)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="prerendered (pre-render at 16:00, then the push) and/or cold (the push alone)")
    parser.add_argument("--relay-sends", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    parser.add_argument("--name", default=None, help="result name (default weekly-<db>[-<projects>])")
    parser.add_argument("--workdir", default="/tmp/dingpm-bench")


def friday_17(today: date) -> datetime:
    friday = today - timedelta(days=today.weekday()) + timedelta(days=4)
    return datetime.combine(friday, dtime(17, 0, 5)).replace(tzinfo=TZ)


def default_pacing() -> float:
    from bot.config import PacingConfig

    return float(PacingConfig().calls_per_second)


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


async def job_run(url: str, job: str) -> dict[str, Any] | None:
    """The job's latest run: state and duration (the scheduler stamps start and finish on the run's own clock)."""
    from sqlalchemy import text

    from storage.db import Database

    database = Database(url)
    try:
        async with database.read() as session:
            row = (await session.execute(text(
                "SELECT state, started_at, finished_at, error FROM job_runs WHERE job = :job ORDER BY id DESC LIMIT 1"),
                {"job": job})).first()
    finally:
        await database.close()
    if row is None:
        return None
    started, finished = (_as_epoch_ms(v) for v in (row[1], row[2]))
    return {"state": row[0], "duration_s": (finished - started) / 1000 if started and finished else None,
            "error": (row[3] or "")[-500:] or None}


class HealthProbe:
    """Asks /healthz every ``interval`` s and keeps the slowest answer: how long the bot's event loop can keep a
    request waiting while it renders and sends (a blocked loop shows up here)."""

    def __init__(self, log_path: Path, interval: float = 0.5) -> None:
        self.log_path, self.interval = log_path, interval
        self.latencies: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> "HealthProbe":
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _run(self) -> None:
        import aiohttp

        match = re.search(r"health=(http://\S+)", self.log_path.read_text(encoding="utf-8", errors="replace"))
        if not match:
            return
        url = match.group(1).rstrip("/")
        url = url if url.endswith("/healthz") else url + "/healthz"
        async with aiohttp.ClientSession() as session:
            while True:
                started = time.perf_counter()
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(30)) as resp:
                        await resp.read()
                    self.latencies.append((time.perf_counter() - started) * 1000)
                except Exception:  # noqa: BLE001 - a probe, not the measurement
                    pass
                await asyncio.sleep(self.interval)

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        values = sorted(self.latencies)
        return {"probes": len(values), "max_ms": values[-1] if values else None,
                "p99_ms": values[min(len(values) - 1, int(len(values) * 0.99))] if values else None}


def log_counts(log_path: Path) -> dict[str, int]:
    """What the jobs logged: reports rendered ahead, reused by the push, rendered by the push."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    counts: dict[str, int] = {}
    if m := re.search(r"rendered ahead: (\d+), unchanged since an earlier run: (\d+), failed: (\d+)", text):
        counts.update(prerendered=int(m[1]), prerender_failed=int(m[3]))
    if m := re.search(r"queued for (\d+) projects \((\d+) rendered ahead and unchanged, (\d+) rendered now\)", text):
        counts.update(queued=int(m[1]), reused=int(m[2]), rendered_in_push=int(m[3]))
    return counts


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
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))}")
    results = {}
    for variant in variants:
        variant_url = await fresh_copy(url, f"dingpm_bench_weekly_{variant}")
        results[variant] = await run_variant(args, variant, variant_url, world, fire_at)
    client_groups = sum(1 for p in world.projects if p.client_cid)
    internal_groups = sum(1 for p in world.projects if p.internal_cid)
    result = {
        "scenario": "weekly", "machine": machine, "params": {k: v for k, v in vars(args).items()},
        "projects": args.projects, "client_groups": client_groups, "internal_groups": internal_groups,
        "seed_rows": counts, "fire_at": fire_at.isoformat(), "variants": results,
        # scenario 4 reads these
        "memory": {f"weekly {label} ({variant})": memory for variant, r in results.items()
                   for label, memory in r["memory"].items()},
    }
    main = results.get("prerendered") or next(iter(results.values()))
    result["targets"] = main["targets"]
    name = args.name or f"weekly-{args.db}" + ("" if args.projects == 1000 else f"-{args.projects}")
    report.write_results(name, result, markdown(result))
    print(markdown(result), flush=True)
    return result


async def run_variant(args: argparse.Namespace, variant: str, url: str, world: Any,
                      fire_at: datetime) -> dict[str, Any]:
    client_groups = {p.client_cid for p in world.projects if p.client_cid}
    internal_groups = {p.internal_cid for p in world.projects if p.internal_cid}
    rundir = Path(args.workdir) / f"run-weekly-{variant}"
    if rundir.exists():
        shutil.rmtree(rundir)
    rundir.mkdir(parents=True)
    sb = Sandbox(world.world, EmulatorConfig.for_tests(qps_limit=args.qps))
    await sb.start()
    sb.faults.set("*", latency=args.latency)
    prerender_at = fire_at - timedelta(hours=1)  # the default lead time, 60 minutes
    spec = bot_spec("ours", sb, url, None, rundir, args, mode="weekly", fire_at=fire_at.isoformat(),
                    prerender_at=prerender_at.isoformat())
    proc = await BotProcess("ours", rundir, spec, endpoint=sb.base_url).start()
    sampler: RssSampler | None = None
    probe: HealthProbe | None = None
    memory: dict[str, Any] = {}
    prerender: dict[str, Any] | None = None
    try:
        try:
            await sb.wait_for_connection(timeout=120)
        except Exception:
            raise RuntimeError(f"the bot did not connect; its log:\n{proc.log_tail()}") from None
        deliveries: Deliveries = await sb.call(lambda: Deliveries(sb.emulator, client_groups))
        await asyncio.sleep(1.0)
        if variant == "prerendered":
            sampler, probe = RssSampler(proc.pid).start(), HealthProbe(proc.log_path).start()
            began = time.perf_counter()
            proc.signal(signal.SIGUSR2)
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                prerender = await job_run(url, "weekly_report_prerender")
                if prerender and prerender["state"] != "running":
                    break
                if not proc.alive:
                    raise RuntimeError(f"the bot died; its log:\n{proc.log_tail()}")
            assert prerender is not None, "the pre-render never started"
            prerender["wall_s"] = time.perf_counter() - began
            prerender["health"] = await probe.stop()
            memory["pre-render"] = sampler.summary()
            await sampler.stop()
            print(f"[weekly] pre-render {prerender['state']} in {prerender['duration_s']}s "
                  f"({log_counts(proc.log_path)})", flush=True)
        sb.reset_calls()
        sampler, probe = RssSampler(proc.pid).start(), HealthProbe(proc.log_path).start()
        await asyncio.sleep(1.0)
        t0 = sb.now_ms()
        proc.signal(signal.SIGUSR1)
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
                print(f"[weekly] {variant}: {deliveries.complete()}/{n} client groups complete after "
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
        push_health = await probe.stop()
        probe = None
        calls = sb.calls()
        log = sb.call_log()
        memory["push"] = sampler.summary()
        await sampler.stop()
        sampler = None
    finally:
        if sampler is not None:
            await sampler.stop()
        if probe is not None:
            await probe.stop()
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
    pacing = args.pacing_cps or default_pacing()
    throttled = Counter(r.api for r in log if r.error in THROTTLE_CODES)
    per_second: dict[str, Counter[int]] = defaultdict(Counter)
    for r in log:
        per_second[r.api][r.at // 1000] += 1
    busiest = {api: max(c.values()) for api, c in per_second.items()}
    job_rows_done_ms = _as_epoch_ms(box["created_last"])
    result = {
        "variant": variant, "prerender": prerender, "jobs": log_counts(rundir / "ours.log"),
        "total_s": total_s, "floor_s": floor, "floors_s": floors,
        "ratio_to_floor": total_s / floor if total_s else None,
        "pacing_cps": pacing, "pacing_floor_s": max(sends_needed, uploads_needed) / pacing,
        "median_group_s": per_group[len(per_group) // 2] if per_group else None,
        "first_group_s": per_group[0] if per_group else None,
        "queued_by_s": (job_rows_done_ms - t0) / 1000 if job_rows_done_ms else None,
        "quiet_after_s": (t_quiet - t0) / 1000, "wait_ended_s": (t_complete - t0) / 1000,
        "calls": calls, "throttle_errors": dict(throttled), "throttle_errors_total": sum(throttled.values()),
        "busiest_second": busiest, "outbox": box, "relay": (healthz or {}).get("outbox"), "push_health": push_health,
        "duplicates": dict(duplicates), "duplicates_total": sum(duplicates.values()),
        "lost": len(missing), "dead": box["states"].get("dead", 0), "charts_in_docx": charts,
        "other_messages": dict(deliveries.other), "memory": memory,
    }
    result["targets"] = {
        "within 1.15x floor": bool(result["ratio_to_floor"] and result["ratio_to_floor"] <= TARGET_RATIO),
        "0 duplicates": result["duplicates_total"] == 0,
        "0 lost": result["lost"] == 0 and result["dead"] == 0,
    }
    return result


def _mb(memory: dict[str, Any] | None) -> str:
    if not memory or memory.get("peak_mb") is None:
        return "—"
    return (f"{memory['peak_mb']:.0f} / {memory['steady_mb']:.0f} ({memory['children_peak_mb']:.0f}; "
            f"together {memory['total_peak_mb']:.0f})")


def markdown(r: dict[str, Any]) -> str:
    status = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    variants = r["variants"]
    names = list(variants)
    first = variants[names[0]]

    def row(label: str, value: Any) -> list[Any]:
        return [label, *[value(variants[n]) for n in names]]

    def prerender(v: dict[str, Any], key: str) -> Any:
        return (v.get("prerender") or {}).get(key)

    relay_keys = ("sent", "retried", "dead", "maybe_sent", "uploads")
    lines = [
        f"## Scenario 2: weekly push, {r['projects']} projects ({r['client_groups']} client groups"
        + (f", {r['internal_groups']} internal groups" if r["internal_groups"] else "") + f"), {r['params']['db']}", "",
        f"Emulator: {r['params']['qps']} calls/s per API, {r['params']['latency'] * 1000:.0f} ms latency. "
        f"Bot pacing: {first['pacing_cps']:g} calls/s per API. Variants: `prerendered` = the pre-render at 16:00 "
        "(one low-priority worker), then the push at 17:00; `cold` = the push alone (the pre-render missed).", "",
        report.table(["measure", *names], [
            row("pre-render: duration (s)", lambda v: prerender(v, "duration_s")),
            row("pre-render: reports rendered / failed", lambda v: f"{v['jobs'].get('prerendered')} / "
                f"{v['jobs'].get('prerender_failed')}" if v.get("prerender") else "—"),
            row("pre-render: slowest /healthz answer (ms)", lambda v: (prerender(v, "health") or {}).get("max_ms")),
            row("push: time until every client group has message + .docx (s)", lambda v: v["total_s"]),
            row("rate-limit floor (s) = max over APIs of calls needed / limit", lambda v: v["floor_s"]),
            row("  floor per API (s)", lambda v: ", ".join(f"{k} {x:.0f}" for k, x in v["floors_s"].items())),
            row("ratio to floor (target ≤ 1.15)", lambda v: report.fmt(v["ratio_to_floor"], 2)),
            row("floor at the bot's own pacing (s)", lambda v: v["pacing_floor_s"]),
            row("push: reports reused / rendered in the push", lambda v: (
                f"{v['jobs'].get('reused', '—')} / {v['jobs'].get('rendered_in_push', '—')}")),
            row("first / median client group complete (s)", lambda v: (
                f"{v['first_group_s']:.1f} / {v['median_group_s']:.1f}" if v["first_group_s"] is not None else "—")),
            row("all reports rendered and queued by (s)", lambda v: v["queued_by_s"]),
            row("push: slowest /healthz answer (ms)", lambda v: v["push_health"].get("max_ms")),
            row("API calls", lambda v: ", ".join(f"{k} {x}" for k, x in sorted(v["calls"].items()))),
            row("busiest second per API", lambda v: ", ".join(
                f"{k} {x}" for k, x in sorted(v["busiest_second"].items()))),
            row("throttle errors (emulator)", lambda v: v["throttle_errors_total"]),
            row("retries (outbox attempts beyond the first)", lambda v: v["outbox"]["retries"]),
            row("relay stats (/healthz)", lambda v: ", ".join(
                f"{k} {x}" for k, x in (v.get("relay") or {}).items() if k in relay_keys)),
            row("duplicates (extra messages in a client group)", lambda v: v["duplicates_total"]),
            row("lost (client groups missing a part) / dead rows", lambda v: f"{v['lost']} / {v['dead']}"),
            row(".docx with the charts inside", lambda v: v["charts_in_docx"]),
            row("RSS MB during the pre-render: bot peak / steady (workers' peak; together)",
                lambda v: _mb(v["memory"].get("pre-render"))),
            row("RSS MB during the push: bot peak / steady (workers' peak; together)",
                lambda v: _mb(v["memory"].get("push"))),
        ]), "",
        report.table(["target", *names], [[k, *[status(variants[n]["targets"][k]) for n in names]]
                                          for k in first["targets"]]),
    ]
    return "\n".join(lines)
