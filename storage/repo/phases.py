"""A project's phases, in order."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Phase


async def list_phases(*, session: AsyncSession, project_id: int) -> list[Phase]:
    """Every phase of the project in template order (parallel ones, like 监控, included)."""
    return list((await session.exec(_OF_PROJECT, params={"b_project": project_id})).all())  # type: ignore[call-overload]


_OF_PROJECT = select(Phase).where(Phase.project_id == bindparam("b_project")).order_by(Phase.seq)  # built once


__all__ = ["list_phases"]
