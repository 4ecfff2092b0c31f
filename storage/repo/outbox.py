"""Outbox: proactive messages written in the same transaction as the change that causes them, sent by the relay.

The idempotency key is the business identity of a message (``weekly:{project}:{iso_week}``,
``overdue:{deliverable}:{date}``): enqueuing the same key twice stores it once, so a retried handler or a re-run job
cannot double-send. The relay loop: ``claim_due_outbox`` -> send -> ``mark_sent`` / ``mark_retry`` / ``mark_dead``.
Dead rows stay for inspection and can be put back with ``replay_dead``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import OutboxMessage, OutboxMessageKind, OutboxState, OutboxTargetKind, utcnow
from storage.repo._claim import ClaimSource, claim_rows
from storage.repo._sql import core_table, execute_core, insert_ignoring_duplicates

_DUE_INDEX = "ix_outbox_state_next_attempt_at"


async def enqueue_outbox(
    *,
    session: AsyncSession,
    key: str,
    target_kind: OutboxTargetKind,
    target_ids: Sequence[str],
    msg_kind: OutboxMessageKind,
    params: dict[str, Any],
    attachment_path: str | None = None,
    not_before: datetime | None = None,
    now: datetime | None = None,
) -> bool:
    """Queue a message; returns False (and changes nothing) if a message with this key was queued before."""
    now = now or utcnow()
    row = OutboxMessage(
        idempotency_key=key,
        target_kind=target_kind,
        target_ids=list(target_ids),
        msg_kind=msg_kind,
        params=params,
        attachment_path=attachment_path,
        next_attempt_at=not_before or now,
        created_at=now,
    )
    return await insert_ignoring_duplicates(session, row) is not None


async def claim_due_outbox(
    *,
    session: AsyncSession,
    limit: int,
    worker: str,
    lease_seconds: float,
    now: datetime | None = None,
    todo: bool = False,
) -> list[OutboxMessage]:
    """Claim up to ``limit`` messages due now: pending ones whose time has come, and ones whose sender's lease ran
    out (it crashed mid-send: sending again is at-least-once, the price of never dropping a message).

    Expired ones go first (they have waited longest). Claimed rows are ``sending``, owned by ``worker`` until
    ``now + lease_seconds``, ``attempts`` incremented.
    Call inside ``db.write()`` and let it commit before sending. ``todo``: the 待办 calls (the leader's todo relay)
    instead of the messages (every process's relay).
    """
    now = now or utcnow()
    T = OutboxMessage
    kind = (T.target_kind == OutboxTargetKind.TODO) if todo else (T.target_kind != OutboxTargetKind.TODO)
    return await claim_rows(
        session,
        T,
        sources=(
            ClaimSource(
                where=and_(T.state == OutboxState.SENDING, T.claimed_until < now, kind),  # type: ignore[operator]
                order_by=(T.next_attempt_at, T.id),
                index=_DUE_INDEX,
            ),
            ClaimSource(
                where=and_(T.state == OutboxState.PENDING, T.next_attempt_at <= now, kind),
                order_by=(T.next_attempt_at, T.id),
                index=_DUE_INDEX,
            ),
        ),
        limit=limit,
        claimed_values={
            "state": OutboxState.SENDING,
            "claimed_by": worker,
            "claimed_until": now + timedelta(seconds=lease_seconds),
            "attempts": T.attempts + 1,
        },
        mine=and_(T.state == OutboxState.SENDING, T.claimed_by == worker),
    )


async def mark_sent(
    *, session: AsyncSession, outbox_id: int, worker: str | None = None, now: datetime | None = None
) -> bool:
    """Record a successful send. With ``worker``, only if that worker still holds the claim; returns whether it did."""
    return await _settle(
        session,
        outbox_id,
        worker,
        state=OutboxState.SENT,
        sent_at=now or utcnow(),
        last_error=None,
    )


async def mark_sent_many(
    *, session: AsyncSession, outbox_ids: Sequence[int], worker: str, now: datetime | None = None
) -> int:
    """Record several successful sends in one statement (the relay's group commit); returns how many rows ``worker``
    still held (the others were re-claimed by another worker after our lease ran out)."""
    result = await execute_core(session, _MARK_SENT_MANY, {"b_ids": list(outbox_ids), "b_worker": worker,
                                                           "b_at": now or utcnow()})
    return int(result.rowcount)


_outbox = core_table(OutboxMessage)
_MARK_SENT_MANY = (  # built once: the relay's group commit after every answer
    update(_outbox)
    .where(_outbox.c.id.in_(bindparam("b_ids", expanding=True)), _outbox.c.state == OutboxState.SENDING,
           _outbox.c.claimed_by == bindparam("b_worker"))
    .values(state=OutboxState.SENT, sent_at=bindparam("b_at"), last_error=None, claimed_by=None, claimed_until=None)
)


async def mark_retry(
    *, session: AsyncSession, outbox_id: int, error: str, next_at: datetime, worker: str | None = None
) -> bool:
    """Give the message back to the queue, due again at ``next_at`` (the relay computes the backoff)."""
    return await _settle(
        session, outbox_id, worker, state=OutboxState.PENDING, next_attempt_at=next_at, last_error=error
    )


async def mark_dead(*, session: AsyncSession, outbox_id: int, error: str, worker: str | None = None) -> bool:
    """Stop trying: the message stays as ``dead`` with its last error, never silently dropped."""
    return await _settle(session, outbox_id, worker, state=OutboxState.DEAD, last_error=error)


async def list_dead(*, session: AsyncSession, limit: int = 100) -> list[OutboxMessage]:
    T = OutboxMessage
    query = select(T).where(T.state == OutboxState.DEAD).order_by(T.id.desc()).limit(limit)  # type: ignore[union-attr]
    return list((await session.exec(query)).all())


async def replay_dead(
    *, session: AsyncSession, ids: Iterable[int] | None = None, now: datetime | None = None
) -> int:
    """Put dead messages (all, or those in ``ids``) back in the queue, due now, with a fresh attempt count."""
    T = OutboxMessage
    statement = update(T).where(T.state == OutboxState.DEAD)
    if ids is not None:
        id_list = list(ids)
        if not id_list:
            return 0
        statement = statement.where(T.id.in_(id_list))  # type: ignore[union-attr]
    result = await session.exec(
        statement.values(
            state=OutboxState.PENDING, attempts=0, next_attempt_at=now or utcnow(), claimed_by=None, claimed_until=None
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


async def get_outbox_by_key(*, session: AsyncSession, key: str) -> OutboxMessage | None:
    T = OutboxMessage
    return (await session.exec(select(T).where(T.idempotency_key == key))).first()


async def _settle(session: AsyncSession, outbox_id: int, worker: str | None, **values: Any) -> bool:
    T = OutboxMessage
    statement = update(T).where(T.id == outbox_id)
    if worker is not None:
        # A sender whose lease expired must not overwrite the outcome of the worker that re-claimed the row.
        statement = statement.where(T.state == OutboxState.SENDING, T.claimed_by == worker)
    result = await session.exec(
        statement.values(claimed_by=None, claimed_until=None, **values).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


__all__ = [
    "claim_due_outbox",
    "enqueue_outbox",
    "get_outbox_by_key",
    "list_dead",
    "mark_dead",
    "mark_retry",
    "mark_sent",
    "mark_sent_many",
    "replay_dead",
]
