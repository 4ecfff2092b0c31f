"""What the chat features share beyond the domain services: the deliverable status icons, the client view, and the
project a command works on (remembering it, saying which one was picked)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import date
from typing import Any

from bot.context import Context
from bot.incoming import Incoming
from bot.roles import CLIENT
from domain.labels import project_label
from domain.replies import Markdown, Reply
from domain.report_data import counts_toward_progress, overdue_working_days, progress_percent
from reports.user_text import md_literal
from storage.models import Deliverable, DeliverableStatus, Project
from storage.repo import remember_project

STATUS_ICONS = {DeliverableStatus.PENDING: "⬜", DeliverableStatus.SUBMITTED: "✅", DeliverableStatus.WAIVED: "➖"}


# ---- showing things -------------------------------------------------------------------------------------------


gate_progress_percent = progress_percent  # the overview and the weekly report must show the same figure


def overdue_days(deliverable: Deliverable, today: date, calendar: Any) -> int:
    """Working days a pending deliverable is late (0 if not late, submitted, waived or without a date), counted as
    the weekly report and the reminders count them."""
    if deliverable.status != DeliverableStatus.PENDING:
        return 0
    return overdue_working_days(calendar, deliverable.due_date, today)


# ---- the project a command works on ---------------------------------------------------------------------------


def client_view(ctx: Context, roles: frozenset[str] | None = None) -> bool:
    """Answer as to the client: in a client conversation (whoever asks), or to someone who is only a client contact.
    ``roles``: the sender's roles in the project the answer is about, when it is not ``ctx.project``."""
    roles = ctx.roles if roles is None else roles
    return ctx.client_conversation or (CLIENT in roles and not roles - {CLIENT})


def implicit_project_note(ctx: Context) -> str:
    """In a 1:1 chat a command without 项目:编号 works on the user's last project: say which one."""
    if ctx.project is None or ctx.incoming.is_group or ctx.args.get("项目"):
        return ""
    return f"（未指定项目，使用你最近操作的项目 {project_label(ctx.project)}；可加 项目:编号 指定其他项目）"


async def remember_sender_project(ctx: Context, project: Project) -> None:
    """The sender's last project (what a 1:1 command without a code applies to), written with the command's
    writes, or after a read-only command."""
    user_id, name, project_id = ctx.incoming.sender_id, ctx.incoming.sender_nick, project.id
    if user_id:
        await ctx.work.write_after(lambda session: remember_project(
            session=session, user_id=user_id, name=name, project_id=project_id))


ProjectHandler = Callable[[Incoming, Context], Awaitable["Reply | str | None"]]


def project_command(handler: ProjectHandler) -> ProjectHandler:
    """For commands declared with ``needs_project=True``: remember the project as the sender's last one, and
    prefix the answer with the note when the project was picked implicitly."""

    @functools.wraps(handler)
    async def wrapper(incoming: Incoming, ctx: Context) -> Reply | str | None:
        project = ctx.project
        result = await handler(incoming, ctx)
        # After the handler, not before: writing users.last_project_id takes a key-share lock on the project row
        # (foreign key), and taken before the handler's lock_project it made two commands on one project deadlock.
        if project is not None:
            await remember_sender_project(ctx, project)
        note = implicit_project_note(ctx)
        if not note:
            return result
        if isinstance(result, str):
            return f"{note}\n{result}"
        if isinstance(result, Markdown):
            return replace(result, text=f"{md_literal(note)}\n\n{result.text}")
        return result

    return wrapper


__all__ = [
    "STATUS_ICONS",
    "client_view",
    "counts_toward_progress",
    "implicit_project_note",
    "overdue_days",
    "gate_progress_percent",
    "project_command",
    "remember_sender_project",
]
