"""Register entries (问题/需求/风险/…) numbered per project and kind, so users can refer to 问题#3."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import RegisterEntry, RegisterKind, RegisterStatus, utcnow
from storage.repo._sql import add_with_retry, column_values, core_table, session_family

# The state a new entry starts in, per kind.
INITIAL_STATUS: dict[RegisterKind, RegisterStatus] = {
    RegisterKind.ISSUE: RegisterStatus.OPEN,
    RegisterKind.REQUIREMENT: RegisterStatus.PENDING,
    RegisterKind.RISK: RegisterStatus.OPEN,
    RegisterKind.CHANGE: RegisterStatus.PENDING,
    RegisterKind.UPGRADE: RegisterStatus.RECORDED,
    RegisterKind.LOG: RegisterStatus.RECORDED,
    RegisterKind.PLAN: RegisterStatus.PENDING,
    RegisterKind.MEETING: RegisterStatus.RECORDED,
}


async def add_register_entry(
    *,
    session: AsyncSession,
    project_id: int,
    kind: RegisterKind,
    title: str,
    created_by: str,
    status: RegisterStatus | None = None,
    now: datetime | None = None,
    **fields: Any,
) -> RegisterEntry:
    """Insert an entry with the next number of its register (``fields``: any other ``RegisterEntry`` column)."""
    now = now or utcnow()
    if session_family(session) == "sqlite":
        # One prebuilt statement: the number computed inside the INSERT, the id and number returned. SQLite's write
        # transaction excludes every other writer, so max+1 cannot collide (PostgreSQL and MySQL retry below).
        entry = RegisterEntry(project_id=project_id, kind=kind, seq=0, title=title, created_by=created_by,
                              status=status or INITIAL_STATUS[kind], created_at=now, updated_at=now, **fields)
        values = column_values(entry)
        del values["seq"]
        params = {**values, "b_project_id": project_id, "b_kind": kind}
        entry.id, entry.seq = (await session.exec(_INSERT_NUMBERED, params=params)).one()  # type: ignore[call-overload]
        make_transient_to_detached(entry)  # the row as inserted: in the session without being read back
        session.add(entry)
        return entry

    async def build() -> RegisterEntry:
        current = (
            await session.exec(
                select(func.max(RegisterEntry.seq)).where(
                    RegisterEntry.project_id == project_id, RegisterEntry.kind == kind
                )
            )
        ).one()
        return RegisterEntry(
            project_id=project_id,
            kind=kind,
            seq=(current or 0) + 1,
            title=title,
            created_by=created_by,
            status=status or INITIAL_STATUS[kind],
            created_at=now,
            updated_at=now,
            **fields,
        )

    return await add_with_retry(session, build)


_entries = core_table(RegisterEntry)
_INSERT_NUMBERED = (  # built once: the columns come as parameters, the number from the register's last one
    insert(_entries)
    .values(seq=select(func.coalesce(func.max(_entries.c.seq), 0) + 1)
            .where(_entries.c.project_id == bindparam("b_project_id"), _entries.c.kind == bindparam("b_kind"))
            .scalar_subquery())
    .returning(_entries.c.id, _entries.c.seq)
)


async def get_register_entry(
    *, session: AsyncSession, project_id: int, kind: RegisterKind, seq: int
) -> RegisterEntry | None:
    query = select(RegisterEntry).where(
        RegisterEntry.project_id == project_id, RegisterEntry.kind == kind, RegisterEntry.seq == seq
    )
    return (await session.exec(query)).first()


async def list_register_entries(
    *,
    session: AsyncSession,
    project_id: int,
    kind: RegisterKind,
    statuses: Iterable[RegisterStatus] | None = None,
) -> list[RegisterEntry]:
    """Entries of one register in number order (uses ix_register_entries_project_kind_status)."""
    query = select(RegisterEntry).where(RegisterEntry.project_id == project_id, RegisterEntry.kind == kind)
    if statuses is not None:
        query = query.where(RegisterEntry.status.in_(list(statuses)))  # type: ignore[attr-defined]
    return list((await session.exec(query.order_by(RegisterEntry.seq))).all())


__all__ = ["INITIAL_STATUS", "add_register_entry", "get_register_entry", "list_register_entries"]
