"""Alembic environment for dingpm: async engines, our own MetaData, SQLite batch mode.

Three ways in: ``storage.migrations.upgrade()`` hands us a live connection (``config.attributes["connection"]``);
``python -m storage.migrations <alembic command>`` gives only a URL, so we open our own async engine; offline mode
(``--sql``) renders SQL for a URL without connecting.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection
from sqlmodel.sql.sqltypes import AutoString

from storage.db import DEFAULT_DATABASE_URL, create_engine
from storage.models import metadata
from storage.models.types import EnumString, LongText, UtcDateTime

config = context.config


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render our column types as plain SQLAlchemy types, so revisions never import application code."""
    if type_ != "type":
        return False
    if isinstance(obj, UtcDateTime):
        autogen_context.imports.add("from sqlalchemy.dialects import mysql")
        return 'sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")'
    if isinstance(obj, LongText):  # JsonText too
        autogen_context.imports.add("from sqlalchemy.dialects import mysql")
        return 'sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")'
    if isinstance(obj, (EnumString, AutoString)):
        return f"sa.String(length={obj.impl.length})"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=metadata,
        compare_type=True,
        render_item=render_item,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=True,
        **kwargs,
    )


def run_with_connection(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine(url: str) -> None:
    engine = create_engine(url, sqlite_foreign_keys=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_with_connection)
    finally:
        await engine.dispose()


def main() -> None:
    url = config.get_main_option("sqlalchemy.url") or DEFAULT_DATABASE_URL
    if context.is_offline_mode():
        _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with_connection(connection)
    else:
        asyncio.run(run_with_own_engine(url))


main()
