"""Schema migrations (Alembic), usable without an ``alembic.ini``.

The Alembic ``Config`` is built in code with ``script_location`` pointing into this package, so migrations work from
an installed wheel as well as from the repository. The public API:

- ``await upgrade(url)`` / ``upgrade_sync(url)`` (for the CLI): migrate to ``head`` (or a given revision);
- ``await ensure_schema(url)``: what the bot calls at start; upgrades an empty or outdated database, does nothing
  when it is current;
- ``alembic_config(url)``: for any other Alembic command (``python -m storage.migrations`` wraps Alembic's CLI).

Upgrades take a database-wide lock (PostgreSQL advisory lock, MySQL ``GET_LOCK``, on SQLite an exclusive lock on a
``<database>.migration-lock`` file next to it) so that several replicas starting together migrate once and the others
wait, then find nothing to do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: SQLite migrations then rely on SQLite's own locking alone
    fcntl = None  # type: ignore[assignment]

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import create_engine, url_family, write_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent

# Arbitrary constant identifying "dingpm schema migration" among advisory locks (PostgreSQL) / named locks (MySQL).
_PG_LOCK_KEY = 0x64696E67  # "ding"
_MYSQL_LOCK_NAME = "dingpm_schema_migration"
_MYSQL_LOCK_TIMEOUT_S = 300
_SQLITE_LOCK_TIMEOUT_S = 300  # as long as MySQL's: a slow migration on a loaded machine must not fail the others


class SchemaError(RuntimeError):
    """The database holds a schema this code must not touch: made without our migrations, or by a newer release."""


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal % (URL-encoded passwords) must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current_revision)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    await _migrate(url, "upgrade", revision)


async def downgrade(url: str, revision: str) -> None:
    await _migrate(url, "downgrade", revision)


def upgrade_sync(url: str, revision: str = "head") -> None:
    """``upgrade`` for synchronous callers (the CLI); must not be called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(upgrade(url, revision))
        return
    raise RuntimeError("upgrade_sync() was called inside an event loop: await upgrade() instead")


async def ensure_schema(url: str) -> bool:
    """Bring the database to the latest schema; returns True if a migration ran (in this call)."""
    head = await asyncio.to_thread(head_revision)
    async with _sqlite_migration_lock(url):
        # Read the version under the lock: a replica that waited for another one's migration finds nothing to do.
        current = await current_revision(url)
        if current == head:
            return False
        if current is not None and not await asyncio.to_thread(_is_known_revision, current):
            # An older release started on a database a newer one already migrated: refuse rather than corrupt it.
            raise SchemaError(f"数据库的结构版本 {current} 比本程序新（本程序最高 {head}），请升级 dingpm")
        await _migrate(url, "upgrade", "head", locked=True)
    return True


def _is_known_revision(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises several types for unknown or malformed ids
        return False


async def _migrate(url: str, direction: str, revision: str, *, locked: bool = False) -> None:
    if not locked:
        async with _sqlite_migration_lock(url):
            await _migrate(url, direction, revision, locked=True)
        return
    config = alembic_config(url)
    # Foreign keys off on SQLite while migrating: batch operations copy and drop tables, which must not cascade.
    engine = create_engine(url, sqlite_foreign_keys=False)
    family = url_family(url)
    try:
        with _quiet_mysql_primary_key_notes():
            async with write_engine(engine).connect() as connection:
                await _acquire_migration_lock(connection, family)
                try:
                    async with connection.begin():
                        await connection.run_sync(_run_command, config, direction, revision)
                    if family == "sqlite":
                        await _check_sqlite_foreign_keys(connection)
                finally:
                    await _release_migration_lock(connection, family)
    finally:
        await engine.dispose()


@asynccontextmanager
async def _sqlite_migration_lock(url: str) -> AsyncIterator[None]:
    """Serialise migrations of one SQLite file across tasks and processes (a no-op for the other backends).

    Why a file lock and not only SQLite's write lock: replicas starting together each opened connections, switched
    the fresh file to WAL and waited on ``BEGIN IMMEDIATE`` within the 10 s busy timeout. Under heavy load the first
    migration outlasted that timeout, and a waiter failed with "database is locked" (and the WAL switch and first
    read of a fresh file can be refused outright while another connection creates or checkpoints the WAL, without
    the busy handler being consulted). Holding this lock, the waiters touch the database only after the migration
    committed. ``flock`` locks are per open file, so tasks of one process exclude each other as processes do.
    We poll with ``LOCK_NB`` rather than block in a thread, so a cancelled waiter never leaves a thread behind that
    would take the lock later with nobody to release it.
    """
    parsed = make_url(url)
    database = parsed.database or ""
    if (
        fcntl is None
        or url_family(parsed) != "sqlite"
        or database in ("", ":memory:")
        or database.startswith("file:")
    ):
        yield
        return
    lock_path = Path(database).expanduser().with_name(Path(database).name + ".migration-lock")
    await asyncio.to_thread(lock_path.parent.mkdir, parents=True, exist_ok=True)
    fd = await asyncio.to_thread(os.open, lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + _SQLITE_LOCK_TIMEOUT_S
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # non-blocking: fine on the loop
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process holds the schema migration lock {lock_path}") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class _PrimaryKeyNameNote(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "ignored for PRIMARY key" not in record.getMessage()


@contextmanager
def _quiet_mysql_primary_key_notes() -> Iterator[None]:
    """MySQL names every primary key PRIMARY and says so in a note per table, which asyncmy logs as a warning.

    The names come from our naming convention (which PostgreSQL and SQLite honour); the notes are noise.
    """
    logger = logging.getLogger("asyncmy")
    note_filter = _PrimaryKeyNameNote()
    logger.addFilter(note_filter)
    try:
        yield
    finally:
        logger.removeFilter(note_filter)


def _run_command(connection: Connection, config: Config, direction: str, revision: str) -> None:
    if direction == "upgrade":
        _refuse_unmanaged_schema(connection)
    config.attributes["connection"] = connection
    getattr(command, direction)(config, revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _refuse_unmanaged_schema(connection: Connection) -> None:
    """A database that has our tables but no version stamp was made by hand or by create_all: stop, don't guess."""
    if _current_revision(connection) is not None:
        return
    existing = set(inspect(connection).get_table_names())
    if existing & {"projects", "outbox", "inbox"}:
        raise SchemaError(
            "数据库中已有 dingpm 的表，但没有迁移版本记录（alembic_version）：请使用空数据库，"
            "或确认表结构后执行 `python -m storage.migrations stamp head`"
        )


async def _acquire_migration_lock(connection: AsyncConnection, family: str) -> None:
    if family == "postgresql":
        # Session-level lock (not the xact variant): it must survive the migration's own commit.
        await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
        await connection.commit()
    elif family == "mysql":
        got = await connection.scalar(
            text("SELECT GET_LOCK(:name, :timeout)"), {"name": _MYSQL_LOCK_NAME, "timeout": _MYSQL_LOCK_TIMEOUT_S}
        )
        await connection.commit()
        if got != 1:
            raise TimeoutError(f"another process holds the schema migration lock {_MYSQL_LOCK_NAME!r}")
    # SQLite: _sqlite_migration_lock serialises migrations; the migration's BEGIN IMMEDIATE excludes other writers.


async def _release_migration_lock(connection: AsyncConnection, family: str) -> None:
    if connection.in_transaction():
        await connection.rollback()
    if family == "postgresql":
        await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
    elif family == "mysql":
        await connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": _MYSQL_LOCK_NAME})
    await connection.commit()


async def _check_sqlite_foreign_keys(connection: AsyncConnection) -> None:
    result = await connection.exec_driver_sql("PRAGMA foreign_key_check")
    violations: list[Any] = list(result.fetchall())
    await connection.commit()
    if violations:
        raise SchemaError(f"migration left rows violating foreign keys: {violations[:5]}")


__all__ = [
    "MIGRATIONS_DIR",
    "SchemaError",
    "alembic_config",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "upgrade",
    "upgrade_sync",
]
