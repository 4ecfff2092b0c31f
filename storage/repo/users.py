"""The name directory of DingTalk users."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import User, utcnow
from storage.repo._sql import insert_ignoring_duplicates


async def upsert_user(*, session: AsyncSession, user_id: str, name: str, now: datetime | None = None) -> User:
    """Create the user or refresh their display name (people get renamed); safe when two messages race."""
    now = now or utcnow()
    new_user = User(user_id=user_id, name=name, created_at=now, updated_at=now)
    if await insert_ignoring_duplicates(session, new_user) is None:
        await session.exec(
            update(User).where(User.user_id == user_id, User.name != name).values(name=name, updated_at=now)
        )
    query = select(User).where(User.user_id == user_id).execution_options(populate_existing=True)
    return (await session.exec(query)).one()


async def get_user(*, session: AsyncSession, user_id: str) -> User | None:
    return (await session.exec(select(User).where(User.user_id == user_id))).first()


async def user_names(*, session: AsyncSession, user_ids: Iterable[str]) -> dict[str, str]:
    """Display names by user id; ids never seen are simply missing from the result."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    query = select(User.user_id, User.name).where(User.user_id.in_(ids))  # type: ignore[attr-defined]
    rows = (await session.exec(query)).all()
    return {user_id: name for user_id, name in rows}


__all__ = ["get_user", "upsert_user", "user_names"]
