"""The web page's card calls (sandbox-only, under `/sandbox/api/`).

  GET  cards?user=&conversation=          the conversation's card messages and its pinned card, latest data
  POST cards/act {user, outTrackId, action, params, conversation?, pinned?}
                                          press a button (or submit the card's inputs) as that user;
                                          answers what they saw: outcome, toast, the card after it
  GET  switches / POST switches {…}       the card switches of the emulator (UNCONFIRMED platform points)

A press acts through `emulator.cards.press`, exactly as `Sandbox.press` does: a CALLBACK
frame to the bot, at most `card_callback_timeout` of waiting for its ACK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .card_views import conversation_cards, top_card_view
from .web_api import WebError, _body, _conversation, _user, endpoint

if TYPE_CHECKING:
    from .emulator import Emulator

MAX_INPUT = 2000        # characters in one card input (the definition's maxLength is checked too)
# Page name -> EmulatorConfig field: switches the page may flip at run time.
SWITCHES = {"pinInOrdinaryGroups": "pin_in_ordinary_groups", "crossOrgCardCallbacks": "cross_org_card_callbacks",
            "cardCallbackRedelivery": "card_callback_redelivery"}


@endpoint
async def get_cards(request: web.Request, emulator: "Emulator") -> Any:
    user = _user(emulator, request.query.get("user"))
    conv = _conversation(emulator, user, request.query.get("conversation"))
    return {"cards": conversation_cards(emulator, conv["id"], user),
            "topCard": top_card_view(emulator, conv["id"], user)}


@endpoint
async def post_card_action(request: web.Request, emulator: "Emulator") -> Any:
    body = await _body(request)
    user = _user(emulator, body.get("user"))
    out_track_id = body.get("outTrackId")
    if not isinstance(out_track_id, str) or out_track_id not in emulator.cards.cards:
        raise WebError(f"卡片不存在：{out_track_id}")
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise WebError("action 必须是按钮的组件 id")
    params = body.get("params") or {}
    if not isinstance(params, dict) or not all(isinstance(v, str) and len(v) <= MAX_INPUT for v in params.values()):
        raise WebError(f"params 是输入框 id 到所填文字的对象，每项不超过 {MAX_INPUT} 字")
    conversation = None
    if body.get("conversation"):
        conversation = _conversation(emulator, user, body["conversation"])["id"]
    pinned = body.get("pinned")
    if pinned not in (None, True, False):
        raise WebError("pinned 只能是 true 或 false")
    press = await emulator.cards.press(user, out_track_id, action, params, conversation=conversation, pinned=pinned)
    card = emulator.cards.card(out_track_id)
    return {"outcome": press.outcome, "sent": press.sent, "success": press.success, "toast": press.toast,
            "messageId": press.message_id,
            "card": emulator.cards.view(card, user, conversation_id=press.conversation_id)}


def _switches(emulator: "Emulator") -> dict[str, Any]:
    return {name: getattr(emulator.config, field) for name, field in SWITCHES.items()}


@endpoint
async def get_switches(request: web.Request, emulator: "Emulator") -> Any:
    return _switches(emulator)


@endpoint
async def post_switches(request: web.Request, emulator: "Emulator") -> Any:
    body = await _body(request)
    unknown = set(body) - set(SWITCHES)
    if unknown:
        raise WebError(f"没有这个开关：{'、'.join(sorted(unknown))}；可用：{'、'.join(SWITCHES)}")
    if not all(isinstance(v, bool) for v in body.values()):
        raise WebError("开关的值只能是 true 或 false")
    for name, value in body.items():
        setattr(emulator.config, SWITCHES[name], value)
    return _switches(emulator)


# (method, path under /sandbox/api, handler), mounted by `web.setup_web`.
ROUTES = (
    ("GET", "/cards", get_cards),
    ("POST", "/cards/act", post_card_action),
    ("GET", "/switches", get_switches),
    ("POST", "/switches", post_switches),
)
