"""The controllable clock that lets tests skip time instead of sleeping."""

from __future__ import annotations

import asyncio

from sandbox.clock import Clock


async def test_advance_fires_due_timers_in_order():
    clock = Clock(frozen=True)
    clock.start()
    fired: list[str] = []
    clock.call_later(10, fired.append, "b")
    clock.call_later(5, fired.append, "a")
    cancelled = clock.call_later(7, fired.append, "never")
    cancelled.cancel()
    # A timer scheduled by a timer, already due, fires within the same advance.
    clock.call_later(8, lambda: clock.call_later(0, fired.append, "chained"))
    start = clock.now()
    assert clock.advance(9) == 3
    assert fired == ["a", "chained"]
    assert clock.now() == start + 9
    clock.advance(1)
    assert fired == ["a", "chained", "b"]
    await clock.stop()


async def test_real_time_still_fires_timers():
    clock = Clock()
    clock.start()
    done = asyncio.Event()
    clock.call_later(0.01, done.set)
    await asyncio.wait_for(done.wait(), 2)
    await clock.stop()


async def test_freeze_and_unfreeze_keep_time_continuous():
    clock = Clock()
    clock.freeze()
    frozen_now = clock.now()
    assert clock.now() == frozen_now
    clock.advance(100)
    clock.unfreeze()
    assert clock.now() >= frozen_now + 100


async def test_sleep_wakes_on_advance():
    clock = Clock(frozen=True)
    clock.start()
    sleeper = asyncio.create_task(clock.sleep(3600))
    await asyncio.sleep(0)
    clock.advance(3600)
    await asyncio.wait_for(sleeper, 2)
    await clock.stop()
