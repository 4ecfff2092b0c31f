"""Our bot as the process under test: ``python -m bench.bot_entry spec.json``.

The real ``App`` with every handler module's commands, production kernel timings and the configured pacing. Jobs are
left out of the chat runs (they would add their own traffic); the weekly run gets the weekly-report jobs only, on a
``Scheduler`` of its own that runs the push when the bench sends SIGUSR1 (``run_due`` at the spec's fire time: the
same claim -> job -> outbox -> relay path as a Friday 17:00 trigger) and the pre-render on SIGUSR2 (at the spec's
``prerender_at``). SIGTERM stops the app gracefully.

The application is imported inside ``main``, as ``dingpm`` (``bot.cli``) does: a render worker process (spawn)
re-imports this module, and an app imported at the top would cost each worker ~55 MB that production does not pay.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.bot")


def instrument_write_transactions() -> dict[str, list[float]]:
    """Diagnostics only (``"gate_stats": true`` in the spec): how long each write transaction waited for the SQLite
    gate and how long it held it, by the function that opened it. Logged as one JSON line at stop."""
    import sys
    import time
    from contextlib import asynccontextmanager

    from bot import transactions

    stats: dict[str, list[float]] = {}
    original = transactions.Transactions.write

    @asynccontextmanager
    async def write(self: Any, *, urgent: bool = False, interactive: bool = False) -> Any:
        frame = sys._getframe(2)
        caller = f"{frame.f_code.co_name} ({frame.f_code.co_filename.rsplit('/', 2)[-2]})"
        started = time.perf_counter()
        async with original(self, urgent=urgent, interactive=interactive) as session:
            entered = time.perf_counter()
            yield session
        done = time.perf_counter()
        entry = stats.setdefault(caller, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += entered - started
        entry[2] += done - entered

    transactions.Transactions.write = write  # type: ignore[method-assign]

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    statements: dict[str, list[float]] = stats.setdefault("SQL statements by verb", {})  # type: ignore[assignment]

    import asyncio

    from bot import kernel

    in_task: dict[Any, list[int]] = {}  # task -> [statements, transactions] run by that message's task so far

    @event.listens_for(Engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        verb = statement.lstrip().split(" ", 1)[0].upper()
        statements[verb] = statements.get(verb, 0) + 1  # type: ignore[assignment,operator]
        texts = stats.setdefault("SQL statements", {})  # by text: which statements a message costs
        key = " ".join(statement.split())[:160]
        texts[key] = texts.get(key, 0) + 1
        task = asyncio.current_task()
        if task is not None and verb != "BEGIN":
            in_task.setdefault(task, [0, 0])[0] += 1

    @event.listens_for(Engine, "begin")
    def begin(conn: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            in_task.setdefault(task, [0, 0])[1] += 1

    # Per command: the statements and transactions of the message's own task (its unit of work, and a read-only
    # command's read transaction); the frame's insert and the sent mark are shared group commits, counted above.
    by_command: dict[str, list[int]] = stats.setdefault("by command", {})  # type: ignore[assignment]
    original_log = kernel.log_handled

    seen: set[str] = set()

    def log_handled(handled: Any) -> None:
        statements_, transactions = in_task.pop(asyncio.current_task(), [0, 0])
        # A sender's first message also teaches the directory who they are and sets their last project (a short
        # bench sees most senders once; a deployment has seen them before): counted apart.
        first = handled.sender_id not in seen
        seen.add(handled.sender_id)
        name = f"{handled.command} ({handled.outcome})" + (", sender's first message" if first else "")
        entry = by_command.setdefault(name, [0, 0, 0])
        entry[0] += 1
        entry[1] += statements_
        entry[2] += transactions
        original_log(handled)

    kernel.log_handled = log_handled  # type: ignore[assignment]  # the kernel logs every handled message
    return stats


def count_sql() -> dict[str, int]:
    """Always on (two counters, ~1 µs a statement): SQL statements (BEGIN itself not counted) and transactions of the
    whole run, logged at stop with the messages processed, for the statements and transactions per message."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counts = {"statements": 0, "transactions": 0}

    @event.listens_for(Engine, "before_cursor_execute")
    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        if not text.startswith("BEGIN"):  # SQLite's begin hook sends BEGIN as a statement; the begin event counts it
            counts["statements"] += 1

    @event.listens_for(Engine, "begin")
    def begin(conn: Any) -> None:
        counts["transactions"] += 1

    return counts


async def main(spec: dict[str, Any]) -> None:
    from bot.app import App, KernelOptions
    from bot.config import parse_config
    from bot.logging_setup import setup_logging
    from handlers.features import FEATURES

    config = parse_config(spec["config"], environ={}, require_real_secret=False)
    setup_logging(config)
    gate_stats = instrument_write_transactions() if spec.get("gate_stats") else None
    sql_counts = count_sql()
    options = KernelOptions()
    if spec.get("relay_sends"):
        options = dataclasses.replace(options, relay=dataclasses.replace(options.relay,
                                                                         max_concurrent_sends=spec["relay_sends"]))
    # Every feature but its schedule: the bench measures messages (the weekly mode runs its one job itself).
    app = App(config, features=[dataclasses.replace(f, jobs=None) for f in FEATURES], options=options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await app.start()
    if spec.get("mode") == "weekly":
        from bot.scheduler import Scheduler
        from handlers import weekly_reports

        scheduler = Scheduler(app.services, [weekly_reports.jobs], owner=app.worker, sweep_interval=None)
        runs: set[asyncio.Task[Any]] = set()

        def trigger(job: str, at: datetime) -> None:
            log.info("bench: %s triggered at %s", job, at.isoformat())
            task = loop.create_task(scheduler.run_due(at, jobs=[job], reason="bench"))
            runs.add(task)
            task.add_done_callback(lambda t: log.info("bench: %s run finished: %s", job, t.exception() or t.result()))

        loop.add_signal_handler(signal.SIGUSR1, trigger, "weekly_report", datetime.fromisoformat(spec["fire_at"]))
        if spec.get("prerender_at"):
            loop.add_signal_handler(signal.SIGUSR2, trigger, "weekly_report_prerender",
                                    datetime.fromisoformat(spec["prerender_at"]))
    log.info("bench: bot ready")
    await stop.wait()
    # Before stopping: the bench may not wait for a backlog to drain (it kills a bot that takes longer).
    messages = app.inbox.stats.processed if app.inbox is not None else 0
    log.info("bench: sql counts %s", json.dumps({**sql_counts, "messages": messages}))
    if gate_stats is not None:
        log.info("bench: write transactions %s", json.dumps(gate_stats, ensure_ascii=False))
    await app.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
