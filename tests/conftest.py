"""Database fixtures shared by all tests.

``db`` runs a test on every configured backend: SQLite (a temp file, always) plus the PostgreSQL and MySQL/MariaDB
databases named in ``DINGPM_TEST_DATABASE_URLS`` (comma-separated async SQLAlchemy URLs; backends not listed are
skipped with a note saying how to enable them). Each backend's schema is built once per run **by the migrations**
(never ``create_all``), and every test starts from empty tables. ``sqlite_db`` is the SQLite-only variant for tests
that are about behaviour, not about the database.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, inspect, text
from sqlalchemy.engine import make_url

from storage.db import Database, create_engine, url_family
from storage.migrations import upgrade
from storage.models import metadata

DATABASE_URLS_ENV = "DINGPM_TEST_DATABASE_URLS"
_EXAMPLE_URLS = {
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:5432/dingpm_test",
    "mysql": "mysql+asyncmy://root@127.0.0.1:3306/dingpm_test?charset=utf8mb4",
}
BACKENDS = ("sqlite", "postgresql", "mysql")
_BACKEND_NAMES = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB"}
# The fixtures wipe our tables in these databases: only accept names that say they are disposable.
_DISPOSABLE_NAME = re.compile(r"test|ci", re.IGNORECASE)


def configured_database_urls() -> dict[str, str]:
    """Server database URLs from the environment, by backend family."""
    urls: dict[str, str] = {}
    for raw in os.environ.get(DATABASE_URLS_ENV, "").split(","):
        url = raw.strip()
        if not url:
            continue
        family = url_family(url)
        if family not in ("postgresql", "mysql"):
            raise pytest.UsageError(f"{DATABASE_URLS_ENV}: unsupported database URL {url!r}")
        database = make_url(url).database or ""
        if not _DISPOSABLE_NAME.search(database):
            raise pytest.UsageError(
                f"{DATABASE_URLS_ENV}: refusing to use database {database!r}: the tests delete its contents; "
                "use a database whose name contains 'test' or 'ci'"
            )
        urls[family] = url
    return urls


def _skip_reason(backend: str) -> str:
    return (
        f"{_BACKEND_NAMES[backend]} not configured: set {DATABASE_URLS_ENV}={_EXAMPLE_URLS[backend]} "
        "(comma-separate URLs for several backends)"
    )


async def _rebuild_schema(url: str) -> None:
    """Drop whatever an earlier run left (our tables only), then migrate from scratch."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            existing = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            for table in reversed(metadata.sorted_tables):
                if table.name in existing:
                    await connection.run_sync(lambda sync, t=table: t.drop(sync))
            if "alembic_version" in existing:
                await connection.execute(text("DROP TABLE alembic_version"))
    finally:
        await engine.dispose()
    await upgrade(url)


async def _empty_all_tables(database: Database) -> None:
    # DELETE, not TRUNCATE: on a few rows it is much faster on PostgreSQL and MySQL, and it respects foreign keys
    # when tables go children first.
    async with database.write() as session:
        for table in reversed(metadata.sorted_tables):
            await session.exec(delete(table))


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a migrated database of one backend (session-wide; ``db`` empties it before each test)."""
    backend: str = request.param
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'dingpm.db'}"
    else:
        configured = configured_database_urls().get(backend)
        if configured is None:
            pytest.skip(_skip_reason(backend))
        url = configured
    # A sync session fixture runs outside any event loop, so it may run its own.
    asyncio.run(_rebuild_schema(url))
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A ready ``Database`` on empty, migrated tables; parametrized over every available backend."""
    database = Database(database_url)
    try:
        await _empty_all_tables(database)
        yield database
    finally:
        await database.close()


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite_only') / 'dingpm.db'}"
    asyncio.run(upgrade(url))
    return url


@pytest.fixture
async def sqlite_db(sqlite_database_url: str) -> AsyncIterator[Database]:
    """Like ``db`` but SQLite only: for tests of behaviour that does not depend on the backend."""
    database = Database(sqlite_database_url)
    try:
        await _empty_all_tables(database)
        yield database
    finally:
        await database.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests that run on every backend carry the "databases" marker, so CI can select them with -m databases.
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.databases)
