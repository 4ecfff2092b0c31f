"""Helpers for dispatcher-level tests of handlers: build a message, run it through the kernel's door, read its replies.

Imported only by tests; nothing here touches the network, and a database only when given one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.context import UnitOfWork, bind_unit_of_work
from bot.dispatcher import Dispatcher, Handled
from bot.incoming import Incoming, Mention
from bot.kernel import answer
from domain.replies import Reply
from storage.db import Database, writes_forbidden


def make_incoming(
    text: str,
    *,
    sender_id: str = "user-1",
    sender_nick: str = "测试用户",
    conversation_id: str = "cid-group-1",
    group: bool = True,
    mentions: Sequence[str] = (),
    message_id: str | None = None,
) -> Incoming:
    """A text message as the Stream edge would parse it; ``mentions`` are the staff ids of @-mentioned users."""
    message_id = message_id or f"msg-{uuid.uuid4().hex[:12]}"
    at_users = tuple(Mention(dingtalk_id=f"$:{staff_id}", staff_id=staff_id) for staff_id in mentions)
    if group:
        at_users = (Mention(dingtalk_id="$:bot"), *at_users)  # in groups the bot itself is @-mentioned first
    return Incoming(
        message_id=message_id,
        msg_id=message_id,
        msgtype="text",
        conversation_id=conversation_id,
        conversation_type="2" if group else "1",
        sender_id=sender_id,
        sender_nick=sender_nick,
        text=text.strip(),
        mentions=at_users,
    )


@dataclass
class RecordingUnits:
    """``bot.kernel.Units`` for tests: transactions straight from ``database`` (None: a session-less unit of work, for
    dispatcher tests without a database), the answers kept in ``replies`` instead of the outbox."""

    database: Database | None = None
    spool_dir: Path | None = None
    replies: list[Reply] = field(default_factory=list)
    settled: list[UnitOfWork] = field(default_factory=list)  # the units that committed an answer

    @asynccontextmanager
    async def read(self) -> AsyncIterator[UnitOfWork]:
        if self.database is None:
            yield UnitOfWork(session=None, read_only=True, spool_dir=self.spool_dir)  # type: ignore[arg-type]
            return
        async with self.database.read(interactive=True) as session:  # as the inbox runs a command
            work = UnitOfWork(session=session, read_only=True, spool_dir=self.spool_dir)
            with writes_forbidden(session), bind_unit_of_work(work):
                yield work

    @asynccontextmanager
    async def write(self) -> AsyncIterator[UnitOfWork]:
        if self.database is None:
            yield UnitOfWork(session=None, spool_dir=self.spool_dir)  # type: ignore[arg-type]
            return
        async with self.database.write(interactive=True) as session:
            work = UnitOfWork(session=session, spool_dir=self.spool_dir)
            with bind_unit_of_work(work):
                yield work

    async def settle(self, work: UnitOfWork, handled: Handled) -> None:
        self.replies.extend(handled.replies)
        self.settled.append(work)


async def run_text(dispatcher: Dispatcher, incoming: Incoming, units: RecordingUnits | None = None) -> Handled:
    """Run one message through the kernel's door (``bot.kernel.answer``) as the inbox does, with test units."""
    incoming = await dispatcher.prepare(incoming)
    return await answer(dispatcher, dispatcher.route(incoming), units or RecordingUnits())
