"""Fixtures for the kernel transport tests: the sandbox emulator (own thread, port 0) and clients pointed at it.

Nothing here reaches the real DingTalk: every base URL is the emulator's loopback address.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.config import Config, parse_config
from bot.dingtalk import DingTalkClient, RetryPolicy
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from tests.loop_watch import watching_the_loop

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


@pytest.fixture
async def loop_watch():
    """Fail the test if anything blocks the test's event loop for more than 100 ms (tests/loop_watch.py)."""
    async with watching_the_loop() as watch:
        yield watch
