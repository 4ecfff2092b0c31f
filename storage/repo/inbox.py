"""Inbox: every Stream frame is stored (unique messageId / msgId) before it is acked, then processed from here.

Usage: the transport calls ``insert_inbox`` in its own short write transaction and acks; a processor claims rows with
``claim_pending_inbox`` (also at start, to pick up what a crash left behind) and finishes each with
``mark_inbox_done`` or ``mark_inbox_failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InboxKind, InboxMessage, InboxState, utcnow
from storage.repo._claim import ClaimSource, claim_rows
from storage.repo._sql import (
    core_table,
    execute_core,
    insert_ignoring_duplicates,
    prebuilt_insert_ignoring,
    session_family,
)

DEFAULT_MAX_ATTEMPTS = 5
_PENDING_INDEX = "ix_inbox_state_received_at"

# The per-message statements, built once: every frame stored and every row finished runs one of them.
_table = core_table(InboxMessage)
_INSERT_FRAME = prebuilt_insert_ignoring(_table)
_FINISH = (  # only while the row is still claimed by the worker finishing it
    update(_table)
    .where(_table.c.id == bindparam("b_id"), _table.c.state == InboxState.PROCESSING,
           _table.c.claimed_by == bindparam("b_worker"))
    .values(state=bindparam("b_state"), error=bindparam("b_error"), processed_at=bindparam("b_at"), claimed_until=None)
)


async def insert_inbox(
    *,
    session: AsyncSession,
    message_id: str,
    payload: str,
    kind: InboxKind = InboxKind.MESSAGE,
    msg_id: str | None = None,
    received_at: datetime | None = None,
    claimed_by: str | None = None,
    lease_seconds: float = 0.0,
) -> int | None:
    """Store a frame; returns the new row id, or None if this messageId or msgId was stored before (a redelivery).

    With ``claimed_by`` the row is stored already claimed by that worker (``processing``, first attempt, leased for
    ``lease_seconds``), as if ``claim_pending_inbox`` had handed it out: the worker that receives a frame and has a
    free slot runs it at once instead of paying a claim round trip for it. A duplicate never raises and leaves the
    caller's transaction usable.
    """
    now = received_at or utcnow()
    claimed = claimed_by is not None
    values = {
        "message_id": message_id, "msg_id": msg_id, "kind": kind, "payload": payload,
        "state": InboxState.PROCESSING if claimed else InboxState.PENDING, "attempts": 1 if claimed else 0,
        "claimed_by": claimed_by, "claimed_until": now + timedelta(seconds=lease_seconds) if claimed else None,
        "received_at": now, "processed_at": None, "error": None,
    }
    family = session_family(session)
    if family not in _INSERT_FRAME:  # MySQL: a SAVEPOINT around a plain INSERT
        return await insert_ignoring_duplicates(session, InboxMessage(**values))
    result = await execute_core(session, _INSERT_FRAME[family], values)
    return int(result.inserted_primary_key[0]) if result.rowcount == 1 else None


async def claim_pending_inbox(
    *,
    session: AsyncSession,
    limit: int,
    worker: str,
    lease_seconds: float,
    now: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[InboxMessage]:
    """Claim up to ``limit`` rows to process, oldest first: pending ones, and ones whose processor's lease ran out.

    Claimed rows are ``processing``, owned by ``worker`` until ``now + lease_seconds``, with ``attempts`` counted.
    A row whose lease expired ``max_attempts`` times is marked failed instead of being handed out again (a message
    that crashes its processor must not crash every restart). Commit promptly: the claim is what other workers see.
    """
    now = now or utcnow()
    T = InboxMessage
    await session.exec(
        update(T)
        .where(T.state == InboxState.PROCESSING, T.claimed_until < now, T.attempts >= max_attempts)
        .values(state=InboxState.FAILED, error="处理超时次数过多，已放弃", processed_at=now, claimed_until=None)
    )
    return await claim_rows(
        session,
        T,
        sources=(
            ClaimSource(
                where=and_(T.state == InboxState.PROCESSING, T.claimed_until < now),  # type: ignore[operator]
                order_by=(T.received_at, T.id),
                index=_PENDING_INDEX,
            ),
            ClaimSource(where=T.state == InboxState.PENDING, order_by=(T.received_at, T.id), index=_PENDING_INDEX),
        ),
        limit=limit,
        claimed_values={
            "state": InboxState.PROCESSING,
            "claimed_by": worker,
            "claimed_until": now + timedelta(seconds=lease_seconds),
            "attempts": T.attempts + 1,
        },
        mine=and_(T.state == InboxState.PROCESSING, T.claimed_by == worker),
    )


async def mark_inbox_done(*, session: AsyncSession, inbox_id: int, worker: str, now: datetime | None = None) -> bool:
    """Mark the row done if ``worker`` still holds its claim; False (nothing changed) when the row was taken over or
    finished meanwhile, and the caller must then roll its work back."""
    return await _finish(session, inbox_id, InboxState.DONE, None, worker, now)


async def mark_inbox_failed(
    *, session: AsyncSession, inbox_id: int, error: str, worker: str, now: datetime | None = None
) -> bool:
    """Give up on a row: the handler raised (the user already got an apology); the error is kept for inspection.
    ``worker`` as for ``mark_inbox_done``."""
    return await _finish(session, inbox_id, InboxState.FAILED, error, worker, now)


async def release_inbox_claims(*, session: AsyncSession, inbox_ids: Sequence[int], worker: str) -> int:
    """Hand rows ``worker`` claimed but never started back to the table (pending, the claim's attempt refunded): a
    stopping worker's waiting rows, for the next one to take at once instead of after their lease."""
    T = InboxMessage
    result = await session.exec(
        update(T)
        .where(T.id.in_(list(inbox_ids)), T.state == InboxState.PROCESSING, T.claimed_by == worker)  # type: ignore[attr-defined]
        .values(state=InboxState.PENDING, claimed_by=None, claimed_until=None, attempts=T.attempts - 1)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def pending_inbox_count(*, session: AsyncSession) -> int:
    T = InboxMessage
    result = await session.exec(
        select(func.count()).select_from(T).where(T.state.in_((InboxState.PENDING, InboxState.PROCESSING)))
    )
    return int(result.one())


async def _finish(
    session: AsyncSession, inbox_id: int, state: InboxState, error: str | None, worker: str, now: datetime | None
) -> bool:
    result = await execute_core(session, _FINISH, {"b_id": inbox_id, "b_state": state, "b_error": error,
                                                   "b_at": now or utcnow(), "b_worker": worker})
    return bool(result.rowcount == 1)


__all__ = [
    "claim_pending_inbox",
    "insert_inbox",
    "mark_inbox_done",
    "mark_inbox_failed",
    "pending_inbox_count",
    "release_inbox_claims",
]
