"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB.

Why custom types instead of the SQLModel defaults:

- SQLModel maps ``datetime`` to a timezone-aware type; we store **naive UTC** everywhere (one convention that all three
  databases handle identically) and MySQL's plain ``DATETIME`` would silently drop microseconds.
- SQLModel maps ``Enum`` to ``sa.Enum`` (a native ENUM type on PostgreSQL/MySQL); we store enum values as short
  VARCHARs so that adding a value needs no migration.
- JSON is kept as text: MariaDB's ``JSON`` is a ``LONGTEXT`` alias that reflects differently from what SQLAlchemy
  declares, and we never query inside the documents.
- MySQL ``TEXT`` stops at 64 KiB, so long text becomes ``MEDIUMTEXT`` there.

Migrations must not import these (old revisions must not change when this module does): they spell the plain
SQLAlchemy equivalent, and the model/migration comparison test proves the two agree.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import DateTime, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

_MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})


def utcnow() -> datetime:
    """The current time as a naive UTC datetime: the only form stored in the database."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(value: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken to be UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


class UtcDateTime(TypeDecorator[datetime]):
    """Naive UTC timestamp with microseconds on every backend.

    Accepts aware datetimes too (converted to UTC) so that a caller passing ``datetime.now(tz)`` cannot store local
    time by mistake; values read back are always naive UTC.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL_DIALECTS:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return super().load_dialect_impl(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else to_naive_utc(value)


class LongText(TypeDecorator[str]):
    """Unbounded text: ``TEXT`` on SQLite/PostgreSQL, ``MEDIUMTEXT`` (16 MiB) on MySQL/MariaDB."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL_DIALECTS:
            return dialect.type_descriptor(mysql.MEDIUMTEXT())
        # Not dialect.type_descriptor(Text()): asyncpg adapts Text to its String subclass, which renders VARCHAR.
        return super().load_dialect_impl(dialect)


class JsonText(LongText):
    """A JSON document stored as text (UTF-8, Chinese kept readable rather than ``\\uXXXX`` escaped).

    Like any plain column, in-place mutation of a loaded dict is not detected: assign a new value to change it.
    """

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:  # type: ignore[override]
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:  # type: ignore[override]
        return None if value is None else json.loads(value)


class EnumString(TypeDecorator[Any]):
    """A ``StrEnum`` stored by value in a short VARCHAR (no native ENUM, no CHECK: new values need no migration).

    Writing an unknown value fails loudly. Reading one (written by a newer release during a rolling upgrade) returns
    the plain string rather than crashing the whole query.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[Enum], length: int) -> None:
        longest = max(len(str(member.value)) for member in enum_class)  # type: ignore[var-annotated]
        if longest > length:
            raise ValueError(f"{enum_class.__name__} has a value longer than {length}")
        super().__init__(length)
        self.enum_class = enum_class
        self.length = length

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return str(self.enum_class(value).value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        try:
            return self.enum_class(value)
        except ValueError:
            return value

    def __repr__(self) -> str:
        return f"EnumString({self.enum_class.__name__}, {self.length})"
