"""Status cards and report acknowledgements (``storage.models.cards``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditLog, ReportAck, StatusCard
from storage.repo._sql import insert_ignoring_duplicates
from storage.repo.directory import load_checkpoint, save_checkpoint


async def record_status_card_pinned(*, session: AsyncSession, out_track_id: str, pinned: bool) -> None:
    statement = update(StatusCard).where(col(StatusCard.out_track_id) == out_track_id).values(pinned=pinned)
    await session.exec(statement)  # type: ignore[call-overload]


async def status_cards(*, session: AsyncSession, project_ids: Sequence[int] | None = None,
                       lock: bool = False) -> list[StatusCard]:
    query = select(StatusCard).order_by(col(StatusCard.project_id))
    if project_ids is not None:
        query = query.where(col(StatusCard.project_id).in_(list(project_ids)))
    if lock:
        query = query.with_for_update()
    return list((await session.exec(query)).all())


async def status_card_by_track(*, session: AsyncSession, out_track_id: str) -> StatusCard | None:
    query = select(StatusCard).where(StatusCard.out_track_id == out_track_id)
    return (await session.exec(query)).first()


async def insert_status_card(*, session: AsyncSession, card: StatusCard) -> bool:
    """False: another process created the project's card meanwhile."""
    return await insert_ignoring_duplicates(session, card) is not None


async def last_audit_id(*, session: AsyncSession) -> int:
    return int((await session.exec(select(func.max(AuditLog.id)))).one() or 0)


async def projects_changed_since(*, session: AsyncSession, audit_id: int) -> dict[int, int]:
    """Project id -> its newest audit row, for the projects audited after row ``audit_id`` (a primary-key range)."""
    query = (select(AuditLog.project_id, func.max(AuditLog.id)).where(col(AuditLog.id) > audit_id)
             .where(col(AuditLog.project_id).is_not(None)).group_by(col(AuditLog.project_id)))
    return {int(project_id): int(newest) for project_id, newest in (await session.exec(query)).all()}


async def take_audited_projects(*, session: AsyncSession, checkpoint: str) -> dict[int, int]:
    """The projects audited since the named checkpoint was last taken (project id -> newest audit row), moving the
    checkpoint past them in this transaction: each refresher sees every change once. Empty when nothing is new."""
    state = await load_checkpoint(session=session, name=checkpoint) or {}
    seen = int(state.get("audit_id") or 0)
    newest = await last_audit_id(session=session)
    if newest <= seen:
        return {}
    changed = await projects_changed_since(session=session, audit_id=seen)
    await save_checkpoint(session=session, name=checkpoint, state={"audit_id": newest})
    return changed


async def record_report_ack(*, session: AsyncSession, ack: ReportAck) -> bool:
    """False: this person had already answered on this report (the first answer stands)."""
    return await insert_ignoring_duplicates(session, ack) is not None


async def report_acks(*, session: AsyncSession, project_id: int, week: str) -> list[ReportAck]:
    query = (select(ReportAck).where(ReportAck.project_id == project_id, ReportAck.week == week)
             .order_by(col(ReportAck.at), col(ReportAck.id)))
    return list((await session.exec(query)).all())
