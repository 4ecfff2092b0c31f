"""Submitting a version of a deliverable, shared by 提交 (deliverables), 验收 and 复盘 (closing) and the file intake.

A version is a file (stored under its versioned path with sha256 and size), a link, or a note; earlier versions
stay. Because DingTalk sends a file as a message of its own, a command may take the user's latest pending file in
the chat, or leave a waiting row so that the next file they send completes it (``storage.models.intake``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.changes import change_context, record_change
from domain.file_store import (
    PENDING_FILE_TTL,
    WAITING_TTL,
    StagedFile,
    files_root,
    human_size,
    place_file,
    version_path,
    write_generated,
)
from domain.matching import named_in_file
from domain.ports import CommandScope
from storage.models import (
    Deliverable,
    DeliverableStatus,
    DeliverableVersion,
    PendingFile,
    PendingKind,
    Phase,
    Project,
)
from storage.repo import (
    add_deliverable_version,
    add_pending,
    cancel_waiting,
    list_deliverables,
    write_audit,
)
from storage.templates import DeliverableFlag


def staged_from(row: PendingFile) -> StagedFile:
    return StagedFile(row.file_path or "", row.file_name or "file", row.size or 0, row.sha256 or "")


def names_another(deliverables: Sequence[Deliverable], file_name: str, expected: Deliverable) -> Deliverable | None:
    """The deliverable a file's name names when it is not ``expected`` (None when it names ``expected`` too, or
    none at all)."""
    named = named_in_file(deliverables, file_name)
    return named[0] if named and expected not in named else None


async def remember_file(ctx: CommandScope, staged: StagedFile, project: Project | None) -> PendingFile | None:
    """Keep a received file for a later 「提交 <交付物>」; None if this message was taken in before."""
    incoming = ctx.incoming
    now = ctx.clock.now()
    return await add_pending(session=ctx.session, row=PendingFile(
        kind=PendingKind.FILE, conversation_id=incoming.conversation_id, user_id=incoming.sender_id,
        project_id=project.id if project else None, message_id=incoming.message_id, file_name=staged.name,
        file_path=staged.relative_path, sha256=staged.sha256, size=staged.size, created_at=now,
        expires_at=now + PENDING_FILE_TTL,
    ))


async def wait_for_file(ctx: CommandScope, kind: PendingKind, project: Project, deliverable: Deliverable | None,
                        note: str | None = None) -> str:
    """Let the next file this user sends in this chat complete the command (replacing an older wait); returns when
    the wait ends, as the answer shows it (``10:30 前``)."""
    incoming = ctx.incoming
    now = ctx.clock.now()
    await cancel_waiting(session=ctx.session, conversation_id=incoming.conversation_id,
                         user_id=incoming.sender_id, now=now)
    row = await add_pending(session=ctx.session, row=PendingFile(
        kind=kind, conversation_id=incoming.conversation_id, user_id=incoming.sender_id, project_id=project.id,
        deliverable_id=deliverable.id if deliverable else None, note=note, created_at=now,
        expires_at=now + WAITING_TTL,
    ))
    assert row is not None  # a command row has no message id: nothing to collide with
    return until_text(ctx, row.expires_at)


def until_text(ctx: CommandScope, expires_at: datetime) -> str:
    """``10:30 前`` in the configured time zone (with the date when it is not today)."""
    local = expires_at.replace(tzinfo=UTC).astimezone(ctx.config.tz)
    day = "" if local.date() == ctx.today() else f"{local.month}月{local.day}日 "
    return f"{day}{local:%H:%M} 前"


async def end_waits(ctx: CommandScope, *, deliverable: Deliverable | None = None) -> list[PendingFile]:
    """End the waits a command answers: for ``deliverable``, everyone's (it was submitted or waived); without it,
    the sender's own in this chat (any new 提交 answers or replaces them)."""
    now = ctx.clock.now()
    if deliverable is not None:
        return await cancel_waiting(session=ctx.session, deliverable_id=deliverable.id, now=now)
    incoming = ctx.incoming
    return await cancel_waiting(session=ctx.session, conversation_id=incoming.conversation_id,
                                user_id=incoming.sender_id, now=now)


async def phase_name(session: AsyncSession, deliverable: Deliverable) -> str:
    phase = await session.get(Phase, deliverable.phase_id) if deliverable.phase_id else None
    return phase.name if phase is not None else ""


async def submit_deliverable(
    ctx: CommandScope,
    project: Project,
    deliverable: Deliverable,
    *,
    staged: StagedFile | None = None,
    link: str | None = None,
    note: str | None = None,
) -> DeliverableVersion:
    """Store the next version, mark the deliverable 已提交, audit and announce it."""
    session = ctx.session
    now = ctx.clock.now()
    version = await add_deliverable_version(
        session=session, deliverable_id=deliverable.id, submitted_by=ctx.incoming.sender_id,
        sha256=staged.sha256 if staged else None, size=staged.size if staged else None,
        original_name=staged.name if staged else None, link=link, note=note, now=now,
    )
    if staged is not None:
        relative = version_path(project.code, await phase_name(session, deliverable), deliverable.name,
                                version.version, staged.name)
        await place_file(ctx, staged.relative_path, relative)
        version.file_path = relative
        session.add(version)
    await end_waits(ctx, deliverable=deliverable)
    before = {"status": str(deliverable.status), "version": version.version - 1}
    mark_submitted(session, deliverable, now)
    await session.flush()
    what = f"《{staged.name}》（{human_size(staged.size)}）" if staged else (f"链接 {link}" if link else "说明")
    await record_change(
        session, project, action="deliverable.submit",
        summary=f"提交了《{deliverable.name}》第 {version.version} 版：{what}",
        key=f"deliverable-submitted:{project.code}:{deliverable.id}:v{version.version}",
        entity="deliverable", entity_id=deliverable.id, before=before,
        after={"status": str(DeliverableStatus.SUBMITTED), "version": version.version, "file": version.file_path,
               "sha256": version.sha256, "size": version.size, "link": link},
        **change_context(ctx),
    )
    return version


def mark_submitted(session: AsyncSession, deliverable: Deliverable, now: datetime) -> None:
    deliverable.status = DeliverableStatus.SUBMITTED
    deliverable.submitted_at = now
    deliverable.waiver_reason = None
    deliverable.waived_by = None
    session.add(deliverable)


def mark_waived(session: AsyncSession, deliverable: Deliverable, reason: str, by: str | None) -> None:
    deliverable.status = DeliverableStatus.WAIVED
    deliverable.waiver_reason = reason[:500]
    deliverable.waived_by = by
    session.add(deliverable)


async def file_generated(
    session: AsyncSession,
    *,
    files_dir: Path | str | None,
    project: Project,
    deliverable: Deliverable,
    submitted_by: str | None,
    now: datetime,
    data: bytes | None = None,
    file_name: str | None = None,
    stored_path: str | None = None,
    link: str | None = None,
    note: str | None = None,
) -> DeliverableVersion:
    """A document the bot produced (the approved 立项申请表, a 周报, the 交接清单 …) as the deliverable's next version,
    marking it 已提交: ``data`` is written under the version's path, or ``stored_path`` (already under files_dir)
    is referred to as it is. Audited, not announced: what produced it was announced already."""
    version = await add_deliverable_version(
        session=session, deliverable_id=deliverable.id, submitted_by=submitted_by or "", link=link, note=note,
        original_name=file_name, now=now,
    )
    if data is not None and file_name and files_dir is not None:
        version.file_path = version_path(project.code, await phase_name(session, deliverable), deliverable.name,
                                         version.version, file_name)
        version.sha256 = await write_generated(Path(files_dir), version.file_path, data)
        version.size = len(data)
    elif stored_path is not None:
        version.file_path = stored_path
    session.add(version)
    await cancel_waiting(session=session, deliverable_id=deliverable.id, now=now)
    before = {"status": str(deliverable.status), "version": version.version - 1}
    mark_submitted(session, deliverable, now)
    await write_audit(session=session, action="deliverable.generated", actor_user_id=submitted_by,
                      project_id=project.id, entity="deliverable", entity_id=deliverable.id, at=now, before=before,
                      after={"status": str(deliverable.status), "version": version.version,
                             "file": version.file_path, "link": link})
    return version


async def file_made_document(ctx: CommandScope, project: Project, form: Deliverable | None, data: bytes, file_name: str,
                             note: str) -> str:
    """A document a command made (the 交接清单, an 升级通知单) as the next version of ``form``, unless the client
    must sign that form (then only the signed one counts); returns what to add to the answer."""
    if form is None or form.has_flag(DeliverableFlag.CLIENT_SIGNATURE):
        return ""
    version = await file_generated(ctx.session, files_dir=files_root(ctx), project=project, deliverable=form,
                                   submitted_by=ctx.incoming.sender_id or None, now=ctx.clock.now(), data=data,
                                   file_name=file_name, note=note)
    return f"已作为《{form.name}》第 {version.version} 版提交。"


async def flagged_deliverable(session: AsyncSession, project: Project, flag: str) -> Deliverable | None:
    """The project's deliverable carrying the template ``flag`` (the 周报, the 进度变更单 …) unless it was waived."""
    return next((d for d in await list_deliverables(session=session, project_id=project.id)
                 if d.has_flag(flag) and d.status != DeliverableStatus.WAIVED), None)


def submitted_text(deliverable: Deliverable, version: DeliverableVersion) -> str:
    if version.file_path:
        what = f"文件《{version.original_name}》，{human_size(version.size)}，SHA-256 {(version.sha256 or '')[:12]}…"
    elif version.link:
        what = f"链接 {version.link}"
    else:
        what = "文字说明"
    earlier = f"，之前的 {version.version - 1} 个版本仍保留" if version.version > 1 else ""
    return f"已提交《{deliverable.name}》第 {version.version} 版（{what}）{earlier}。"


__all__ = [
    "end_waits",
    "file_generated",
    "file_made_document",
    "flagged_deliverable",
    "mark_submitted",
    "mark_waived",
    "names_another",
    "phase_name",
    "remember_file",
    "staged_from",
    "submit_deliverable",
    "submitted_text",
    "until_text",
    "wait_for_file",
]
