"""The approval status card: posted in the internal group when 立项 is submitted, updated in place as each leader
acts, with names, results and remarks; the pinned status card shows the approval waiting, then the new status."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from cards_chat import cards_emulator_config, settled, start_cards_app
from lifecycle_chat import INTERNAL, LEADER, PM, VP, LifecycleChat, approve, create_project, introduce_leaders
from sandbox.harness import Sandbox


async def test_the_approval_card_follows_each_approver(tmp_path: Path, loop_watch) -> None:
    async with Sandbox(config=cards_emulator_config(), seed=20240601) as sandbox:
        app = await start_cards_app(sandbox, tmp_path, approvals=True)
        chat = LifecycleChat(sandbox, app, tmp_path / "files")
        try:
            code = await create_project(chat, "软件", "智慧工厂MES")
            await introduce_leaders(chat, code)
            after = chat.last_seq(INTERNAL)
            await sandbox.say(PM, INTERNAL, "立项 内部启动会已开")
            await chat.wait_for(INTERNAL, "已提交立项申请", after=after)
            await settled(app)
            [card] = [c for c in await sandbox.cards(INTERNAL) if c.template_name == "approval_status"]
            assert card.data["state"] == "审批中" and card.data["kind"] == "立项"
            assert [s["result"] for s in json.loads(card.data["steps"])] == ["待审批", "待审批"]
            status = await sandbox.top_card(INTERNAL)
            assert status.data["approvalsWaiting"] == "1"

            await approve(chat, "立项审批通过", ("同意立项", "预算内，同意"))
            await settled(app)
            card = await sandbox.card(card.out_track_id)
            steps = json.loads(card.data["steps"])
            assert card.data["state"] == "已通过" and card.data["stateColor"] == "green"
            assert [(s["name"], s["result"], s["remark"]) for s in steps] == [
                (LEADER, "同意", "同意立项"), (VP, "同意", "预算内，同意")]
            # One card, updated in place: no second approval card in the group.
            assert len([c for c in await sandbox.cards(INTERNAL) if c.template_name == "approval_status"]) == 1
            status = await sandbox.top_card(INTERNAL)
            assert status.data["approvalsWaiting"] == "0" and "已立项" in status.data["health"]
            assert sandbox.card_warnings() == []
        finally:
            await asyncio.wait_for(app.stop(), 30)
