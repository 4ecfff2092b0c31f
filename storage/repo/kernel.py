"""Queue bookkeeping the kernel needs beyond the generic inbox/outbox functions (owned by the kernel, issue 4).

* ``hold_inbox_claim``: the first statement of a command's unit of work. It proves this worker still owns the
  claimed inbox row and, on PostgreSQL/MySQL, row-locks it until the transaction ends, so no other process can
  claim it even if the lease runs out while the command runs.
* ``insert_outbox_row``: an outbox row as built by the caller, possibly already claimed by this worker (the fast
  path: rows written in a command's transaction are sent by the same process right after the commit).
* small updates the relay makes to a row it owns (the uploaded media id, the users still to reach), and the
  counts /healthz and ``dingpm outbox`` show.

Like every repository function: the session is a keyword argument and nothing here commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import bindparam, func, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InboxMessage, InboxState, OutboxMessage, OutboxState, utcnow
from storage.repo._sql import (
    column_values,
    core_table,
    execute_core,
    insert_ignoring_duplicates,
    prebuilt_insert_ignoring,
    session_family,
)


async def hold_inbox_claim(
    *, session: AsyncSession, inbox_id: int, worker: str, lease_seconds: float, now: datetime | None = None
) -> bool:
    """Extend this worker's claim on an inbox row; False if the row is no longer ours (done, or re-claimed)."""
    now = now or utcnow()
    result = await execute_core(session, _HOLD, {"b_id": inbox_id, "b_worker": worker,
                                                 "b_until": now + timedelta(seconds=lease_seconds)})
    return bool(result.rowcount == 1)


_inbox = core_table(InboxMessage)
_INSERT_OUTBOX = prebuilt_insert_ignoring(core_table(OutboxMessage))
_HOLD = (  # built once: the first statement of every command
    update(_inbox)
    .where(_inbox.c.id == bindparam("b_id"), _inbox.c.state == InboxState.PROCESSING,
           _inbox.c.claimed_by == bindparam("b_worker"))
    .values(claimed_until=bindparam("b_until"))
)


async def insert_outbox_row(*, session: AsyncSession, row: OutboxMessage) -> int | None:
    """INSERT ``row`` as given (state and claim included); None when its idempotency key is already queued.

    Through the session (not ``execute_core``): a command may queue a message, and a read-only command's session
    must refuse it."""
    family = session_family(session)
    if family not in _INSERT_OUTBOX:
        return await insert_ignoring_duplicates(session, row)
    result = await session.exec(_INSERT_OUTBOX[family], params=column_values(row))  # type: ignore[call-overload]
    return int(result.inserted_primary_key[0]) if result.rowcount == 1 else None


async def get_outbox(*, session: AsyncSession, outbox_id: int) -> OutboxMessage | None:
    query = select(OutboxMessage).where(OutboxMessage.id == outbox_id).execution_options(populate_existing=True)
    return (await session.exec(query)).first()


async def update_outbox_params(
    *, session: AsyncSession, outbox_id: int, params: dict[str, Any], worker: str | None = None
) -> bool:
    """Replace a row's params (e.g. to remember the media id of an uploaded attachment, so a retry reuses it)."""
    return await _update_owned(session, outbox_id, worker, params=params)


async def update_outbox_targets(
    *, session: AsyncSession, outbox_id: int, target_ids: Sequence[str], worker: str | None = None
) -> bool:
    """Narrow a row to the targets still to reach (a 1:1 batch send that reached some users but not others)."""
    return await _update_owned(session, outbox_id, worker, target_ids=list(target_ids))


async def refund_outbox_attempt(*, session: AsyncSession, outbox_id: int) -> None:
    """Give back the attempt a claim counted for a row that was not tried (it waited for an earlier message)."""
    T = OutboxMessage
    await session.exec(
        update(T)
        .where(T.id == outbox_id, T.attempts > 0)
        .values(attempts=T.attempts - 1)
        .execution_options(synchronize_session=False)
    )


async def outbox_counts(*, session: AsyncSession) -> dict[str, int]:
    """Rows per state: ``{"pending": n, "sending": n, "sent": n, "dead": n}`` (states without rows are 0)."""
    T = OutboxMessage
    rows = (await session.exec(select(T.state, func.count()).group_by(T.state))).all()
    counts = {state.value: 0 for state in OutboxState}
    for state, count in rows:
        counts[OutboxState(state).value] = int(count)
    return counts


async def inbox_counts(*, session: AsyncSession) -> dict[str, int]:
    """Rows per state: ``{"pending": n, "processing": n, "done": n, "failed": n}``."""
    T = InboxMessage
    rows = (await session.exec(select(T.state, func.count()).group_by(T.state))).all()
    counts = {state.value: 0 for state in InboxState}
    for state, count in rows:
        counts[InboxState(state).value] = int(count)
    return counts


async def list_outbox(
    *, session: AsyncSession, states: Sequence[OutboxState], limit: int = 100
) -> list[OutboxMessage]:
    T = OutboxMessage
    query = select(T).where(T.state.in_(list(states))).order_by(T.id.desc()).limit(limit)  # type: ignore[union-attr,attr-defined]
    return list((await session.exec(query)).all())


async def _update_owned(session: AsyncSession, outbox_id: int, worker: str | None, **values: Any) -> bool:
    T = OutboxMessage
    statement = update(T).where(T.id == outbox_id)
    if worker is not None:
        statement = statement.where(T.state == OutboxState.SENDING, T.claimed_by == worker)
    result = await session.exec(statement.values(**values).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


__all__ = [
    "get_outbox",
    "hold_inbox_claim",
    "inbox_counts",
    "insert_outbox_row",
    "list_outbox",
    "outbox_counts",
    "refund_outbox_attempt",
    "update_outbox_params",
    "update_outbox_targets",
]
