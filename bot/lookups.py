"""The dispatcher's lookups: the sender's roles, a person typed in a command.

They read through the current unit of work's session, so what a command sees and what it changes belong to the same
transaction. Organisation roles (领导, 项目管理员) come from the config, project roles from the members table. Which
project a message is about is the project middleware's business (``handlers._project``).
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Config
from bot.context import RoleLookup, current_unit_of_work
from bot.people import find_person
from bot.roles import LEADER, PROJECT_ADMIN
from storage.models import Project
from storage.repo import member_roles


def _session() -> AsyncSession:
    work = current_unit_of_work()
    if work is None:
        raise RuntimeError("a dispatcher lookup outside a unit of work")
    return work.session


def role_lookup(config: Config) -> RoleLookup:
    leaders = frozenset(config.organization.leaders)
    admins = frozenset(config.organization.project_admins)

    async def roles_of(user_id: str, project: Project | None) -> frozenset[str]:
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
