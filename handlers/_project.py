"""Which project a message is about, and who the sender is in it: the project middleware, one for every command.

``project_middleware`` (registered by ``handlers.projects``' feature) runs around every command:

1. resolve the project: ``项目:编号`` names it, by code (``XM-2026-001``, any case) or by an unambiguous name; in a
   group bound to a project (as its internal or client group), that project; in a 1:1 chat, the project the sender
   last worked on, else their only open project;
2. the sender's roles in it (membership plus organisation roles), which the kernel then checks;
3. for a command declared ``needs_project``: refuse without a project; lock the project row for a writing command
   (concurrent commands on one project then change it one after the other); after the handler, remember it as the
   sender's last project; and, when it was picked implicitly in a 1:1 chat, say which one in the answer.

It reads through the command's unit of work, so what the command sees and changes is one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.context import Context
from bot.dispatcher import Answer
from bot.incoming import Incoming
from bot.roles import LEADER, PROJECT_ADMIN, RolePolicy
from bot.router import PROJECT_PARAM
from domain.changes import lock_project
from domain.errors import NotFound, PermissionDenied, UserError
from domain.replies import Markdown, Text
from handlers._common import implicit_project_note, remember_sender_project
from reports.user_text import clip, md_literal
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


def canonical_code(text: str) -> str | None:
    """``xm-2026-1`` / ``XM20260001`` -> ``XM-2026-001`` style; None when it does not look like a code."""
    match = _CODE.match(text.strip())
    if match is None:
        return None
    return f"XM-{match.group(1)}-{int(match.group(2)):03d}"


async def find_project(session: AsyncSession, text: str) -> Project | None:
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


async def resolve_project(session: AsyncSession, incoming: Incoming, code: str | None) -> Project | None:
    """The project ``incoming`` is about (see the module docstring), or None."""
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
    """The sender's roles in ``project`` plus organisation roles: for the project middleware, and for commands
    that name their project positionally (``项目 XM-2026-001``, ``绑定 XM-2026-001 内部群``)."""
    user_id = ctx.incoming.sender_key
    roles: set[str] = set()
    organization = ctx.config.organization
    if user_id and user_id in organization.leaders:
        roles.add(LEADER)
    if user_id and user_id in organization.project_admins:
        roles.add(PROJECT_ADMIN)
    if project is not None and project.id is not None and user_id:
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


# ---- the middleware ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectContext:
    """What the middleware found: the project, the sender's roles in it, and whether it was picked implicitly (a
    1:1 chat without ``项目:编号``), which the answer then says."""

    project: Project | None
    roles: frozenset[str]
    implicit: bool


async def project_context(incoming: Incoming, ctx: Context) -> ProjectContext:
    """Resolve the message's project and the sender's roles in it; a ``UserError`` when a project command has
    none, or names one that does not exist."""
    command = ctx.command
    code = ctx.args.text(PROJECT_PARAM.name) if command.needs_project else None
    project = await resolve_project(ctx.session, incoming, code)
    if code and project is None:
        raise NotFound(f"未找到项目「{clip(code)}」，请检查项目编号。")
    if command.needs_project and project is None:
        raise UserError(
            f"「{command.name}」需要先指定项目：请在已绑定项目的群里发送，"
            f"或加上项目编号，例如：{command.examples[0]} 项目:编号"
        )
    roles = ctx.roles if project is None else await roles_in(ctx, project)
    return ProjectContext(project, roles, implicit=project is not None and not incoming.is_group and not code)


async def project_middleware(incoming: Incoming, ctx: Context, call_next: Callable[[], Awaitable[Answer]]) -> Answer:
    """Resolve, (for a project command) lock, run, remember, and say which project was picked."""
    found = await project_context(incoming, ctx)
    ctx.project, ctx.roles = found.project, found.roles
    if not ctx.command.needs_project or found.project is None:
        return await call_next()
    # SQLite's write transaction already excludes every other writer, and the row was read in it just now.
    if not ctx.command.reads_only and ctx.command.roles.allows(found.roles) and not _sqlite(ctx.session):
        ctx.project = await lock_project(ctx.session, found.project.id)
    result = await call_next()
    # After the handler, not before: writing users.last_project_id takes a key-share lock on the project row
    # (foreign key); taken before the handler's own locks it made two commands on one project deadlock.
    await remember_sender_project(ctx, found.project)
    note = implicit_project_note(ctx) if found.implicit else ""
    if not note or result is None or isinstance(result, (str, Markdown, Text)):
        return with_note(result, note)
    # A file or an image: the note goes in front of the first text sent before it, else on its own.
    for number, sent in enumerate(ctx.replies):
        if isinstance(sent, (Markdown, Text)):
            ctx.replies[number] = with_note(sent, note)
            return result
    await ctx.reply(Text(note))
    return result


def _sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def with_note(result: Answer, note: str) -> Answer:
    """A text answer with ``note`` in front of it; anything else as it is."""
    if not note:
        return result
    if isinstance(result, str):
        return f"{note}\n{result}"
    if isinstance(result, Text):
        return replace(result, text=f"{note}\n{result.text}")
    if isinstance(result, Markdown):
        return replace(result, text=f"{md_literal(note)}\n\n{result.text}")
    return result


__all__ = ["ProjectContext", "canonical_code", "find_project", "project_context", "project_middleware",
           "project_named", "resolve_project", "roles_in", "with_note"]
