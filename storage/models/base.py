"""The declarative base every dingpm table model inherits from.

Our tables live in their own ``MetaData`` (not the global ``SQLModel.metadata``) so that nothing else imported into
the process can leak tables into our migrations, and so that constraints get deterministic names from a naming
convention: Alembic can then drop or alter them by name on every backend, and SQLite batch migrations can find them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from storage.models.types import UtcDateTime, utcnow

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Max lengths used across tables, so that the same kind of value gets the same width everywhere.
USER_ID_LEN = 64  # DingTalk staffId / userId
NAME_LEN = 128
CONVERSATION_ID_LEN = 128  # openConversationId, e.g. "cid6KeBBLoveMJOGXoYKF5x7EeiodoA=="
PATH_LEN = 512
URL_LEN = 1024
TITLE_LEN = 255
KEY_LEN = 255  # idempotency keys; 255 * 4 bytes stays under InnoDB's 3072-byte index limit
MESSAGE_ID_LEN = 128  # Stream frame messageId, bot msgId
SHORT_LEN = 32
ENUM_LEN = 16

# MySQL/MariaDB: full UTF-8, and a binary collation so that strings compare exactly as on PostgreSQL and SQLite.
# The usual *_ci collations would make DingTalk ids that differ only in case ("cidAb==" vs "cidab==") collide in
# unique keys, and make lookups match ids they should not.
MYSQL_TABLE_OPTIONS: dict[str, str] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def table_args(*items: Any) -> tuple[Any, ...]:
    """``__table_args__`` with our MySQL table options appended."""
    return (*items, MYSQL_TABLE_OPTIONS)


_registry = registry(metadata=MetaData(naming_convention=NAMING_CONVENTION))


class TableBase(SQLModel, registry=_registry):
    """Base for table models: ``class Project(TableBase, table=True)``."""


metadata: MetaData = TableBase.metadata


def utc_field(*, nullable: bool = True, **kwargs: Any) -> Any:
    """A naive-UTC timestamp column (``None`` by default)."""
    return Field(default=None, sa_type=UtcDateTime(), nullable=nullable, **kwargs)


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime(), nullable=False)


def updated_at_field() -> Any:
    # onupdate fires on ORM flushes and Core UPDATEs built from the table, so a row never keeps a stale stamp.
    return Field(
        default_factory=utcnow, sa_type=UtcDateTime(), nullable=False, sa_column_kwargs={"onupdate": utcnow}
    )


__all__ = [
    "MYSQL_TABLE_OPTIONS",
    "NAMING_CONVENTION",
    "TableBase",
    "created_at_field",
    "metadata",
    "table_args",
    "updated_at_field",
    "utc_field",
    "utcnow",
]
