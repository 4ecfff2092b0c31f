"""SQLAlchemy's aiosqlite dialect with one thread hop per statement instead of three or four.

aiosqlite runs every sqlite3 call in its own thread and hands the result back to the event loop. SQLAlchemy's adapter
makes one such call each to open a cursor, execute, fetch the rows and close the cursor: four round trips between
the loop and the thread for what SQLite itself does in microseconds. Each round trip waits for the loop to come
around, so on a busy loop a statement costs a millisecond, and SQLite, which has one writer, holds its write lock
for all of it: the lock time per command, not SQLite, limited our throughput. This dialect runs the whole statement
(cursor, execute, fetch, close) in one call on aiosqlite's thread.

It relies on two names aiosqlite keeps internal (``Connection._execute`` and ``Connection._conn``), the same ones
SQLAlchemy's own adapter uses; ``tests/storage`` runs everything through it, so an upgrade that changes them fails
there. Engines for ``sqlite+aiosqlite`` URLs use it (``storage.db.create_engine``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    SQLiteDialect_aiosqlite,
)

DRIVER_NAME = "sqlite+dingpm_aiosqlite"

# Execution option: run this statement on the event loop's thread, without the hop to aiosqlite's thread, when its
# connection is inside a transaction. Only for the per-message point statements (by primary or unique key: tens of
# microseconds in SQLite): inside a transaction they never wait for a lock (a write transaction holds SQLite's write
# lock from its BEGIN IMMEDIATE; WAL readers wait for nobody), and the hop costs more than the statement (a future, a
# queue, a wake-up of the loop through its self-pipe, and the GIL handed back and forth) while the write lock is held.
# BEGIN and COMMIT, which may wait for the lock or a checkpoint's I/O, and every other statement keep the hop.
INLINE = "dingpm_inline"
_inline_sql: set[str] = set()
_DEFERRED_BEGIN = "BEGIN"  # a read transaction's start takes no lock (the first read takes a WAL snapshot): inline too


def note_inline_statement(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                          executemany: bool) -> None:
    """``before_cursor_execute`` hook: remember the SQL text of statements executed with ``INLINE``."""
    if context is not None and context.execution_options.get(INLINE):
        _inline_sql.add(statement)


def _run_statement(connection: Any, operation: str, parameters: Any) -> tuple[Any, list[Any] | None, int, int]:
    """On aiosqlite's thread: the statement from cursor to close, as SQLAlchemy's cursor wants the outcome."""
    cursor = connection.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, cursor.fetchall(), -1, -1
        return None, None, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        connection = self._connection
        try:
            if (operation in _inline_sql and connection._conn.in_transaction) or operation == _DEFERRED_BEGIN:
                description, rows, lastrowid, rowcount = _run_statement(connection._conn, operation, parameters)
            else:
                description, rows, lastrowid, rowcount = self.await_(
                    connection._execute(_run_statement, connection._conn, operation, parameters))
        except Exception as error:
            self._adapt_connection._handle_exception(error)  # raises the dialect's DBAPI error
        self.description = description
        self.lastrowid, self.rowcount = lastrowid, rowcount
        if rows is not None:
            self._rows = deque(rows)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        return super().cursor(server_side) if server_side else OneHopCursor(self)


class OneHopSQLiteDialect(SQLiteDialect_aiosqlite):
    supports_statement_cache = True

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        connection = super().connect(*cargs, **cparams)
        if type(connection) is AsyncAdapt_aiosqlite_connection:
            connection.__class__ = OneHopConnection  # same slots; only the cursor it makes differs
        return connection


registry.register(DRIVER_NAME.replace("+", "."), __name__, "OneHopSQLiteDialect")
