"""End-to-end fixtures: the sandbox emulator in its own thread, and the real ``App`` (Stream client, inbox, outbox
relay, scheduler, /healthz) on an SQLite file, with kernel timings shrunk so that recovery paths take seconds.

Nothing waits by sleeping: the tests wait on the emulator's change signal (``emulator.wait_until``), on the stream's
status events, or on the app's own events, always with a timeout.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, KernelOptions
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from tests.loop_watch import watching_the_loop

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import e2e_commands  # noqa: E402  (needs HERE on sys.path)
from e2e_support import FAST, KERNEL_FEATURES, kernel_config  # noqa: E402
from lifecycle_chat import LifecycleChat, emulator_config, start_lifecycle_app  # noqa: E402

from bot.feature import Feature  # noqa: E402


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
        kwargs.setdefault("features", (*KERNEL_FEATURES, Feature("e2e", router=e2e_commands.router)))
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


@pytest.fixture
async def loop_watch():
    """Fail the test if anything blocks the test's event loop for more than 100 ms (tests/loop_watch.py)."""
    async with watching_the_loop() as watch:
        yield watch


@pytest.fixture
async def chat(tmp_path: Path, loop_watch) -> AsyncIterator[LifecycleChat]:
    """A whole-project conversation: its own emulator (group files allowed) and the App with the lifecycle modules."""
    async with Sandbox(config=emulator_config(), seed=20240601) as sandbox:
        app = await start_lifecycle_app(sandbox, tmp_path)
        try:
            yield LifecycleChat(sandbox, app, tmp_path / "files")
        finally:
            await asyncio.wait_for(app.stop(), 30)


@pytest.fixture
async def approving_chat(tmp_path: Path, loop_watch) -> AsyncIterator[LifecycleChat]:
    """The same with OA approvals: both leaders (刘强, then 周敏) approve in the emulator; with the approval events,
    weekly reports, documents and the registers' export."""
    async with Sandbox(config=emulator_config(), seed=20240601) as sandbox:
        app = await start_lifecycle_app(sandbox, tmp_path, approvals=True)
        try:
            yield LifecycleChat(sandbox, app, tmp_path / "files")
        finally:
            await asyncio.wait_for(app.stop(), 30)
