"""Claiming queue rows (inbox, outbox) so that concurrent workers never get the same row.

One code path for all backends, in the caller's write transaction:

1. pick candidate ids, source by source (rows whose previous claim expired, then rows that are due), each with an
   index-ordered ``… ORDER BY … LIMIT n``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB/MySQL, so that
   concurrent claimers skip each other's rows instead of waiting; on SQLite the write transaction is
   ``BEGIN IMMEDIATE``, which already excludes every other writer;
2. UPDATE those ids, re-checking that they are still claimable;
3. load the rows this worker now owns.

Why one source at a time and a forced index on MySQL: InnoDB locks every row it *reads* for ``FOR UPDATE``. An OR
across two states, or a small table where the optimizer prefers a scan plus filesort, makes it read (and lock) every
due row before the LIMIT applies, and the other workers then skip everything. Reading the (state, time) index in
order stops after ``n`` rows. No ``UPDATE … RETURNING``: MariaDB lacks it and SQLite only has it from 3.35.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import TableBase
from storage.repo._sql import session_family

RowT = TypeVar("RowT", bound=TableBase)


@dataclass(frozen=True)
class ClaimSource:
    """One kind of claimable row: its condition, the order to take them in, and the index that yields that order."""

    where: ColumnElement[bool]
    order_by: Sequence[Any]
    index: str


async def claim_rows(
    session: AsyncSession,
    model: type[RowT],
    *,
    sources: Sequence[ClaimSource],
    limit: int,
    claimed_values: dict[str, Any],
    mine: ColumnElement[bool],
) -> list[RowT]:
    if limit <= 0:
        return []
    id_column: Any = model.id  # type: ignore[attr-defined]
    bind_dialect = session.get_bind().dialect.name
    family = session_family(session)
    ids: list[int] = []
    for source in sources:
        wanted = limit - len(ids)
        if wanted <= 0:
            break
        candidates = select(id_column).where(source.where).order_by(*source.order_by).limit(wanted)
        if family != "sqlite":
            candidates = candidates.with_for_update(skip_locked=True)
        if family == "mysql":
            candidates = candidates.with_hint(model, f"FORCE INDEX ({source.index})", dialect_name=bind_dialect)
        ids.extend((await session.exec(candidates)).all())
    if not ids:
        return []
    await session.exec(
        update(model)
        .where(id_column.in_(ids), or_(*(source.where for source in sources)))
        .values(**claimed_values)
        .execution_options(synchronize_session=False)
    )
    claimed = select(model).where(id_column.in_(ids), mine).execution_options(populate_existing=True)
    rows = list((await session.exec(claimed)).all())
    position = {row_id: n for n, row_id in enumerate(ids)}
    return sorted(rows, key=lambda row: position[row.id])  # type: ignore[attr-defined]
