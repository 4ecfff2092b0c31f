"""Engine and session behaviour: SQLite pragmas and write locking, server connection settings, transactions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select

from storage.db import DEFAULT_DATABASE_URL, Database, create_engine, url_family
from storage.models import MemberRole, ProjectMember, User


async def _scalar(db: Database, sql: str) -> object:
    async with db.read() as session:
        return (await session.exec(text(sql))).scalar()


async def test_connection_settings_per_backend(db: Database) -> None:
    if db.family == "sqlite":
        assert await _scalar(db, "PRAGMA journal_mode") == "wal"
        assert await _scalar(db, "PRAGMA foreign_keys") == 1
        assert int(await _scalar(db, "PRAGMA busy_timeout")) > 0
    elif db.family == "postgresql":
        assert await _scalar(db, "SHOW server_encoding") == "UTF8"
    else:
        assert await _scalar(db, "SELECT @@character_set_connection") == "utf8mb4"
        assert str(await _scalar(db, "SELECT @@tx_isolation")).upper().replace("_", "-") == "READ-COMMITTED"


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            session.add(ProjectMember(project_id=987654, user_id="u1", role=MemberRole.PM))


async def test_write_block_commits_or_rolls_back(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.write() as session:
            session.add(User(user_id="rolled-back", name="甲"))
            await session.flush()
            raise Boom
    async with db.write() as session:
        session.add(User(user_id="kept", name="乙"))
    async with db.read() as session:
        assert [u.user_id for u in (await session.exec(select(User))).all()] == ["kept"]


async def test_sqlite_write_transaction_takes_the_write_lock_up_front(sqlite_db: Database) -> None:
    impatient = Database(sqlite_db.url, sqlite_busy_timeout_ms=0)
    try:
        async with sqlite_db.write() as session:
            await session.exec(select(User))  # only a read so far, but BEGIN IMMEDIATE already holds the lock
            with pytest.raises(OperationalError, match="locked"):
                async with impatient.write() as other:
                    await other.exec(select(User))
        async with sqlite_db.read() as session:
            await session.exec(select(User))  # a read transaction does not keep writers out
            async with impatient.write() as other:
                other.add(User(user_id="writer", name="丙"))
    finally:
        await impatient.close()


async def test_sqlite_parent_directory_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    engine = create_engine(DEFAULT_DATABASE_URL)
    try:
        assert (tmp_path / "data").is_dir()
    finally:
        await engine.dispose()


def test_url_family_and_repr_hides_password() -> None:
    assert url_family("sqlite+aiosqlite:///x.db") == "sqlite"
    assert url_family("postgresql+asyncpg://u:p@h/db") == "postgresql"
    assert url_family("mysql+asyncmy://u:p@h/db") == url_family("mariadb+asyncmy://u:p@h/db") == "mysql"
    database = Database("postgresql+asyncpg://dingpm:s3cret@db.example/dingpm")
    assert "s3cret" not in repr(database)
