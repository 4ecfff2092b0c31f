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

The statements of a message's short transactions (``INLINE``, below) and every transaction's control
(``OneHopConnection.begin``/``commit``/``rollback``) run on the loop's thread without any hop: with three hops per
transaction and one per statement, the hops cost more CPU than SQLite's work. What could block is kept off the loop:

* ``BEGIN IMMEDIATE`` is first tried without waiting (busy timeout 0 for that one statement). Within a process the
  write gate (``bot.transactions``) already orders the writers, so it only finds the lock taken when another process
  writes; then it goes to aiosqlite's thread and waits there, in the busy handler, as before.
* ``COMMIT`` in WAL mode with ``synchronous=NORMAL`` appends the transaction's pages to the WAL (no fsync). The
  automatic checkpoint, which copies the WAL into the database file and fsyncs both, would run inside that commit;
  it is switched off on every connection (``wal_autocheckpoint=0``) and every ``CHECKPOINT_EVERY`` commits of the
  engine (whichever connection makes it) one commit goes to aiosqlite's thread and checkpoints there (PASSIVE: it
  waits for no reader), which keeps the WAL about as small as SQLite's own default of 1,000 pages would.
* ``ROLLBACK`` discards the transaction's pages; nothing waits.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import deque
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    SQLiteDialect_aiosqlite,
)

DRIVER_NAME = "sqlite+dingpm_aiosqlite"

# Execution option: run the statement on the event loop's thread, without the hop to aiosqlite's thread, when its
# connection is inside a transaction. ``storage.db``'s interactive sessions carry it: a message's short transactions
# (its frame, its command's unit of work, its sent mark). Inside a transaction their statements never wait for a
# lock (a write transaction holds SQLite's write lock from its BEGIN IMMEDIATE; WAL readers wait for nobody), they
# take tens of microseconds in SQLite, and the hop costs more than that (a future, a queue, a wake-up of the loop
# through its self-pipe, the GIL handed back and forth) while, in a write transaction, the write lock stays held.
# Jobs and pages, whose statements may scan, keep the hop; a statement can opt out with ``{INLINE: False}``.
INLINE = "dingpm_inline"
_DEFERRED_BEGIN = "BEGIN"
# A checkpoint every this many commits of an engine, on aiosqlite's thread: our commands write a few pages each, so
# this is near SQLite's default automatic checkpoint (every 1,000 WAL pages), which ``connect`` switches off.
CHECKPOINT_EVERY = 250


def note_inline_statement(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                          executemany: bool) -> None:
    """``before_cursor_execute`` hook: tell our cursor whether this execution runs with ``INLINE``."""
    if isinstance(cursor, OneHopCursor):
        cursor.inline = context is not None and bool(context.execution_options.get(INLINE))


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
    __slots__ = ("inline",)

    def __init__(self, adapt_connection: Any) -> None:
        super().__init__(adapt_connection)
        self.inline = False  # set per execution by ``note_inline_statement``

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        connection = self._connection
        try:
            if self.inline and connection._conn.in_transaction:
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


def _try_begin_immediate(connection: Any) -> bool:
    """On the loop's thread: BEGIN IMMEDIATE if the write lock is free now; False (nothing begun) if it is taken."""
    (busy_timeout_ms,) = connection.execute("PRAGMA busy_timeout").fetchone()
    connection.execute("PRAGMA busy_timeout=0")
    try:
        connection.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError as error:
        # The primary code: SQLITE_BUSY_RECOVERY (another connection recovering the WAL) and the like are busy too.
        if error.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise
        return False
    finally:
        connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")


def _commit_and_checkpoint(connection: Any) -> None:
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        return super().cursor(server_side) if server_side else OneHopCursor(self)

    def next_begin_immediate(self, immediate: bool) -> None:
        """Whether the transaction about to begin writes (``storage.db``'s begin hook says so before ``do_begin``)."""
        self._connection.dingpm_begin_immediate = immediate

    def begin(self) -> None:
        """BEGIN (a read transaction) or BEGIN IMMEDIATE (a write transaction), on the loop's thread unless it has to
        wait for another process's write lock."""
        connection = self._connection._conn
        immediate = getattr(self._connection, "dingpm_begin_immediate", False)
        try:
            if not immediate:
                connection.execute(_DEFERRED_BEGIN)
            elif not _try_begin_immediate(connection):
                self.await_(self._connection._execute(connection.execute, "BEGIN IMMEDIATE"))
        except Exception as error:  # noqa: BLE001 - re-raised as the dialect's DBAPI error
            self._handle_exception(error)

    def commit(self) -> None:
        connection = self._connection._conn
        try:
            # One count per engine, over its pooled connections (per connection, the checkpoints would come
            # once per CHECKPOINT_EVERY commits times the connections in use).
            if next(self._connection.dingpm_commits) % CHECKPOINT_EVERY == 0:
                self.await_(self._connection._execute(_commit_and_checkpoint, connection))
            else:
                connection.commit()
        except Exception as error:  # noqa: BLE001 - re-raised as the dialect's DBAPI error
            self._handle_exception(error)

    def rollback(self) -> None:
        try:
            self._connection._conn.rollback()
        except Exception as error:  # noqa: BLE001 - re-raised as the dialect's DBAPI error
            self._handle_exception(error)


class OneHopSQLiteDialect(SQLiteDialect_aiosqlite):
    supports_statement_cache = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._commits = itertools.count(1)  # one dialect per engine

    def do_begin(self, dbapi_connection: Any) -> None:
        # Here rather than in the begin event: SQLAlchemy turns what ``do_begin`` raises into its own errors.
        driver_connection = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)  # the pool's proxy
        if isinstance(driver_connection, OneHopConnection):
            driver_connection.begin()

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        connection = super().connect(*cargs, **cparams)
        if type(connection) is AsyncAdapt_aiosqlite_connection:
            connection.__class__ = OneHopConnection  # same slots; the cursor and the transaction control differ
            connection._connection.dingpm_commits = self._commits
            cursor = connection.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # ``commit`` checkpoints, off the loop
            cursor.close()
        return connection


registry.register(DRIVER_NAME.replace("+", "."), __name__, "OneHopSQLiteDialect")
