"""Who may use a command: a small role policy declared with each command and checked by the dispatcher.

Roles are plain Chinese strings because they are shown to users and stored by the storage layer as they are; the
app's role lookup returns the sender's roles in the bound project plus organisation roles from the config
(领导, 项目管理员). Leaders and project administrators may do whatever a project manager may, as the standard
has them approve and archive every project.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

PROJECT_MANAGER = "项目经理"
ENGINEER = "实施工程师"
LEADER = "领导"
PROJECT_ADMIN = "项目管理员"
CLIENT = "客户"

OVERSEERS = (LEADER, PROJECT_ADMIN)  # allowed wherever a specific project role is required


@dataclass(frozen=True, slots=True)
class RolePolicy:
    kind: Literal["anyone", "members", "roles"]
    roles: tuple[str, ...] = ()  # for kind "roles": the roles named in the refusal
    also: tuple[str, ...] = ()  # for kind "roles": roles allowed too, shown in brackets
    # Client contacts may use it (read-only commands): for kind "members" it widens who is allowed, for "anyone" it
    # says the command is part of the client's view (offered in their 帮助, allowed in client groups).
    clients: bool = False

    def allows(self, user_roles: frozenset[str]) -> bool:
        if self.kind == "anyone":
            return True
        if self.kind == "roles":
            return bool(user_roles.intersection(self.roles + self.also))
        team = user_roles - {CLIENT}
        return bool(team) or (self.clients and CLIENT in user_roles)

    def describe(self) -> str:
        """Who is allowed, in words: ``项目经理（或领导、项目管理员）``."""
        if self.kind == "anyone":
            return "所有人"
        if self.kind == "members":
            return "项目组成员和客户联系人（客户只读）" if self.clients else "项目组成员（不含客户）"
        who = "、".join(self.roles)
        return f"{who}（或{'、'.join(self.also)}）" if self.also else who

    def refusal(self, action: str, user_roles: frozenset[str]) -> str:
        """``只有项目经理（或领导、项目管理员）可以推进阶段。你当前的角色：实施工程师``."""
        current = "、".join(sorted(user_roles)) if user_roles else "无（不是本项目成员）"
        return f"只有{self.describe()}可以{action}。你当前的角色：{current}"


ANYONE = RolePolicy("anyone")
EVERYONE = RolePolicy("anyone", clients=True)  # anyone, and offered to client contacts too (项目, 帮助)
MEMBERS = RolePolicy("members")
MEMBERS_AND_CLIENTS = RolePolicy("members", clients=True)  # read-only commands a client contact may use too


def only(*roles: str, also: Iterable[str] = OVERSEERS) -> RolePolicy:
    """Specific roles, e.g. ``only(PROJECT_MANAGER)``; leaders and project administrators are allowed too."""
    if not roles:
        raise ValueError("only() needs at least one role")
    extra = tuple(r for r in also if r not in roles)
    return RolePolicy("roles", roles=tuple(roles), also=extra)
