"""Scenario 1: chat throughput and reply latency of our bot, the SDK-style baseline and the null bot.

Simulated people in the internal groups of ``--projects`` projects send the mix of ``bench.load`` (项目, 交付物,
日志, 问题 新增, a small file then 「提交」) through the emulator, whose OpenAPI and webhook latency is ``--latency``
(50 ms). Each load level is a fresh emulator, a fresh copy of the seeded database and a fresh bot process: Poisson
arrivals at 10 / 50 / 100 / 200 msg/s for ``--seconds``, and saturation (``--sat-users`` people who each send their
next message when the last one was answered). Latency = message pushed -> answer received, from the emulator's
recorder timestamps; throughput = answers received per second within the window. The bot under test runs in its
own process; the emulator and the load generator share the bench process (their CPU is reported too).

Results: ``bench/results/chat-<bot>-<db>.json|.md`` per bot, and ``chat-summary.md`` comparing the latest ones.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.load import MIX, ChatLoad, RssSampler, latency_extension, summarize
from bench.procs import BotProcess
from bench.seed import APP_CLIENT_ID, APP_SECRET, LEADERS, SeedOptions, build_world, database_url, fresh_copy, \
    seed_database
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

TARGET_VS_BASELINE = 10.0  # issue 14: one SQLite process
GOAL_VS_BASELINE = 20.0
TARGET_P99_OWN_AT_50_MS = 50.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bots", default="ours,baseline,null", help="ours, baseline, null (comma-separated)")
    parser.add_argument("--db", default="sqlite", help="our bot's database: sqlite, postgresql or both")
    parser.add_argument("--levels", default="10,50,100,200,sat", help="msg/s levels and/or 'sat'")
    parser.add_argument("--projects", type=int, default=100, help="projects (each with its internal group)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured closed-loop seconds before each level")
    parser.add_argument("--drain", type=float, default=20.0, help="seconds to wait for late answers")
    parser.add_argument("--sat-users", type=int, default=256, help="concurrent senders at saturation")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator OpenAPI/webhook latency, seconds")
    parser.add_argument("--pacing-cps", type=float, default=None,
                        help="our bot's pacing.calls_per_second (default: the config default, 15)")
    parser.add_argument("--relay-sends", type=int, default=None,
                        help="our bot's RelayOptions.max_concurrent_sends (default: the kernel default, 16)")
    parser.add_argument("--processes", type=int, default=1,
                        help="our bot's processes sharing the database (the Stream gateway spreads frames over "
                             "their connections); the results get the suffix -<n>proc")
    parser.add_argument("--profile", action="store_true", help="py-spy our bot during the saturation level")
    parser.add_argument("--gate-stats", action="store_true",
                        help="diagnostics: log our bot's write-transaction wait/hold times (adds overhead)")
    parser.add_argument("--suffix", default="", help="appended to the result names (variants)")
    parser.add_argument("--workdir", default="/tmp/dingpm-bench")


def bot_spec(bot: str, sb: Sandbox, url: str | None, sqlite_url: str | None, rundir: Path,
             args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    if bot == "ours":
        pacing: dict[str, Any] = {}
        if args.pacing_cps:
            pacing["calls_per_second"] = args.pacing_cps
        return {"config": {
            "dingtalk": {"client_id": sb.client_id, "client_secret": sb.client_secret, "robot_code": sb.robot_code,
                         "api_base_url": sb.base_url, "oapi_base_url": sb.base_url},
            "database": {"url": url},
            "storage": {"files_dir": str(rundir / "files")},
            "server": {"health_host": "127.0.0.1", "health_port": 0},
            "approvals": {"mode": "off"},
            "organization": {"leaders": list(LEADERS)},
            "pacing": pacing,
            "logging": {"level": "INFO"},
        }, "relay_sends": args.relay_sends, "gate_stats": getattr(args, "gate_stats", False), **extra}
    spec = {"client_id": APP_CLIENT_ID, "client_secret": APP_SECRET, "files_dir": str(rundir / "files")}
    if bot == "baseline":
        assert sqlite_url is not None
        spec["sqlite_path"] = sqlite_url.split(":///", 1)[1]
    return spec


def start_profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    py_spy = shutil.which("py-spy") or str(Path(os.sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("[chat] py-spy not installed: no profile")
        return None
    # --gil: sample only the thread holding the GIL, i.e. the Python CPU one process is limited by. Without it the
    # samples of threads waiting in epoll or in sqlite3's C code drown it.
    return subprocess.Popen([py_spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100", "-f", "raw",
                             "-o", str(out), "--nonblocking", "--gil"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run_level(bot: str, level: str, *, world: Any, url: str | None, sqlite_url: str | None,
                    rundir: Path, args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    if rundir.exists():
        shutil.rmtree(rundir)
    rundir.mkdir(parents=True)
    sb = Sandbox(world.world, EmulatorConfig.for_tests(allow_group_files=True), extensions=[latency_extension])
    await sb.start()
    sb.faults.set("*", latency=args.latency)
    count = args.processes if bot == "ours" else 1
    spec = bot_spec(bot, sb, url, sqlite_url, rundir, args)
    procs = [await BotProcess(bot, rundir / f"process-{i}" if count > 1 else rundir, spec,
                              endpoint=sb.base_url).start() for i in range(count)]
    proc = procs[0]
    samplers: list[RssSampler] = []
    profiler = None
    me = psutil.Process()
    try:
        try:
            await sb.wait_for_connection(count=count, timeout=120)
        except Exception:
            raise RuntimeError(f"{bot} bot did not connect; its log:\n{proc.log_tail()}") from None
        samplers = [RssSampler(p.pid).start() for p in procs]
        sampler = _Samplers(samplers)
        load: ChatLoad = await sb.call(lambda: ChatLoad(sb.emulator, world.projects, seed=sum(map(ord, level))))
        await sb.run(lambda em: load.closed_loop(8, args.warmup))
        await sb.run(lambda em: load.drain(0, 10))
        # The bench's own heap (the seeded world, earlier levels' results, the emulator) out of the cyclic
        # collector's way until the level ends: a full collection of it stalls the emulator and the load generator
        # for ~100 ms, which the latencies would otherwise count as the bot's (as the scans and dashboard benches do).
        gc.collect()
        gc.freeze()
        steady_from = time.monotonic()
        sampler.mark("start")
        my_cpu = sum(me.cpu_times()[:2])
        if level == "sat":
            if args.profile and bot == "ours":
                profiler = start_profiler(proc.pid, args.seconds, rundir / "profile.raw")
            window = await sb.run(lambda em: load.closed_loop(args.sat_users, args.seconds))
        else:
            window = await sb.run(lambda em: load.open_loop(float(level), args.seconds))
        sampler.mark("end")
        my_cpu = sum(me.cpu_times()[:2]) - my_cpu
        await sb.run(lambda em: load.drain(window[0], args.drain))
        stats = await sb.call(lambda: summarize(load.samples, window, args.latency * 1000))
        stats["extra_replies"] = load.extra_replies
        stats["send_errors"] = load.errors[:5]
        seconds = stats["window_s"]
        bot_cpu = sampler.cpu_marks["end"] - sampler.cpu_marks["start"]
        stats["bot_cpu_percent"] = 100 * bot_cpu / seconds
        stats["bot_cpu_ms_per_msg"] = 1000 * bot_cpu / max(1, stats["answered"])
        stats["bench_cpu_percent"] = 100 * my_cpu / seconds
        stats["memory"] = sampler.summary(steady_from)
        stats["api_calls"] = sb.calls()
        stats["processes"] = count
        if count > 1:
            stats["memory_per_process"] = [one.summary(steady_from) for one in samplers]
        for p in procs:  # their counts are logged on SIGTERM
            await p.stop(timeout=5.0)
        bot_log = "\n".join(p.log_path.read_text(encoding="utf-8", errors="replace") for p in procs)
        stats.update(sql_per_message(bot, bot_log))
        stats["bot_failed_commands"] = bot_log.count("message failed")
        stats["bot_deadlocks"] = bot_log.count("DeadlockDetectedError: deadlock detected")
        if getattr(args, "gate_stats", False):
            import json as _json
            import re as _re

            found = _re.search(r"bench: write transactions (\{.*\})", proc.log_path.read_text(encoding="utf-8"))
            stats["write_transactions"] = _json.loads(found.group(1)) if found else None
            stats["messages_handled"] = bot_log.count("message handled")
        if profiler is not None:
            await asyncio.to_thread(profiler.wait, 60)
            from bench.profile import summarize_raw

            stats["profile"] = summarize_raw(rundir / "profile.raw")
        return stats
    finally:
        gc.unfreeze()
        for one in samplers:
            await one.stop()
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        for p in procs:
            await p.stop(timeout=5.0)  # the database copy is thrown away: no need to wait for a backlog
        await sb.stop()


def sql_per_message(bot: str, bot_log: str) -> dict[str, Any]:
    """SQL statements and transactions per message over the bot's whole run (warm-up included), from the counts each
    process logs when it stops (``bench: sql counts {...}``); the null bot has no database."""
    import json
    import re

    if bot == "null":
        return {"sql_per_msg": 0.0, "transactions_per_msg": 0.0}
    totals = {"statements": 0, "transactions": 0, "messages": 0}
    for found in re.finditer(r"bench: sql counts (\{.*?\})", bot_log):
        for key, value in json.loads(found.group(1)).items():
            totals[key] = totals.get(key, 0) + value
    if not totals["messages"]:
        return {"sql_per_msg": None, "transactions_per_msg": None}
    return {"sql_per_msg": totals["statements"] / totals["messages"],
            "transactions_per_msg": totals["transactions"] / totals["messages"], "sql_counts": totals}


class _Samplers:
    """Several bot processes measured as one bot: CPU summed, RSS summed per sample time (peak of the sum)."""

    def __init__(self, samplers: list[RssSampler]) -> None:
        self._samplers = samplers
        self.cpu_marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        for one in self._samplers:
            one.mark(name)
        self.cpu_marks[name] = sum(one.cpu_marks[name] for one in self._samplers)

    def summary(self, steady_from: float | None = None) -> dict[str, Any]:
        parts = [one.summary(steady_from) for one in self._samplers]
        if len(parts) == 1:
            return parts[0]
        keys = ("peak_mb", "steady_mb", "start_mb", "children_peak_mb", "total_peak_mb")
        return {**{k: sum(p[k] or 0 for p in parts) for k in keys}, "samples": min(p["samples"] for p in parts),
                "note": f"sum over {len(parts)} processes of each one's figure"}


def level_rows(levels: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for entry in levels:
        s = entry["stats"]
        rows.append([entry["level"], s["offered_per_s"], s["throughput_per_s"], s["p50_ms"], s["p95_ms"], s["p99_ms"],
                     s.get("p99_over_emulator_ms"), s["unanswered"], s.get("bot_failed_commands"), s["bot_cpu_percent"], s["bot_cpu_ms_per_msg"], s["bench_cpu_percent"],
                     s["memory"]["peak_mb"], s.get("sql_per_msg"), s.get("transactions_per_msg")])
    return rows


LEVEL_HEADERS = ["level (msg/s)", "offered/s", "answered/s", "p50 ms", "p95 ms", "p99 ms", "p99 over emulator ms",
                 "unanswered", "failed",
                 "bot CPU %", "bot CPU ms/msg", "bench CPU %", "bot RSS peak MB", "SQL/msg", "tx/msg"]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bots = [b for b in args.bots.split(",") if b]
    dbs = [d for d in args.db.split(",") if d]
    levels = [lv for lv in args.levels.split(",") if lv]
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    extra = await report.database_servers(dbs, workdir)
    world = build_world(args.projects, internal_groups=True)
    from datetime import date

    pristine: dict[str, str] = {}
    needed = set(dbs if "ours" in bots else []) | ({"sqlite"} if "baseline" in bots else set())
    for kind in sorted(needed):
        pristine[kind] = database_url(kind, "dingpm_bench_chat_seed", workdir)
        counts = await seed_database(pristine[kind], world, SeedOptions(today=date.today()))
        print(f"[chat] seeded {kind}: {counts['projects']} projects, {counts['deliverables']} deliverables", flush=True)
    results: dict[str, Any] = {}
    for bot in bots:
        for db in (dbs if bot == "ours" else ["sqlite" if bot == "baseline" else "none"]):
            processes = f"-{args.processes}proc" if bot == "ours" and args.processes > 1 else ""
            name = f"chat-{bot}" + (f"-{db}" if bot == "ours" else "") + processes + args.suffix
            data: dict[str, Any] = {"scenario": "chat", "bot": bot, "db": db, "machine": report.machine_info(**extra),
                                    "params": {k: v for k, v in vars(args).items() if k != "func"}, "levels": []}
            for level in levels:
                url = await fresh_copy(pristine[db], "dingpm_bench_chat_run") if bot == "ours" else None
                sqlite_url = (await fresh_copy(pristine["sqlite"], "dingpm_bench_chat_base")
                              if bot == "baseline" else None)
                print(f"[chat] {name} level {level} …", flush=True)
                stats = await run_level(bot, level, world=world, url=url, sqlite_url=sqlite_url,
                                        rundir=workdir / f"run-{bot}", args=args)
                print(f"[chat] {name} level {level}: offered {stats['offered_per_s']:.1f}/s answered "
                      f"{stats['throughput_per_s']:.1f}/s p50 {stats['p50_ms']} p99 {stats['p99_ms']} ms "
                      f"unanswered {stats['unanswered']} bot CPU {stats['bot_cpu_percent']:.0f}% "
                      f"bench CPU {stats['bench_cpu_percent']:.0f}%", flush=True)
                data["levels"].append({"level": level, "stats": stats})
            data["memory"] = {f"chat {entry['level']}": entry["stats"]["memory"] for entry in data["levels"]}
            text = chat_markdown(data)
            report.write_results(name, data, text)
            results[name] = data
    summary = summarize_chat(args.suffix)
    if summary:
        print(summary)
    return results


def chat_markdown(data: dict[str, Any]) -> str:
    p = data["params"]
    bot, db = data["bot"], data["db"]
    processes = p.get("processes", 1) if bot == "ours" else 1
    text = [f"## Scenario 1: chat, {bot} bot" + (f" on {db}" if bot == "ours" else "")
            + (f", {processes} processes" if processes > 1 else ""), "",
            f"{p['projects']} projects / internal groups; emulator latency {p['latency'] * 1000:.0f} ms; "
            f"{p['seconds']:g} s per level; saturation = {p['sat_users']} closed-loop senders."
            + (f" Pacing {p['pacing_cps']:g}/s." if p.get("pacing_cps") else "")
            + (f" Relay sends {p['relay_sends']}." if p.get("relay_sends") else "")
            + (" Diagnostics on (write-transaction and SQL counting: adds overhead)." if p.get("gate_stats") else ""),
            "", report.table(LEVEL_HEADERS, level_rows(data["levels"]))]
    kinds = [kind for kind, _ in MIX]
    text += ["", "Latency by message kind, p50 / p99 ms (a file needs three round trips: the download API, the "
                 "file itself, the answer):", "",
             report.table(["level (msg/s)", *kinds], [
                 [entry["level"], *(_p50_p99(entry["stats"].get("by_kind", {}).get(kind)) for kind in kinds)]
                 for entry in data["levels"]])]
    for entry in data["levels"]:
        stats = entry["stats"]
        profile = stats.get("profile")
        if profile:
            text += ["", f"Profile at {entry['level']} (py-spy, {profile['samples']} samples; % of samples):", "",
                     profile["markdown"]]
        tx = stats.get("write_transactions")
        handled = stats.get("messages_handled")
        if tx and handled:
            verbs = tx.get("SQL statements by verb", {})
            rows = [[opener, v[0] / handled, 1000 * v[1] / max(1, v[0]), 1000 * v[2] / max(1, v[0]), v[2]]
                    for opener, v in sorted(tx.items(), key=lambda kv: -kv[1][2] if isinstance(kv[1], list) else 0)
                    if isinstance(v, list)]
            text += ["", f"Write transactions at {entry['level']} over the bot's whole run ({handled} messages handled; "
                         "SQLite: waits are for the process's write gate):", "",
                     report.table(["opened by", "per message", "mean wait ms", "mean hold ms", "total hold s"], rows),
                     "", "SQL statements per message: " + ", ".join(f"{k} {v / handled:.1f}" for k, v in verbs.items())
                     + f"; total {sum(verbs.values()) / handled:.1f}."]
            commands = tx.get("by command") or {}
            if commands:
                text += ["", "Per command, in the message's own task (its unit of work and, for a read-only command, "
                             "its read transaction; BEGIN not counted as a statement; the frame's insert and the sent "
                             "mark are group commits shared by several messages, not included):", "",
                         report.table(["command (outcome)", "messages", "statements", "transactions"],
                                      [[name, n, s / n, t / n] for name, (n, s, t) in
                                       sorted(commands.items(), key=lambda kv: -kv[1][0])])]
    return "\n".join(text)


def _p50_p99(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("n"):
        return "—"
    return f"{stats['p50_ms']:.0f} / {stats['p99_ms']:.0f}"


def _level(data: dict[str, Any] | None, level: str) -> dict[str, Any] | None:
    if not data:
        return None
    return next((e["stats"] for e in data["levels"] if e["level"] == level), None)


def summarize_chat(suffix: str = "") -> str | None:
    """``chat-summary``: one table of every bot's latest results (one row per bot and database), and the targets."""
    def latest(name: str) -> dict[str, Any] | None:
        return report.read_results(name + suffix) or report.read_results(name)

    baseline, null = latest("chat-baseline"), latest("chat-null")
    base_sat = _level(baseline, "sat")
    variants = [(f"ours, {db}", f"chat-ours-{db}{suffix}") for db in ("sqlite", "postgresql")]
    variants += [(f"ours, {db}, {n} processes", f"chat-ours-{db}-{n}proc{suffix}") for db in ("sqlite", "postgresql")
                 for n in (2, 4)]
    found = [(label, report.read_results(name)) for label, name in variants]
    found += [("baseline (SDK-style, sqlite3)", baseline), ("null (SDK, no database)", null)]
    rows, targets = [], []
    for label, data in found:
        if data is None:
            continue
        sat, at50 = _level(data, "sat"), _level(data, "50")
        vs_base = sat["throughput_per_s"] / base_sat["throughput_per_s"] if sat and base_sat else None
        counted = next((e["stats"] for e in data["levels"] if e["stats"].get("sql_per_msg") is not None), None)
        rows.append([label, sat and sat["throughput_per_s"], vs_base, at50 and at50["p99_ms"],
                     at50 and at50.get("p99_over_emulator_ms"), at50 and at50["unanswered"],
                     at50 and at50["bot_cpu_ms_per_msg"], sat and sat["bot_cpu_ms_per_msg"],
                     counted and counted["sql_per_msg"], counted and counted["transactions_per_msg"]])
        if label.startswith("ours"):
            own = at50.get("p99_over_emulator_ms") if at50 else None
            targets += [
                [label, f"saturation ≥ {TARGET_VS_BASELINE:g}x baseline (issue 14; the goal beyond it: "
                        f"{GOAL_VS_BASELINE:g}x)", vs_base,
                 "—" if vs_base is None else ("met" if vs_base >= TARGET_VS_BASELINE else "MISSED")],
                [label, f"bot's own p99 at 50 msg/s (latency less the emulator's on the message's path) ≤ "
                        f"{TARGET_P99_OWN_AT_50_MS:g} ms", own,
                 "—" if own is None else ("met" if own <= TARGET_P99_OWN_AT_50_MS and at50["unanswered"] == 0
                                          else "MISSED")],
            ]
    if not rows:
        return None
    text = "\n".join([
        "## Scenario 1: summary", "",
        "Saturation = answers per second with 256 closed-loop senders; p99 at 50 msg/s, total and the bot's own share "
        "(less the emulator's latency on the message's path); CPU = the bot process's CPU time per answered message; "
        "SQL and transactions per message over the bot's whole run (BEGIN not counted as a statement).", "",
        report.table(["bot", "sat msg/s", "x baseline", "p99 @50 ms", "own p99 @50 ms", "unanswered @50",
                      "CPU ms/msg @50", "CPU ms/msg @sat", "SQL/msg", "tx/msg"], rows), "",
        report.table(["bot", "target", "value", "status"], targets)])
    data = {"scenario": "chat-summary", "machine": report.machine_info(), "rows": rows, "targets": targets}
    report.write_results("chat-summary" + suffix, data, text)
    return text
