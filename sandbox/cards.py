"""The card platform (互动卡片, P2 §1): card instances, spaces, pinned cards, updates, callbacks.

A card is created from a template with string data (public `cardParamMap`, private
maps per user) and delivered to spaces named by an `openSpaceId`
(`dtv1.card//IM_GROUP.<cid>;IM_ROBOT.<userId>;ONE_BOX.<cid>`): a group message, a
message in the user's 1:1 chat with the robot, or the group's pinned top box (吊顶)
until `expiredTimeMillis` on the emulator clock or a close call. Every change of a
card's data is kept as a `CardVersion` for assertions.

A user pressing a button (`press`) becomes a Stream CALLBACK frame on
`/v1.0/card/instances/callback` for cards created with `callbackType: "STREAM"`; the
ACK's `response` (cardData, userPrivateData, cardUpdateOptions) updates the card.
No ACK within `card_callback_timeout` (2 s, emulator clock) or a code other than 200
is a failed request: failure toast, no update, no redelivery (P2 §7.2). The toast is
picked by the button's success condition from the card's definition.

Errors are `CardError`s carrying the new-API body (`param.*`, HTTP 400); the routes in
`openapi_cards` turn them into responses. Everything runs on the emulator loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .card_templates import DEFAULT_FAILURE_TOAST, Button, CardCatalog, CardTemplate, card_string
from .clock import Clock, TimerHandle
from .config import EmulatorConfig
from .errors import SandboxError
from .gateway import AckRecord, StreamGateway
from .ids import IdFactory
from .messages import Normalized
from .signals import ChangeSignal
from .world import App, User, World

log = logging.getLogger(__name__)

CARD_CALLBACK_TOPIC = "/v1.0/card/instances/callback"
OPEN_SPACE_PREFIX = "dtv1.card//"
SPACE_MODELS = {"IM_GROUP": "imGroupOpenSpaceModel", "IM_ROBOT": "imRobotOpenSpaceModel",
                "ONE_BOX": "topOpenSpaceModel", "IM_SINGLE": "imSingleOpenSpaceModel",
                "CO_FEED": "coFeedOpenSpaceModel"}
DELIVER_MODELS = {"IM_GROUP": "imGroupOpenDeliverModel", "IM_ROBOT": "imRobotOpenDeliverModel",
                  "ONE_BOX": "topOpenDeliverModel", "IM_SINGLE": "imSingleOpenDeliverModel",
                  "CO_FEED": "coFeedOpenDeliverModel"}
# Callback `spaceType` per space (P2 §7.2 default; the real values for 1:1 and pinned are UNCONFIRMED).
CALLBACK_SPACE_TYPES = {"IM_GROUP": "im", "IM_ROBOT": "im", "ONE_BOX": "one_box"}
KEY_MAX_BYTES = 100
VALUE_MAX_BYTES = 1024
STREAM_CONTENT_MAX_BYTES = 1024
PIN_REFUSED = "该会话不支持吊顶卡片：吊顶（ONE_BOX）仅支持场景群和酷应用群"


class CardError(Exception):
    """A refused card API call: HTTP status and the new-API `code` / `message`."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{status} {code}: {message}")
        self.code, self.message, self.status = code, message, status


def _param(code: str, message: str) -> CardError:
    return CardError(f"param.{code}", message)


class _SpaceFailure(Exception):
    """One space of a delivery failed: `success:false` + errorMsg under HTTP 200."""


@dataclass(frozen=True)
class CardVersion:
    number: int
    at: int                                 # ms, emulator clock
    source: str                             # create, update, callback, streaming
    actor: str                              # the API name, or the user id of a press
    public: dict[str, str]
    private: dict[str, dict[str, str]]      # internal userId -> map


@dataclass
class Placement:
    """The card as a message in a conversation (IM_GROUP or IM_ROBOT)."""

    space_type: str
    space_id: str
    conversation_id: str
    carrier_id: str
    message_seq: int
    recipients: tuple[str, ...] | None      # a group's `recipients`: only they see it
    delivered_at: int


@dataclass
class Pin:
    """The card in a conversation's top box (吊顶)."""

    conversation_id: str
    expires_at: int                         # ms
    user_ids: tuple[str, ...] | None        # topOpenDeliverModel.userIds: only they see it
    platforms: tuple[str, ...]
    pinned_at: int
    order: int = 0                          # pins are shown newest first, even within one millisecond
    state: str = "pinned"                   # pinned, closed, expired
    ended_at: int | None = None
    ended_by: str | None = None
    timer: TimerHandle | None = field(default=None, repr=False)

    def active(self, now_ms: int) -> bool:
        return self.state == "pinned" and now_ms < self.expires_at


@dataclass
class CardPress:
    """What one press of a card button did, as the presser saw it."""

    out_track_id: str
    user_id: str
    action: str
    params: dict[str, Any]                  # the callback params (what the bot receives)
    space_type: str                         # IM_GROUP, IM_ROBOT or ONE_BOX
    conversation_id: str
    at: int
    # ok (ACK 200), timeout, rejected (ACK code != 200), no-callback (card not STREAM),
    # cross-org (switch off), no-connection, bad-response, input-required (not sent)
    outcome: str = "ok"
    success: bool = False
    toast: dict[str, str] | None = None     # {"kind": success|failure|hint, "text": …}
    message_id: str | None = None           # the CALLBACK frame's messageId
    sent: bool = False                      # the frame reached a connection of the bot
    ack_code: int | None = None


@dataclass(frozen=True)
class CardWarning:
    out_track_id: str
    source: str                             # API name or "callback"
    message: str
    at: int


@dataclass
class CardInstance:
    out_track_id: str
    template_id: str
    template: CardTemplate | None
    app_id: str
    callback_type: str | None
    callback_route_key: str
    user_id_type: int
    creator_id: str | None
    space_models: dict[str, dict[str, Any]]
    public: dict[str, str]
    private: dict[str, dict[str, str]]
    created_at: int
    versions: list[CardVersion] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    pins: dict[str, Pin] = field(default_factory=dict)
    stream_state: str | None = None         # AI cards: inputting, finished, failed
    stream_guids: set[str] = field(default_factory=set)
    last_press: dict[str, CardPress] = field(default_factory=dict)     # per user

    def values_for(self, user_id: str | None) -> dict[str, str]:
        """The data a user sees: public values, overridden by their private ones."""
        return {**self.public, **self.private.get(user_id or "", {})}


@dataclass(frozen=True)
class CardSnapshot:
    """A copy of a card's state, safe to hand to the test thread."""

    out_track_id: str
    template_id: str
    template_name: str | None
    app_id: str
    callback_type: str | None
    user_id_type: int
    data: dict[str, str]                    # latest public data
    private: dict[str, dict[str, str]]      # latest private data per internal userId
    versions: tuple[CardVersion, ...]
    placements: tuple[tuple[str, str], ...] # (space type, conversation id)
    pinned: dict[str, int]                  # conversation id -> expiry (ms), active pins only
    pins: tuple[tuple[str, str, int], ...]  # (conversation id, state, expiry) of every pin
    stream_state: str | None

    def data_for(self, user_id: str) -> dict[str, str]:
        return {**self.data, **self.private.get(user_id, {})}


class CardPlatform:
    def __init__(self, *, world: World, clock: Clock, ids: IdFactory, config: EmulatorConfig,
                 gateway: StreamGateway, signal: ChangeSignal, catalog: CardCatalog,
                 record_message: Callable[..., Any]):
        self.world = world
        self.clock = clock
        self.ids = ids
        self.config = config
        self.gateway = gateway
        self.signal = signal
        self.catalog = catalog
        self._record_message = record_message
        self.cards: dict[str, CardInstance] = {}
        self.presses: list[CardPress] = []
        self.warnings: list[CardWarning] = []
        self._waiting: dict[str, asyncio.Future[AckRecord | None]] = {}
        self._pin_order = itertools.count(1)
        gateway.add_listener(self._on_gateway)

    # ---- request parsing ----------------------------------------------------------
    @staticmethod
    def _user_id_type(body: Mapping[str, Any]) -> int:
        value = body.get("userIdType", 1)
        if value in (None, ""):
            return 1
        if value not in (1, 2, "1", "2"):
            raise _param("invalid", "userIdType只能是1（userId）或2（unionId）")
        return int(value)

    def resolve_user(self, key: Any, user_id_type: int) -> User | None:
        """A userId of this organization (type 1) or anyone's unionId (type 2)."""
        key = str(key)
        if user_id_type == 1:
            user = self.world.users.get(key)
            # Outsiders have no userId in this organization (P2 §1.3: cards for them use unionIds).
            return user if user is not None and not user.external else None
        return next((u for u in self.world.users.values() if u.union_id == key), None)

    def user_key(self, user: User, user_id_type: int) -> str:
        """How a card with this userIdType names a user (callbacks, deliver results)."""
        return user.union_id if user_id_type == 2 else user.user_id

    @staticmethod
    def _param_map(raw: Any, where: str) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise _param("invalid", f"{where}必须是对象 {{\"cardParamMap\": {{…}}}}")
        values = raw.get("cardParamMap") or {}
        if not isinstance(values, dict):
            raise _param("invalid", f"{where}.cardParamMap必须是对象")
        return values

    def _clean(self, template: CardTemplate | None, values: Mapping[str, Any], *, private: bool,
               notes: list[str]) -> dict[str, str]:
        """Check sizes (errors) and the template contract (warnings); values become strings."""
        cleaned: dict[str, str] = {}
        for key, value in values.items():
            if len(str(key).encode()) > KEY_MAX_BYTES:
                raise _param("invalid", f"cardParamMap的key长度不能超过{KEY_MAX_BYTES}字节：{str(key)[:40]}…")
            if not isinstance(value, str):
                notes.append(f"{key!r} is a {type(value).__name__}, not a string: card values are strings "
                             "(numbers and booleans as \"1\", \"true\"; objects and arrays as JSON text)")
                value = "" if value is None else card_string(value)
            if len(value.encode()) > VALUE_MAX_BYTES:
                raise _param("invalid", f"cardParamMap的value长度不能超过1KB：{key}")
            keep = True
            if template is not None:
                warning, keep = template.check_value(str(key), value, private=private)
                if warning:
                    notes.append(warning)
            if keep:
                cleaned[str(key)] = value
        return cleaned

    def _private_maps(self, template: CardTemplate | None, raw: Any, user_id_type: int,
                      notes: list[str]) -> dict[str, dict[str, str]]:
        if raw in (None, {}):
            return {}
        if not isinstance(raw, dict):
            raise _param("invalid", "privateData必须是对象 {\"<userId>\": {\"cardParamMap\": {…}}}")
        result: dict[str, dict[str, str]] = {}
        for key, entry in raw.items():
            user = self.resolve_user(key, user_id_type)
            if user is None:
                raise _param("userIdNotExist", f"用户不存在：{key}（userIdType={user_id_type}）")
            result[user.user_id] = self._clean(template, self._param_map(entry, f"privateData.{key}"),
                                               private=True, notes=notes)
        return result

    def _check_total(self, public: Mapping[str, str], private: Mapping[str, Mapping[str, str]]) -> None:
        maps = [public, *private.values()]
        total = sum(len(k.encode()) + len(v.encode()) for m in maps for k, v in m.items())
        if total > self.config.card_max_data_bytes:
            raise _param("invalid", f"卡片数据总大小不能超过{self.config.card_max_data_bytes // 1024}KB")

    @staticmethod
    def parse_open_space_id(raw: Any) -> list[tuple[str, str]]:
        """`dtv1.card//TYPE.id;TYPE.id` -> [(TYPE upper case, id)]; both cases accepted (P2 §7.2)."""
        if not raw:
            raise _param("openSpaceIdEmpty", "openSpaceId不能为空")
        text = str(raw)
        if not text.startswith(OPEN_SPACE_PREFIX):
            raise _param("openSpaceIdInvalid", f"openSpaceId格式不正确，应以{OPEN_SPACE_PREFIX}开头")
        spaces = []
        for item in text[len(OPEN_SPACE_PREFIX):].split(";"):
            if not item:
                continue
            space_type, _, space_id = item.partition(".")
            space_type = space_type.upper()
            if space_type not in SPACE_MODELS or not space_id:
                raise _param("openSpaceIdInvalid", f"openSpaceId格式不正确：{item}")
            spaces.append((space_type, space_id))
        if not spaces:
            raise _param("openSpaceIdInvalid", "spaces of card is empty")
        return spaces

    def _check_deliver_models(self, spaces: list[tuple[str, str]], body: Mapping[str, Any], *,
                              missing_code: str) -> None:
        if not any(isinstance(body.get(key), dict) for key in DELIVER_MODELS.values()):
            raise _param("openDeliverModelEmpty", "投放模型不能为空：按场域传 imGroupOpenDeliverModel、"
                                                  "imRobotOpenDeliverModel 或 topOpenDeliverModel")
        for space_type in dict.fromkeys(t for t, _ in spaces):
            key = DELIVER_MODELS[space_type]
            model = body.get(key)
            if not isinstance(model, dict):
                raise _param(missing_code, f"{space_type}场域缺少投放模型{key}")
            if space_type == "IM_GROUP" and not model.get("robotCode"):
                raise _param("openDeliverModelError", "imGroupOpenDeliverModel.robotCode不能为空")
            if space_type == "ONE_BOX":
                expires = model.get("expiredTimeMillis")
                if isinstance(expires, bool) or not isinstance(expires, (int, str)) or not str(expires).isdigit():
                    raise _param("openDeliverModelError", "topOpenDeliverModel.expiredTimeMillis不能为空（毫秒时间戳）")
                if int(expires) <= self.clock.now_ms():
                    raise _param("openDeliverModelError", "topOpenDeliverModel.expiredTimeMillis必须晚于当前时间")

    @staticmethod
    def _space_models(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        models = {}
        for space_type, key in SPACE_MODELS.items():
            model = body.get(key)
            if model is None:
                continue
            if not isinstance(model, dict):
                raise _param("openSpaceModelInvalid", f"{key}必须是对象")
            if space_type == "ONE_BOX" and str(model.get("spaceType", "")).upper() != "ONE_BOX":
                raise _param("openSpaceModelInvalid", 'topOpenSpaceModel.spaceType必须是"ONE_BOX"')
            models[space_type] = model
        return models

    # ---- create / deliver ---------------------------------------------------------
    def _new_card(self, app: App, body: Mapping[str, Any], notes: list[str]) -> CardInstance:
        """Validate a create request and build the card (not stored yet)."""
        if not body:
            raise _param("empty", "参数不能为空")
        out_track_id = body.get("outTrackId")
        if not out_track_id:
            raise _param("outTrackIdEmpty", "outTrackId不能为空")
        template_id = body.get("cardTemplateId")
        if not template_id:
            raise _param("cardTemplateIdEmpty", "cardTemplateId不能为空")
        if body.get("cardData") is None:
            raise _param("cardPublicDataEmpty", "cardData不能为空")
        template = self.catalog.get(str(template_id))
        if template is None and self.catalog.strict:
            raise _param("templateNotExist", f"卡片模板不存在：{template_id}")
        if template is not None and not template.published:
            raise _param("templateUnpublished", f"卡片模板未发布：{template_id}")
        if str(out_track_id) in self.cards:
            # Reusing an outTrackId never makes a new card (P2 §1.1).
            raise _param("cardAlreadyExist", f"卡片已存在：{out_track_id}")
        callback_type = body.get("callbackType")
        if callback_type not in (None, "", "STREAM", "HTTP"):
            raise _param("invalid", 'callbackType只能是"STREAM"或"HTTP"（大写）')
        user_id_type = self._user_id_type(body)
        creator = body.get("userId")
        if creator and self.resolve_user(creator, user_id_type) is None:
            raise _param("userIdNotExist", f"用户不存在：{creator}")
        public = self._clean(template, self._param_map(body["cardData"], "cardData"), private=False, notes=notes)
        private = self._private_maps(template, body.get("privateData"), user_id_type, notes)
        self._check_total(public, private)
        return CardInstance(
            out_track_id=str(out_track_id), template_id=str(template_id), template=template, app_id=app.client_id,
            callback_type=callback_type or None, callback_route_key=str(body.get("callbackRouteKey") or ""),
            user_id_type=user_id_type, creator_id=str(creator) if creator else None,
            space_models=self._space_models(body), public=public, private=private,
            created_at=self.clock.now_ms())

    def _store(self, card: CardInstance, api: str, notes: list[str]) -> None:
        self.cards[card.out_track_id] = card
        self._version(card, "create", api)
        self._note(card, api, notes)

    def create(self, app: App, body: Mapping[str, Any], *, api: str) -> CardInstance:
        notes: list[str] = []
        card = self._new_card(app, body, notes)
        self._store(card, api, notes)
        self._changed()
        return card

    def create_and_deliver(self, app: App, body: Mapping[str, Any], *, api: str) -> tuple[CardInstance, list[dict]]:
        notes: list[str] = []
        card = self._new_card(app, body, notes)
        spaces = self.parse_open_space_id(body.get("openSpaceId"))
        self._check_deliver_models(spaces, body, missing_code="openDeliverModelEmpty")
        self._store(card, api, notes)
        results = self._deliver(app, card, spaces, body, self._user_id_type(body), api)
        self._changed()
        return card, results

    def deliver(self, app: App, body: Mapping[str, Any], *, api: str) -> list[dict]:
        if not body:
            raise _param("empty", "参数不能为空")
        if not body.get("outTrackId"):
            raise _param("outTrackIdEmpty", "outTrackId不能为空")
        spaces = self.parse_open_space_id(body.get("openSpaceId"))
        self._check_deliver_models(spaces, body, missing_code="spaceDeliverModelEmpty")
        card = self._card_of(app, body["outTrackId"])
        results = self._deliver(app, card, spaces, body, self._user_id_type(body), api)
        self._changed()
        return results

    def add_spaces(self, app: App, body: Mapping[str, Any]) -> None:
        if not body.get("outTrackId"):
            raise _param("outTrackIdEmpty", "outTrackId不能为空")
        models = self._space_models(body)
        if not models:
            raise _param("openSpaceModelInvalid", "至少需要一个场域模型（imGroupOpenSpaceModel、"
                                                  "imRobotOpenSpaceModel、topOpenSpaceModel …）")
        card = self._card_of(app, body["outTrackId"])
        card.space_models.update(models)
        self._changed()

    def _deliver(self, app: App, card: CardInstance, spaces: list[tuple[str, str]], body: Mapping[str, Any],
                 user_id_type: int, api: str) -> list[dict]:
        results = []
        for space_type, space_id in spaces:
            result: dict[str, Any] = {"spaceType": space_type, "spaceId": space_id}
            try:
                carrier = self._deliver_one(app, card, space_type, space_id, body, user_id_type, api)
            except _SpaceFailure as failure:
                result.update(success=False, errorMsg=str(failure))
            else:
                result["success"] = True
                if carrier:
                    result["carrierId"] = carrier
            results.append(result)
        return results

    def _deliver_one(self, app: App, card: CardInstance, space_type: str, space_id: str,
                     body: Mapping[str, Any], user_id_type: int, api: str) -> str | None:
        if space_type in ("IM_SINGLE", "CO_FEED"):
            raise _SpaceFailure("IM_SINGLE 仅用于酷应用单聊" if space_type == "IM_SINGLE" else "CO_FEED 场域已废弃")
        if space_type not in card.space_models:
            # Which error the platform gives is UNCONFIRMED (P2 §1.4); the fix is the same.
            raise _SpaceFailure(f"卡片创建时未声明{space_type}场域（{SPACE_MODELS[space_type]}），"
                                "请先调用 PUT /v1.0/card/instances/spaces")
        model = body[DELIVER_MODELS[space_type]]
        if space_type == "ONE_BOX":
            self._pin(app, card, space_id, model, user_id_type)
            return None
        if space_type == "IM_GROUP":
            if str(model.get("robotCode")) != app.robot_code:
                raise _SpaceFailure("robotCode与调用应用不一致")
            group = self.world.groups.get(space_id)
            if group is None or app.client_id not in group.bot_client_ids:
                raise _SpaceFailure("机器人不在该群中，或群不存在")
            conversation_id, to_user = group.conversation_id, None
        else:
            user = self.resolve_user(space_id, user_id_type)
            if user is None and user_id_type == 2:
                raise _SpaceFailure(f"用户不存在：{space_id}")
            if user is None or user.external:
                raise _SpaceFailure(f"用户不在应用的可见范围内：{space_id}")
            conversation_id, to_user = self.world.private_conversation_id(user, app), user.user_id
        existing = next((p for p in card.placements if p.conversation_id == conversation_id), None)
        if existing is not None:
            return existing.carrier_id      # already there: delivering again posts nothing new
        at_ids, at_all, recipients = self._group_delivery(model, user_id_type) if space_type == "IM_GROUP" \
            else ((), False, None)
        space_model = card.space_models.get(space_type, {})
        preview = (space_model.get("lastMessageI18n") or {}).get("ZH_CN") if isinstance(
            space_model.get("lastMessageI18n"), dict) else None
        title = self._title(card)
        message = self._record_message(
            conversation_id=conversation_id, app=app, via="openapi", api=api,
            normalized=Normalized("interactiveCard", title, preview or f"[卡片] {title}",
                                  {"outTrackId": card.out_track_id, "cardTemplateId": card.template_id}),
            raw=dict(body), at_user_ids=at_ids, is_at_all=at_all, to_user_id=to_user)
        placement = Placement(space_type, space_id, conversation_id, self.ids.process_query_key(), message.seq,
                              recipients, self.clock.now_ms())
        card.placements.append(placement)
        return placement.carrier_id

    def _group_delivery(self, model: Mapping[str, Any], user_id_type: int
                        ) -> tuple[tuple[str, ...], bool, tuple[str, ...] | None]:
        at = model.get("atUserIds") if isinstance(model.get("atUserIds"), dict) else {}
        at_all = "@ALL" in at
        at_ids = tuple(u.user_id for u in (self.resolve_user(k, user_id_type) for k in at if k != "@ALL") if u)
        raw_recipients = model.get("recipients")
        recipients = None
        if isinstance(raw_recipients, list) and raw_recipients:
            recipients = tuple(u.user_id for u in (self.resolve_user(k, user_id_type) for k in raw_recipients) if u)
        return at_ids, at_all, recipients

    def _pin(self, app: App, card: CardInstance, space_id: str, model: Mapping[str, Any], user_id_type: int) -> None:
        group = self.world.groups.get(space_id)
        if group is not None:
            if app.client_id not in group.bot_client_ids:
                raise _SpaceFailure("机器人不在该群中")
            # Every group of the world file is an ordinary group (no scene or cool-app groups).
            if not self.config.pin_in_ordinary_groups:
                raise _SpaceFailure(PIN_REFUSED)
        else:
            owner = self.world.private_conversation_owner(space_id)
            if owner is None or owner[1].client_id != app.client_id:
                raise _SpaceFailure("会话不存在，或不是本应用机器人的会话")
        raw_users = model.get("userIds")
        user_ids = None
        if isinstance(raw_users, list) and raw_users:
            user_ids = tuple(u.user_id for u in (self.resolve_user(k, user_id_type) for k in raw_users) if u)
        platforms = tuple(str(p) for p in model.get("platforms") or ())
        old = card.pins.get(space_id)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        pin = Pin(space_id, int(model["expiredTimeMillis"]), user_ids, platforms, self.clock.now_ms(),
                  next(self._pin_order))
        pin.timer = self.clock.call_at(pin.expires_at / 1000, self._expire_pin, card.out_track_id, pin)
        card.pins[space_id] = pin

    def _expire_pin(self, out_track_id: str, pin: Pin) -> None:
        card = self.cards.get(out_track_id)
        if card is not None and card.pins.get(pin.conversation_id) is pin and pin.state == "pinned":
            pin.state, pin.ended_at, pin.ended_by = "expired", self.clock.now_ms(), "expiry"
            self._changed()

    def close_top(self, app: App, out_track_id: Any, conversation_id: Any, *, by: str) -> None:
        """POST /v1.0/card/tops/close and /v2.0/im/topBoxes/close: nobody sees it any more."""
        if not out_track_id and not conversation_id:
            raise _param("empty", "参数不能为空")
        if not out_track_id:
            raise _param("outTrackIdEmpty", "outTrackId不能为空")
        known = self.world.groups.get(str(conversation_id)) is not None or \
            self.world.private_conversation_owner(str(conversation_id or "")) is not None
        if not conversation_id or not known:
            raise _param("conversationIdInvalid", f"openConversationId不合法：{conversation_id or ''}")
        card = self._card_of(app, out_track_id)
        pin = card.pins.get(str(conversation_id))
        if pin is not None and pin.state == "pinned":
            pin.state, pin.ended_at, pin.ended_by = "closed", self.clock.now_ms(), by
            if pin.timer is not None:
                pin.timer.cancel()
            self._changed()

    # ---- updates ------------------------------------------------------------------
    def update(self, app: App, body: Mapping[str, Any], *, api: str) -> None:
        """PUT /v1.0/card/instances: overwrite unless cardUpdateOptions says …ByKey (P2 §1.5)."""
        if not body:
            raise _param("empty", "参数不能为空")
        if not body.get("outTrackId"):
            raise _param("outTrackIdEmpty", "outTrackId不能为空")
        public_raw = self._param_map(body.get("cardData"), "cardData")
        if not public_raw and not body.get("privateData"):
            raise _param("cardDataAndPrivateDataBothEmpty", "cardData和privateData不能同时为空")
        card = self._card_of(app, body["outTrackId"])
        notes: list[str] = []
        public = self._clean(card.template, public_raw, private=False, notes=notes) if public_raw else None
        private = self._private_maps(card.template, body.get("privateData"), self._user_id_type(body), notes)
        options = body.get("cardUpdateOptions") if isinstance(body.get("cardUpdateOptions"), dict) else {}
        self._apply(card, public, private, options, source="update", actor=api, notes=notes)

    def _apply(self, card: CardInstance, public: dict[str, str] | None, private: dict[str, dict[str, str]],
               options: Mapping[str, Any], *, source: str, actor: str, notes: list[str]) -> None:
        new_public = card.public
        if public is not None:
            new_public = {**card.public, **public} if options.get("updateCardDataByKey") else dict(public)
        new_private = dict(card.private)
        for user_id, values in private.items():
            new_private[user_id] = ({**card.private.get(user_id, {}), **values}
                                    if options.get("updatePrivateDataByKey") else dict(values))
        self._check_total(new_public, new_private)
        card.public, card.private = new_public, new_private
        self._version(card, source, actor)
        self._note(card, actor if source != "callback" else "callback", notes)
        self._changed()

    def stream(self, app: App, body: Mapping[str, Any]) -> None:
        """PUT /v1.0/card/streaming (AI cards, P2 §1.6)."""
        if not body.get("key"):
            raise _param("stream.keyEmpty", "key不能为空")
        if body.get("content") is None:
            raise _param("stream.contentEmpty", "content不能为空")
        if not body.get("guid"):
            raise _param("stream.guidEmpty", "guid不能为空")
        card = self.cards.get(str(body.get("outTrackId") or ""))
        if card is None or card.app_id != app.client_id:
            raise _param("stream.outTrackId", "card is not exist")
        if body.get("isFull") is None:
            raise _param("stream.isFull", "isFull is null")
        content, key = str(body["content"]), str(body["key"])
        if len(content.encode()) > STREAM_CONTENT_MAX_BYTES:
            raise _param("stream.content", "content is too large")
        variable = card.template.variables.get(key) if card.template else None
        if variable is not None and variable.type == "markdown" and not body["isFull"]:
            raise _param("stream.isFull", "markdown类型的变量必须全量更新（isFull=true）")
        guid = str(body["guid"])
        if guid in card.stream_guids:
            return          # the same call again (guid is its idempotency key)
        card.stream_guids.add(guid)
        notes: list[str] = []
        # Appends may grow a value past 1 KB (≤ 3 KB advised, P2 §1.6): only the call is limited.
        value = content if body["isFull"] else card.public.get(key, "") + content
        if card.template is not None:
            warning, _ = card.template.check_value(key, value, private=False)
            notes += [warning] if warning else []
        card.stream_state = "failed" if body.get("isError") else "finished" if body.get("isFinalize") else "inputting"
        self._apply(card, {key: value}, {}, {"updateCardDataByKey": True}, source="streaming",
                    actor="card.streaming", notes=notes)

    # ---- presses and callbacks ----------------------------------------------------
    def places_for(self, card: CardInstance, user: User) -> list[tuple[str, str]]:
        """(space type, conversation id) where the user sees the card; messages first, then pins."""
        places = [(p.space_type, p.conversation_id) for p in card.placements if self._sees_placement(p, user)]
        now = self.clock.now_ms()
        places += [("ONE_BOX", cid) for cid, pin in card.pins.items() if pin.active(now) and self._sees_pin(pin, user)]
        return places

    def _sees_placement(self, placement: Placement, user: User) -> bool:
        if placement.space_type == "IM_ROBOT":
            owner = self.world.private_conversation_owner(placement.conversation_id)
            return owner is not None and owner[0].user_id == user.user_id
        group = self.world.groups.get(placement.conversation_id)
        return group is not None and user.user_id in group.member_ids and \
            (placement.recipients is None or user.user_id in placement.recipients)

    def _sees_pin(self, pin: Pin, user: User) -> bool:
        group = self.world.groups.get(pin.conversation_id)
        if group is None:
            owner = self.world.private_conversation_owner(pin.conversation_id)
            return owner is not None and owner[0].user_id == user.user_id
        return user.user_id in group.member_ids and (pin.user_ids is None or user.user_id in pin.user_ids)

    async def press(self, user: str | User, out_track_id: str, action: str, params: Mapping[str, Any] | None = None,
                    *, conversation: str | None = None, pinned: bool | None = None, raw: bool = False) -> CardPress:
        """`user` presses button `action` on the card, as in the DingTalk client.

        `params` are what the user typed into the card's inputs (by input id); the
        callback carries the button's declared 回传参数 built from them and the card's
        data. `raw=True` (or a card whose template has no definition) sends `params`
        as the callback params exactly. `conversation` / `pinned` say where the card
        was pressed (default: the first place the user sees it, messages before pins).
        """
        presser = self.world.user(user)
        card = self.card(out_track_id)
        places = [p for p in self.places_for(card, presser)
                  if (conversation is None or p[1] == conversation)
                  and (pinned is None or (p[0] == "ONE_BOX") == pinned)]
        if not places:
            raise SandboxError(f"{presser.name} does not see card {out_track_id}"
                               + (f" in {conversation}" if conversation else ""))
        space_type, conversation_id = places[0]
        values = card.values_for(presser.user_id)
        button = card.template.button(action) if card.template else None
        inputs = {str(k): card_string(v) for k, v in (params or {}).items()}
        press = CardPress(out_track_id, presser.user_id, action, dict(params or {}), space_type, conversation_id,
                          self.clock.now_ms())
        if card.template is not None and not raw:
            if button is None:
                raise SandboxError(f"template {card.template.name} has no button {action!r}")
            shown = next((b for b in card.template.render(values)["buttons"] if b["id"] == action), None)
            if shown is None or shown["disabled"]:
                raise SandboxError(f"button {action!r} is {'disabled' if shown else 'not shown'} for {presser.name}")
            missing = self._missing_input(card.template, button, values, inputs)
            if missing is not None:
                press.outcome, press.toast = "input-required", {"kind": "hint", "text": f"请填写「{missing}」"}
                return self._finish(card, presser, press)
            press.params = card.template.callback_params(button, values, inputs)
        app = self.world.apps[card.app_id]
        if card.callback_type != "STREAM":
            press.outcome = "no-callback"       # HTTP mode is not emulated; without a type nothing is sent
        elif presser.corp_id != app.corp_id and not self.config.cross_org_card_callbacks:
            press.outcome = "cross-org"         # UNCONFIRMED (dingtalk-workspace-cli#1428): switchable
        else:
            await self._callback(card, presser, press, app)
        values_after = card.values_for(presser.user_id)
        press.success = press.outcome == "ok" and (
            button is None or button.success_when is None or button.success_when.test(values_after))
        press.toast = self._toast(button, press.success)
        return self._finish(card, presser, press)

    @staticmethod
    def _missing_input(template: CardTemplate, button: Button, values: Mapping[str, str],
                       inputs: Mapping[str, str]) -> str | None:
        for key, value in inputs.items():
            item = template.input(key)
            if item is None:
                raise SandboxError(f"template {template.name} has no input {key!r}")
            if len(value) > item.max_length:
                raise SandboxError(f"input {key!r} takes at most {item.max_length} characters")
        for input_id in button.input_ids:
            item = template.input(input_id)
            if item is not None and item.required and not inputs.get(input_id, "").strip():
                return item.label
        return None

    @staticmethod
    def _toast(button: Button | None, success: bool) -> dict[str, str] | None:
        # Toasts show only where the template defines a 请求成功判定条件 (P2 §1.8); a failed
        # request without one gets the client's generic message (chosen behaviour).
        if button is None or button.success_when is None:
            return None if success else {"kind": "failure", "text": DEFAULT_FAILURE_TOAST}
        if success:
            return {"kind": "success", "text": button.success_toast}
        return {"kind": "failure", "text": button.failure_toast}

    def _finish(self, card: CardInstance, presser: User, press: CardPress) -> CardPress:
        card.last_press[presser.user_id] = press
        self.presses.append(press)
        self._changed()
        return press

    async def _callback(self, card: CardInstance, presser: User, press: CardPress, app: App) -> None:
        content = json.dumps({"cardPrivateData": {"actionIds": [press.action], "params": press.params}},
                             ensure_ascii=False, separators=(",", ":"))
        data = {"extension": "{}", "corpId": presser.corp_id, "spaceType": CALLBACK_SPACE_TYPES[press.space_type],
                "userIdType": card.user_id_type, "type": "actionCallback",
                "userId": self.user_key(presser, card.user_id_type), "content": content,
                "spaceId": press.conversation_id, "outTrackId": card.out_track_id, "value": content}
        frame = self.gateway.push_callback(app, CARD_CALLBACK_TOPIC, data,
                                           reliable=self.config.card_callback_redelivery)
        press.message_id = frame.message_id
        press.sent = bool(frame.deliveries)
        if not press.sent:
            press.outcome = "no-connection"
            return
        ack = await self._wait_for_ack(frame.message_id)
        if ack is None:
            press.outcome = "timeout"
            return
        press.ack_code = ack.code
        if ack.code != 200:
            press.outcome = "rejected"
            return
        press.outcome = self._apply_response(card, presser, ack)

    async def _wait_for_ack(self, message_id: str) -> AckRecord | None:
        future: asyncio.Future[AckRecord | None] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        timer = self.clock.call_later(self.config.card_callback_timeout,
                                      lambda: future.done() or future.set_result(None))
        try:
            return await future
        finally:
            timer.cancel()
            self._waiting.pop(message_id, None)

    def _on_gateway(self, what: str, obj: Any) -> None:
        if what == "ack" and isinstance(obj, AckRecord):
            future = self._waiting.get(obj.message_id)
            if future is not None and not future.done():
                future.set_result(obj)

    def _apply_response(self, card: CardInstance, presser: User, ack: AckRecord) -> str:
        data = ack.data_obj
        response = data.get("response") if isinstance(data, dict) else None
        if isinstance(response, str):
            try:
                response = json.loads(response)
            except ValueError:
                response = None
        if not response:
            return "ok"         # ACKed without a card update
        notes: list[str] = []
        try:
            if not isinstance(response, dict):
                raise _param("invalid", "response必须是对象")
            public_raw = self._param_map(response.get("cardData"), "cardData")
            public = self._clean(card.template, public_raw, private=False, notes=notes) if public_raw else None
            private: dict[str, dict[str, str]] = {}
            if response.get("userPrivateData") is not None:
                private[presser.user_id] = self._clean(card.template, self._param_map(
                    response["userPrivateData"], "userPrivateData"), private=True, notes=notes)
            if response.get("privateData"):
                notes.append("privateData keyed by userId in a callback response is UNCONFIRMED (P2 §1.8); "
                             "applied like userPrivateData for the listed users")
                private.update(self._private_maps(card.template, response["privateData"], card.user_id_type, notes))
            if public is None and not private:
                self._note(card, "callback", notes)
                return "ok"
            options = response.get("cardUpdateOptions") if isinstance(response.get("cardUpdateOptions"), dict) else {}
            self._apply(card, public, private, options, source="callback", actor=presser.user_id, notes=notes)
        except CardError as exc:
            self._note(card, "callback", notes + [f"callback response refused: {exc.code} {exc.message}"])
            return "bad-response"
        return "ok"

    # ---- reading ------------------------------------------------------------------
    def card(self, out_track_id: str) -> CardInstance:
        try:
            return self.cards[out_track_id]
        except KeyError:
            raise SandboxError(f"no card {out_track_id!r}") from None

    def _card_of(self, app: App, out_track_id: Any) -> CardInstance:
        card = self.cards.get(str(out_track_id))
        if card is None or card.app_id != app.client_id:
            raise _param("cardNotExist", f"卡片不存在：{out_track_id}")
        return card

    def in_conversation(self, conversation_id: str) -> list[CardInstance]:
        """Cards posted as messages in the conversation or pinned there, in posting order."""
        found = [c for c in self.cards.values()
                 if conversation_id in c.pins or any(p.conversation_id == conversation_id for p in c.placements)]
        return sorted(found, key=lambda c: c.created_at)

    def top_card(self, conversation_id: str, user: User | None = None) -> CardInstance | None:
        """The newest card pinned in the conversation that is still up (and that `user` sees)."""
        now = self.clock.now_ms()
        live = [(pin.order, card) for card in self.cards.values()
                for cid, pin in card.pins.items()
                if cid == conversation_id and pin.active(now) and (user is None or self._sees_pin(pin, user))]
        return max(live, key=lambda item: item[0])[1] if live else None

    def view(self, card: CardInstance, viewer: User | None, *, conversation_id: str | None = None) -> dict[str, Any]:
        """The card as `viewer` sees it (their private data merged), for the page and tests."""
        values = card.values_for(viewer.user_id if viewer else None)
        view: dict[str, Any] = {"outTrackId": card.out_track_id, "templateId": card.template_id,
                                "templateName": card.template.name if card.template else None,
                                "data": values, "version": len(card.versions), "updatedAt": card.versions[-1].at,
                                "callbackType": card.callback_type, "streamState": card.stream_state}
        if card.template is not None:
            view.update(card.template.render(values))
        else:
            # No definition loaded: show the variables as they are.
            view.update(title=values.get("title") or "互动卡片", status=None, body="", lists=[], inputs=[],
                        buttons=[], links=[],
                        fields=[{"label": k, "value": v} for k, v in values.items() if k != "title"])
        pin = card.pins.get(conversation_id or "")
        view["pinned"] = {"expiresAt": pin.expires_at} if pin and pin.active(self.clock.now_ms()) else None
        last = card.last_press.get(viewer.user_id) if viewer else None
        view["lastPress"] = {"action": last.action, "toast": last.toast, "at": last.at} if last else None
        return view

    def fingerprint(self, conversation_ids: set[str]) -> str:
        """Changes whenever a card in these conversations changes (the page's long-poll)."""
        parts = []
        for card in self.cards.values():
            pins = [f"{cid}:{pin.state}:{pin.expires_at}" for cid, pin in card.pins.items() if cid in conversation_ids]
            placed = [p.conversation_id for p in card.placements if p.conversation_id in conversation_ids]
            if pins or placed:
                parts.append(f"{card.out_track_id}:{len(card.versions)}:{len(placed)}:{','.join(pins)}:"
                             f"{len(card.last_press)}")
        return hashlib.sha1("|".join(sorted(parts)).encode()).hexdigest()[:16]

    def snapshot(self, card: CardInstance) -> CardSnapshot:
        now = self.clock.now_ms()
        return CardSnapshot(
            card.out_track_id, card.template_id, card.template.name if card.template else None, card.app_id,
            card.callback_type, card.user_id_type, dict(card.public),
            {uid: dict(m) for uid, m in card.private.items()}, tuple(card.versions),
            tuple((p.space_type, p.conversation_id) for p in card.placements),
            {cid: pin.expires_at for cid, pin in card.pins.items() if pin.active(now)},
            tuple((cid, pin.state, pin.expires_at) for cid, pin in card.pins.items()), card.stream_state)

    def message_card(self, params: Mapping[str, Any]) -> CardInstance | None:
        """The card behind a recorded `interactiveCard` message."""
        return self.cards.get(str(params.get("outTrackId", "")))

    def sees_message(self, card: CardInstance, conversation_id: str, user: User) -> bool:
        placement = next((p for p in card.placements if p.conversation_id == conversation_id), None)
        return placement is not None and self._sees_placement(placement, user)

    # ---- bookkeeping --------------------------------------------------------------
    def _title(self, card: CardInstance) -> str:
        if card.template is not None:
            return card.template.render(card.public)["title"] or card.template.title
        return card.public.get("title") or "互动卡片"

    def _version(self, card: CardInstance, source: str, actor: str) -> None:
        card.versions.append(CardVersion(len(card.versions) + 1, self.clock.now_ms(), source, actor,
                                         dict(card.public), {uid: dict(m) for uid, m in card.private.items()}))

    def _note(self, card: CardInstance, source: str, notes: list[str]) -> None:
        for note in notes:
            log.warning("card %s (%s): %s", card.out_track_id, source, note)
            self.warnings.append(CardWarning(card.out_track_id, source, note, self.clock.now_ms()))

    def _changed(self) -> None:
        self.signal.bump()
