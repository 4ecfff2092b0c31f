"""One change signal for the whole emulator: waiters re-check their condition on every change.

Tests and add-ons wait for "something became true" (an ACK arrived, a connection
closed, a call was logged) without polling: every state change bumps the signal and
each waiter re-evaluates its predicate. Lives on the emulator loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable


class ChangeSignal:
    def __init__(self):
        self._condition: asyncio.Condition | None = None
        self._pending_wake = False

    def _get(self) -> asyncio.Condition:
        if self._condition is None:
            self._condition = asyncio.Condition()
        return self._condition

    def bump(self) -> None:
        """Wake every waiter (coalesced: one wake-up task per loop iteration at most)."""
        if self._pending_wake:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return      # nothing can be waiting without a running loop
        self._pending_wake = True
        cond = self._get()

        async def wake() -> None:
            self._pending_wake = False
            async with cond:
                cond.notify_all()

        loop.create_task(wake())

    async def wait_until(self, predicate: Callable[[], Any], timeout: float | None) -> Any:
        """Return the first truthy value of `predicate()`, re-checked after every change."""
        cond = self._get()

        async def wait() -> Any:
            async with cond:
                result = predicate()
                while not result:
                    await cond.wait()
                    result = predicate()
                return result

        return await asyncio.wait_for(wait(), timeout)
