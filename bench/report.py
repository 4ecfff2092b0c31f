"""Results: the machine a run used, and the JSON + markdown files under ``bench/results/``."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def uptime_line() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"load average: {load_average()}"


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


async def server_version(url: str) -> str:
    """``SELECT version()`` of a PostgreSQL/MySQL URL; '' when it cannot be reached."""
    from sqlalchemy import text

    from storage.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return str((await connection.execute(text("SELECT version()"))).scalar()).split(" on ")[0]
    except Exception:  # noqa: BLE001 - informational only
        return ""
    finally:
        await engine.dispose()


def add_size_options(parser: Any, *, sizes: str, runs: int, runs_help: str, name: str) -> None:
    """The options of a scenario run on seeded databases of several sizes (``scans``, ``dashboard``)."""
    parser.add_argument("--sizes", default=sizes, help="project counts (comma-separated)")
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--runs", type=int, default=runs, help=runs_help)
    parser.add_argument("--workdir", default="/tmp/dingpm-bench", help="SQLite files go here")
    parser.add_argument("--name", default=name, help="result file name under bench/results/")
    parser.add_argument("--keep", action="store_true", help="keep the seeded databases")


async def database_servers(kinds: Sequence[str], workdir: Path) -> dict[str, str]:
    """The versions of the database servers a run uses (``machine_info``'s extra facts)."""
    from bench.seed import database_url

    if "postgresql" not in kinds:
        return {}
    return {"postgresql": await server_version(database_url("postgresql", "postgres", workdir))}


def machine_info(**extra: Any) -> dict[str, Any]:
    import aiohttp
    import sqlalchemy

    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram_gib": _mem_total_gib(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "aiohttp": aiohttp.__version__,
        "kernel": platform.release(),
        "commit": _git_commit(),
        "uptime_before": uptime_line(),
        "argv": " ".join(sys.argv[1:]),
    }
    info.update({k: v for k, v in extra.items() if v})
    return info


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != 0 and abs(value) < 0.1:
            return f"{value:.3f}"
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_markdown(machine: dict[str, Any]) -> str:
    dbs = ", ".join(f"{k} {machine[k]}" for k in ("sqlite", "postgresql", "mariadb") if machine.get(k))
    return (f"Machine: {machine.get('nproc')} CPUs ({machine.get('cpu')}), {machine.get('ram_gib')} GiB RAM, "
            f"Python {machine.get('python')}, {dbs}; {machine.get('date')}, commit {machine.get('commit')}.  \n"
            f"Load before: `{machine.get('uptime_before')}`  \nLoad after: `{machine.get('uptime_after', '?')}`")


def write_results(name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """``bench/results/<name>.json`` and ``.md`` (the latest run of that scenario and variant)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data.setdefault("machine", {})["uptime_after"] = uptime_line()
    json_path = RESULTS_DIR / f"{name}.json"
    md_path = RESULTS_DIR / f"{name}.md"
    json_path.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n", encoding="utf-8")
    md_path.write_text(markdown.rstrip() + "\n\n" + machine_markdown(data["machine"]) + "\n", encoding="utf-8")
    return json_path, md_path


def read_results(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
