"""Leader election: of several bot processes on one database, exactly one runs the scheduler.

PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``); MySQL/MariaDB: a named lock (``GET_LOCK(name,
0)``). Either is held by a **dedicated connection** that stays open while this process leads, so leadership lives
exactly as long as that connection: if the process dies, the server closes the session and frees the lock, and a
follower, retrying every ``retry_interval`` seconds, takes over. The leader checks its connection every
``check_interval`` seconds (``SELECT 1``); when that fails, it steps down at once (``on_lost``) and goes back to
trying. SQLite is one process by design: the process is always the leader.

Between the moment a leader's session dies on the server and the moment its next check notices, two processes may
both think they lead. That is harmless: the (job, period) run keys make a double run impossible; leadership only
saves the wasted work of every replica waking up for every trigger.

The lock connection comes from its own engine (no pool): returned to a shared pool, a connection would keep the
lock while serving other work, and the pool's recycling would drop it at random.

A killed process closes its socket and the server frees the lock at once. A leader whose host vanishes (power cut,
network partition) sends nothing, and by default the server would keep its session, and the lock, for hours (TCP
keepalive defaults to two hours, MySQL's ``wait_timeout`` to eight). So the lock session asks the server to drop it
after about ``dead_session_timeout`` seconds of silence: TCP keepalives on PostgreSQL, a short ``wait_timeout`` on
MySQL (a live leader is never silent that long: it checks its connection every ``check_interval``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from storage.db import url_family

log = logging.getLogger(__name__)

# "dingpm" in ASCII as a big-endian integer, plus 1 for "scheduler": a constant no other application is likely to use.
# PostgreSQL advisory locks are scoped to the database, so two deployments on one server do not collide.
ADVISORY_LOCK_KEY = 0x64696E67706D_01
# MySQL named locks are server-wide: the lock name carries the database name (at most 64 characters).
MYSQL_LOCK_PREFIX = "dingpm.scheduler"

Callback = Callable[[], Awaitable[Any]]


class LeaderElection:
    """Campaigns for leadership in the background; calls ``on_elected`` / ``on_lost`` as it is won and lost.

    ``database``: the app's ``storage.db.Database`` or a database URL. ``start()`` makes the first attempt before it
    returns, so a lone process (and every SQLite process) is leader when ``start()`` returns. ``stop()`` steps down
    (``on_lost`` first, then the lock is released) so a follower can take over at once.
    """

    def __init__(
        self,
        database: Any,
        *,
        on_elected: Callback | None = None,
        on_lost: Callback | None = None,
        retry_interval: float = 5.0,
        check_interval: float = 5.0,
        check_timeout: float = 5.0,
        dead_session_timeout: float = 30.0,
        application_name: str = "dingpm-leader",
    ) -> None:
        self.url: URL = _engine_url(database)
        self.family = url_family(self.url)
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.retry_interval = retry_interval
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        # Never shorter than a few checks, or the server would drop a healthy leader between two of them.
        self.dead_session_timeout = max(dead_session_timeout, 3 * check_interval, 3.0)
        self.application_name = application_name
        self.session_id: int | None = None  # server session of the lock connection: pg_backend_pid / CONNECTION_ID
        self.leading = asyncio.Event()  # set while this process leads
        self.following = asyncio.Event()  # set while it does not
        self.following.set()
        self._engine: AsyncEngine | None = None
        self._connection: AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._unreachable = False

    @property
    def is_leader(self) -> bool:
        return self.leading.is_set()

    @property
    def lock_name(self) -> str:
        return f"{MYSQL_LOCK_PREFIX}.{self.url.database or ''}"[:64]

    # -- lifecycle --------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None or self.is_leader:
            return
        self._stopping.clear()
        if self.family not in ("postgresql", "mysql"):
            await self._become_leader()
            return
        self._engine = self._make_engine()
        if await self._try_acquire():
            await self._become_leader()
        else:
            log.info("another process leads the scheduler; retrying every %ss", self.retry_interval)
        self._task = asyncio.get_running_loop().create_task(self._campaign(), name="leader-election")

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            await task
        if self.is_leader:
            await self._step_down("shutdown")
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    # -- the campaign -----------------------------------------------------------------------------------------------

    async def _campaign(self) -> None:
        while not self._stopping.is_set():
            try:
                if not await self._campaign_step():
                    return  # stop() came: it steps down
            except Exception:
                # Every step handles its own database errors; anything else must not end the campaign silently,
                # or this replica would never lead again.
                log.exception("leader election: unexpected error; carrying on")
                if not await self._wait(self.retry_interval):
                    return

    async def _campaign_step(self) -> bool:
        if self.is_leader:
            if not await self._wait(self.check_interval):
                return False
            if not await self._connection_alive():
                await self._step_down("lost the database connection", connection_alive=False)
        else:
            if not await self._wait(self.retry_interval):
                return False
            if await self._try_acquire():
                await self._become_leader()
        return True

    async def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; False if ``stop()`` came first."""
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return True
        return False

    async def _try_acquire(self) -> bool:
        """One attempt on a fresh connection, kept open when it wins the lock."""
        assert self._engine is not None
        connection: AsyncConnection | None = None
        try:
            async with asyncio.timeout(self.check_timeout):
                connection = await self._engine.connect()
                acquired = await self._lock(connection)
                if acquired:
                    self.session_id = await self._session_id(connection)
        except Exception as exc:
            # Once per outage, not once per retry.
            log.log(logging.DEBUG if self._unreachable else logging.WARNING,
                    "leader election: could not reach the database: %r", exc)
            self._unreachable = True
            acquired = False
        else:
            self._unreachable = False
        if acquired:
            self._connection = connection
            return True
        if connection is not None:
            await self._discard(connection, unlock=False)
        return False

    async def _lock(self, connection: AsyncConnection) -> bool:
        if self.family == "mysql":
            await connection.execute(text(f"SET SESSION wait_timeout = {int(self.dead_session_timeout)}"))
        if self.family == "postgresql":
            result = await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            return bool(result.scalar())
        # GET_LOCK: 1 acquired, 0 held by another session, NULL on error.
        result = await connection.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": self.lock_name})
        return result.scalar() == 1

    async def _session_id(self, connection: AsyncConnection) -> int:
        query = "SELECT pg_backend_pid()" if self.family == "postgresql" else "SELECT CONNECTION_ID()"
        return int((await connection.execute(text(query))).scalar_one())

    async def _connection_alive(self) -> bool:
        connection = self._connection
        if connection is None:
            return False
        try:
            async with asyncio.timeout(self.check_timeout):
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            log.error("leader election: the lock connection failed its check: %r", exc)
            return False
        return True

    async def _become_leader(self) -> None:
        self.following.clear()
        self.leading.set()
        log.info("this process is now the scheduler leader (%s session %s)", self.family, self.session_id)
        if self.on_elected is None:
            return
        try:
            await self.on_elected()
        except Exception:
            # A leader that cannot run the scheduler would block every healthy replica: hand the lock back.
            log.exception("leader election: on_elected failed; stepping down")
            await self._step_down("on_elected failed")

    async def _step_down(self, why: str, *, connection_alive: bool = True) -> None:
        self.leading.clear()
        self.following.set()
        log.log(logging.INFO if self._stopping.is_set() else logging.WARNING,
                "this process is no longer the scheduler leader: %s", why)
        if self.on_lost is not None:
            try:
                await self.on_lost()
            except Exception:
                log.exception("leader election: on_lost failed")
        # The scheduler is stopped before the lock is released, so the next leader never overlaps our runs.
        connection, self._connection = self._connection, None
        self.session_id = None
        if connection is not None:
            await self._discard(connection, unlock=connection_alive)

    async def _discard(self, connection: AsyncConnection, *, unlock: bool) -> None:
        """Close a lock connection. Closing alone frees the lock; unlocking first frees it even if the driver keeps
        the socket open a little longer. A dead connection is only invalidated: it cannot answer anyway."""
        try:
            async with asyncio.timeout(self.check_timeout):
                if unlock:
                    await self._unlock(connection)
                    await connection.close()
                else:
                    await connection.invalidate()
        except Exception as exc:
            log.debug("leader election: closing the lock connection: %r", exc)
            try:
                await connection.invalidate()
            except Exception:
                pass

    async def _unlock(self, connection: AsyncConnection) -> None:
        if self.family == "postgresql":
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
        else:
            await connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.lock_name})

    def _make_engine(self) -> AsyncEngine:
        connect_args: dict[str, Any] = {}
        if self.family == "postgresql":
            idle = max(1, int(self.dead_session_timeout / 3))
            probe = max(1, int(self.dead_session_timeout / 6))
            connect_args["server_settings"] = {
                "application_name": self.application_name,
                # silence for `idle` seconds, then 3 unanswered probes `probe` seconds apart: about 5/6 of the timeout
                "tcp_keepalives_idle": str(idle),
                "tcp_keepalives_interval": str(probe),
                "tcp_keepalives_count": "3",
            }
        # AUTOCOMMIT: no transaction stays open on a connection that lives for hours (PostgreSQL's
        # idle_in_transaction_session_timeout would kill it, and with it our leadership).
        return create_async_engine(
            self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args
        )


def _engine_url(database: Any) -> URL:
    engine = getattr(database, "engine", None)
    if engine is not None:
        return engine.url  # the URL the app's engine really uses (driver options such as charset included)
    return make_url(database)


__all__ = ["ADVISORY_LOCK_KEY", "LeaderElection"]
