"""The kernel end to end: the real Stream client, inbox, unit of work, outbox relay and /healthz against the
emulator. Every test runs under ``loop_watch`` (the ``app`` fixture): no callback may hold the loop for 100 ms."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from e2e_support import GROUP, wait_sent
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


async def test_a_frame_delivered_three_times_runs_its_command_once(sandbox, app):
    # First ACK lost -> redelivered after the timeout; the successful ACK -> one duplicate push: 3 deliveries.
    sandbox.faults.ignore_acks(1)
    sandbox.faults.duplicate_frames(1)
    said = await sandbox.say("王建国", GROUP, "记录 1")
    [answer] = await wait_sent(sandbox, 1, GROUP)
    assert answer.text == "已记录 1"
    await sandbox.wait_for_deliveries(said.message_id, 1)
    await sandbox.advance(61)  # the emulator's redelivery timer: no real waiting
    frame = await sandbox.wait_for_deliveries(said.message_id, 3)
    await sandbox.wait_for_ack(said.message_id)
    await wait_emulator_acks(sandbox, said.message_id, 2)
    assert len(frame.deliveries) == 3
    assert app.inbox.stats.duplicates == 2 and app.inbox.stats.stored == 1
    await app.relay.wait_idle(5)
    assert await audit_numbers(app) == ["1"]
    assert [m.text for m in sandbox.sent(GROUP)] == ["已记录 1"]


async def test_a_burst_of_commands_runs_each_once_without_blocking_the_loop(sandbox, app):
    burst = 150
    started = time.perf_counter()
    for number in range(burst):
        await sandbox.say("王建国", GROUP, f"记录 {number}")
    await wait_sent(sandbox, burst, GROUP, timeout=60)
    elapsed = time.perf_counter() - started
    await app.relay.wait_idle(10)
    assert await audit_numbers(app) == sorted(str(n) for n in range(burst))
    assert sorted(m.text for m in sandbox.sent(GROUP)) == sorted(f"已记录 {n}" for n in range(burst))
    print(f"\nin-process burst: {burst} commands in {elapsed:.1f}s ({burst / elapsed:.0f}/s) under asyncio debug mode")


async def wait_emulator_acks(sandbox, message_id: str, count: int) -> None:
    """Wait until the bot acked the frame ``count`` times with success (every delivery is acked)."""
    gateway = sandbox.emulator.gateway
    await sandbox.run(lambda em: gateway.wait_until(
        lambda: len([a for a in gateway.frames[message_id].acks if a.code == 200]) >= count or None, 10))


async def test_a_user_mistake_commits_only_its_answer(sandbox, app):
    await sandbox.say("王建国", GROUP, "记录后冲突 7")
    [answer] = await wait_sent(sandbox, 1, GROUP)
    assert answer.text == "已经有了，不能重复记录。"
    await app.relay.wait_idle(5)
    assert await audit_numbers(app) == []
    async with app.database.read() as session:
        inbox = (await session.exec(select(InboxMessage))).one()
    assert inbox.state == InboxState.DONE


async def test_an_unexpected_error_rolls_back_and_apologises_once(sandbox, app):
    await sandbox.say("王建国", GROUP, "记录后出错 8")
    [answer] = await wait_sent(sandbox, 1, GROUP)
    # The progress message was part of the rolled-back unit of work: only the apology goes out.
    assert answer.text.startswith("抱歉，处理时出错了（追踪号 ")
    await app.relay.wait_idle(5)
    assert await audit_numbers(app) == []
    async with app.database.read() as session:
        inbox = (await session.exec(select(InboxMessage))).one()
    assert inbox.state == InboxState.FAILED and "RuntimeError" in inbox.error and "trace_id=" in inbox.error


async def test_answers_arrive_in_order_and_a_queued_notice_is_sent_once(sandbox, app):
    await sandbox.say("王建国", GROUP, "两条")
    await wait_sent(sandbox, 2, GROUP)
    await sandbox.say("王建国", GROUP, "通知 3")
    sent = await wait_sent(sandbox, 4, GROUP)
    await app.relay.wait_idle(5)
    assert [m.text for m in sent[:2]] == ["第一条", "第二条"]
    assert sorted(m.text for m in sent[2:]) == ["已安排通知 3", "通知 3"]
    notice = next(m for m in sent if m.text == "通知 3")
    assert notice.via == "openapi" and notice.api == "robot.groupMessages.send"
    assert len(sandbox.sent(GROUP)) == 4


async def test_an_expired_session_webhook_falls_back_to_the_openapi(sandbox, app):
    sandbox.emulator.config.session_webhook_ttl = 0.0  # every payload's webhook is already expired
    await sandbox.say("王建国", GROUP, "记录 4")
    await sandbox.dm("李明", "记录 5")
    [in_group] = await wait_sent(sandbox, 1, GROUP)
    [in_private] = await wait_sent(sandbox, 1, "李明")
    assert (in_group.via, in_group.api, in_group.text) == ("openapi", "robot.groupMessages.send", "已记录 4")
    assert (in_private.via, in_private.api, in_private.text) == ("openapi", "robot.oToMessages.batchSend", "已记录 5")
    assert sandbox.calls("robot.sendBySession") == 0  # known expired: not even tried
    await app.relay.wait_idle(5)
    assert app.relay.stats.fallbacks == 2


async def test_a_file_answer_is_uploaded_once_and_sent_through_the_openapi(sandbox, app):
    await sandbox.say("王建国", GROUP, "文件")
    [answer] = await wait_sent(sandbox, 1, GROUP)
    assert answer.msgtype == "file" and answer.file_name == "测试报告.docx"
    assert answer.file_bytes == b"PK\x03\x04 not really a docx"
    await app.relay.wait_idle(5)
    assert sandbox.calls("media.upload") == 1
    async with app.database.read() as session:
        row = (await session.exec(select(OutboxMessage))).one()
    assert row.state == OutboxState.SENT and row.params["mediaId"]
    assert not Path(row.attachment_path).exists()  # the spooled copy is gone once sent


# ---- the Stream connection: every way of losing it ------------------------------------------------------------


async def test_an_abrupt_websocket_drop_is_recovered_and_messages_meanwhile_are_processed(sandbox, app):
    first = await sandbox.wait_for_connection()
    await sandbox.drop(first.id)
    await sandbox.say("王建国", GROUP, "记录 11")  # no live connection: the emulator keeps it for the next one
    second = await sandbox.wait_for_connection(opened=2)
    assert second.id != first.id
    [answer] = await wait_sent(sandbox, 1, GROUP)
    assert answer.text == "已记录 11"


async def test_a_disconnect_frame_is_followed_by_a_new_connection_first(sandbox, app):
    first = await sandbox.wait_for_connection()
    await sandbox.disconnect(first.id)
    await sandbox.wait_for_connection(opened=2)
    await sandbox.say("王建国", GROUP, "记录 12")
    [answer] = await wait_sent(sandbox, 1, GROUP)
    assert answer.text == "已记录 12"
    await sandbox.wait_for_close(first.id)
    assert app.stream.status.disconnects == 1


async def test_a_silently_dead_connection_is_detected_and_its_lost_frame_redelivered(sandbox, app):
    first = await sandbox.wait_for_connection()
    await sandbox.freeze(first.id)
    said = await sandbox.say("王建国", GROUP, "记录 13")  # pushed into the dead link: lost on the way
    await sandbox.wait_for_connection(opened=2, timeout=15)  # the silence was noticed (watchdog / ping timeout)
    await sandbox.unfreeze(first.id)  # the server now reads the client's abort and drops the old link
    await sandbox.wait_for_close(first.id)
    await sandbox.advance(61)  # unacked -> DingTalk pushes it again, now to the new connection
    [answer] = await wait_sent(sandbox, 1, GROUP)
    assert answer.text == "已记录 13"
    await sandbox.wait_for_ack(said.message_id)
    assert await audit_numbers(app) == ["13"]


async def test_health_reports_503_without_the_stream(sandbox, app):
    await app.stream.stop()
    async with aiohttp.ClientSession() as http:
        async with http.get(app.health_server.url) as resp:
            report = await resp.json()
    assert resp.status == 503 and report["status"] == "unhealthy" and not report["stream"]["connected"]


# ---- approval events -------------------------------------------------------------------------------------------


async def test_approval_events_go_through_the_inbox_to_the_registered_hook(sandbox, app):
    from bot.outbox import enqueue, group_target
    from storage.repo import write_audit

    seen = []

    @app.on_approval_event
    async def on_event(event, ctx):
        seen.append(event)
        await write_audit(session=ctx.session, action="e2e.approval", entity="approval",
                          entity_id=event.process_instance_id)
        await enqueue(ctx.session, f"approval:{event.event_id}", group_target(sandbox.conversation_id(GROUP)),
                      f"审批 {event.process_instance_id} {event.result}")

    sandbox.faults.duplicate_frames(1, topic="bpms_instance_change")
    frame = await sandbox.call(sandbox.emulator.gateway.push_event, sandbox.app, "bpms_instance_change",
                               {"processInstanceId": "inst-1", "processCode": "PROC-1", "type": "finish",
                                "result": "agree", "staffId": "liuqiang"})
    [notice] = await wait_sent(sandbox, 1, GROUP)
    assert notice.text == "审批 inst-1 agree"
    await wait_emulator_acks(sandbox, frame.message_id, 2)
    await app.relay.wait_idle(5)
    assert len(seen) == 1 and seen[0].change == "finish" and seen[0].staff_id == "liuqiang"
    async with app.database.read() as session:
        rows = (await session.exec(select(AuditLog).where(AuditLog.action == "e2e.approval"))).all()
        inbox = (await session.exec(select(InboxMessage))).one()
    assert [r.entity_id for r in rows] == ["inst-1"] and inbox.state == InboxState.DONE
