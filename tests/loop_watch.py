"""The loop-blocking check shared by the kernel and end-to-end suites: nothing may hold the test's event loop.

asyncio's debug mode logs "Executing <…> took N seconds" for a callback slower than ``slow_callback_duration``;
those of the test's own thread fail the test (the emulator's loop runs in another thread and is not judged).
A cyclic-GC pause inside a callback is charged to that callback by asyncio although no code of ours blocked: the
time spent in GC during the callback (measured through ``gc.callbacks``) is subtracted before judging.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import threading
import time
from collections.abc import AsyncIterator

THRESHOLD_SECONDS = 0.1


class SlowCallbackLog(logging.Handler):
    def __init__(self, thread_id: int, threshold: float) -> None:
        super().__init__(logging.WARNING)
        self.thread_id = thread_id
        self.threshold = threshold
        self.slow: list[str] = []
        self.excused: list[str] = []
        self.gc_pauses: list[tuple[float, float]] = []
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.monotonic()
        else:
            self.gc_pauses.append((self._gc_started, time.monotonic()))

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.thread != self.thread_id or not message.startswith("Executing"):
            return
        found = re.search(r"took ([0-9.]+) seconds", message)
        took = float(found.group(1)) if found else float("inf")
        end = time.monotonic()
        begin = end - took
        in_gc = sum(max(0.0, min(e, end) - max(s, begin)) for s, e in self.gc_pauses)
        (self.excused if took - in_gc < self.threshold else self.slow).append(message)


@contextlib.asynccontextmanager
async def watching_the_loop(threshold: float = THRESHOLD_SECONDS) -> AsyncIterator[SlowCallbackLog]:
    """Fail (on exit) if any callback of the running loop took longer than ``threshold`` seconds."""
    loop = asyncio.get_running_loop()
    previous_debug, previous_slow = loop.get_debug(), loop.slow_callback_duration
    loop.set_debug(True)
    loop.slow_callback_duration = threshold
    handler = SlowCallbackLog(threading.get_ident(), threshold)
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(handler)
    # Objects alive now (modules, the emulator's world) go to the permanent generation: shorter GC pauses.
    gc.freeze()
    gc.callbacks.append(handler.on_gc)
    try:
        yield handler
    finally:
        gc.callbacks.remove(handler.on_gc)
        gc.unfreeze()
        asyncio_log.removeHandler(handler)
        loop.set_debug(previous_debug)
        loop.slow_callback_duration = previous_slow
    assert not handler.slow, f"the event loop was blocked: {handler.slow}"
