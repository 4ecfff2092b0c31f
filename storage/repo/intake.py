"""Pending files: a received file waiting for its deliverable, or a command waiting for its file (see
``storage.models.intake``). Rows belong to one user in one chat and expire; consuming one is a compare-and-set, so
two commands racing for the same file cannot both take it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import PendingFile, PendingKind, utcnow
from storage.repo._sql import insert_ignoring_duplicates


async def add_pending(*, session: AsyncSession, row: PendingFile) -> PendingFile | None:
    """Store ``row``; None when a row for the same file message exists (a redelivered message)."""
    new_id = await insert_ignoring_duplicates(session, row)
    return None if new_id is None else await session.get(PendingFile, new_id)


async def open_pending(
    *,
    session: AsyncSession,
    conversation_id: str,
    user_id: str,
    kinds: tuple[PendingKind, ...],
    now: datetime | None = None,
) -> list[PendingFile]:
    """Unconsumed, unexpired rows of these kinds for this user in this chat, newest first."""
    now = now or utcnow()
    T = PendingFile
    query = (
        select(T)
        .where(
            T.conversation_id == conversation_id,
            T.user_id == user_id,
            T.consumed_at.is_(None),  # type: ignore[union-attr]
            T.expires_at > now,  # type: ignore[operator]
            T.kind.in_(list(kinds)),  # type: ignore[attr-defined]
        )
        .order_by(T.created_at.desc(), T.id.desc())  # type: ignore[attr-defined,union-attr]
    )
    return list((await session.exec(query)).all())


async def consume_pending(*, session: AsyncSession, pending_id: int, now: datetime | None = None) -> bool:
    """Mark a row used; False if someone else used it first."""
    T = PendingFile
    result = await session.exec(
        update(T)
        .where(T.id == pending_id, T.consumed_at.is_(None))  # type: ignore[union-attr]
        .values(consumed_at=now or utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def cancel_waiting(
    *,
    session: AsyncSession,
    now: datetime | None = None,
    conversation_id: str | None = None,
    user_id: str | None = None,
    deliverable_id: int | None = None,
) -> list[PendingFile]:
    """End the commands still waiting for a file: this user's in this chat (a newer command of theirs answers or
    replaces them), or anyone's for ``deliverable_id`` (it was submitted or waived some other way). Returns the rows
    ended, so the answer can say which wait it ended."""
    T = PendingFile
    now = now or utcnow()
    conditions = [T.consumed_at.is_(None), T.kind != PendingKind.FILE, T.expires_at > now]  # type: ignore[union-attr]
    if conversation_id is not None:
        conditions.append(T.conversation_id == conversation_id)
    if user_id is not None:
        conditions.append(T.user_id == user_id)
    if deliverable_id is not None:
        conditions.append(T.deliverable_id == deliverable_id)
    if len(conditions) == 3:
        raise ValueError("cancel_waiting needs a chat and user, or a deliverable")
    rows = list((await session.exec(select(T).where(*conditions))).all())
    if rows:
        await session.exec(
            update(T).where(T.id.in_([row.id for row in rows]), T.consumed_at.is_(None))  # type: ignore[union-attr]
            .values(consumed_at=now).execution_options(synchronize_session=False)
        )
    return rows


async def delete_expired_pending(
    *, session: AsyncSession, now: datetime, limit: int = 500
) -> tuple[int, list[str]]:
    """Delete up to ``limit`` rows that expired by ``now`` (used or not); returns how many, and their staged files.

    An expired row can no longer be taken (``open_pending`` skips it), and a row used by a command was used in that
    command's committed transaction, its file already placed; so the files are free to go once this commits.
    """
    T = PendingFile
    query = (
        select(T.id, T.file_path)
        .where(T.expires_at <= now)  # type: ignore[operator]
        .order_by(T.id)  # type: ignore[arg-type]
        .limit(limit)
    )
    rows = list((await session.exec(query)).all())
    if not rows:
        return 0, []
    await session.exec(
        delete(T)
        .where(T.id.in_([row_id for row_id, _ in rows]), T.expires_at <= now)  # type: ignore[union-attr,operator]
        .execution_options(synchronize_session=False)
    )
    return len(rows), [path for _, path in rows if path]


async def pending_file_paths(*, session: AsyncSession) -> set[str]:
    """Every staged file a pending row still points to (the rows are few: they live a day)."""
    query = select(PendingFile.file_path).where(PendingFile.file_path.is_not(None))  # type: ignore[union-attr]
    return {path for path in (await session.exec(query)).all() if path}


__all__ = [
    "add_pending",
    "cancel_waiting",
    "consume_pending",
    "delete_expired_pending",
    "open_pending",
    "pending_file_paths",
]
