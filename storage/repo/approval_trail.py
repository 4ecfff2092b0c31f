"""Approval queries beyond ``storage.repo.approvals``: a project's approvals, the running one of a kind, what the
reconciler polls, and the register entry an approval decides."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Approval, ApprovalKind, ApprovalStatus, RegisterEntry, RegisterKind

# RegisterEntry.extra key naming the approval instance that decides a 变更 entry (a 项目变更申请 or a 项目进度变更单).
ENTRY_APPROVAL_KEY = "审批编号"


async def project_approvals(*, session: AsyncSession, project_id: int) -> list[Approval]:
    """A project's approvals, oldest first: their position is the number users type (``审批 2``)."""
    query = select(Approval).where(Approval.project_id == project_id).order_by(Approval.id)
    return list((await session.exec(query)).all())


async def running_approval(
    *, session: AsyncSession, project_id: int, kind: ApprovalKind, entry_id: int | None = None
) -> Approval | None:
    """The approval of ``kind`` still waiting for a decision in the project (of ``entry_id``'s entry, when given)."""
    query = (
        select(Approval)
        .where(Approval.project_id == project_id, Approval.kind == kind, Approval.status == ApprovalStatus.RUNNING)
        .order_by(Approval.id)
    )
    rows = list((await session.exec(query)).all())
    if entry_id is None:
        return rows[0] if rows else None
    for approval in rows:
        entry = await approval_entry(session=session, approval=approval)
        if entry is not None and entry.id == entry_id:
            return approval
    return None


async def approvals_to_reconcile(*, session: AsyncSession, quiet_since: datetime, limit: int = 50) -> list[Approval]:
    """Running approvals nobody heard of since ``quiet_since`` (naive UTC), longest quiet first.

    ``updated_at`` moves with every event applied and every poll that found the instance still running, so each
    running approval is polled at most once per quiet period, however long its approvers take.
    """
    query = (
        select(Approval)
        .where(Approval.status == ApprovalStatus.RUNNING, Approval.updated_at <= quiet_since)
        .order_by(Approval.updated_at, Approval.id)
        .limit(limit)
    )
    return list((await session.exec(query)).all())


async def touch_approval(*, session: AsyncSession, approval_id: int, now: datetime) -> None:
    """Note that the approval was heard of (an event or a poll) at ``now``."""
    await session.exec(
        update(Approval).where(Approval.id == approval_id).values(updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def approval_entry(*, session: AsyncSession, approval: Approval) -> RegisterEntry | None:
    """The 变更 entry ``approval`` decides (linked through ``extra["审批编号"]``), if any.

    A project has few change entries, so they are filtered here rather than by a JSON query, which would differ per
    backend.
    """
    if approval.project_id is None:
        return None
    query = select(RegisterEntry).where(
        RegisterEntry.project_id == approval.project_id, RegisterEntry.kind == RegisterKind.CHANGE
    ).order_by(RegisterEntry.seq.desc())  # type: ignore[attr-defined]
    for entry in (await session.exec(query)).all():
        if (entry.extra or {}).get(ENTRY_APPROVAL_KEY) == approval.process_instance_id:
            return entry
    return None


__all__ = [
    "ENTRY_APPROVAL_KEY",
    "approval_entry",
    "approvals_to_reconcile",
    "project_approvals",
    "running_approval",
    "touch_approval",
]
