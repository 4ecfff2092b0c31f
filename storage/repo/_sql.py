"""Dialect-aware building blocks the repository modules share.

The one hard problem here is "insert unless a unique key already has it" inside the caller's transaction, on three
databases: a plain INSERT that hits a duplicate raises, and on PostgreSQL an error aborts the whole transaction. So:
PostgreSQL and SQLite use ``INSERT … ON CONFLICT DO NOTHING``; MySQL/MariaDB use a SAVEPOINT around a plain INSERT
(``INSERT IGNORE`` would also turn truncation and NOT NULL errors into warnings, hiding real bugs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import dialect_family
from storage.models import TableBase

RowT = TypeVar("RowT", bound=TableBase)

_MYSQL_DUPLICATE_KEY = 1062
_PG_UNIQUE_VIOLATION = "23505"


def session_family(session: AsyncSession) -> str:
    """``sqlite``, ``postgresql`` or ``mysql`` for the database behind ``session``."""
    return dialect_family(session.get_bind().dialect.name)


def is_unique_violation(exc: IntegrityError) -> bool:
    orig: Any = exc.orig
    if getattr(orig, "sqlstate", None) == _PG_UNIQUE_VIOLATION or getattr(orig, "pgcode", None) == _PG_UNIQUE_VIOLATION:
        return True
    args = getattr(orig, "args", ())
    if args and args[0] == _MYSQL_DUPLICATE_KEY:
        return True
    error_name = getattr(orig, "sqlite_errorname", "")
    if error_name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        return True
    return "UNIQUE constraint failed" in str(orig)


def column_values(row: TableBase) -> dict[str, Any]:
    """The row's column values for a Core INSERT (defaults applied by the model; an unset id left to the database)."""
    table: Table = row.__table__  # type: ignore[attr-defined]
    values = {column.name: getattr(row, column.key) for column in table.columns}
    for column in table.primary_key.columns:
        if values.get(column.name) is None:
            values.pop(column.name, None)
    return values


async def insert_ignoring_duplicates(session: AsyncSession, row: TableBase) -> int | None:
    """INSERT ``row``; returns its new id, or None when a unique key already holds it (the transaction stays usable).

    ``row`` itself is not added to the session; load the stored row by id if you need it.
    """
    table: Table = row.__table__  # type: ignore[attr-defined]
    values = column_values(row)
    family = session_family(session)
    if family in ("postgresql", "sqlite"):
        dialect_insert = postgresql.insert if family == "postgresql" else sqlite.insert
        statement = dialect_insert(table).values(values).on_conflict_do_nothing()
        result = await session.exec(statement)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]
    try:
        async with session.begin_nested():
            result = await session.exec(table.insert().values(values))
    except IntegrityError as exc:
        if is_unique_violation(exc):
            return None
        raise
    return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]


async def add_with_retry(
    session: AsyncSession, build: Callable[[], Awaitable[RowT]], *, attempts: int = 10
) -> RowT:
    """Add the row ``build()`` makes, rebuilding it if a concurrent writer took its unique number first.

    For numbers allocated as max+1 (project codes, register and version numbers): the unique key is the referee; the
    loser re-reads the max after the winner committed and tries again, inside a savepoint so the caller's
    transaction survives.
    """
    for attempt in range(attempts):
        row = await build()
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
        except IntegrityError as exc:
            if not is_unique_violation(exc) or attempt == attempts - 1:
                raise
            continue
        return row
    raise AssertionError("unreachable")
