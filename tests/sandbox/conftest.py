"""Fixtures for the emulator's own tests.

Other test folders build the same fixture from `sandbox.harness.Sandbox`:

    @pytest.fixture
    async def sandbox():
        async with Sandbox(config=EmulatorConfig.for_tests()) as sb:
            yield sb
"""

from __future__ import annotations

import aiohttp
import pytest
from sandbox_helpers import new_token

from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    """Override in a test module (or parametrize) to start the sandbox with other settings."""
    return EmulatorConfig.for_tests()


@pytest.fixture
async def sandbox(sandbox_config: EmulatorConfig):
    async with Sandbox(config=sandbox_config, seed=20240601) as sb:
        yield sb


@pytest.fixture
async def token(sandbox, http) -> str:
    """An access token of the default app (new API)."""
    return await new_token(http, sandbox)


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session
