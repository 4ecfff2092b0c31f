"""The loop-blocking check shared by the kernel and end-to-end suites: nothing may hold the test's event loop.

Every callback the test's loop runs (each step of each task) is timed, and the test fails if one used
``threshold`` seconds of **CPU time** on the loop's thread. CPU time, not wall time: on a busy machine (two cores
shared with other test runs, LibreOffice, a pip install) a 5 ms callback can take 200 ms of wall time because the
scheduler gave the CPU or the disk to someone else, and that is no fault of ours. What CPU time cannot see, a
blocking sleep, is kept out by the house rule that the before-stop hook greps for (no ``time.sleep`` in our code).

A cyclic-GC pause inside a callback is not the callback's doing either: the CPU time spent in GC during the callback
(measured through ``gc.callbacks``) is subtracted. The emulator's loop runs in another thread and is not judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import AsyncIterator, Callable

THRESHOLD_SECONDS = 0.1


class LoopWatch:
    def __init__(self, thread_id: int, threshold: float) -> None:
        self.thread_id = thread_id
        self.threshold = threshold
        self.slow: list[str] = []
        self.excused: list[str] = []  # slow on the wall clock, but not on the CPU: the machine's load explains it
        self._gc_cpu = 0.0  # CPU seconds the loop's thread has spent in GC so far
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict) -> None:
        if threading.get_ident() != self.thread_id:
            return
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            self._gc_cpu += time.thread_time() - self._gc_started

    def timed(self, run: Callable[[asyncio.Handle], object]) -> Callable[[asyncio.Handle], object]:
        def run_timed(handle: asyncio.Handle) -> object:
            if threading.get_ident() != self.thread_id:
                return run(handle)
            cpu_start, gc_start, wall_start = time.thread_time(), self._gc_cpu, time.perf_counter()
            try:
                return run(handle)
            finally:
                cpu = time.thread_time() - cpu_start - (self._gc_cpu - gc_start)
                self._judge(handle, cpu, time.perf_counter() - wall_start)

        return run_timed

    def _judge(self, handle: asyncio.Handle, cpu: float, wall: float) -> None:
        if wall < self.threshold:
            return
        message = f"{handle!r:.300} took {wall:.3f} s of wall time, {cpu:.3f} s of CPU"
        (self.slow if cpu >= self.threshold else self.excused).append(message)


@contextlib.asynccontextmanager
async def watching_the_loop(threshold: float = THRESHOLD_SECONDS) -> AsyncIterator[LoopWatch]:
    """Fail (on exit) if any callback of the running loop used ``threshold`` seconds of CPU time."""
    loop = asyncio.get_running_loop()
    previous_debug = loop.get_debug()
    loop.set_debug(True)  # asyncio's other debug checks (unawaited coroutines, calls from the wrong thread)
    watch = LoopWatch(threading.get_ident(), threshold)
    original_run = asyncio.Handle._run
    asyncio.Handle._run = watch.timed(original_run)  # TimerHandle inherits it; every task step is a Handle
    # Objects alive now (modules, the emulator's world) go to the permanent generation: shorter GC pauses.
    gc.freeze()
    gc.callbacks.append(watch.on_gc)
    try:
        yield watch
    finally:
        gc.callbacks.remove(watch.on_gc)
        gc.unfreeze()
        asyncio.Handle._run = original_run
        loop.set_debug(previous_debug)
    assert not watch.slow, f"the event loop was blocked: {watch.slow}"
