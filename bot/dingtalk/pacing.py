"""Client-side pacing: one token bucket per DingTalk API, below the platform's per-app-per-API limit.

DingTalk counts 20 calls/s per app per API in a fixed 1-second window (§11.2). A bucket of rate ``r`` and burst ``b``
lets at most ``b + r`` calls into any 1-second window, so the default burst of 1 with ``r = 18`` (19 calls at most)
keeps a margin of one call, ~110 ms of network jitter, under the server limit even when a window boundary falls
between two bursts (``pacing.calls_per_second`` in the config).

The bucket is a GCRA ("virtual scheduling"): each caller reserves the next free slot synchronously and then sleeps
until it. Reservation order is call order, so waiters are served first come, first served (fair) without a lock, and
nothing blocks the loop. A server-side throttle can push the schedule back for everyone (``penalize``), so concurrent
callers of the same API do not all hammer a limit one of them has just hit.
"""

from __future__ import annotations

import asyncio
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


class Pacer:
    """Token buckets keyed by API name, created on first use."""

    def __init__(self, calls_per_second: float, *, burst: int = 1, clock: Clock | None = None,
                 sleep: Sleep | None = None) -> None:
        if calls_per_second <= 0:
            raise ValueError("calls_per_second must be positive")
        self.calls_per_second = calls_per_second
        self.burst = burst
        self._clock = clock or _loop_time
        self._sleep = sleep or asyncio.sleep
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, api: str) -> TokenBucket:
        bucket = self._buckets.get(api)
        if bucket is None:
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
