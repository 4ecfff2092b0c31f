"""Cards in the web page's JSON views: card messages with their latest data, pinned cards, a fingerprint.

A card message in a transcript is `msgtype: "interactiveCard"` with
`card: {outTrackId, templateId, data, buttons: [{id, text, …}], title, status, body,
fields, lists, inputs, links, pinned, lastPress, version}`: always the card's latest
data, the asking user's private data merged in. Cards a group's `recipients` leave out
are not in that user's transcript.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from .recorder import Record, SentMessage
from .web_views import record_view
from .world import User

if TYPE_CHECKING:
    from .emulator import Emulator


def message_views(emulator: "Emulator", records: Iterable[Record], viewer: User) -> list[dict[str, Any]]:
    cards = emulator.cards
    views = []
    for record in records:
        view = record_view(emulator.world, record)
        if isinstance(record, SentMessage) and record.msgtype == "interactiveCard":
            card = cards.message_card(record.params)
            if card is None or not cards.sees_message(card, record.conversation_id, viewer):
                continue
            view["card"] = cards.view(card, viewer, conversation_id=record.conversation_id)
        views.append(view)
    return views


def top_card_view(emulator: "Emulator", conversation_id: str, viewer: User) -> dict[str, Any] | None:
    card = emulator.cards.top_card(conversation_id, viewer)
    return emulator.cards.view(card, viewer, conversation_id=conversation_id) if card else None


def conversation_cards(emulator: "Emulator", conversation_id: str, viewer: User) -> list[dict[str, Any]]:
    """The card messages of one conversation the viewer sees, latest data."""
    cards = emulator.cards
    return [cards.view(card, viewer, conversation_id=conversation_id)
            for card in cards.in_conversation(conversation_id)
            if cards.sees_message(card, conversation_id, viewer)]
