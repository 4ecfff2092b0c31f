"""The loop-blocking check shared by the kernel and end-to-end suites: nothing may hold the test's event loop.

Every callback the test's loop runs (each step of each task) is timed, and the test fails if one held the loop for
``threshold`` seconds. "Held" is what the callback itself cost, not the wall clock: on a busy machine (2 cores shared
with other test runs) a 5 ms callback can take 200 ms of wall time because the scheduler gave the CPU to someone
else, and that is no fault of ours. So:

* where Linux reports the thread's scheduler statistics (``/proc/thread-self/schedstat``: time on a CPU and time
  waiting in the run queue), a callback is charged its wall time less the time it sat in the run queue, i.e. its
  CPU time plus any time it blocked (``time.sleep``, a synchronous read, a lock): both are real loop blockers;
* elsewhere, its thread CPU time (``time.thread_time``), which misses blocking waits but is never fooled by load.

A cyclic-GC pause inside a callback is not the callback's doing either: the time spent in GC during the callback
(measured through ``gc.callbacks``) is subtracted. The emulator's loop runs in another thread and is not judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import threading
import time
from collections.abc import AsyncIterator, Callable

THRESHOLD_SECONDS = 0.1
_SCHEDSTAT = "/proc/thread-self/schedstat"


def _clock() -> Callable[[], tuple[float, float]]:
    """A reader of (wall seconds, seconds the thread waited for a CPU) for the calling thread."""
    try:
        fd = os.open(_SCHEDSTAT, os.O_RDONLY)  # bound to the opening thread; re-read with pread, one syscall
        os.pread(fd, 64, 0).split()[1]
    except (OSError, IndexError):
        # No scheduler statistics: count thread CPU time only (wall - waited == cpu).
        return lambda: (time.thread_time(), 0.0)

    def read() -> tuple[float, float]:
        return time.perf_counter(), int(os.pread(fd, 64, 0).split()[1]) / 1e9

    return read


class LoopWatch:
    def __init__(self, thread_id: int, threshold: float) -> None:
        self.thread_id = thread_id
        self.threshold = threshold
        self.slow: list[str] = []
        self.excused: list[str] = []  # slow on the wall clock, but the machine's load or a GC pause explains it
        self.gc_pauses: list[tuple[float, float]] = []
        self._gc_started = 0.0
        self._clock = _clock()

    def on_gc(self, phase: str, info: dict) -> None:
        if threading.get_ident() != self.thread_id:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append((self._gc_started, time.perf_counter()))

    def timed(self, run: Callable[[asyncio.Handle], object]) -> Callable[[asyncio.Handle], object]:
        def run_timed(handle: asyncio.Handle) -> object:
            if threading.get_ident() != self.thread_id:
                return run(handle)
            wall_start, waited_start = self._clock()
            started = time.perf_counter()
            try:
                return run(handle)
            finally:
                wall_end, waited_end = self._clock()
                ended = time.perf_counter()
                self._judge(handle, wall_end - wall_start - (waited_end - waited_start), ended - started, started,
                            ended)

        return run_timed

    def _judge(self, handle: asyncio.Handle, held: float, wall: float, started: float, ended: float) -> None:
        if wall < self.threshold:
            return
        in_gc = sum(max(0.0, min(e, ended) - max(s, started)) for s, e in self.gc_pauses)
        charged = held - in_gc
        message = f"{handle!r:.300} took {wall:.3f} s of wall time, {charged:.3f} s of its own"
        (self.slow if charged >= self.threshold else self.excused).append(message)


@contextlib.asynccontextmanager
async def watching_the_loop(threshold: float = THRESHOLD_SECONDS) -> AsyncIterator[LoopWatch]:
    """Fail (on exit) if any callback of the running loop held it for ``threshold`` seconds of its own time."""
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
