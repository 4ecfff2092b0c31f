"""One statement for what every group command needs to know before it runs: the group's project, the sender's roles
in it, whether the group is a client conversation, and the sender's last project.

The dispatcher asks these one by one (``resolve_project``, ``roles_of``, ``client_audience``, and the command's
``remember_project`` after it): four to six statements on every message. ``load_message_scope`` answers all of them
with one indexed statement and leaves the answers in the session (``session.info``); ``member_roles``,
``is_client_conversation`` and ``remember_project`` take them from there instead of asking the database.

The roles and the client flag are taken once (popped): the dispatcher asks right after the project is resolved,
before the command runs, so nothing in the transaction can have changed them; a later call in the same transaction
(after the command added a member, say) asks the database again. The last project is only ever written by
``remember_project``, which forgets it when it writes it. The statement is built once at import (bound parameters),
so its compiled form is cached and nothing is constructed per message.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, literal, or_
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Conversation, Project, ProjectMember, User

_KEY = "dingpm.message_scope"

_one_row = select(literal(1).label("one")).subquery("one_row")
_conversation = bindparam("conversation_id")
_user = bindparam("user_id")
_client = or_(
    select(Project.id).where(Project.client_conversation_id == _conversation).exists(),
    select(Conversation.id).where(Conversation.conversation_id == _conversation,
                                  Conversation.external_members == True).exists(),  # noqa: E712 (SQL)
).label("client")
_last_project = select(User.last_project_id).where(User.user_id == _user).scalar_subquery().label("last_project_id")
_known_user = select(User.id).where(User.user_id == _user).scalar_subquery().label("user_row")

# From a one-row table so that an unbound group (no project) still answers the client flag and the last project.
# One row per role the sender has in the project (none: one row with a NULL role).
_SCOPE = (
    select(Project, ProjectMember.role, _client, _last_project, _known_user)
    .select_from(_one_row)
    .outerjoin(Project, or_(Project.internal_conversation_id == _conversation,
                            Project.client_conversation_id == _conversation))
    .outerjoin(ProjectMember, and_(ProjectMember.project_id == Project.id, ProjectMember.user_id == _user))
)


async def load_message_scope(*, session: AsyncSession, conversation_id: str, user_id: str) -> Project | None:
    """The project the group ``conversation_id`` is bound to (internal or client group), or None; the sender's roles
    in it, the client flag and ``user_id``'s last project are kept for the lookups that follow."""
    rows = (await session.exec(_SCOPE, params={"conversation_id": conversation_id, "user_id": user_id})).all()  # type: ignore[call-overload]
    project: Project | None = rows[0][0] if rows else None
    if project is not None:
        rows = [row for row in rows if row[0] is project]  # a group is bound to one project; keep the first
    client = bool(rows[0][2]) if rows else False
    last = rows[0][3] if rows else None
    known_user = rows[0][4] is not None if rows else False
    cache: dict[Any, Any] = session.info.setdefault(_KEY, {})
    cache[("client", conversation_id)] = client
    if user_id:
        cache[("last", user_id)] = (known_user, last)
        if project is not None:
            cache[("roles", project.id, user_id)] = {row[1] for row in rows if row[1] is not None}
    return project


def _take(session: AsyncSession, key: tuple[Any, ...]) -> tuple[bool, Any]:
    cache = session.info.get(_KEY)
    if not cache or key not in cache:
        return False, None
    return True, cache.pop(key)


def taken_member_roles(session: AsyncSession, project_id: int, user_id: str) -> tuple[bool, Any]:
    """``(True, roles)`` if ``load_message_scope`` read them in this transaction (once), else ``(False, None)``."""
    return _take(session, ("roles", project_id, user_id))


def taken_client_conversation(session: AsyncSession, conversation_id: str) -> tuple[bool, Any]:
    return _take(session, ("client", conversation_id))


def known_last_project(session: AsyncSession, user_id: str) -> tuple[bool, bool, int | None]:
    """``(True, user row exists, last project id)`` if ``load_message_scope`` read ``user_id``'s row in this session,
    else ``(False, False, None)``. Not taken: a read-only command's answer is written in another session, which asks
    this one first."""
    cache = session.info.get(_KEY)
    if not cache or ("last", user_id) not in cache:
        return False, False, None
    exists, last = cache[("last", user_id)]
    return True, exists, last


def forget_last_project(session: AsyncSession, user_id: str) -> None:
    cache = session.info.get(_KEY)
    if cache:
        cache.pop(("last", user_id), None)


__all__ = ["forget_last_project", "known_last_project", "load_message_scope", "taken_client_conversation",
           "taken_member_roles"]
