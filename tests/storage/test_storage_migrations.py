"""The migrations produce exactly the models' schema, on every backend; plus structural rules of the models."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Enum, MetaData, String, Text, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.util import await_only
from sqlmodel.sql.sqltypes import UTCDateTime as SqlModelAwareDateTime

from storage import migrations
from storage.db import Database, create_engine
from storage.migrations import (
    SchemaError,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
    upgrade_sync,
)
from storage.models import MYSQL_TABLE_OPTIONS, metadata

POSTGRES_IDENTIFIER_MAX = 63


def _diff(connection: Connection, target: MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, target))


async def test_models_and_migrations_agree(db: Database) -> None:
    async with db.engine.connect() as connection:
        differences = await connection.run_sync(_diff, metadata)
        # The comparison is not vacuous: it sees the tables, and it sees a changed column type.
        against_nothing = await connection.run_sync(_diff, MetaData())
        altered = MetaData()
        for table in metadata.tables.values():
            table.to_metadata(altered)
        altered.tables["users"].c["name"].type = String(7)
        type_change = await connection.run_sync(_diff, altered)
    assert differences == []
    assert {diff[1].name for diff in against_nothing if diff[0] == "remove_table"} == set(metadata.tables)
    assert [(d[0][0], d[0][2], d[0][3]) for d in type_change] == [("modify_type", "users", "name")]


async def test_ensure_schema_on_a_current_database_does_nothing(database_url: str) -> None:
    assert await ensure_schema(database_url) is False
    assert await current_revision(database_url) == head_revision()


async def test_fresh_sqlite_database_up_down_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'fresh.db'}"
    assert await ensure_schema(url) is True
    assert await current_revision(url) == head_revision()
    await downgrade(url, "base")
    assert await _table_names(url) == {"alembic_version"}
    await upgrade(url)
    assert await _table_names(url) == set(metadata.tables) | {"alembic_version"}


async def test_replicas_starting_together_migrate_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    async with asyncio.timeout(30):
        ran = await asyncio.gather(*(ensure_schema(url) for _ in range(3)))
    assert sorted(ran) == [False, False, True]
    assert await current_revision(url) == head_revision()


async def test_a_migration_slower_than_the_busy_timeout_fails_no_replica(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What heavy load once caused: the first migration outlasted SQLite's busy timeout and a waiting replica failed
    with "database is locked". Here every migration takes 0.4 s against a 50 ms busy timeout."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'slow.db'}"
    monkeypatch.setattr(migrations, "create_engine", functools.partial(create_engine, sqlite_busy_timeout_ms=50))
    run_command = migrations._run_command

    def slow_run_command(connection: Connection, *args: Any) -> None:
        await_only(asyncio.sleep(0.4))  # inside the BEGIN IMMEDIATE transaction, without blocking the loop
        run_command(connection, *args)

    monkeypatch.setattr(migrations, "_run_command", slow_run_command)
    async with asyncio.timeout(30):
        ran = await asyncio.gather(*(ensure_schema(url) for _ in range(3)))
    assert sorted(ran) == [False, False, True]
    assert await current_revision(url) == head_revision()


async def test_refuses_tables_made_without_migrations(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'create_all.db'}"
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    await engine.dispose()
    with pytest.raises(SchemaError):
        await ensure_schema(url)


async def test_refuses_a_database_migrated_by_a_newer_release(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'newer.db'}"
    await upgrade(url)
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    await engine.dispose()
    with pytest.raises(SchemaError, match="ffff_from_the_future"):
        await ensure_schema(url)


def test_sync_upgrade_for_the_cli(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgrade_sync(url)
    assert asyncio.run(current_revision(url)) == head_revision()


async def test_sync_upgrade_refuses_to_run_inside_an_event_loop(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="await upgrade"):
        upgrade_sync(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")


def test_every_string_column_has_a_length_and_no_native_enums() -> None:
    for table in metadata.tables.values():
        for column in table.columns:
            where = f"{table.name}.{column.name}"
            impl = getattr(column.type, "impl", column.type)  # through TypeDecorators
            assert not isinstance(column.type, Enum), f"{where}: native enum"
            assert not isinstance(column.type, SqlModelAwareDateTime), f"{where}: aware datetime"
            if isinstance(impl, String) and not isinstance(impl, Text):
                assert impl.length, f"{where}: VARCHAR without a length (MySQL cannot index it)"


def test_names_fit_every_backend_and_tables_use_binary_utf8mb4_on_mysql() -> None:
    for table in metadata.tables.values():
        assert dict(table.kwargs) == MYSQL_TABLE_OPTIONS, table.name
        names = [constraint.name for constraint in table.constraints] + [index.name for index in table.indexes]
        for name in names:
            assert name and len(str(name)) <= POSTGRES_IDENTIFIER_MAX, f"{table.name}: constraint name {name!r}"


async def _table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
