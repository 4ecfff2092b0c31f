"""帮助 as a card: categories whose buttons fill in the example commands, each as the presser may use them (a client
sees the client's commands only)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cards_chat import cards_emulator_config, settled, start_cards_app
from lifecycle_chat import CLIENT, ENGINEER, INTERNAL, LifecycleChat, create_project
from sandbox.harness import Sandbox


async def _help_card(chat: LifecycleChat, user: str, where: str) -> str:
    after = chat.last_seq(where)
    await chat.sandbox.say(user, where, "帮助")
    message = await chat.wait_for(where, "使用帮助", after=after)
    assert message.msgtype == "interactiveCard"
    return message.params["outTrackId"]


async def test_help_is_a_card_whose_categories_fill_in_examples(tmp_path: Path, loop_watch) -> None:
    async with Sandbox(config=cards_emulator_config(), seed=20240601) as sandbox:
        app = await start_cards_app(sandbox, tmp_path)
        chat = LifecycleChat(sandbox, app, tmp_path / "files")
        try:
            await create_project(chat, "软件", "智慧工厂MES")
            card = await _help_card(chat, ENGINEER, INTERNAL)
            pressed = await sandbox.press(ENGINEER, card, "deliverables")
            assert pressed.outcome == "ok" and pressed.success, (await sandbox.card(card)).private
            shown = (await sandbox.card(card)).data
            assert shown["chosen"] == "交付物" and "- 提交" in shown["examples"]

            # In the client group, a client's card lists what a client may use.
            client_card = await _help_card(chat, "黄蕾", CLIENT)
            await sandbox.press("黄蕾", client_card, "deliverables")
            await settled(app)
            examples = (await sandbox.card(client_card)).data["examples"]
            assert "- 交付物" in examples and "- 提交" not in examples and "豁免" not in examples
            assert sandbox.card_warnings() == []
        finally:
            await asyncio.wait_for(app.stop(), 30)
