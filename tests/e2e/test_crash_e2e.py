"""A bot process killed with SIGKILL in the middle of a burst, then restarted: every command runs exactly once,
none is lost. The bot runs as a real subprocess (``bot_entry.py``); the emulator runs in this process's thread."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlmodel import func, select

from bot.outbox import RelayOptions
from e2e_support import GROUP, wait_emulator
from e2e_commands import RECORD_ACTION
from processes import BotProcess, raw_config
from sandbox.config import EmulatorConfig
from storage.db import Database
from storage.models import AuditLog, InboxMessage, InboxState

pytestmark = [pytest.mark.timeout(120)]

BURST = 200


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    # Throughput test: no emulated QPS limit (the bot's own pacing is what is measured elsewhere).
    return EmulatorConfig.for_tests(qps_limit=0)


def record_replies(sb) -> Counter:
    return Counter(m.text for m in sb.sent(GROUP) if m.text and m.text.startswith("已记录 "))


async def test_sigkill_mid_burst_then_restart_runs_every_command_exactly_once(sandbox, tmp_path):
    database_file = tmp_path / "crash.db"
    config = raw_config(sandbox, f"sqlite+aiosqlite:///{database_file}", tmp_path / "files")
    first = await BotProcess("first", tmp_path, config).start()
    second = BotProcess("second", tmp_path, config)
    try:
        await sandbox.wait_for_connection(timeout=20)
        started = time.perf_counter()
        for number in range(BURST):
            await sandbox.say("王建国", GROUP, f"记录 {number}")
        # Kill it while the burst is being worked through: some answered, some running, some only stored.
        await wait_emulator(sandbox, lambda em: len(em.recorder.sent()) >= BURST // 4 or None, timeout=30)
        first.kill()
        await first.wait()
        answered_before_kill = len(record_replies(sandbox))

        await second.start()
        await sandbox.wait_for_connection(opened=2, timeout=20)
        # Frames the dead process never acked are pushed again after DingTalk's timeout (emulator clock).
        await sandbox.advance(61)
        wanted = {f"已记录 {n}" for n in range(BURST)}
        await wait_emulator(sandbox, lambda em: wanted <= {m.text for m in em.recorder.sent()} or None, timeout=60)
        elapsed = time.perf_counter() - started
        # Every frame is acked in the end (the survivors' and the redelivered ones).
        await wait_emulator(sandbox, lambda em: all(f.acked for f in em.gateway.frames.values()) or None, timeout=30)
    except BaseException:
        print("first bot log:\n", first.log_tail(), "\nsecond bot log:\n", second.log_tail())
        raise
    finally:
        await second.stop()

    database = Database(f"sqlite+aiosqlite:///{database_file}")
    try:
        async with database.read() as session:
            numbers = (await session.exec(select(AuditLog.entity_id).where(AuditLog.action == RECORD_ACTION))).all()
            states = dict((await session.exec(
                select(InboxMessage.state, func.count()).group_by(InboxMessage.state))).all())
    finally:
        await database.close()
    runs = Counter(numbers)
    assert len(runs) == BURST and set(runs.values()) == {1}, f"ran twice: {[n for n, c in runs.items() if c > 1]}"
    assert states == {InboxState.DONE: BURST}
    replies = record_replies(sandbox)
    assert set(replies) == {f"已记录 {n}" for n in range(BURST)}
    duplicates = sum(count - 1 for count in replies.values())
    # A reply sent but not yet marked sent when the process died is sent again (at-least-once delivery: DingTalk's
    # sends take no idempotency key); that window is the relay's sends in flight, at most its concurrent sends (16
    # since they were raised from 8 for throughput). The commands themselves never run twice.
    in_flight = RelayOptions().max_concurrent_sends
    assert duplicates <= in_flight, f"{duplicates} duplicate replies, more than the {in_flight} sends in flight"
    print(f"\nSIGKILL burst: {BURST} commands, {answered_before_kill} answered before the kill, "
          f"{duplicates} duplicate replies after it, all done in {elapsed:.1f}s ({BURST / elapsed:.0f} commands/s "
          f"including the restart)")
