"""A controllable clock for the emulator.

Every time-based rule of the emulator (ticket and token expiry, session webhook
expiry, redelivery, ping and disconnect timers, the 15-s terminate rule, the
throttle window) reads this clock, so tests can jump forward instead of sleeping.

The clock follows real time plus an offset that `advance()` grows; it can also be
frozen so that a test sees a fixed "now" (useful for the 1-s throttle window).
Timers are kept in a heap and fired either by a scheduler task (real time passing)
or synchronously by `advance()`, in deadline order.

All methods must be called on the emulator's event loop; the harness bridges.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from typing import Any, Callable

log = logging.getLogger(__name__)


class TimerHandle:
    __slots__ = ("when", "callback", "args", "cancelled")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple):
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    def __init__(self, *, frozen: bool = False, start: float | None = None):
        self._offset = 0.0
        self._frozen_at: float | None = None
        if start is not None:
            # A fixed start time makes "now" deterministic; it implies frozen.
            self._frozen_at = start
        elif frozen:
            self._frozen_at = time.time()
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    # ---- reading ------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the epoch, as the emulator sees it."""
        base = self._frozen_at if self._frozen_at is not None else time.time()
        return base + self._offset

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    # ---- controlling --------------------------------------------------------------
    def freeze(self) -> None:
        if self._frozen_at is None:
            self._frozen_at = time.time()

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            # Keep "now" continuous: fold the frozen gap into the offset.
            self._offset += self._frozen_at - time.time()
            self._frozen_at = None
            self._poke()

    def advance(self, seconds: float) -> int:
        """Jump forward and fire every timer that became due; returns how many fired."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
        fired = self._fire_due()
        self._poke()
        return fired

    # ---- timers -------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        return self.call_at(self.now() + max(0.0, delay), callback, *args)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        handle = TimerHandle(when, callback, args)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        self._poke()
        return handle

    async def sleep(self, delay: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        handle = self.call_later(delay, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            handle.cancel()

    # ---- scheduler ----------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sandbox-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._heap.clear()

    def _poke(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _fire_due(self) -> int:
        fired = 0
        # Callbacks may schedule new timers, possibly already due: loop until none is.
        while self._heap and self._heap[0][0] <= self.now():
            _, _, handle = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            fired += 1
            try:
                handle.callback(*handle.args)
            except Exception:  # a faulty timer must not stop the clock
                log.exception("sandbox clock timer failed")
        return fired

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            self._fire_due()
            while self._heap and self._heap[0][2].cancelled:
                heapq.heappop(self._heap)
            self._wakeup.clear()
            if not self._heap or self.frozen:
                timeout = None
            else:
                timeout = max(0.0, self._heap[0][0] - self.now())
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                pass
