"""A press on an interactive card (its Stream CALLBACK on ``/v1.0/card/instances/callback``), the second kind of
incoming event: it goes through the same door as a message.

At the edge the frame becomes a typed ``CardPress``; the inbox persists it (unique by the frame's messageId, so a
duplicated or redelivered callback is dropped) before the ACK. The button's parameters name an action, and the
action a command text (``PressActions``, declared by the features: ``advance`` -> ``推进``); the press then runs as
an ``Incoming`` from the presser in the card's conversation, so it gets the same routing, roles, project and unit of
work as the typed command. Its answer:

* the command's replies go to the chat (the group, or the presser's 1:1 chat), like a typed command's;
* a refusal (no right, a conflict, bad input) goes to the presser alone, as the card's private ``notice``;
* a change of the card itself (``answer_on_card``) goes into the ACK's response, which DingTalk applies to the card
  at once (reference part 2 §1.8: never call the update API for the card being answered); when the answer is late
  for the ACK, the same change goes through the outbox as an update.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.context import current_unit_of_work
from bot.dingtalk.cards import CardWrite, card_values
from bot.incoming import Incoming
from bot.outbox import enqueue

CARD_CALLBACK_TOPIC = "/v1.0/card/instances/callback"
# DingTalk waits 2 s for the ACK (§1.8): a run finished within this budget answers in the ACK itself.
CARD_ANSWER_BUDGET_SECONDS = 1.5


@dataclass(frozen=True, slots=True)
class CardPress:
    message_id: str  # the frame's messageId: reused by DingTalk on redelivery, the dedupe key
    out_track_id: str
    user_id: str  # the presser (userId; for another organization's user, their own org's id)
    corp_id: str
    conversation_id: str  # the card's conversation (spaceId)
    space_type: str  # "im" or "one_box" (the pinned card)
    action: str  # the clicked component's id (actionIds[0])
    params: dict[str, Any] = field(default_factory=dict)  # the button's 回传参数 and the typed inputs
    received_at: datetime | None = None
    user_id_type: int = 1  # 2: ``user_id`` is a unionId (cards that people of other organizations see)


def parse_card_callback(headers: Mapping[str, Any], data: Any) -> CardPress:
    raw = json.loads(data) if isinstance(data, (str, bytes)) else dict(data or {})
    content = raw.get("content") or raw.get("value") or "{}"
    content = json.loads(content) if isinstance(content, str) else content
    private = (content or {}).get("cardPrivateData") or {}
    action_ids = private.get("actionIds") or []
    params = private.get("params") or {}
    return CardPress(
        message_id=str(headers.get("messageId") or ""),
        out_track_id=str(raw.get("outTrackId") or ""),
        user_id=str(raw.get("userId") or ""),
        corp_id=str(raw.get("corpId") or ""),
        conversation_id=str(raw.get("spaceId") or ""),
        space_type=str(raw.get("spaceType") or ""),
        action=str(params.get("action") or (action_ids[0] if action_ids else "")),
        params=dict(params) if isinstance(params, dict) else {},
        received_at=datetime.now(timezone.utc).replace(tzinfo=None),
        user_id_type=2 if str(raw.get("userIdType")) == "2" else 1,
    )


# ---- actions -> command texts --------------------------------------------------------------------------------

ToText = Callable[[CardPress], str]


@dataclass(frozen=True)
class CardAction:
    """A feature's card button: ``action`` stands for the command ``to_text`` (a text, or ``press -> text``); a press
    runs it as the presser, with the same route, roles and unit of work as the typed command. ``on_ok``: what the
    card shows once that command succeeded (public values by key)."""

    action: str
    to_text: ToText | str
    on_ok: Mapping[str, Any] | None = None


class PressActions:
    """Action name -> the command text a press stands for, and what the card shows once that command succeeded
    (``on_ok``: public values by key). Features declare theirs (``Feature.card_actions``)."""

    def __init__(self) -> None:
        self._by_action: dict[str, tuple[ToText, dict[str, str]]] = {}

    def add(self, card_action: CardAction) -> None:
        action, to_text, on_ok = card_action.action, card_action.to_text, card_action.on_ok
        if action in self._by_action:
            raise ValueError(f"card action {action!r} declared twice")
        text = to_text if callable(to_text) else (lambda _press, fixed=to_text: fixed)
        self._by_action[action] = (text, card_values(on_ok or {}))

    def text_of(self, press: CardPress) -> str | None:
        found = self._by_action.get(press.action)
        return found[0](press) if found is not None else None

    def on_ok(self, press: CardPress) -> dict[str, str]:
        found = self._by_action.get(press.action)
        return dict(found[1]) if found is not None else {}


def press_incoming(press: CardPress, text: str, *, corp_id: str, is_group: bool) -> Incoming:
    """The press as the message it stands for: ``text`` from the presser, in the card's conversation, without a
    sessionWebhook (answers go through the OpenAPI)."""
    # A unionId (userIdType 2) is resolved to the person by the directory, as a message's senderUnionId is.
    by_union = press.user_id_type == 2
    return Incoming(
        message_id=press.message_id, msg_id=f"card:{press.message_id}", msgtype="text",
        conversation_id=press.conversation_id, conversation_type="2" if is_group else "1",
        sender_id="" if by_union else press.user_id, sender_nick="", text=text,
        created_at=press.received_at, sender_corp_id=press.corp_id or None, chatbot_corp_id=corp_id or None,
        sender_union_id=press.user_id if by_union else None,
    )


# ---- answering on the card -----------------------------------------------------------------------------------


@dataclass
class CardAnswer:
    """What a press changes on its own card: public values by key, and the presser's private values."""

    out_track_id: str
    public: dict[str, str] = field(default_factory=dict)
    private: dict[str, str] = field(default_factory=dict)

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {"cardUpdateOptions": {"updateCardDataByKey": True, "updatePrivateDataByKey": True}}
        if self.public:
            body["cardData"] = {"cardParamMap": self.public}
        if self.private:
            body["userPrivateData"] = {"cardParamMap": self.private}
        return body


async def answer_on_card(session: AsyncSession, out_track_id: str, conversation: Any, public: Mapping[str, Any], *,
                         key: str) -> None:
    """Change card ``out_track_id``: in the ACK when the running unit of work is a press on that very card, else
    an outbox update (``key``: its business key; ``conversation``: the target its writes are ordered with)."""
    values = card_values(public)
    work = current_unit_of_work()
    answer = work.card_answer if work is not None else None
    if isinstance(answer, CardAnswer) and answer.out_track_id == out_track_id:
        answer.public.update(values)
        return
    await enqueue(session, key, conversation, CardWrite("update", out_track_id, data=values, by_key=True))


__all__ = ["CARD_CALLBACK_TOPIC", "CardAction", "CardAnswer", "CardPress", "PressActions", "answer_on_card", "parse_card_callback",
           "press_incoming"]
