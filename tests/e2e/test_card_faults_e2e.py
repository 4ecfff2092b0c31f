"""Card faults end to end: a duplicated or redelivered callback applies once; a throttled card update is retried and
the card ends right; a group that refuses pinning gets the status card in the chat, updated in place; with cards
off, the messages of before."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.card_press import CARD_CALLBACK_TOPIC
from cards_chat import CardsChat, cards_emulator_config, settled, start_cards_app
from lifecycle_chat import CLIENT, ENGINEER, INTERNAL, PM, LifecycleChat, create_project
from sandbox.harness import Sandbox


@contextlib.asynccontextmanager
async def _chat(tmp_path: Path, **switches) -> AsyncIterator[LifecycleChat]:
    cards = switches.pop("cards", None)
    async with Sandbox(config=cards_emulator_config(**switches), seed=20240601) as sandbox:
        app = await start_cards_app(sandbox, tmp_path, cards=cards)
        try:
            yield CardsChat(sandbox, app, tmp_path / "files")
        finally:
            await asyncio.wait_for(app.stop(), 30)


@pytest.fixture
async def card_chat(tmp_path: Path, loop_watch) -> AsyncIterator[LifecycleChat]:
    async with _chat(tmp_path) as chat:
        yield chat


async def test_a_duplicated_callback_applies_once(card_chat: LifecycleChat) -> None:
    chat = card_chat
    code = await create_project(chat, "软件", "智慧工厂MES")
    await settled(chat.app)
    duplicates = chat.app.inbox.stats.duplicates
    acked = chat.app.stream.status.frames_acked
    chat.sandbox.faults.duplicate_frames(1, topic=CARD_CALLBACK_TOPIC)
    after = chat.last_seq(INTERNAL)
    pressed = await chat.sandbox.press(ENGINEER, f"dpm-status-{code}-1", "deliverables", pinned=True)
    assert pressed.outcome == "ok"
    await chat.app.stream.wait_for_status(lambda s: s.frames_acked >= acked + 2, timeout=10)  # the press, twice
    await settled(chat.app)
    assert chat.app.inbox.stats.duplicates == duplicates + 1
    assert len(chat.since(INTERNAL, after)) == 1  # one list, not two


async def test_a_throttled_update_is_retried_and_the_card_ends_right(card_chat: LifecycleChat) -> None:
    chat = card_chat
    code = await create_project(chat, "软件", "智慧工厂MES")
    await settled(chat.app)
    card = f"dpm-status-{code}-1"
    # Every card update is refused with 403 QpsLimit, four times over: more than the client's own retries.
    chat.sandbox.faults.set("card.instances.update", error_rate=1.0, kinds="throttle", count=4)
    items = await chat.gate_items(code)
    await chat.ask(PM, INTERNAL, f"提交 #{items[0].seq} https://space.dingtalk.com/s/1")
    await settled(chat.app)
    await chat.app.relay.wait_for(lambda: _card_shows(chat, card, items[0].name), timeout=20)
    await settled(chat.app)
    assert chat.app.dingtalk.stats.errors["Throttled"] >= 4
    assert chat.app.relay.stats.dead == 0


async def _card_shows(chat: LifecycleChat, card: str, submitted: str) -> bool:
    snapshot = await chat.sandbox.card(card)
    return submitted not in snapshot.data["dueItems"]


async def test_a_group_that_refuses_pinning_gets_the_card_in_the_chat(tmp_path: Path, loop_watch) -> None:
    async with _chat(tmp_path, pin_in_ordinary_groups=False) as chat:
        code = await create_project(chat, "软件", "智慧工厂MES")
        await settled(chat.app)
        assert await chat.sandbox.top_card(INTERNAL) is None
        [card] = [c for c in await chat.sandbox.cards(INTERNAL) if c.template_name == "project_status"]
        assert card.out_track_id == f"dpm-status-{code}-1" and card.placements
        cards_posted = [m for m in chat.sandbox.sent(INTERNAL) if m.msgtype == "interactiveCard"]
        items = await chat.gate_items(code)
        await chat.ask(PM, INTERNAL, f"提交 #{items[0].seq} https://space.dingtalk.com/s/1")
        await settled(chat.app)
        updated = await chat.sandbox.card(card.out_track_id)
        assert items[0].name not in updated.data["dueItems"]
        # Updated in place: no second card message.
        assert [m for m in chat.sandbox.sent(INTERNAL) if m.msgtype == "interactiveCard"] == cards_posted

        # The next day's scan posts it again at the bottom of the chat, so that it stays in sight.
        chat.app.clock.advance(timedelta(days=1))
        await chat.app.scheduler.run_due(chat.app.clock.now(), jobs=["status_cards_daily"])
        await settled(chat.app)
        again = await chat.sandbox.card(f"dpm-status-{code}-2")
        assert again.placements and again.data["phase"] == updated.data["phase"]
        assert len([m for m in chat.sandbox.sent(INTERNAL) if m.msgtype == "interactiveCard"]) == len(cards_posted) + 1


async def test_with_cards_off_the_messages_of_before(tmp_path: Path, loop_watch) -> None:
    async with _chat(tmp_path, cards={"enabled": False}) as chat:
        await create_project(chat, "软件", "智慧工厂MES")
        assert "已立项" in (await chat.ask(PM, INTERNAL, "立项")).text
        await chat.ask(PM, INTERNAL, "周报 发送", replies=3)
        await asyncio.wait_for(chat.app.scheduler.wait_idle(), 60)
        await settled(chat.app)
        assert await chat.sandbox.cards() == []
        assert chat.app.stream.subscriptions() == [s for s in chat.app.stream.subscriptions()
                                                   if s["topic"] != CARD_CALLBACK_TOPIC]
        kinds = [m.msgtype for m in chat.sandbox.sent(CLIENT)]
        assert "markdown" in kinds and "file" in kinds and "interactiveCard" not in kinds
