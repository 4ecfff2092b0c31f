"""The message scope: one statement answers the group's project, the sender's roles, the client flag and the sender's
last project, on every backend; each cached answer serves the lookup after it once, later ones ask the database."""

from __future__ import annotations

from sqlalchemy import event

from storage.db import Database
from storage.models import MemberRole
from storage.repo import (
    add_member,
    create_project,
    load_message_scope,
    member_roles,
    remember_project,
    upsert_user,
)
from storage.repo.directory import is_client_conversation, note_external_members


class _Statements:
    def __init__(self, db: Database) -> None:
        self.count = 0
        self._engine = db.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: object) -> None:
        statement = str(args[2])
        if not statement.startswith(("BEGIN", "SAVEPOINT", "RELEASE")):
            self.count += 1

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


async def _world(db: Database) -> tuple[int, int]:
    async with db.write() as session:
        internal = await create_project(session=session, name="内部群项目", template="软件", year=2026,
                                        internal_conversation_id="cid-internal", client_conversation_id="cid-client")
        other = await create_project(session=session, name="另一个项目", template="软件", year=2026)
        await upsert_user(session=session, user_id="pm1", name="王经理")
        for role in (MemberRole.PM, MemberRole.ENGINEER):
            await add_member(session=session, project_id=internal.id, user_id="pm1", role=role)
        await remember_project(session=session, user_id="pm1", name="王经理", project_id=other.id)
        return internal.id, other.id


async def test_one_statement_answers_project_roles_client_flag_and_last_project(db: Database) -> None:
    project_id, other_id = await _world(db)
    statements = _Statements(db)
    try:
        async with db.write() as session:
            project = await load_message_scope(session=session, conversation_id="cid-internal", user_id="pm1")
            assert project is not None and project.id == project_id
            assert await member_roles(session=session, project_id=project_id, user_id="pm1") == {
                MemberRole.PM, MemberRole.ENGINEER}
            assert await is_client_conversation(session=session, conversation_id="cid-internal") is False
            assert statements.count == 1
            # Taken once: a second ask reads the database again (the command may have changed the members).
            assert await member_roles(session=session, project_id=project_id, user_id="pm1") == {
                MemberRole.PM, MemberRole.ENGINEER}
            assert statements.count == 2
            # The last project differs: remembering writes it (and the scope's answer is not trusted afterwards).
            await remember_project(session=session, user_id="pm1", name="王经理", project_id=project_id)
            written = statements.count
            await remember_project(session=session, user_id="pm1", name="王经理", project_id=project_id)
            assert statements.count == written + 1  # read from the database: the same project, no write
    finally:
        statements.close()
    async with db.write() as session:
        statements = _Statements(db)
        try:
            await load_message_scope(session=session, conversation_id="cid-internal", user_id="pm1")
            await remember_project(session=session, user_id="pm1", name="王经理", project_id=project_id)
            assert statements.count == 1  # the usual case: the scope already shows the same last project
        finally:
            statements.close()
    assert other_id != project_id


async def test_client_group_unbound_group_and_stranger(db: Database) -> None:
    project_id, _ = await _world(db)
    async with db.write() as session:
        project = await load_message_scope(session=session, conversation_id="cid-client", user_id="someone")
        assert project is not None and project.id == project_id
        assert await member_roles(session=session, project_id=project_id, user_id="someone") == set()
        assert await is_client_conversation(session=session, conversation_id="cid-client") is True
    async with db.write() as session:
        await note_external_members(session=session, conversation_id="cid-mixed")
    async with db.write() as session:
        assert await load_message_scope(session=session, conversation_id="cid-mixed", user_id="pm1") is None
        assert await is_client_conversation(session=session, conversation_id="cid-mixed") is True
        assert await load_message_scope(session=session, conversation_id="cid-nowhere", user_id="nobody") is None
        assert await is_client_conversation(session=session, conversation_id="cid-nowhere") is False
