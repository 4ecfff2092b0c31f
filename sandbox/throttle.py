"""Per-app, per-API QPS throttling and per-API call counters.

§11.2: standard-edition orgs get 20 calls/s per app per API, counted in 1-s windows.
The window is read from the emulator clock, so a test can freeze the clock to make
"21 calls in the same second" deterministic.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from .clock import Clock


class Throttle:
    def __init__(self, clock: Clock, limit: Callable[[], int]):
        self._clock = clock
        self._limit = limit          # read at each call: tests may change it at run time
        self._windows: dict[tuple[str, str], tuple[int, int]] = {}

    def allow(self, app_id: str, api: str) -> bool:
        limit = self._limit()
        if limit <= 0:
            return True
        second = int(self._clock.now())
        key = (app_id, api)
        window, used = self._windows.get(key, (second, 0))
        if window != second:
            window, used = second, 0
        if used >= limit:
            self._windows[key] = (window, used)
            return False
        self._windows[key] = (window, used + 1)
        return True


@dataclass(frozen=True)
class CallRecord:
    api: str
    method: str
    path: str
    status: int                 # HTTP status (0 if the connection was reset)
    error: str | None           # new-API code or old-API errcode as a string; None on success
    app_id: str | None
    at: int                     # ms, emulator clock


class CallCounters:
    """How often each API was called, and a log of the calls (readable from any thread)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._log: list[CallRecord] = []

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self._counts[record.api] += 1
            self._log.append(record)

    def count(self, api: str) -> int:
        with self._lock:
            return self._counts[api]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def log(self, api: str | None = None) -> list[CallRecord]:
        with self._lock:
            return [r for r in self._log if api in (None, r.api)]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._log.clear()
