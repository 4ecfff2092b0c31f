"""The dispatcher's database lookups: the bound project, the sender's roles, a person typed in a command.

They read through the current unit of work's session, so what a command sees and what it changes belong to the same
transaction. Organisation roles (领导, 项目管理员) come from the config, project roles from the members table.
"""

from __future__ import annotations

from typing import Any

from bot.config import Config
from bot.context import current_unit_of_work
from bot.incoming import Incoming
from bot.roles import LEADER, PROJECT_ADMIN
from bot.people import find_person
from storage.repo import get_project_by_code, load_message_scope, member_roles


def _session() -> Any:
    work = current_unit_of_work()
    if work is None:
        raise RuntimeError("a dispatcher lookup outside a unit of work")
    return work.session


async def resolve_project(incoming: Incoming, code: str | None) -> Any:
    """The project named by ``项目:编号``, else the one the group is bound to (a 1:1 chat has none)."""
    session = _session()
    if code:
        return await get_project_by_code(session=session, code=code)
    if incoming.is_group and incoming.conversation_id:
        return await load_message_scope(session=session, conversation_id=incoming.conversation_id,
                                        user_id=incoming.sender_key)
    return None


def role_lookup(config: Config):  # -> RoleLookup
    leaders = frozenset(config.organization.leaders)
    admins = frozenset(config.organization.project_admins)

    async def roles_of(user_id: str, project: Any) -> frozenset[str]:
        roles: set[str] = set()
        if user_id in leaders:
            roles.add(LEADER)
        if user_id in admins:
            roles.add(PROJECT_ADMIN)
        if project is not None and getattr(project, "id", None) is not None and user_id:
            roles.update(str(role) for role in await member_roles(session=_session(), project_id=project.id,
                                                                   user_id=user_id))
        return frozenset(roles)

    return roles_of


# A person typed in a command: looked up in the directory (bot.people).
find_user = find_person
