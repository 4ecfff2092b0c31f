"""The weekly report as a card in the client group, and the client's acknowledgement recorded as evidence: by a
press on the card, or (when clicks by another organization's people produce no callback) by a reply in the group;
shown on the card and in the internal group, once per person; internal content never on the client's card."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from cards_chat import cards_emulator_config, settled, start_cards_app
from lifecycle_chat import CLIENT, INTERNAL, PM, LifecycleChat, create_project
from sandbox.harness import Sandbox
from storage.models import ReportAck

CLIENT_PERSON, CLIENT_PM = "黄蕾", "高翔"


async def _report_card(chat: LifecycleChat) -> str:
    code = await create_project(chat, "软件", "智慧工厂MES")
    assert "已立项" in (await chat.ask(PM, INTERNAL, "立项")).text
    await chat.ask(PM, INTERNAL, "周报 发送", replies=3)
    await asyncio.wait_for(chat.app.scheduler.wait_idle(), 60)
    await settled(chat.app)
    cards = [c for c in await chat.sandbox.cards(CLIENT) if c.template_name == "weekly_report"]
    assert len(cards) == 1, cards
    card = cards[0]
    assert card.data["ackStatus"] == "" and card.data["ackLabel"] == "待确认" and code in card.data["reportId"]
    files = [m for m in chat.sandbox.sent(CLIENT) if m.msgtype == "file"]
    assert files and files[-1].file_name == card.data["docName"]  # the .docx beside the card
    # The client's card carries the client version only: nothing of the internal report.
    internal = [m for m in chat.sandbox.sent(INTERNAL) if "内部" in (m.title or "")]
    assert all("逾期" not in value and "风险" not in value for value in card.data.values()) or not internal
    return card.out_track_id


async def _acks(chat: LifecycleChat) -> list[ReportAck]:
    async with chat.app.database.read() as session:
        return list((await session.exec(select(ReportAck))).all())


@pytest.mark.parametrize("cross_org", [True, False], ids=["press", "reply"])
async def test_the_client_acknowledges_the_weekly_report(tmp_path: Path, loop_watch, cross_org: bool) -> None:
    async with Sandbox(config=cards_emulator_config(cross_org_card_callbacks=cross_org), seed=20240601) as sandbox:
        app = await start_cards_app(sandbox, tmp_path)
        chat = LifecycleChat(sandbox, app, tmp_path / "files")
        try:
            card = await _report_card(chat)
            internal_before = chat.last_seq(INTERNAL)
            pressed = await sandbox.press(CLIENT_PERSON, card, "ack")
            if cross_org:
                assert pressed.outcome == "ok" and pressed.toast["text"] == "已确认，谢谢", pressed
            else:
                # No callback for another organization's click: the card invites a reply, which does the same.
                assert pressed.outcome == "cross-org"
                assert "回复「已阅」" in (await sandbox.card(card)).data["hint"]
                answer = await chat.ask(CLIENT_PERSON, CLIENT, "已阅")
                assert "已记录您对" in answer.text
            await settled(app)
            shown = (await sandbox.card(card)).data
            assert shown["ackStatus"] == "acked" and shown["ackLabel"] == "已确认" and CLIENT_PERSON in shown["ackBy"]
            [ack] = await _acks(chat)
            assert (ack.person_name, ack.status, ack.via) == (CLIENT_PERSON, "acked", "card" if cross_org else "reply")
            told = await chat.wait_for(INTERNAL, "周报客户反馈", after=internal_before)
            assert CLIENT_PERSON in told.text and "已确认已阅" in told.text

            # Asked again by the same person: recorded once.
            again = await chat.ask(CLIENT_PERSON, CLIENT, "已阅")
            assert "已反馈过" in again.text
            # The client's PM has a question: recorded with it, the PM's group is told, the text stays literal.
            question = "第三周的[测试计划](http://evil.example)为什么推迟？"
            await chat.ask(CLIENT_PM, CLIENT, f"有疑问 {question}")
            told = await chat.wait_for(INTERNAL, "有疑问", after=internal_before)
            assert "](http" not in told.text and "测试计划" in told.text
            assert sorted(a.status for a in await _acks(chat)) == ["acked", "question"]
            assert sandbox.card_warnings() == []

            # The next week's internal report lists what the client answered on this one.
            app.clock.advance(timedelta(days=7))
            after = chat.last_seq(INTERNAL)
            await sandbox.say(PM, INTERNAL, "周报 发送")
            await asyncio.wait_for(app.scheduler.wait_idle(), 60)
            report = await chat.wait_for(INTERNAL, "周报客户反馈", after=after)
            assert f"{CLIENT_PERSON}：已确认" in report.text and f"{CLIENT_PM}：有疑问" in report.text
            assert "](http" not in report.text
        finally:
            await asyncio.wait_for(app.stop(), 30)
