"""The error classification the retry helpers rely on, checked against each backend's real errors."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import MemberRole, Project, ProjectMember
from storage.repo._sql import is_unique_violation


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
