"""Approvals: lookups, and applying each final state exactly once."""

from __future__ import annotations

from sqlalchemy import or_, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Approval, ApprovalStatus


async def get_approval_by_instance(*, session: AsyncSession, process_instance_id: str) -> Approval | None:
    return (await session.exec(select(Approval).where(Approval.process_instance_id == process_instance_id))).first()


async def running_approvals(*, session: AsyncSession, limit: int = 200) -> list[Approval]:
    """Approvals still waiting for a decision, oldest first (what the reconciler polls DingTalk about)."""
    query = select(Approval).where(Approval.status == ApprovalStatus.RUNNING).order_by(Approval.id).limit(limit)
    return list((await session.exec(query)).all())


async def mark_approval_applied(*, session: AsyncSession, approval_id: int, event_key: str) -> bool:
    """Compare-and-set ``applied_event``: True for the one caller that must now apply the effects of ``event_key``
    (e.g. "COMPLETED:agree"), False if they were applied already (a duplicate callback or the reconciler).

    Call it in the same transaction that applies the effects, so a failure un-marks it too.
    """
    result = await session.exec(
        update(Approval)
        .where(
            Approval.id == approval_id,
            or_(Approval.applied_event.is_(None), Approval.applied_event != event_key),  # type: ignore[union-attr]
        )
        .values(applied_event=event_key)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


__all__ = ["get_approval_by_instance", "mark_approval_applied", "running_approvals"]
