"""Our SQLite driver (``storage.sqlite_driver``): a chat command's statements and every transaction's BEGIN, COMMIT
and ROLLBACK run on the event loop's thread; what can wait (another process's write lock) or do I/O (a checkpoint)
still goes to aiosqlite's thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from storage import sqlite_driver
from storage.db import DEFAULT_SQLITE_BUSY_TIMEOUT_MS, Database
from storage.models import User


def _file(db: Database) -> Path:
    return Path(db.engine.url.database or "")


async def test_a_write_that_finds_another_process_writing_waits_off_the_loop(sqlite_db: Database,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    other = sqlite3.connect(_file(sqlite_db), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    other.execute("INSERT INTO users (user_id, name, created_at, updated_at) VALUES ('other', '丙', '2026-12-07', "
                  "'2026-12-07')")
    tried = sqlite_driver._try_begin_immediate

    def try_and_let_go_soon(connection: object) -> bool:
        began = tried(connection)
        if not began:
            # It found the lock taken: the other process commits 0.3 s later, while our BEGIN waits in its thread.
            threading.Timer(0.3, other.commit).start()
        return began

    monkeypatch.setattr(sqlite_driver, "_try_begin_immediate", try_and_let_go_soon)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    beside = asyncio.create_task(ticker())
    try:
        async with sqlite_db.write(interactive=True) as session:
            session.add(User(user_id="ours", name="甲"))
    finally:
        beside.cancel()
        other.close()
    assert ticks >= 10  # the loop went on while the write waited for the lock
    async with sqlite_db.read() as session:
        assert sorted((await session.exec(select(User.user_id))).all()) == ["other", "ours"]
        # The attempt on the loop's thread set the busy timeout to 0 for itself only.
        assert (await session.exec(text("PRAGMA busy_timeout"))).scalar() == DEFAULT_SQLITE_BUSY_TIMEOUT_MS


async def test_commits_checkpoint_the_wal_so_it_stops_growing(sqlite_db: Database) -> None:
    wal = _file(sqlite_db).with_name(_file(sqlite_db).name + "-wal")

    async def reading(entered: asyncio.Barrier) -> None:
        async with sqlite_db.read(interactive=True) as session:
            await session.exec(text("SELECT 1"))
            await entered.wait()

    # Reads side by side leave four connections in the pool, and the writes after them take turns on those: the
    # commits of the engine, not of one connection, are what is counted.
    entered = asyncio.Barrier(4)
    await asyncio.gather(*(reading(entered) for _ in range(4)))

    async def commits(count: int, start: int) -> None:
        for n in range(start, start + count):
            async with sqlite_db.write(interactive=True) as session:
                session.add(User(user_id=f"u{n}", name="某" * 40))

    every = sqlite_driver.CHECKPOINT_EVERY
    await commits(every - 1, 0)
    before_first_checkpoint = wal.stat().st_size
    await commits(3 * every, every)
    # SQLite's automatic checkpoint is off; ours (every CHECKPOINT_EVERY commits) lets the WAL be reused from its
    # start, so three times as many commits do not make it three times as large.
    assert wal.stat().st_size < 1.5 * before_first_checkpoint
    async with sqlite_db.read() as session:
        assert (await session.exec(text("PRAGMA wal_autocheckpoint"))).scalar() == 0


async def test_a_failed_write_is_rolled_back_on_the_loop_and_the_connection_stays_usable(sqlite_db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with sqlite_db.write(interactive=True) as session:
            session.add(User(user_id="gone", name="甲"))
            await session.flush()
            raise Boom
    async with sqlite_db.write(interactive=True) as session:
        session.add(User(user_id="kept", name="乙"))
    async with sqlite_db.read(interactive=True) as session:
        assert (await session.exec(select(User.user_id))).all() == ["kept"]
