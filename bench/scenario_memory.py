"""Scenario 4: the bot process's RSS (peak and steady) during scenarios 1 and 2, from their latest results."""

from __future__ import annotations

import argparse
from typing import Any

from bench import report

TARGET_MB = 250.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chat", default="chat-ours-sqlite,chat-ours-postgresql",
                        help="chat result names to read (comma-separated)")
    parser.add_argument("--weekly", default="weekly-sqlite", help="weekly result names to read (comma-separated)")
    parser.add_argument("--name", default="memory")


async def run(args: argparse.Namespace) -> dict[str, Any] | None:
    rows: list[list[Any]] = []
    entries: list[dict[str, Any]] = []
    for name in [n for n in (args.chat + "," + args.weekly).split(",") if n]:
        data = report.read_results(name)
        if data is None:
            print(f"[memory] no results named {name!r} yet: run that scenario first")
            continue
        for label, memory in data.get("memory", {}).items():
            entry = {"source": name, "phase": label, **memory,
                     "target_met": memory["peak_mb"] <= TARGET_MB}
            entries.append(entry)
            children = memory.get("children_peak_mb") or 0.0
            total = memory.get("total_peak_mb") or (memory["peak_mb"] + children)
            tree = "—" if not children else ("met" if total <= TARGET_MB else "MISSED")
            rows.append([name, label, memory["peak_mb"], memory["steady_mb"], children or None,
                         total if children else None, memory.get("samples"),
                         "met" if entry["target_met"] else "MISSED", tree])
    if not entries:
        return None
    data = {"scenario": "memory", "machine": report.machine_info(), "entries": entries}
    text = "\n".join([
        "## Scenario 4: memory (RSS of the bot process, psutil, sampled every 0.25 s)", "",
        report.table(["from", "phase", "peak MB", "steady MB", "render workers peak MB (sum)",
                      "bot + workers peak MB", "samples", f"≤ {TARGET_MB:.0f} MB: bot process",
                      "≤ 250 MB: with its workers"], rows)])
    report.write_results(args.name, data, text)
    print(text)
    return data
