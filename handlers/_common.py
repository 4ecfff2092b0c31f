"""What every lifecycle command shares: showing dates and people, the state guards, and recording a change
(audit row + announcement in the project's internal group, in the command's transaction)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import date
from typing import Any

from sqlmodel import select

from bot.args import clip
from bot.context import Context
from bot.errors import Conflict
from bot.incoming import Incoming
from bot.outbox import enqueue, group_target
from bot.replies import Markdown, Reply
from bot.roles import CLIENT
from handlers.report_data import (
    PROGRESS_RECURRENCES,
    counts_toward_progress,
    overdue_working_days,
    progress_percent,
)
from reports.user_text import md_literal
from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    Deliverable,
    DeliverableStatus,
    Project,
    ProjectStatus,
    utcnow,
)
from storage.repo import remember_project, user_names, write_audit

WEEKDAYS = "一二三四五六日"
# A phase gate counts exactly what the progress figure counts (one definition, in report_data).
GATED_RECURRENCES = PROGRESS_RECURRENCES
STATUS_ICONS = {DeliverableStatus.PENDING: "⬜", DeliverableStatus.SUBMITTED: "✅", DeliverableStatus.WAIVED: "➖"}
NOBODY = "未指定"


# ---- showing things -------------------------------------------------------------------------------------------


def fmt_day(day: date | None, today: date | None = None) -> str:
    """``10月9日(周五)``; the year only when it is not this year's; ``按需`` for a per-event document."""
    if day is None:
        return "按需"
    text = f"{day.month}月{day.day}日" if today is None or day.year == today.year else f"{day.year}年{day.month}月{day.day}日"
    return f"{text}(周{WEEKDAYS[day.weekday()]})"


def calendar_caveat(calendar: Any, first: date | None, last: date | None) -> str:
    """The one sentence a plan or reply adds when its dates reach into a year whose official holiday schedule is not
    known yet (storage/workdays.py, rule 4): those dates count the statutory holidays, but no 调休 workday."""
    if first is None or last is None:
        return ""
    years = calendar.estimated_years(first, last)
    if not years:
        return ""
    listed = "、".join(f"{year} 年" for year in years)
    return (f"注意：{listed}的官方放假安排尚未导入，其中的日期按法定节日推算、未计调休上班日；"
            "安排公布后请管理员用 dingpm calendar import 导入，再核对计划。")


def project_label(project: Project) -> str:
    return f"{project.code}「{project.name}」"


async def names_of(session: Any, user_ids: Iterable[str | None]) -> dict[str, str]:
    """Display names by user id; an id never seen shows as itself."""
    ids = {uid for uid in user_ids if uid}
    known = await user_names(session=session, user_ids=ids)
    return {uid: known.get(uid, uid) for uid in ids}


def who(names: dict[str, str], user_id: str | None) -> str:
    return names.get(user_id or "", user_id or NOBODY) if user_id else NOBODY


gate_progress_percent = progress_percent  # the overview and the weekly report must show the same figure


def overdue_days(deliverable: Deliverable, today: date, calendar: Any) -> int:
    """Working days a pending deliverable is late (0 if not late, submitted, waived or without a date), counted as
    the weekly report and the reminders count them."""
    if deliverable.status != DeliverableStatus.PENDING:
        return 0
    return overdue_working_days(calendar, deliverable.due_date, today)


# ---- guards ---------------------------------------------------------------------------------------------------


def ensure_not_closed(project: Project) -> None:
    if project.status == ProjectStatus.CLOSED:
        raise Conflict(f"项目 {project_label(project)} 已归档关闭，不能再修改。发送「项目 {project.code}」查看概况。")


def ensure_running(project: Project, doing: str) -> None:
    """The project's clock runs (已立项 or 进行中): not a draft, not paused, not finished."""
    ensure_not_closed(project)
    if project.status == ProjectStatus.PAUSED:
        raise Conflict(f"项目 {project_label(project)} 已暂停，请先发送「恢复」再{doing}。")
    if project.status in (ProjectStatus.DRAFT, ProjectStatus.REJECTED):
        raise Conflict(f"项目 {project_label(project)} 尚未立项，请项目经理先发送「立项」，再{doing}。")
    if project.status == ProjectStatus.PENDING_APPROVAL:
        raise Conflict(f"项目 {project_label(project)}的立项正在审批中，审批通过后才能{doing}。")
    if project.status not in ACTIVE_PROJECT_STATUSES:
        raise Conflict(f"项目 {project_label(project)} 当前状态为「{project.status}」，不能{doing}。")


async def lock_project(session: Any, project_id: int) -> Project:
    """The project re-read for update: concurrent commands on one project change it one after the other
    (row lock on PostgreSQL/MySQL; SQLite's write transaction already excludes other writers).

    ``key_share=True`` is PostgreSQL's FOR NO KEY UPDATE: it still serializes commands on the project but does not
    conflict with the key-share locks that inserting rows referencing the project (audit, registers) takes."""
    query = (select(Project).where(Project.id == project_id).with_for_update(key_share=True)
             .execution_options(populate_existing=True))
    return (await session.exec(query)).one()


# ---- recording a change ---------------------------------------------------------------------------------------


async def record_change(
    session: Any,
    project: Project,
    *,
    actor: str | None,
    action: str,
    summary: str,
    key: str,
    entity: str | None = None,
    entity_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    origin_conversation: str | None = None,
    actor_name: str | None = None,
) -> None:
    """Audit the change and announce it in the project's internal group (one outbox row, business key ``key``).

    A command sent in the internal group itself is not announced again: its answer there already says it.
    Approval callbacks and jobs pass no ``origin_conversation``, so their changes are always announced.
    """
    await write_audit(
        session=session, action=action, actor_user_id=actor, project_id=project.id, entity=entity,
        entity_id=entity_id, before=before, after=after, at=utcnow(),
    )
    group = project.internal_conversation_id
    if group and group != origin_conversation:
        by = f"{actor_name or actor}：" if (actor_name or actor) else ""
        # The summary is prose that quotes users (names, titles, reasons): all of it is shown literally.
        text = f"#### 【{project.code}】{md_literal(clip(project.name, 40))}\n\n{md_literal(by + summary)}"
        await enqueue(session, key[:255], group_target(group), Markdown(f"【{project.code}】{clip(summary, 40)}", text))


def change_context(ctx: Context) -> dict[str, Any]:
    """The ``record_change`` arguments that come from the message."""
    return {
        "actor": ctx.incoming.sender_id or None,
        "actor_name": ctx.incoming.sender_nick or None,
        "origin_conversation": ctx.incoming.conversation_id,
    }


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
    "GATED_RECURRENCES",
    "calendar_caveat",
    "NOBODY",
    "STATUS_ICONS",
    "change_context",
    "client_view",
    "counts_toward_progress",
    "ensure_not_closed",
    "ensure_running",
    "fmt_day",
    "implicit_project_note",
    "lock_project",
    "names_of",
    "overdue_days",
    "gate_progress_percent",
    "project_command",
    "remember_sender_project",
    "project_label",
    "record_change",
    "who",
]
