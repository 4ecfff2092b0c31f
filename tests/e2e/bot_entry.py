"""A bot process for the crash and replica tests: ``python bot_entry.py spec.json``.

The spec (written by the test) holds the raw config (pointed at the emulator the test runs in its own thread) and
whether to run the test job. The process is the real ``App`` plus the test commands of ``e2e_commands``, with the
kernel's timings shrunk like the in-process tests'.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import e2e_commands  # noqa: E402
from e2e_support import KERNEL_FEATURES  # noqa: E402

from bot.app import App, KernelOptions  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.dingtalk import RetryPolicy  # noqa: E402
from bot.feature import Feature  # noqa: E402
from bot.inbox import InboxOptions  # noqa: E402
from bot.logging_setup import setup_logging  # noqa: E402
from bot.outbox import RelayOptions  # noqa: E402
from bot.stream import StreamOptions  # noqa: E402

OPTIONS = KernelOptions(
    inbox=InboxOptions(lease_seconds=3.0, poll_seconds=0.5, stop_grace_seconds=5.0),
    # Sends must settle within the lease or another process sends again: generous even on a loaded 2-core box.
    relay=RelayOptions(lease_seconds=8.0, poll_seconds=0.5, backoff_base_seconds=0.05, backoff_max_seconds=0.5),
    stream=StreamOptions(ping_interval=1.0, ping_timeout=5.0, watchdog_timeout=10.0, backoff_initial=0.05,
                         backoff_max=0.5, open_timeout=3.0, close_timeout=1.0, disconnect_drain_seconds=0.5),
    retry=RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.2),
    leader_retry_seconds=0.3,
    leader_check_seconds=0.3,
    scheduler_sweep_seconds=None,
)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    config = parse_config(spec["config"], environ={}, require_real_secret=False)
    setup_logging(config)
    jobs = e2e_commands.jobs if spec.get("jobs") else None
    app = App(config, features=(*KERNEL_FEATURES, Feature("e2e", router=e2e_commands.router, jobs=jobs)),
              options=OPTIONS, worker_id=f"e2e-bot:{os.getpid()}")
    asyncio.run(app.run())


if __name__ == "__main__":
    main()
