"""Client-side pacing: one limiter per DingTalk API, below the platform's per-app-per-API limit.

DingTalk counts 20 calls/s per app per API in fixed 1-second windows, where the calls arrive (§11.2). The OpenAPI
pacer is a sliding window (``SlidingWindow``): at most ``burst`` calls start in any ``burst / calls_per_second``
seconds (5 in 0.28 s at the defaults 18/s and burst 5), so at most 20 in any 1.11 s. A platform window then sees at
most 20 arrivals unless a call is delayed by more than 0.11 s relative to a later one (network jitter, a stall): the
same margin as starting every call 1/18 s after the previous one, at the same sustained 18 calls/s. Unlike that even
spacing, a call to a quiet API starts at once -- a file's download link does not wait 55 ms because someone else sent
a file a moment ago -- and a burst stays small, so a delayed one cannot crowd a platform window by more than ``burst``
calls (``pacing.calls_per_second``, ``pacing.burst``).

A window counts when calls really start (after any wait, a stall included; the transport takes its turn after the
access token, right before it sends), so a late call never lets the next ones start early. Waiters are served first
come, first served; nothing blocks the loop. A server-side throttle pushes the API back for everyone (``penalize``),
so concurrent callers do not all hammer a limit one of them has just hit.

``TokenBucket`` (a GCRA, "virtual scheduling") reserves evenly spaced slots instead: the custom robots' per-minute
budget, whose window the platform does not document, uses it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


@dataclass
class TokenBucket:
    rate: float  # calls per second
    burst: int = 1
    clock: Clock = field(default=_loop_time, repr=False)
    sleep: Sleep = field(default=asyncio.sleep, repr=False)
    _tat: float | None = field(default=None, init=False, repr=False)  # theoretical arrival time of the next call
    waits: int = field(default=0, init=False)  # how many calls had to wait (for metrics and tests)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    def peek(self) -> float:
        """How long a call reserving now would wait, without reserving."""
        now = self.clock()
        tat = now if self._tat is None else max(self._tat, now)
        return max(0.0, tat - (self.burst - 1) * self.interval - now)

    def reserve(self) -> float:
        """Reserve the next slot; return how long the caller must wait before using it."""
        now = self.clock()
        tat = now if self._tat is None else max(self._tat, now)
        allowed_at = tat - (self.burst - 1) * self.interval
        self._tat = tat + self.interval
        return max(0.0, allowed_at - now)

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            self.waits += 1
            await self.sleep(delay)

    def penalize(self, seconds: float) -> None:
        """Keep every caller of this API away for ``seconds`` (after a server-side throttle answer)."""
        now = self.clock()
        self._tat = max(self._tat or now, now + seconds)


class SlidingWindow:
    """At most ``calls`` calls start in any ``seconds``: a call waits only while the window is full (the ``calls``-th
    most recent start less than ``seconds`` ago), or behind callers already waiting, or after ``penalize``."""

    def __init__(self, calls: int, seconds: float, *, clock: Clock = _loop_time,
                 sleep: Sleep = asyncio.sleep) -> None:
        if calls < 1 or seconds <= 0:
            raise ValueError("a window needs at least one call and a positive length")
        self.calls = calls
        self.seconds = seconds
        self.waits = 0  # how many calls had to wait (for metrics and tests)
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque(maxlen=calls)  # when the last ``calls`` calls started, oldest first
        self._blocked_until = float("-inf")
        self._queued = 0
        self._turn = asyncio.Lock()  # FIFO: waiters leave in the order they came

    def _delay(self, now: float) -> float:
        ready = self._blocked_until
        if len(self._starts) == self.calls:
            ready = max(ready, self._starts[0] + self.seconds)
        return max(0.0, ready - now)

    def peek(self) -> float:
        """How long a call arriving now would wait, about (callers already waiting each take a share)."""
        now = self._clock()
        return self._delay(now) + self._queued * self.seconds / self.calls

    async def acquire(self) -> None:
        if self._queued == 0 and self._delay(self._clock()) == 0:
            self._starts.append(self._clock())
            return
        self.waits += 1
        self._queued += 1
        try:
            async with self._turn:
                # Re-checked after each sleep: a throttle may have pushed the API back meanwhile.
                while (delay := self._delay(self._clock())) > 0:
                    await self._sleep(delay)
                self._starts.append(self._clock())
        finally:
            self._queued -= 1

    def penalize(self, seconds: float) -> None:
        """Keep every caller of this API away for ``seconds`` (after a server-side throttle answer)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


class Pacer:
    """One limiter per API name, created on first use: with ``sliding``, a ``SlidingWindow`` of ``burst`` calls (at
    most ``calls_per_second``) per ``burst / calls_per_second`` seconds; else a ``TokenBucket`` of ``calls_per_second``
    and ``burst``."""

    def __init__(self, calls_per_second: float, *, burst: int = 1, sliding: bool = False, clock: Clock | None = None,
                 sleep: Sleep | None = None) -> None:
        if calls_per_second <= 0:
            raise ValueError("calls_per_second must be positive")
        self.calls_per_second = calls_per_second
        self.burst = burst
        self.sliding = sliding
        self._clock = clock or _loop_time
        self._sleep = sleep or asyncio.sleep
        self._buckets: dict[str, TokenBucket | SlidingWindow] = {}

    def bucket(self, api: str) -> TokenBucket | SlidingWindow:
        bucket = self._buckets.get(api)
        if bucket is None:
            if self.sliding:
                # A burst never exceeds one second's worth (3 at 3 calls/s, not 5 per 1.7 s); a second can still
                # see burst x ceil(calls_per_second / burst) calls: 20 at 18/s, 4 at 2.5/s.
                calls = max(1, min(self.burst, int(self.calls_per_second)))
                bucket = SlidingWindow(calls, calls / self.calls_per_second, clock=self._clock, sleep=self._sleep)
            else:
                bucket = TokenBucket(self.calls_per_second, self.burst, clock=self._clock, sleep=self._sleep)
            self._buckets[api] = bucket
        return bucket

    async def acquire(self, api: str) -> None:
        await self.bucket(api).acquire()

    def penalize(self, api: str, seconds: float) -> None:
        self.bucket(api).penalize(seconds)

    @property
    def waits(self) -> dict[str, int]:
        return {api: b.waits for api, b in self._buckets.items()}
