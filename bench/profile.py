"""Summaries of a py-spy ``raw`` (collapsed stacks) profile: where the bot's CPU goes, as markdown tables."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from bench.report import table

# Library buckets by the file of a frame; the first match wins.
BUCKETS = (
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("SQLModel", ("sqlmodel/",)),
    ("aiosqlite / sqlite3", ("aiosqlite/", "sqlite3/")),
    ("asyncpg", ("asyncpg/",)),
    ("aiohttp", ("aiohttp/", "yarl/", "multidict/")),
    ("websockets", ("websockets/",)),
    ("json", ("json/",)),
    ("logging", ("logging/",)),
    ("pydantic", ("pydantic",)),
    ("asyncio / threads", ("asyncio/", "threading.py", "concurrent/", "selectors.py", "queue.py")),
    ("dingpm bot/", ("/bot/",)),
    ("dingpm handlers/", ("/handlers/",)),
    ("dingpm storage/", ("/storage/",)),
    ("dingpm reports/", ("/reports/",)),
)
# Inclusive: share of samples with at least one frame of these (what the time is spent *under*).
INCLUSIVE = (
    ("inbox: frame -> stored (on_frame)", "on_frame (bot/inbox.py"),
    ("inbox: claim", "_claim (bot/inbox.py"),
    ("inbox: run command (unit of work)", "_run_command (bot/inbox.py"),
    ("dispatcher.run_message (the command)", "run_message (bot/dispatcher.py"),
    ("outbox: enqueue", "enqueue (bot/outbox/enqueue.py"),
    ("outbox: deliver one (send + settle)", "_deliver_one (bot/outbox/relay.py"),
    ("outbox: settle (mark sent)", "_settle (bot/outbox/relay.py"),
    ("DingTalk client _call", "_call (bot/dingtalk/transport.py"),
    ("stream: read frames", "_read (bot/stream.py"),
    ("SQLite write gate wait", "acquire (bot/transactions.py"),
    ("session commit", "commit (sqlalchemy"),
    ("logging", "(logging/"),
)
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _bucket(file: str) -> str:
    for name, needles in BUCKETS:
        if any(n in file for n in needles):
            return name
    return "other (stdlib, C)"


def summarize_raw(path: Path, top: int = 15) -> dict[str, Any]:
    stacks: list[tuple[list[str], int]] = []
    try:
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            match = _LINE.match(line.strip())
            if match:
                stacks.append((match.group("stack").split(";"), int(match.group("count"))))
    except FileNotFoundError:
        return {"samples": 0, "markdown": "(no profile written)"}
    total = sum(c for _, c in stacks) or 1
    leaf_funcs: Counter[str] = Counter()
    leaf_buckets: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        leaf = frames[-1]
        found = _FRAME.match(leaf)
        file = found.group("file") if found else leaf
        leaf_funcs[_short(leaf)] += count
        leaf_buckets[_bucket(file)] += count
        joined = ";".join(frames)
        for name, needle in INCLUSIVE:
            if needle in joined:
                inclusive[name] += count
    pct = lambda n: 100.0 * n / total  # noqa: E731
    md = "\n\n".join([
        table(["self time by library (leaf frame)", "%"], [[k, pct(v)] for k, v in leaf_buckets.most_common()]),
        table(["inclusive (stack contains)", "%"], [[k, pct(v)] for k, v in inclusive.most_common()]),
        table([f"top {top} leaf functions", "%"], [[k, pct(v)] for k, v in leaf_funcs.most_common(top)]),
    ])
    return {"samples": total, "leaf_buckets": {k: pct(v) for k, v in leaf_buckets.most_common()},
            "inclusive": {k: pct(v) for k, v in inclusive.most_common()},
            "top_leaf": [[k, pct(v)] for k, v in leaf_funcs.most_common(top)], "markdown": md}


def _short(frame: str) -> str:
    found = _FRAME.match(frame)
    if not found:
        return frame[:80]
    file = found.group("file")
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{found.group('func')} ({file})"[:100]
