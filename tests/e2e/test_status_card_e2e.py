"""The pinned status card in the internal group, end to end through the sandbox: created when the group is bound,
following submissions and phase changes in place, one update per burst; a group that refuses pinning gets it as a
card in the chat; with cards off, nothing but the messages of before."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cards_chat import CARDS_ON, cards_emulator_config, settled, start_cards_app
from lifecycle_chat import ENGINEER, INTERNAL, PM, LifecycleChat, create_project
from sandbox.harness import Sandbox


@pytest.fixture
async def card_chat(tmp_path: Path, loop_watch) -> AsyncIterator[LifecycleChat]:
    async with Sandbox(config=cards_emulator_config(), seed=20240601) as sandbox:
        app = await start_cards_app(sandbox, tmp_path)
        try:
            yield LifecycleChat(sandbox, app, tmp_path / "files")
        finally:
            await asyncio.wait_for(app.stop(), 30)


def shown(card) -> dict:
    return dict(card.data)


async def test_the_status_card_is_pinned_and_follows_the_project(card_chat: LifecycleChat) -> None:
    chat = card_chat
    code = await create_project(chat, "软件", "智慧工厂MES")
    await settled(chat.app)
    top = await chat.sandbox.top_card(INTERNAL)
    assert top is not None, "the bound internal group has the status card pinned"
    assert top.out_track_id == f"dpm-status-{code}-1"
    data = shown(top)
    assert data["projectId"] == code and data["phase"] == "启动" and data["overdueCount"] == "0"
    due = json.loads(data["dueItems"])
    assert 1 <= len(due) <= 3 and all(item["owner"] for item in due)
    assert chat.sandbox.card_warnings() == []

    # A submission changes the progress and the next due items: the same card, updated in place.
    first = due[0]["name"]
    versions = len((await chat.sandbox.card(top.out_track_id)).versions)
    done = await chat.ask(PM, INTERNAL, f"提交 {first} https://space.dingtalk.com/s/1")
    assert f"已提交《{first}》" in done.text
    await settled(chat.app)
    after = await chat.sandbox.card(top.out_track_id)
    assert len(after.versions) == versions + 1
    assert first not in [i["name"] for i in json.loads(after.data["dueItems"])]
    assert (await chat.sandbox.top_card(INTERNAL)).out_track_id == top.out_track_id  # still the one card


async def test_a_burst_of_changes_makes_one_update(tmp_path: Path, loop_watch) -> None:
    # A coalescing window wide enough for three commands on a loaded machine.
    async with Sandbox(config=cards_emulator_config(), seed=20240601) as sandbox:
        app = await start_cards_app(sandbox, tmp_path, cards={**CARDS_ON, "coalesce_seconds": 3.0})
        try:
            await _burst(LifecycleChat(sandbox, app, tmp_path / "files"))
        finally:
            await asyncio.wait_for(app.stop(), 30)


async def _burst(chat: LifecycleChat) -> None:
    code = await create_project(chat, "软件", "智慧工厂MES")
    await settled(chat.app)
    out_track_id = f"dpm-status-{code}-1"
    before = len((await chat.sandbox.card(out_track_id)).versions)
    items = await chat.gate_items(code)
    # Three submissions committed inside one coalescing window.
    after = chat.last_seq(INTERNAL)
    for item in items[:3]:
        await chat.sandbox.say(PM, INTERNAL, f"提交 #{item.seq} https://space.dingtalk.com/s/{item.seq}")
    answers = await chat.answers(INTERNAL, after, 3, "three submissions")
    assert answers.text.count("已提交") == 3, answers.text
    await settled(chat.app)
    card = await chat.sandbox.card(out_track_id)
    assert len(card.versions) == before + 1, [v.source for v in card.versions]



async def test_the_buttons_run_the_commands_as_the_presser(card_chat: LifecycleChat) -> None:
    chat = card_chat
    code = await create_project(chat, "软件", "智慧工厂MES")
    await settled(chat.app)
    card = f"dpm-status-{code}-1"

    # 交付物, pressed by an engineer: the list, answered in the chat like the typed command.
    after = chat.last_seq(INTERNAL)
    pressed = await chat.sandbox.press(ENGINEER, card, "deliverables", pinned=True)
    assert pressed.outcome == "ok", pressed
    listed = await chat.answers(INTERNAL, after, 1, "交付物 button")
    assert "交付物" in listed.text and code in listed.text

    # 推进, pressed by an engineer: refused, on the card and to the presser alone; the chat stays quiet.
    after = chat.last_seq(INTERNAL)
    refused = await chat.sandbox.press(ENGINEER, card, "advance", pinned=True)
    assert refused.outcome == "ok"
    await settled(chat.app)
    assert chat.since(INTERNAL, after) == []
    snapshot = await chat.sandbox.card(card)
    notice = snapshot.private.get("liming", {}).get("notice", "")
    assert "项目经理" in notice, snapshot.private
    assert "notice" not in snapshot.private.get("wangjianguo", {}) or not snapshot.private["wangjianguo"]["notice"]

    # 推进, pressed by the PM before 立项: refused with the reason, to the PM alone.
    refused = await chat.sandbox.press(PM, card, "advance", pinned=True)
    snapshot = await chat.sandbox.card(card)
    assert "尚未立项" in snapshot.private["wangjianguo"]["notice"]
    assert chat.since(INTERNAL, after) == []

    # 立项 (approvals off: at once) and everything of the phase submitted, the PM presses 推进: the phase moves
    # and the pinned card follows.
    assert "立项" in (await chat.ask(PM, INTERNAL, "立项 内部启动会已开")).text
    for item in await chat.gate_items(code):
        await chat.ask(PM, INTERNAL, f"提交 #{item.seq} https://space.dingtalk.com/s/{item.seq}")
    after = chat.last_seq(INTERNAL)
    moved = await chat.sandbox.press(PM, card, "advance", pinned=True)
    assert moved.outcome == "ok"
    answer = await chat.answers(INTERNAL, after, 1, "推进 button")
    assert "阶段完成，已进入" in answer.text
    await settled(chat.app)
    snapshot = await chat.sandbox.card(card)
    assert snapshot.data["phase"] == (await chat.project(code)).current_phase != "启动"
    assert snapshot.private["wangjianguo"]["notice"] == ""  # the earlier refusal is gone
    assert chat.sandbox.card_warnings() == []
