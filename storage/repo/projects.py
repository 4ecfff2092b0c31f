"""Projects, their codes (XM-<year>-<seq>), group bindings and members."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import MemberRole, Project, ProjectMember, ProjectStatus, utcnow
from storage.repo._sql import add_with_retry, insert_ignoring_duplicates
from storage.repo.message_scope import taken_member_roles

PROJECT_CODE_PREFIX = "XM"
_CODE_PATTERN = re.compile(rf"^{PROJECT_CODE_PREFIX}-(\d{{4}})-(\d+)$")


def format_project_code(year: int, seq: int) -> str:
    return f"{PROJECT_CODE_PREFIX}-{year}-{seq:03d}"


async def next_project_code(*, session: AsyncSession, year: int) -> str:
    """The next free code of ``year``: XM-2026-001, XM-2026-002 … (XM-2026-1000 after 999).

    Only a proposal: two concurrent callers get the same answer; ``create_project`` resolves that by retrying.
    """
    prefix = f"{PROJECT_CODE_PREFIX}-{year}-"
    # Longest first, then highest: "XM-2026-1000" sorts after "XM-2026-999" by length though not as text.
    query = (
        select(Project.code)
        .where(Project.code.like(f"{prefix}%"))  # type: ignore[attr-defined]
        .order_by(func.length(Project.code).desc(), Project.code.desc())  # type: ignore[attr-defined]
        .limit(1)
    )
    last = (await session.exec(query)).first()
    match = _CODE_PATTERN.match(last or "")
    return format_project_code(year, int(match.group(2)) + 1 if match else 1)


async def create_project(
    *,
    session: AsyncSession,
    name: str,
    template: str,
    year: int,
    created_by: str | None = None,
    **fields: Any,
) -> Project:
    """Insert a project with the next code of ``year`` (``fields``: any other ``Project`` column).

    A concurrent creation that took the same code makes this retry with the next one.
    """

    async def build() -> Project:
        code = await next_project_code(session=session, year=year)
        return Project(code=code, name=name, template=template, created_by=created_by, **fields)

    return await add_with_retry(session, build)


async def get_project(*, session: AsyncSession, project_id: int) -> Project | None:
    return await session.get(Project, project_id)


async def get_project_by_code(*, session: AsyncSession, code: str) -> Project | None:
    return (await session.exec(select(Project).where(Project.code == code.strip().upper()))).first()


async def get_project_by_conversation(*, session: AsyncSession, conversation_id: str) -> Project | None:
    """The project a group chat is bound to, as its internal group or as its client group."""
    query = select(Project).where(
        or_(Project.internal_conversation_id == conversation_id, Project.client_conversation_id == conversation_id)
    )
    return (await session.exec(query)).first()


async def list_projects(
    *, session: AsyncSession, statuses: Iterable[ProjectStatus] | None = None
) -> list[Project]:
    query = select(Project).order_by(Project.id)
    if statuses is not None:
        query = query.where(Project.status.in_(list(statuses)))  # type: ignore[attr-defined]
    return list((await session.exec(query)).all())


async def add_member(
    *, session: AsyncSession, project_id: int, user_id: str, role: MemberRole, now: datetime | None = None
) -> bool:
    """Give ``user_id`` a role in the project; False if they already had it."""
    member = ProjectMember(project_id=project_id, user_id=user_id, role=role, created_at=now or utcnow())
    return await insert_ignoring_duplicates(session, member) is not None


async def remove_member(
    *, session: AsyncSession, project_id: int, user_id: str, role: MemberRole | None = None
) -> int:
    """Take one role (or, without ``role``, every role) away; returns how many were removed."""
    statement = delete(ProjectMember).where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
    if role is not None:
        statement = statement.where(ProjectMember.role == role)
    result = await session.exec(statement.execution_options(synchronize_session=False))
    return int(result.rowcount)


async def list_members(
    *, session: AsyncSession, project_id: int, role: MemberRole | None = None
) -> list[ProjectMember]:
    if role is None:
        return list((await session.exec(_MEMBERS, params={"b_project": project_id})).all())  # type: ignore[call-overload]
    query = select(ProjectMember).where(ProjectMember.project_id == project_id, ProjectMember.role == role)
    return list((await session.exec(query.order_by(ProjectMember.id))).all())


async def member_roles(*, session: AsyncSession, project_id: int, user_id: str) -> set[MemberRole]:
    known, roles = taken_member_roles(session, project_id, user_id)
    if known:
        return roles  # type: ignore[no-any-return]
    return set((await session.exec(_ROLES, params={"b_project": project_id, "b_user": user_id})).all())  # type: ignore[call-overload]


# Built once: asked on most messages.
_MEMBERS = select(ProjectMember).where(ProjectMember.project_id == bindparam("b_project")).order_by(ProjectMember.id)
_ROLES = select(ProjectMember.role).where(ProjectMember.project_id == bindparam("b_project"),
                                          ProjectMember.user_id == bindparam("b_user"))


async def projects_of_user(
    *, session: AsyncSession, user_id: str, statuses: Iterable[ProjectStatus] | None = None
) -> list[Project]:
    """Projects in which ``user_id`` has any role."""
    member_of = select(ProjectMember.project_id).where(ProjectMember.user_id == user_id)
    query = select(Project).where(Project.id.in_(member_of)).order_by(Project.id)  # type: ignore[union-attr]
    if statuses is not None:
        query = query.where(Project.status.in_(list(statuses)))  # type: ignore[attr-defined]
    return list((await session.exec(query)).all())


async def memberships_of_user(*, session: AsyncSession, user_id: str) -> list[tuple[Project, frozenset[MemberRole]]]:
    """The projects in which ``user_id`` has any role, each with those roles, by project id (one statement)."""
    rows = (await session.exec(_MEMBERSHIPS, params={"b_user": user_id})).all()  # type: ignore[call-overload]
    by_project: dict[int, tuple[Project, set[MemberRole]]] = {}
    for project, role in rows:
        by_project.setdefault(project.id, (project, set()))[1].add(role)
    return [(project, frozenset(roles)) for project, roles in by_project.values()]


# Built once: a file sent to the bot asks which of the sender's projects it is for.
_MEMBERSHIPS = (select(Project, ProjectMember.role).join(ProjectMember, ProjectMember.project_id == Project.id)
                .where(ProjectMember.user_id == bindparam("b_user")).order_by(Project.id))


__all__ = [
    "add_member",
    "create_project",
    "format_project_code",
    "get_project",
    "get_project_by_code",
    "get_project_by_conversation",
    "list_members",
    "list_projects",
    "member_roles",
    "memberships_of_user",
    "next_project_code",
    "projects_of_user",
    "remove_member",
]
