"""Bounded shutdown of tracked tasks, shared by the inbox pump and the outbox relay."""

from __future__ import annotations

import asyncio
from collections.abc import Collection


async def drain(tasks: Collection[asyncio.Task], grace_seconds: float) -> int:
    """Let ``tasks`` finish within the grace, cancel the rest and wait for them; returns how many were cut short.

    Cutting work short is safe for both callers: an unfinished command rolls back and is re-run after its lease,
    an unfinished send is retried after its lease.
    """
    if not tasks:
        return 0
    _, pending = await asyncio.wait(set(tasks), timeout=grace_seconds)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)
