"""The outbox relay against a failing DingTalk: retries until delivered (never twice), dead letters with their
error, replay. Under ``loop_watch`` like every in-process end-to-end test."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from bot.outbox import group_target, users_target, enqueue
from bot.outbox_admin import outbox_summary, replay_dead_letters
from e2e_support import GROUP, wait_emulator, wait_sent
from storage.models import OutboxMessage, OutboxState

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("loop_watch")]

COMMANDS = 30


async def outbox_rows(app) -> list[OutboxMessage]:
    async with app.database.read() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())


async def test_every_message_is_delivered_once_after_30_percent_of_calls_failed(sandbox, start_app):
    app = await start_app(pacing={"http_timeout_seconds": 0.5, "outbox_max_attempts": 50})
    sandbox.faults.set("*", error_rate=0.3, kinds=("5xx", "timeout", "throttle"))
    for number in range(COMMANDS):
        await sandbox.say("王建国", GROUP, f"通知 {number}")
    # Faults stay on while the commands run and every message is tried at least once...
    sends = ("robot.sendBySession", "robot.groupMessages.send")
    await wait_emulator(sandbox, lambda em: sum(em.counters.count(api) for api in sends) >= 2 * COMMANDS or None,
                        timeout=30)
    injected = dict(sandbox.faults.stats.http)
    sandbox.faults.clear()
    # ...then DingTalk heals and everything must arrive.
    sent = await wait_sent(sandbox, 2 * COMMANDS, GROUP, timeout=45)
    await app.relay.wait_idle(10)
    texts = Counter(m.text for m in sandbox.sent(GROUP))
    expected = {f"通知 {n}" for n in range(COMMANDS)} | {f"已安排通知 {n}" for n in range(COMMANDS)}
    assert set(texts) == expected and set(texts.values()) == {1}, texts.most_common(3)
    rows = await outbox_rows(app)
    assert len(rows) == 2 * COMMANDS and {r.state for r in rows} == {OutboxState.SENT}
    assert sum(injected.values()) >= 5 and app.relay.stats.retried > 0, "the faults never reached the relay"
    print(f"\ninjected faults: {injected}; relay: {app.relay.stats.as_dict()}; sent {len(sent)}")


async def test_an_undeliverable_message_is_dead_lettered_with_its_error_and_can_be_replayed(sandbox, start_app):
    app = await start_app(pacing={"outbox_max_attempts": 3})
    # 1. A conversation DingTalk does not know: no retry can help -> dead at once.
    async with app.relay.unit_of_work() as work:
        await enqueue(work.session, "e2e:unknown-group", group_target("cid-does-not-exist"), "无人可收")
    # 2. A 1:1 send that fails every time -> dead after pacing.outbox_max_attempts tries.
    sandbox.faults.set("robot.oToMessages.batchSend", error_rate=1.0, kinds=("5xx",))
    async with app.relay.unit_of_work() as work:
        await enqueue(work.session, "e2e:always-failing", users_target("liming"), "总是失败")
    # Each relay attempt makes 3 inline client tries (FAST retry policy): 3 attempts -> 9 calls.
    await wait_emulator(sandbox, lambda em: em.counters.count("robot.oToMessages.batchSend") >= 9 or None)
    await app.relay.wait_idle(5)
    rows = {r.idempotency_key: r for r in await outbox_rows(app)}
    unknown, failing = rows["e2e:unknown-group"], rows["e2e:always-failing"]
    assert unknown.state == OutboxState.DEAD and unknown.attempts == 1 and "InvalidRequest" in unknown.last_error
    assert failing.state == OutboxState.DEAD and failing.attempts == 3 and "ServerError" in failing.last_error
    assert sandbox.calls("robot.oToMessages.batchSend") == 9

    summary = await outbox_summary(app.database)
    assert summary.counts["dead"] == 2 and {d.key for d in summary.dead} == set(rows)

    sandbox.faults.clear()
    assert await replay_dead_letters(app.database, ids=[failing.id]) == 1
    app.relay.wake()
    [private] = await wait_sent(sandbox, 1, "李明")
    assert private.text == "总是失败"
    await app.relay.wait_idle(5)
    rows = {r.idempotency_key: r for r in await outbox_rows(app)}
    assert rows["e2e:always-failing"].state == OutboxState.SENT
    assert rows["e2e:unknown-group"].state == OutboxState.DEAD
