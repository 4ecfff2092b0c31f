"""People's own bookkeeping (their last project) and naming someone a command mentions; the directory itself
(lookups, learning, the contacts walk, display names) is ``storage.repo.directory``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Project, User, utcnow
from storage.repo._sql import core_table, insert_ignoring_duplicates, session_family
from storage.repo.directory import display_names
from storage.repo.message_scope import forget_last_project, known_last_project


async def upsert_user(*, session: AsyncSession, user_id: str, name: str, now: datetime | None = None) -> User:
    """Create the user or refresh their display name (people get renamed); safe when two messages race.

    A name the contacts walk stored is kept: the one given here comes from a chat (an @-mention shows the group
    nickname), the walk's from the organization's directory."""
    now = now or utcnow()
    # The row is taken for update *before* any insert: on MySQL an INSERT IGNORE that meets an existing row leaves a
    # shared lock, and two commands of one person upgrading their shared locks to write the name deadlocked.
    locked = select(User.id).where(User.user_id == user_id).with_for_update()
    if (await session.exec(locked)).first() is None:
        new_user = User(user_id=user_id, name=name, created_at=now, updated_at=now)
        if await insert_ignoring_duplicates(session, new_user) is None:
            await session.exec(locked)  # someone created it meanwhile: wait for their commit, then update below
    await session.exec(
        update(User).where(User.user_id == user_id, User.name != name, User.synced_at.is_(None))  # type: ignore
        .values(name=name, updated_at=now)
    )
    query = select(User).where(User.user_id == user_id).execution_options(populate_existing=True)
    return (await session.exec(query)).one()


async def get_user(*, session: AsyncSession, user_id: str) -> User | None:
    return (await session.exec(select(User).where(User.user_id == user_id))).first()


# Every display of a person goes through the directory's one helper.
user_names = display_names


async def remember_project(
    *, session: AsyncSession, user_id: str, name: str, project_id: int, now: datetime | None = None
) -> None:
    """Note the project ``user_id`` just worked on (creating the user's row if needed)."""
    cached, exists, last = known_last_project(session, user_id)
    if cached:
        if exists and last == project_id:
            return  # the usual case, read with the message's scope: no statement at all
    else:
        known = (await session.exec(_LAST_PROJECT, params={"b_user": user_id})).first()  # type: ignore[call-overload]
        exists = known is not None
        if known is not None and known[1] == project_id:
            return  # someone working on the same project again: one read, no write, no locks
    if session_family(session) != "sqlite":  # SQLite's write transaction excludes every other writer: no row locks
        # Lock order: the project row (shared) before the user's row. Writing last_project_id makes the database
        # check the foreign key, which takes a shared lock on the project *after* the user's row; a command holding
        # the project for update and then remembering the same user would wait for us while we wait for it (MySQL
        # deadlock).
        await session.exec(_SHARE_PROJECT, params={"b_project": project_id})  # type: ignore[call-overload]
    now = now or utcnow()
    if not exists:
        await upsert_user(session=session, user_id=user_id, name=name or user_id, now=now)
    # Only the project: names are the directory's (learned from every message, ``directory.learn_employee``).
    await session.exec(_SET_LAST_PROJECT,  # type: ignore[call-overload]
                       params={"b_user": user_id, "b_project": project_id, "b_now": now})
    forget_last_project(session, user_id)


# Built once (most messages remember their sender's project): compiled once, nothing constructed per message.
_users = core_table(User)
_LAST_PROJECT = select(_users.c.id, _users.c.last_project_id).where(_users.c.user_id == bindparam("b_user"))
_SHARE_PROJECT = select(Project.id).where(Project.id == bindparam("b_project")).with_for_update(read=True)
_SET_LAST_PROJECT = (update(_users).where(_users.c.user_id == bindparam("b_user"))
                     .values(last_project_id=bindparam("b_project"), updated_at=bindparam("b_now")))


async def last_project_id(*, session: AsyncSession, user_id: str) -> int | None:
    return (await session.exec(select(User.last_project_id).where(User.user_id == user_id))).first()


__all__ = ["get_user", "last_project_id", "remember_project", "upsert_user", "user_names"]
