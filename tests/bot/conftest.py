"""Fixtures for the kernel transport tests: the sandbox emulator (own thread, port 0) and clients pointed at it.

Nothing here reaches the real DingTalk: every base URL is the emulator's loopback address.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import threading
import time

import aiohttp
import pytest

from bot.config import Config, parse_config
from bot.dingtalk import DingTalkClient, RetryPolicy
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

INTERNAL_GROUP = "【智慧工厂MES项目】内部群"


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    """Override in a module to start the emulator with other settings."""
    # A "timeout" fault holds the request only briefly: the client has long given up by then.
    return EmulatorConfig.for_tests(timeout_fault_max_hold=2.0)


@pytest.fixture
async def sandbox(sandbox_config: EmulatorConfig):
    async with Sandbox(config=sandbox_config, seed=20240601) as sb:
        yield sb


def config_for(sb: Sandbox, **pacing: float) -> Config:
    raw = {
        "dingtalk": {"client_id": sb.client_id, "client_secret": sb.client_secret, "robot_code": sb.robot_code,
                     "api_base_url": sb.base_url, "oapi_base_url": sb.base_url},
        "pacing": {"calls_per_second": 15, "http_timeout_seconds": 2, **pacing},
    }
    return parse_config(raw, environ={}, require_real_secret=False)


@pytest.fixture
def make_config(sandbox: Sandbox):
    """``make_config(http_timeout_seconds=0.3)``: a Config pointed at the emulator, pacing overridable."""
    return lambda **pacing: config_for(sandbox, **pacing)


@pytest.fixture
def group() -> str:
    """The project group the default sandbox world has the bot in."""
    return INTERNAL_GROUP


@pytest.fixture
async def http():
    """The one aiohttp session of the test 'process' (as the app lifecycle would create it)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def fast_retries() -> RetryPolicy:
    return RetryPolicy(max_attempts=6, base_delay=0.02, max_delay=0.3)


@pytest.fixture
async def client(sandbox: Sandbox, http: aiohttp.ClientSession, fast_retries: RetryPolicy) -> DingTalkClient:
    return DingTalkClient(config_for(sandbox), session=http, retry_policy=fast_retries)


async def wait_until(predicate, timeout: float = 5.0, what: str = "condition"):
    """Wait for a condition on state owned by another thread (the emulator's counters), with a deadline."""
    async with asyncio.timeout(timeout):
        while not (result := predicate()):
            await asyncio.sleep(0.01)
    return result


@pytest.fixture
def eventually():
    return wait_until


class _SlowCallbackLog(logging.Handler):
    """Collects asyncio's debug-mode "Executing <…> took N seconds" warnings of one thread (the test's loop).

    A cyclic-GC pause inside a callback is charged to that callback by asyncio, although no code of ours blocked:
    the time spent in GC during the callback is subtracted (measured through ``gc.callbacks``) before judging.
    """

    def __init__(self, thread_id: int, threshold: float) -> None:
        super().__init__(logging.WARNING)
        self.thread_id = thread_id
        self.threshold = threshold
        self.slow: list[str] = []
        self.excused: list[str] = []
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
        begin = end - took
        in_gc = sum(max(0.0, min(e, end) - max(s, begin)) for s, e in self.gc_pauses)
        (self.excused if took - in_gc < self.threshold else self.slow).append(message)


@pytest.fixture
async def loop_watch():
    """Fail the test if anything blocks the test's event loop for more than 100 ms.

    Uses asyncio debug mode (slow-callback detection). The emulator's own loop runs in another thread and is not
    watched: only the code under test is.
    """
    loop = asyncio.get_running_loop()
    previous_debug, previous_slow = loop.get_debug(), loop.slow_callback_duration
    threshold = 0.1
    loop.set_debug(True)
    loop.slow_callback_duration = threshold
    handler = _SlowCallbackLog(threading.get_ident(), threshold)
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(handler)
    # Objects alive now (modules, the emulator's world) go to the permanent generation: shorter GC pauses.
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
