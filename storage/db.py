"""Engine and session setup for SQLite (aiosqlite), PostgreSQL (asyncpg) and MySQL/MariaDB (asyncmy).

Nothing here runs at import: the app builds one ``Database`` at start and closes it at shutdown.

Transactions: ``async with db.write() as session:`` for a unit of work that writes (committed on exit, rolled back on
error), ``async with db.read() as session:`` for reads. The distinction matters on SQLite, where a write transaction
starts with ``BEGIN IMMEDIATE``: it takes the write lock up front (waiting up to ``busy_timeout``) instead of failing
with "database is locked" when a read transaction later tries to upgrade to a write. PostgreSQL and MySQL ignore it.

All datetimes in the database are naive UTC; see ``storage.models.types.utcnow``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import sqlite_driver

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/dingpm.db"

# Execution option carried by connections of the write sessionmaker; the SQLite "begin" hook reads it.
_WRITE_TRANSACTION = "dingpm_write_transaction"

DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 10_000


def dialect_family(dialect_name: str) -> str:
    """``sqlite``, ``postgresql`` or ``mysql`` for a dialect name (MariaDB is driven as MySQL)."""
    return "mysql" if dialect_name in ("mysql", "mariadb") else dialect_name


def url_family(url: str | URL) -> str:
    """``sqlite``, ``postgresql`` or ``mysql`` for a database URL."""
    return dialect_family(make_url(url).get_backend_name())


def create_engine(
    url: str = DEFAULT_DATABASE_URL,
    *,
    echo: bool = False,
    sqlite_foreign_keys: bool = True,
    sqlite_busy_timeout_ms: int = DEFAULT_SQLITE_BUSY_TIMEOUT_MS,
    **engine_options: Any,
) -> AsyncEngine:
    """An ``AsyncEngine`` tuned for the backend named by ``url``.

    ``sqlite_foreign_keys=False`` exists for migrations only: SQLite batch migrations recreate tables, which must not
    cascade into child rows. ``engine_options`` go to ``create_async_engine`` and override the defaults below.
    """
    parsed = make_url(url)
    family = url_family(parsed)
    if family == "sqlite":
        return _create_sqlite_engine(
            parsed,
            echo=echo,
            foreign_keys=sqlite_foreign_keys,
            busy_timeout_ms=sqlite_busy_timeout_ms,
            **engine_options,
        )
    options: dict[str, Any] = {
        # Server connections die behind our back (restarts, idle timeouts, NAT); check before use, recycle early.
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 10,
        "pool_recycle": 1800,
    }
    if family == "mysql":
        if "charset" not in parsed.query:
            # utf8mb4, not MySQL's 3-byte "utf8": Chinese is fine either way, emoji and rare CJK are not.
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        # PostgreSQL's default level. REPEATABLE READ would add gap locks to our queue polls and make the two server
        # backends behave differently under concurrency.
        options["isolation_level"] = "READ COMMITTED"
    options.update(engine_options)
    return create_async_engine(parsed, echo=echo, **options)


def _create_sqlite_engine(
    url: URL, *, echo: bool, foreign_keys: bool, busy_timeout_ms: int, **engine_options: Any
) -> AsyncEngine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)

    if url.drivername == "sqlite+aiosqlite":
        url = url.set(drivername=sqlite_driver.DRIVER_NAME)  # the same driver, one thread hop per statement
    connect_args = dict(engine_options.pop("connect_args", {}))
    # Take transaction control away from the sqlite3 module (it would BEGIN lazily, DEFERRED, and break SAVEPOINT):
    # the "begin" hook below emits BEGIN itself.
    connect_args["isolation_level"] = None
    # Interactive sessions' statements (``sqlite_driver.INLINE``) run on the loop's thread; the rest on aiosqlite's.
    connect_args["check_same_thread"] = False
    engine = create_async_engine(url, echo=echo, connect_args=connect_args, **engine_options)
    if url.drivername == sqlite_driver.DRIVER_NAME:
        event.listen(engine.sync_engine, "before_cursor_execute", sqlite_driver.note_inline_statement)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # First, so that switching a fresh file to WAL waits for a concurrent connection instead of failing.
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            if not in_memory:
                # WAL lets readers run while one writer writes; NORMAL sync is durable across app crashes in WAL mode.
                _switch_to_wal(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_WRITE_TRANSACTION, False)
        driver_connection = connection.connection.dbapi_connection
        if isinstance(driver_connection, sqlite_driver.OneHopConnection):
            driver_connection.next_begin_immediate(immediate)  # its dialect's do_begin runs it (see sqlite_driver)
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


_WAL_SWITCH_ATTEMPTS = 6  # 0.05 + 0.1 + … + 1.6 s: about 3 s in all, then the error is real


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, retried with a bounded backoff while the file is locked.

    The busy timeout does not cover every case: while another connection runs WAL recovery or, closing last,
    checkpoints and deletes the WAL, SQLite may answer "database is locked" at once. This hook runs inside
    SQLAlchemy's async adaptation (a greenlet on the event loop), so the wait is an awaited sleep, not a blocking one.
    """
    for attempt in range(_WAL_SWITCH_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, wrapped differently by each adapter
            if attempt == _WAL_SWITCH_ATTEMPTS - 1 or not _is_locked(exc):
                raise
        await_only(asyncio.sleep(0.05 * 2**attempt))


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def write_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) whose transactions are write transactions (``BEGIN IMMEDIATE`` on SQLite)."""
    return engine.execution_options(**{_WRITE_TRANSACTION: True})


class WriteInReadTransaction(RuntimeError):
    """A write through a session that ``forbid_writes`` guards: a command declared to only read has written."""


@contextmanager
def writes_forbidden(session: AsyncSession) -> Iterator[AsyncSession]:
    """Within the block, ``session`` refuses INSERT, UPDATE and DELETE statements and new objects, and changed
    objects left at its end are an error too.

    For work run in a read transaction: on SQLite its writes would bypass the write lock, and in any database they
    would be rolled back with the read, silently; a loud error instead says the work must not be declared read-only.
    """

    refused: list[str] = []

    def refuse(what: str) -> None:
        refused.append(what)
        raise WriteInReadTransaction(f"{what} in a read transaction: declare this work as writing")

    def statement(state: Any) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            refuse(type(state.statement).__name__)

    def added(_session: Any, instance: Any) -> None:
        refuse(f"adding a {type(instance).__name__}")

    def flushing(flushed: Any, _context: Any, _instances: Any) -> None:
        if flushed.new or flushed.dirty or flushed.deleted:
            refuse("flushing changed objects")

    sync_session = session.sync_session
    listeners = (("do_orm_execute", statement), ("transient_to_pending", added), ("before_flush", flushing))
    for name, listener in listeners:
        event.listen(sync_session, name, listener)
    try:
        yield session
        # Once refused, the work already failed (its caller saw the error); what it left behind is discarded.
        if not refused and (sync_session.new or sync_session.dirty or sync_session.deleted):
            refuse("changing loaded objects")
    finally:
        for name, listener in listeners:
            event.remove(sync_session, name, listener)


async def _close_to_completion(session: AsyncSession) -> None:
    """``session.close()`` in a task of its own, awaited to its end even if the caller is cancelled meanwhile (what
    ``AsyncSession.__aexit__`` does): a connection must not go back to the pool half rolled back."""
    task = asyncio.ensure_future(session.close())
    cancelled: BaseException | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as error:
            cancelled = error
    task.result()
    if cancelled is not None:
        raise cancelled


class Database:
    """One engine and its session factories; created at app start, closed with ``await db.close()``."""

    def __init__(
        self, url: str = DEFAULT_DATABASE_URL, *, echo: bool = False, concurrency: int | None = None,
        **engine_options: Any,
    ) -> None:
        """``concurrency``: how many transactions this process may run at once (commands in flight plus the frames,
        sends and jobs beside them). A server database's pool keeps that many connections open, plus a few for a
        rare burst: connections beyond the pool's size are closed when returned, so a pool smaller than the load
        opens and closes a connection (a TLS attempt and a login) per transaction. Every process may hold
        ``concurrency + 4`` connections: several processes need the server's max_connections (100 by default on
        PostgreSQL) to cover them, or PgBouncer in front."""
        self.url = url
        self.family = url_family(url)
        if concurrency is not None and self.family != "sqlite":
            engine_options = {"pool_size": concurrency, "max_overflow": 4, **engine_options}
        self.engine: AsyncEngine = create_engine(url, echo=echo, **engine_options)
        self.read_sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self.write_sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            write_engine(self.engine), class_=AsyncSession, expire_on_commit=False
        )
        # A chat command's statements are small and many: on SQLite they run on the loop's thread (sqlite_driver).
        interactive = self.engine.execution_options(**{sqlite_driver.INLINE: True})
        self._interactive_read_sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            interactive, class_=AsyncSession, expire_on_commit=False
        )
        self._interactive_write_sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            write_engine(interactive), class_=AsyncSession, expire_on_commit=False
        )

    @asynccontextmanager
    async def write(self, *, interactive: bool = False) -> AsyncIterator[AsyncSession]:
        """A session inside a write transaction: committed when the block exits, rolled back if it raises.
        ``interactive``: a short transaction on a message's path: its frame, its command's unit of work, its sent
        mark (on SQLite their statements run on the loop's thread, see ``sqlite_driver``)."""
        session = (self._interactive_write_sessions if interactive else self.write_sessions)()
        # What ``async with session, session.begin()`` does, less two greenlet hops and a task per transaction: the
        # ORM's begin only opens a SessionTransaction (the first statement takes the connection), and once the commit
        # has handed the connection back, closing is bookkeeping.
        session.sync_session.begin()
        try:
            yield session
            await session.commit()
        finally:
            if session.sync_session.in_transaction():
                await _close_to_completion(session)  # rolls back and hands the connection back, even if cancelled
            else:
                session.sync_session.close()

    @asynccontextmanager
    async def read(self, *, interactive: bool = False) -> AsyncIterator[AsyncSession]:
        """A session for reads; whatever it did is rolled back when the block exits."""
        async with (self._interactive_read_sessions if interactive else self.read_sessions)() as session:
            yield session

    async def close(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"
