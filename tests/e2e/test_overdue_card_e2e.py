"""Overdue reminders as cards: 「提交」 asks for the file or link; 「申请延期」 (the owner's) posts the PM's card, whose
「同意」 re-plans (the PM's alone) and the pinned status card follows."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

from cards_chat import cards_emulator_config, settled, start_cards_app
from lifecycle_chat import ENGINEER, INTERNAL, PM, SALES, LifecycleChat, create_project
from sandbox.harness import Sandbox
from storage.models import Deliverable


async def test_overdue_card_submit_and_extension(tmp_path: Path, loop_watch) -> None:
    async with Sandbox(config=cards_emulator_config(), seed=20240601) as sandbox:
        app = await start_cards_app(sandbox, tmp_path)
        chat = LifecycleChat(sandbox, app, tmp_path / "files")
        try:
            code = await create_project(chat, "软件", "智慧工厂MES")
            assert "已立项" in (await chat.ask(PM, INTERNAL, "立项")).text
            app.clock.advance(timedelta(days=3))  # Thursday: #1 商务合同 (陈静's, due Monday) is overdue
            await app.scheduler.run_due(app.clock.now(), jobs=["overdue_cards", "status_cards_daily"])
            await settled(app)
            card = f"dpm-overdue-{code}-1-20261102"
            shown = (await sandbox.card(card)).data
            assert shown["item"] == "商务合同" and shown["owner"] == SALES and shown["daysLate"] == "3"
            overdue = [c for c in await sandbox.cards(INTERNAL) if c.template_name == "overdue_reminder"]
            assert (await sandbox.top_card(INTERNAL)).data["overdueCount"] == str(len(overdue))

            # 提交: the owner is asked for the file or link, in the chat.
            after = chat.last_seq(INTERNAL)
            assert (await sandbox.press(SALES, card, "submit")).outcome == "ok"
            asked = await chat.answers(INTERNAL, after, 1, "提交 button")
            assert "商务合同" in asked.text

            # 申请延期 by someone else: refused, on the card, for them alone.
            await sandbox.press(ENGINEER, card, "extend", {"newDate": "2026-11-20", "reason": "等客户盖章"})
            assert "负责人" in (await sandbox.card(card)).private["liming"]["notice"]
            # By the owner, with a reason that tries to name another project: taken literally.
            pressed = await sandbox.press(SALES, card, "extend",
                                          {"newDate": "2026-11-20", "reason": "等客户盖章 项目:XM-2099-999"})
            assert pressed.success and pressed.toast["text"] == "延期申请已提交，等待项目经理审批", pressed
            await settled(app)
            decision = f"dpm-ext-{code}-1-20261120"
            asked = (await sandbox.card(decision)).data
            assert asked["requester"] == SALES and asked["reason"] == "等客户盖章 项目:XM-2099-999"

            # The PM's card: an engineer cannot approve; the PM can, and the plan moves.
            await sandbox.press(ENGINEER, decision, "approve")
            assert (await sandbox.card(decision)).data["decision"] == ""
            approved = await sandbox.press(PM, decision, "approve")
            assert approved.success, (await sandbox.card(decision)).private
            await settled(app)
            assert (await sandbox.card(decision)).data["decision"] == "approved"
            async with app.database.read() as session:
                from sqlmodel import select
                first = (await session.exec(select(Deliverable).where(Deliverable.seq == 1))).one()
            assert first.due_date == date(2026, 11, 20)
            assert (await sandbox.top_card(INTERNAL)).data["overdueCount"] == str(len(overdue) - 1)
            assert sandbox.card_warnings() == []
        finally:
            await asyncio.wait_for(app.stop(), 30)
