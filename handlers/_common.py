"""What the chat features share beyond the domain services: the deliverable status icons, the client view, and the
project a command works on (remembering it, saying which one was picked)."""

from __future__ import annotations

from datetime import date

from bot.context import Context
from bot.roles import CLIENT
from domain.labels import project_label
from domain.report_data import (
    counts_toward_progress,
    overdue_working_days,
    progress_percent,
)
from storage.models import Deliverable, DeliverableStatus, Project
from storage.repo import known_last_project, remember_project
from storage.workdays import WorkCalendar

STATUS_ICONS = {DeliverableStatus.PENDING: "⬜", DeliverableStatus.SUBMITTED: "✅", DeliverableStatus.WAIVED: "➖"}


# ---- showing things -------------------------------------------------------------------------------------------


gate_progress_percent = progress_percent  # the overview and the weekly report must show the same figure


def overdue_days(deliverable: Deliverable, today: date, calendar: WorkCalendar) -> int:
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
    if user_id and known_last_project(ctx.session, user_id) != (True, True, project_id):
        await ctx.work.write_after(lambda session: remember_project(
            session=session, user_id=user_id, name=name, project_id=project_id))


__all__ = [
    "STATUS_ICONS",
    "client_view",
    "counts_toward_progress",
    "implicit_project_note",
    "overdue_days",
    "gate_progress_percent",
    "remember_sender_project",
]
