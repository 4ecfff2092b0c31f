"""Headless Chromium for the page tests (Debian's /usr/bin/chromium through Playwright; never ``playwright
install``): a persistent profile per test, Chinese locale, downloads allowed, and ``shot`` keeping screenshots in
``SANDBOX_WEB_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 10_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 820}

browser_marks = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium at /usr/bin/chromium or on PATH "
                                                "(apt-get install chromium); the page test needs a browser"),
]


@contextlib.asynccontextmanager
async def chromium_context(**options: Any) -> AsyncIterator[Any]:
    """A browser context (``viewport``, ``locale`` … override the defaults)."""
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    settings = {"locale": "zh-CN", "viewport": DESKTOP, "accept_downloads": True, **options}
    async with async_playwright() as pw:
        with tempfile.TemporaryDirectory(prefix="dingpm-browser-profile-") as profile:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, **settings)
            context.set_default_timeout(TIMEOUT_MS)
            try:
                yield context
            finally:
                await context.close()


async def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    target = os.environ.get("SANDBOX_WEB_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=full_page)
