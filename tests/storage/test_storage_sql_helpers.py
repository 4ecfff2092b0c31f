"""The dialect-aware helpers: the error classification the retry helpers rely on, checked against each backend's
real errors, and the insert that ignores duplicates."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy.engine.default import CacheStats
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage.db import Database
from storage.models import InboxMessage, MemberRole, Project, ProjectMember
from storage.repo._sql import insert_ignoring_duplicates, is_unique_violation


async def test_unique_violation_is_recognised_and_other_integrity_errors_are_not(db: Database) -> None:
    async with db.write() as session:
        session.add(Project(code="XM-2026-001", name="甲", template="软件实施"))
    with pytest.raises(IntegrityError) as duplicate:
        async with db.write() as session:
            session.add(Project(code="XM-2026-001", name="乙", template="软件实施"))
    with pytest.raises(IntegrityError) as missing_parent:
        async with db.write() as session:
            session.add(ProjectMember(project_id=424242, user_id="u1", role=MemberRole.PM))
    assert is_unique_violation(duplicate.value)
    assert not is_unique_violation(missing_parent.value)


async def test_insert_ignoring_duplicates_skips_a_taken_key_and_is_compiled_once(db: Database) -> None:
    """A duplicate gives None and leaves the transaction usable; the statement comes from SQLAlchemy's compiled
    cache after its first use (the dialects' ON CONFLICT inserts are otherwise compiled on every execution)."""
    compiled_fresh: list[str] = []

    def note_cache(_conn: object, _cursor: object, statement: str, _params: object, context: object,
                   _many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO INBOX"):
            compiled_fresh.append(str(getattr(context, "cache_hit")))

    event.listen(db.engine.sync_engine, "before_cursor_execute", note_cache)
    try:
        async with db.write() as session:
            first = await insert_ignoring_duplicates(session, InboxMessage(message_id="m-1", payload="{}"))
            again = await insert_ignoring_duplicates(session, InboxMessage(message_id="m-1", payload="{}"))
            second = await insert_ignoring_duplicates(session, InboxMessage(message_id="m-2", payload="{}"))
        async with db.read() as session:
            stored = (await session.exec(select(InboxMessage.message_id).order_by(InboxMessage.id))).all()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note_cache)
    assert first is not None and again is None and second is not None and second != first
    assert stored == ["m-1", "m-2"]
    assert compiled_fresh[-1] == str(CacheStats.CACHE_HIT), compiled_fresh
