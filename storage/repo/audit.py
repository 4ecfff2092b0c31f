"""The audit trail: who changed what, written in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditLog, utcnow


async def write_audit(
    *,
    session: AsyncSession,
    action: str,
    actor_user_id: str | None = None,
    project_id: int | None = None,
    entity: str | None = None,
    entity_id: str | int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditLog:
    """Add an audit record to the session (flushed with the caller's other changes, committed with them)."""
    record = AuditLog(
        action=action,
        actor_user_id=actor_user_id,
        project_id=project_id,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
        at=at or utcnow(),
    )
    session.add(record)
    return record


async def list_audit(*, session: AsyncSession, project_id: int, limit: int = 100) -> list[AuditLog]:
    query = (
        select(AuditLog)
        .where(AuditLog.project_id == project_id)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())  # type: ignore[attr-defined,union-attr]
        .limit(limit)
    )
    return list((await session.exec(query)).all())


__all__ = ["list_audit", "write_audit"]
