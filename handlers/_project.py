"""Which project a message is about, and who the sender is in it.

``resolve_project`` is the dispatcher's project resolver (``Dispatcher(resolve_project=…)``; ``bot/app.py`` still
passes ``bot.lookups.resolve_project``, which knows 1 by code only and 2, so names and the 1:1 fallback need this one):

1. ``项目:编号`` names it, by code (``XM-2026-001``, any case) or by an unambiguous name;
2. in a group bound to a project (as its internal or client group), that project;
3. in a 1:1 chat, the project the sender last worked on, else their only open project. Commands then say which
   project they used (``_common.implicit_project_note``).

It reads through the command's unit of work, so what the command sees and changes is one transaction.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from bot.args import clip
from bot.context import Context, current_unit_of_work
from bot.errors import NotFound, PermissionDenied, UserError
from bot.incoming import Incoming
from bot.roles import LEADER, PROJECT_ADMIN, RolePolicy
from storage.models import Project, ProjectStatus
from storage.repo import (
    get_project,
    get_project_by_code,
    last_project_id,
    load_message_scope,
    member_roles,
    projects_of_user,
)

_CODE = re.compile(r"^XM-?(\d{4})-?(\d{1,6})$", re.IGNORECASE)
_OPEN_STATUSES = tuple(s for s in ProjectStatus if s != ProjectStatus.CLOSED)
MAX_LISTED = 5


def _session() -> Any:
    work = current_unit_of_work()
    if work is None:
        raise RuntimeError("project resolution outside a unit of work")
    return work.session


def canonical_code(text: str) -> str | None:
    """``xm-2026-1`` / ``XM20260001`` -> ``XM-2026-001`` style; None when it does not look like a code."""
    match = _CODE.match(text.strip())
    if match is None:
        return None
    return f"XM-{match.group(1)}-{int(match.group(2)):03d}"


async def find_project(session: Any, text: str) -> Project | None:
    """A project by code, or by a name that only one project has (exactly, else as a part of its name).

    Raises ``UserError`` listing the candidates when a name fits several projects.
    """
    wanted = text.strip()
    if not wanted:
        return None
    code = canonical_code(wanted)
    if code is not None:
        return await get_project_by_code(session=session, code=code) or await get_project_by_code(
            session=session, code=wanted
        )
    exact = list((await session.exec(select(Project).where(Project.name == wanted).order_by(Project.id))).all())
    if len(exact) == 1:
        return exact[0]
    candidates = exact or list(
        (
            await session.exec(
                select(Project)
                .where(func.lower(Project.name).contains(wanted.lower(), autoescape=True))  # type: ignore[attr-defined]
                .order_by(Project.id)
                .limit(MAX_LISTED + 1)
            )
        ).all()
    )
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        listed = "、".join(f"{p.code}「{clip(p.name, 20)}」" for p in candidates[:MAX_LISTED])
        more = " 等" if len(candidates) > MAX_LISTED else ""
        raise UserError(f"「{clip(wanted)}」对应多个项目：{listed}{more}。请用项目编号指定，例如 项目:{candidates[0].code}")
    return None


async def resolve_project(incoming: Incoming, code: str | None) -> Project | None:
    session = _session()
    if code:
        return await find_project(session, code)
    if incoming.is_group:
        if not incoming.conversation_id:
            return None
        # One statement: the project, and the sender's roles, the client flag and last project the dispatcher and
        # the command ask for next.
        return await load_message_scope(session=session, conversation_id=incoming.conversation_id,
                                        user_id=incoming.sender_key)
    if not incoming.sender_id:
        return None
    last = await last_project_id(session=session, user_id=incoming.sender_id)
    if last is not None:
        project = await get_project(session=session, project_id=last)
        if project is not None:
            return project
    mine = await projects_of_user(session=session, user_id=incoming.sender_id, statuses=_OPEN_STATUSES)
    return mine[0] if len(mine) == 1 else None


async def roles_in(ctx: Context, project: Project | None) -> frozenset[str]:
    """The sender's roles in ``project`` plus organisation roles, as the dispatcher computes them, for commands
    that name their project positionally (``项目 XM-2026-001``, ``绑定 XM-2026-001 内部群``)."""
    user_id = ctx.incoming.sender_key
    roles: set[str] = set()
    organization = ctx.config.organization
    if user_id and user_id in organization.leaders:
        roles.add(LEADER)
    if user_id and user_id in organization.project_admins:
        roles.add(PROJECT_ADMIN)
    if project is not None and user_id:
        roles.update(str(r) for r in await member_roles(session=ctx.session, project_id=project.id, user_id=user_id))
    return frozenset(roles)


async def project_named(ctx: Context, text: str | None, policy: RolePolicy, action: str) -> tuple[Project, frozenset[str]]:
    """The project a positional code names (else the command's default project), checked against ``policy``."""
    if text:
        project = await find_project(ctx.session, text)
        if project is None:
            raise NotFound(f"未找到项目「{clip(text)}」，请检查项目编号。发送「我的项目」查看你参与的项目。")
        roles = await roles_in(ctx, project)
    else:
        project, roles = ctx.project, ctx.roles
        if project is None:
            raise UserError(
                f"请指定项目编号，例如：{ctx.command.examples[0]}。发送「我的项目」查看你参与的项目。"
            )
    if not policy.allows(roles):
        raise PermissionDenied(policy.refusal(action, roles))
    return project, roles


__all__ = ["canonical_code", "find_project", "project_named", "resolve_project", "roles_in"]
