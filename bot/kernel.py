"""The one door: how a routed message (or any other incoming kind that asks for an answer) is run and committed.

``answer(dispatcher, route, units)`` is the kernel's rule, written once; the inbox, the feature tests' chat helpers
and the bench (through the inbox) call it:

- a command that only reads runs in a read transaction, outside the write lock; then a short write transaction
  makes its deferred writes (the sender's last project) and settles it;
- any other command runs in one write transaction and is settled in the same one: its changes, its answers (outbox
  rows) and the inbox row's done-mark commit together;
- when the outcome rolls back (a user mistake, an unexpected error), the command's transaction is rolled back and a
  second one settles only its final answer;
- an answer that can never be sent (too long, a file type DingTalk refuses) is an error like any other: rolled back,
  an apology, the error on the row.

What differs between incoming kinds is only their ``Units``: where the transactions come from (the inbox re-asserts
its claim on the row in each) and where the answers go (``settle``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bot.context import DeferredWrite, UnitOfWork
from bot.dispatcher import APOLOGY, Dispatcher, Handled, Outcome, Route, log_handled
from domain.replies import Text
from storage.db import WriteInReadTransaction

log = logging.getLogger("dingpm.kernel")


class Superseded(Exception):
    """``Units.write()`` found its claim taken over by another worker: nothing runs here."""


class Undeliverable(Exception):
    """``Units.settle`` cannot queue an answer and never will (a bug of the handler, not a passing failure)."""


class Units(Protocol):
    """Where one incoming item's transactions come from and where its answers go."""

    def read(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A read transaction that refuses writes, as a read-only unit of work."""
        ...

    def write(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A write transaction as a unit of work; raises ``Superseded`` when the item is no longer ours."""
        ...

    async def settle(self, work: UnitOfWork, handled: Handled) -> None:
        """In the final write transaction: queue ``handled.replies`` where this kind answers and mark the item done
        (failed when ``handled.outcome.failed``). Raises ``Undeliverable`` for an answer that can never be sent."""
        ...


class _RollBack(Exception):
    pass


async def answer(dispatcher: Dispatcher, route: Route, units: Units, *, started: float | None = None) -> Handled:
    """Run ``route`` and commit it by the kernel's rule; returns what happened (logged once, here)."""
    started = time.perf_counter() if started is None else started
    if route.reads_only:
        handled, deferred = await _read(dispatcher, route, units)
        handled = await _settle(units, handled, () if handled.outcome.rolls_back else deferred)
    else:
        handled = await _write(dispatcher, route, units)
    handled = dataclasses.replace(handled, duration_ms=(time.perf_counter() - started) * 1000)
    log_handled(handled)
    return handled


async def _read(dispatcher: Dispatcher, route: Route, units: Units) -> tuple[Handled, Sequence[DeferredWrite]]:
    """Run a read-only command; its answer and its deferred writes (committed by ``_settle``)."""
    handled: Handled | None = None
    try:
        async with units.read() as reading:
            handled = await dispatcher.run_message(route, reading)
    except WriteInReadTransaction as exc:  # it changed a loaded object, noticed at the end of the read: a bug
        log.exception("the read-only command of message_id=%s wrote", route.incoming.message_id)
        assert handled is not None
        return _failed(handled, f"{type(exc).__name__}: {exc}"), ()
    return handled, tuple(reading.deferred_writes)


async def _write(dispatcher: Dispatcher, route: Route, units: Units) -> Handled:
    """Run a writing command and settle it in the same transaction; rolled back, its final answer alone."""
    handled: Handled | None = None
    try:
        async with units.write() as work:
            handled = await dispatcher.run_message(route, work)
            if handled.outcome.rolls_back:
                raise _RollBack
            await units.settle(work, handled)
        return handled
    except _RollBack:
        assert handled is not None
    except Undeliverable as exc:
        assert handled is not None
        handled = _undeliverable(handled, exc)
    return await _settle(units, handled, ())


async def _settle(units: Units, handled: Handled, deferred: Sequence[DeferredWrite]) -> Handled:
    """Settle ``handled`` in a write transaction of its own, after ``deferred`` (a read-only command's writes)."""
    try:
        async with units.write() as work:
            for write in deferred:
                await write(work.session)
            await units.settle(work, handled)
        return handled
    except Undeliverable as exc:
        handled = _undeliverable(handled, exc)
    async with units.write() as work:
        await units.settle(work, handled)
    return handled


def _undeliverable(handled: Handled, exc: Undeliverable) -> Handled:
    log.error("the answer to message_id=%s cannot be sent: %s", handled.message_id, exc, exc_info=exc)
    return _failed(handled, str(exc))


def _failed(handled: Handled, error: str) -> Handled:
    """``handled`` turned into an unexpected error: only the apology is kept, ``error`` goes on the row."""
    return dataclasses.replace(handled, outcome=Outcome.ERROR, error=error[:500],
                               replies=(Text(APOLOGY.format(trace_id=handled.trace_id)),))


__all__ = ["Superseded", "Undeliverable", "Units", "answer"]
