"""A project's phases, in order."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Phase


async def list_phases(*, session: AsyncSession, project_id: int) -> list[Phase]:
    """Every phase of the project in template order (parallel ones, like 监控, included)."""
    query = select(Phase).where(Phase.project_id == project_id).order_by(Phase.seq)
    return list((await session.exec(query)).all())


__all__ = ["list_phases"]
