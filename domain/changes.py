"""Changing a project: the lock every change takes first, the state guards, and recording the change (audit row +
announcement in the project's internal group, in the caller's transaction)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.outbox import enqueue, group_target
from domain.errors import Conflict
from domain.labels import project_label
from domain.ports import CommandScope
from domain.replies import Markdown
from reports.user_text import clip, md_literal
from storage.models import ACTIVE_PROJECT_STATUSES, Project, ProjectStatus, utcnow
from storage.repo import write_audit


def ensure_not_closed(project: Project) -> None:
    if project.status == ProjectStatus.CLOSED:
        raise Conflict(f"项目 {project_label(project)}已归档关闭，不能再修改。发送「项目 {project.code}」查看概况。")


def ensure_running(project: Project, doing: str) -> None:
    """The project's clock runs (已立项 or 进行中): not a draft, not paused, not finished."""
    ensure_not_closed(project)
    if project.status == ProjectStatus.PAUSED:
        raise Conflict(f"项目 {project_label(project)}已暂停，请先发送「恢复」再{doing}。")
    if project.status in (ProjectStatus.DRAFT, ProjectStatus.REJECTED):
        raise Conflict(f"项目 {project_label(project)}尚未立项，请项目经理先发送「立项」，再{doing}。")
    if project.status == ProjectStatus.PENDING_APPROVAL:
        raise Conflict(f"项目 {project_label(project)}的立项正在审批中，审批通过后才能{doing}。")
    if project.status not in ACTIVE_PROJECT_STATUSES:
        raise Conflict(f"项目 {project_label(project)}当前状态为「{project.status}」，不能{doing}。")


async def lock_project(session: AsyncSession, project_id: int) -> Project:
    """The project re-read for update: concurrent commands on one project change it one after the other
    (row lock on PostgreSQL/MySQL; SQLite's write transaction already excludes other writers).

    ``key_share=True`` is PostgreSQL's FOR NO KEY UPDATE: it still serializes commands on the project but does not
    conflict with the key-share locks that inserting rows referencing the project (audit, registers) takes."""
    if session.get_bind().dialect.name == "sqlite":
        # The write transaction already excludes every other writer, so the project this transaction read is
        # current: taken from the session's identity map, without a statement (read once if it is not there).
        project = await session.get(Project, project_id)
        if project is None:
            raise LookupError(f"project {project_id} not found")
        return project
    query = (select(Project).where(Project.id == project_id).with_for_update(key_share=True)
             .execution_options(populate_existing=True))
    return (await session.exec(query)).one()


async def record_change(
    session: AsyncSession,
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


def change_context(ctx: CommandScope) -> dict[str, Any]:
    """The ``record_change`` arguments that come from the message."""
    return {
        "actor": ctx.incoming.sender_id or None,
        "actor_name": ctx.incoming.sender_nick or None,
        "origin_conversation": ctx.incoming.conversation_id,
    }
