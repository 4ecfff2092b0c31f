"""The loop watch (tests/loop_watch.py) charges a callback the CPU it used, not what a busy machine made it wait."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time

import pytest

from tests.loop_watch import watching_the_loop


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _hog(stop) -> None:  # a process keeping its CPU busy until told to stop
    while not stop.is_set():
        pass


async def test_a_callback_burning_cpu_is_caught() -> None:
    with pytest.raises(AssertionError, match="the event loop was blocked"):
        async with watching_the_loop() as watch:
            await asyncio.sleep(0)
            _spin(0.15)
            await asyncio.sleep(0)
    assert len(watch.slow) == 1 and "of CPU" in watch.slow[0]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
async def test_waiting_for_a_busy_cpu_is_excused() -> None:
    """A callback of 30 ms CPU on a CPU shared with six busy processes takes far longer on the wall clock."""
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    hogs = [context.Process(target=_hog, args=(stop,), daemon=True) for _ in range(6)]
    for hog in hogs:
        hog.start()
        os.sched_setaffinity(hog.pid, {cpu})
    os.sched_setaffinity(0, {cpu})
    try:
        async with watching_the_loop() as watch:
            await asyncio.sleep(0)
            started = time.perf_counter()
            _spin(0.03)
            wall = time.perf_counter() - started
            await asyncio.sleep(0)
    finally:
        os.sched_setaffinity(0, before)
        stop.set()
        for hog in hogs:
            hog.join(5)
    assert wall > 0.1, f"the machine was not busy enough to show anything ({wall:.3f} s)"
    assert watch.slow == [] and len(watch.excused) == 1
