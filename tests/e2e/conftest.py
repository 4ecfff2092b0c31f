"""End-to-end fixtures: the sandbox emulator in its own thread, and the real ``App`` (Stream client, inbox, outbox
relay, scheduler, /healthz) on an SQLite file, with kernel timings shrunk so that recovery paths take seconds.

Nothing waits by sleeping: the tests wait on the emulator's change signal (``emulator.wait_until``), on the stream's
status events, or on the app's own events, always with a timeout.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, KernelOptions
from bot.config import Config, parse_config
from bot.dingtalk import RetryPolicy
from bot.inbox import InboxOptions
from bot.outbox import RelayOptions
from bot.stream import StreamOptions
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import e2e_commands  # noqa: E402  (needs HERE on sys.path)

GROUP = "【智慧工厂MES项目】内部群"

FAST_STREAM = StreamOptions(
    ping_interval=0.5, ping_timeout=2.0, watchdog_timeout=3.0, backoff_initial=0.05, backoff_max=0.5,
    open_timeout=2.0, close_timeout=1.0, disconnect_drain_seconds=0.5, stop_grace_seconds=2.0,
)
FAST = KernelOptions(
    inbox=InboxOptions(lease_seconds=5.0, poll_seconds=0.5, stop_grace_seconds=5.0),
    relay=RelayOptions(lease_seconds=5.0, poll_seconds=0.5, backoff_base_seconds=0.05, backoff_max_seconds=0.5,
                       stop_grace_seconds=5.0),
    stream=FAST_STREAM,
    retry=RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.2),
    leader_retry_seconds=0.5,
    leader_check_seconds=0.5,
    scheduler_sweep_seconds=None,
    stream_stop_seconds=5.0,
)


def kernel_config(sb: Sandbox, database_url: str, files_dir: Path, **sections: dict[str, Any]) -> Config:
    """A Config pointed at the emulator; ``sections`` override whole keys per section (``pacing={...}``)."""
    raw: dict[str, Any] = {
        "dingtalk": {"client_id": sb.client_id, "client_secret": sb.client_secret, "robot_code": sb.robot_code,
                     "api_base_url": sb.base_url, "oapi_base_url": sb.base_url},
        "database": {"url": database_url},
        "storage": {"files_dir": str(files_dir)},
        "server": {"health_host": "127.0.0.1", "health_port": 0},
        "pacing": {"calls_per_second": 50, "http_timeout_seconds": 2, "max_concurrent_messages": 16},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return parse_config(raw, environ={}, require_real_secret=False)


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    """Override in a module for other emulator settings."""
    return EmulatorConfig.for_tests(timeout_fault_max_hold=1.0)


@pytest.fixture
async def sandbox(sandbox_config: EmulatorConfig) -> AsyncIterator[Sandbox]:
    async with Sandbox(config=sandbox_config, seed=20240601) as sb:
        yield sb


@pytest.fixture
def database_file(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@pytest.fixture
async def start_app(sandbox: Sandbox, tmp_path: Path, database_file: Path):
    """``await start_app(**config_sections, options=..., **app_kwargs)`` -> a started App connected to the emulator.
    Every app is stopped at teardown (and must stop cleanly)."""
    apps: list[App] = []

    async def start(*, options: KernelOptions = FAST, connected: bool = True, **kwargs: Any) -> App:
        sections = {k: kwargs.pop(k) for k in list(kwargs) if k in ("pacing", "organization", "database", "server")}
        config = kernel_config(sandbox, f"sqlite+aiosqlite:///{database_file}", tmp_path / "files", **sections)
        kwargs.setdefault("extra_routers", [e2e_commands.router])
        app = App(config, options=options, **kwargs)
        apps.append(app)
        await app.start()
        if connected and app.stream is not None:
            await app.stream.wait_for_status(lambda s: s.connected, timeout=10)
        return app

    yield start
    for application in apps:
        await asyncio.wait_for(application.stop(), 30)


@pytest.fixture
async def app(start_app, loop_watch) -> AsyncIterator[App]:
    application = await start_app()
    yield application
    await asyncio.wait_for(application.stop(), 30)


async def wait_emulator(sb: Sandbox, predicate: Callable[[Any], Any], timeout: float = 10.0) -> Any:
    """Wait until ``predicate(emulator)`` is truthy; re-checked by the emulator on every state change."""
    return await sb.run(lambda em: em.wait_until(lambda: predicate(em), timeout))


async def wait_sent(sb: Sandbox, count: int, conversation: str | None = None, timeout: float = 10.0) -> list[Any]:
    """Wait until the bot has posted at least ``count`` messages (in ``conversation``, or anywhere)."""
    cid = sb.conversation_id(conversation) if conversation is not None else None
    await wait_emulator(sb, lambda em: len(em.recorder.sent(cid)) >= count or None, timeout)
    return sb.sent(conversation)


# ---- the event-loop watch (same rule as tests/bot: nothing may block the loop for 100 ms) -------------------------


class _SlowCallbackLog(logging.Handler):
    """asyncio debug mode's "Executing <…> took N seconds" warnings of the test's thread, minus GC pauses."""

    def __init__(self, thread_id: int, threshold: float) -> None:
        super().__init__(logging.WARNING)
        self.thread_id = thread_id
        self.threshold = threshold
        self.slow: list[str] = []
        self.gc_pauses: list[tuple[float, float]] = []
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.monotonic()
        else:
            self.gc_pauses.append((self._gc_started, time.monotonic()))

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.thread != self.thread_id or not message.startswith("Executing"):
            return
        found = re.search(r"took ([0-9.]+) seconds", message)
        took = float(found.group(1)) if found else float("inf")
        end = time.monotonic()
        in_gc = sum(max(0.0, min(e, end) - max(s, end - took)) for s, e in self.gc_pauses)
        if took - in_gc >= self.threshold:
            self.slow.append(message)


@pytest.fixture
async def loop_watch():
    """Fail the test if a callback holds the test's event loop (the bot's loop) longer than 100 ms."""
    loop = asyncio.get_running_loop()
    previous_debug, previous_slow = loop.get_debug(), loop.slow_callback_duration
    loop.set_debug(True)
    loop.slow_callback_duration = 0.1
    handler = _SlowCallbackLog(threading.get_ident(), 0.1)
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(handler)
    gc.freeze()
    gc.callbacks.append(handler.on_gc)
    try:
        yield handler
    finally:
        gc.callbacks.remove(handler.on_gc)
        gc.unfreeze()
        asyncio_log.removeHandler(handler)
        loop.set_debug(previous_debug)
        loop.slow_callback_duration = previous_slow
    assert not handler.slow, f"the event loop was blocked: {handler.slow}"
