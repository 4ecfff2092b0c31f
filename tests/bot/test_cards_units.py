"""Card pieces without the emulator: the data DingTalk wants (strings), a card write as an outbox row stores it,
a callback frame as the typed press, the catalog's fallback rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.card_catalog import SHIPPED, CardCatalog
from bot.card_press import CardAction, PressActions, parse_card_callback, press_incoming
from bot.config import CardsConfig
from bot.dingtalk.cards import CardWrite, card_values


def test_card_values_are_strings_as_dingtalk_wants() -> None:
    values = card_values({"a": "x", "n": 3, "b": True, "items": [{"name": "合同"}]})
    assert values == {"a": "x", "n": "3", "b": "true", "items": '[{"name":"合同"}]'}


def test_a_card_write_survives_the_outbox_row() -> None:
    write = CardWrite("create", "dpm-status-XM-2026-001-1", template_id="t.schema", data={"phase": "启动"},
                      group="cid1", pin="cid1", pin_expires_ms=5, preview="p", status_card=True, user_id_type=2)
    assert CardWrite.from_params(json.loads(json.dumps(write.as_params()))) == write
    with pytest.raises(ValueError):
        CardWrite("create", "x" * 65, template_id="t", group="cid1")
    with pytest.raises(ValueError):
        CardWrite("create", "no-space", template_id="t")


def test_a_callback_frame_becomes_a_press_and_then_the_command_it_stands_for() -> None:
    content = json.dumps({"cardPrivateData": {"actionIds": ["advance"],
                                              "params": {"action": "advance", "projectId": "XM-2026-001"}}})
    data = json.dumps({"type": "actionCallback", "outTrackId": "dpm-status-XM-2026-001-1", "corpId": "dingA",
                       "userId": "wangjianguo", "userIdType": 1, "spaceType": "one_box", "spaceId": "cid1",
                       "content": content, "value": content, "extension": "{}"})
    press = parse_card_callback({"messageId": "m1"}, data)
    assert (press.action, press.user_id, press.conversation_id, press.space_type) == (
        "advance", "wangjianguo", "cid1", "one_box")
    actions = PressActions()
    actions.add(CardAction("advance", lambda p: f"推进 项目:{p.params['projectId']}", on_ok={"done": True}))
    assert actions.text_of(press) == "推进 项目:XM-2026-001" and actions.on_ok(press) == {"done": "true"}
    incoming = press_incoming(press, actions.text_of(press), corp_id="dingA", is_group=True)
    assert incoming.sender_id == "wangjianguo" and incoming.message_id == "m1" and incoming.session_webhook is None
    with pytest.raises(ValueError):
        actions.add(CardAction("advance", "推进"))


def test_the_catalog_falls_back_without_cards_or_template_ids(tmp_path: Path) -> None:
    assert not CardCatalog.load(CardsConfig(enabled=False))
    # The shipped definitions have no production ids: nothing is sent as a card until they are configured.
    assert not CardCatalog.load(CardsConfig(enabled=True))
    configured = CardCatalog.load(CardsConfig(enabled=True, template_ids={"help": "abc.schema"}))
    assert configured.get("help").template_id == "abc.schema" and configured.get("project_status") is None
    sandbox = CardCatalog.load(CardsConfig(enabled=True, template_env="sandbox"))
    status = sandbox.get("project_status")
    assert status is not None and "notice" in status.private and "phase" in status.variables
    assert {p.stem for p in SHIPPED.glob("*.json")} == {"project_status", "weekly_report", "overdue_reminder",
                                                         "extension_request", "approval_status", "help"}
