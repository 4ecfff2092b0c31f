"""The kernel end to end: the real Stream client, inbox, unit of work, outbox relay and /healthz against the
emulator. Every test runs under ``loop_watch`` (the ``app`` fixture): no callback may hold the loop for 100 ms."""

from __future__ import annotations

import aiohttp
import pytest
from sqlmodel import select

from conftest import GROUP, wait_sent
from e2e_commands import RECORD_ACTION
from storage.models import AuditLog, InboxMessage, InboxState, OutboxMessage, OutboxState

pytestmark = [pytest.mark.timeout(60)]


async def audit_numbers(app) -> list[str]:
    async with app.database.read() as session:
        rows = (await session.exec(select(AuditLog).where(AuditLog.action == RECORD_ACTION))).all()
    return sorted(row.entity_id for row in rows)


async def test_help_is_answered_through_the_session_webhook(sandbox, app):
    said = await sandbox.say("王建国", GROUP, "帮助")
    [answer] = await wait_sent(sandbox, 1, GROUP)
    assert answer.via == "webhook" and answer.msgtype == "markdown" and "命令一览" in answer.text
    await app.relay.wait_idle(5)
    async with app.database.read() as session:
        inbox = (await session.exec(select(InboxMessage))).one()
        outbox = (await session.exec(select(OutboxMessage))).one()
    assert inbox.message_id == said.message_id and inbox.state == InboxState.DONE
    assert outbox.state == OutboxState.SENT and outbox.idempotency_key == f"reply:{inbox.id}:0"

    async with aiohttp.ClientSession() as http:
        async with http.get(app.health_server.url) as resp:
            report = await resp.json()
            assert resp.status == 200, report
    assert report["status"] == "ok" and report["stream"]["connected"] and report["database"]["ok"]
    assert report["scheduler"]["leader"] and report["scheduler"]["running"]
    assert report["inbox"]["backlog"] == 0 and report["outbox"]["dead"] == 0
