"""The card platform (互动卡片, reference part 2 §1), outbound: create and deliver, update, close a pinned card.

Every card write is a ``CardWrite`` queued in the outbox (``bot.outbox.enqueue(session, key, target, write)``) and
sent here by the relay, on the app's one ``DingTalkClient`` (its HTTP session, its per-API pacing below the card
APIs' per-app QPS, its retries of a 403 ``Forbidden.AccessDenied.Qps…``). A write is safe to repeat: DingTalk keys
cards on our ``outTrackId``, so a create that already happened (``param.cardAlreadyExist``) is delivered again
(a conversation that has the card gets nothing new), and an update carries the card's whole data.

A delivery answers HTTP 200 with one result per space that may say ``success: false`` (a group that refuses
pinning, §1.7): each entry is checked. A status card asks for the group's top (吊顶) and falls back to a message
in the group, which ``CardDelivery.pinned`` reports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.dingtalk.errors import InvalidRequest

OPEN_SPACE_PREFIX = "dtv1.card//"
CARD_APIS = ("card.instances.createAndDeliver", "card.instances.deliver", "card.instances.update",
             "card.tops.close")

CardData = Mapping[str, Any]


def card_values(data: CardData) -> dict[str, str]:
    """Card data as DingTalk wants it: every value a string, objects and arrays as JSON text (§1.1)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return out


@dataclass(frozen=True)
class CardWrite:
    """One card API call, as an outbox row stores it (``as_params`` / ``from_params``)."""

    op: Literal["create", "update", "close_top"]
    out_track_id: str
    template_id: str = ""
    data: dict[str, str] = field(default_factory=dict)
    private: dict[str, dict[str, str]] = field(default_factory=dict)  # userId -> the user's private values
    group: str = ""  # deliver as a message in this group (openConversationId)
    pin: str = ""  # pin at the top of this group (ONE_BOX); with ``group`` too: the group if pinning is refused
    users: tuple[str, ...] = ()  # deliver to these users' 1:1 chats with the robot
    pin_expires_ms: int = 0
    preview: str = ""  # the conversation list's preview line (lastMessageI18n)
    by_key: bool = False  # update: merge these keys (True) or replace the whole map (False)
    status_card: bool = False  # the project's status card: the relay records whether it got pinned
    user_id_type: int = 1  # 2: user ids (and the callbacks' userId) are unionIds: cards outsiders press

    def __post_init__(self) -> None:
        if not self.out_track_id or len(self.out_track_id) > 64:
            raise ValueError(f"an outTrackId is 1..64 characters: {self.out_track_id!r}")
        if self.op == "create" and not (self.template_id and (self.group or self.pin or self.users)):
            raise ValueError("a card is created from a template into at least one space")

    def as_params(self) -> dict[str, Any]:
        return {"card": {"op": self.op, "outTrackId": self.out_track_id, "templateId": self.template_id,
                         "data": self.data, "private": self.private, "group": self.group, "pin": self.pin,
                         "users": list(self.users), "pinExpiresMs": self.pin_expires_ms, "preview": self.preview,
                         "byKey": self.by_key, "statusCard": self.status_card,
                         "userIdType": self.user_id_type}}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CardWrite:
        raw = params["card"]
        return cls(op=raw["op"], out_track_id=raw["outTrackId"], template_id=raw.get("templateId") or "",
                   data=dict(raw.get("data") or {}),
                   private={k: dict(v) for k, v in (raw.get("private") or {}).items()},
                   group=raw.get("group") or "", pin=raw.get("pin") or "", users=tuple(raw.get("users") or ()),
                   pin_expires_ms=int(raw.get("pinExpiresMs") or 0), preview=raw.get("preview") or "",
                   by_key=bool(raw.get("byKey")), status_card=bool(raw.get("statusCard")),
                   user_id_type=int(raw.get("userIdType") or 1))

    @property
    def conversation(self) -> str:
        """The conversation the write belongs to: a group's card writes go in order with its messages."""
        return self.group or self.pin or (self.users[0] if self.users else self.out_track_id)


@dataclass(frozen=True)
class CardDelivery:
    pinned: bool | None = None  # None: no pin was asked for
    failed: tuple[tuple[str, str], ...] = ()  # (space, errorMsg) of spaces that refused the card


class CardsApi:
    """The card APIs on a ``DingTalkClient``."""

    def __init__(self, client: Any, robot_code: str) -> None:
        self._client = client
        self._robot_code = robot_code

    async def send(self, write: CardWrite) -> CardDelivery:
        if write.op == "create":
            return await self.create_and_deliver(write)
        if write.op == "update":
            await self.update(write.out_track_id, write.data, write.private, by_key=write.by_key)
            return CardDelivery()
        await self.close_top(write.out_track_id, write.pin)
        return CardDelivery()

    async def create_and_deliver(self, write: CardWrite) -> CardDelivery:
        spaces = self._spaces(write, pinned=True)
        body: dict[str, Any] = {
            "cardTemplateId": write.template_id,
            "outTrackId": write.out_track_id,
            "callbackType": "STREAM",
            "cardData": {"cardParamMap": write.data},
            "userIdType": write.user_id_type,
            **self._space_models(write),
            **self._deliver_models(write, pinned=True),
        }
        if write.private:
            body["privateData"] = {user: {"cardParamMap": values} for user, values in write.private.items()}
        body["openSpaceId"] = spaces
        try:
            payload = await self._client.call_rest("card.instances.createAndDeliver", "POST",
                                                   "/v1.0/card/instances/createAndDeliver", body=body, idempotent=True)
            results = (payload.get("result") or {}).get("deliverResults") or []
        except InvalidRequest as exc:
            if exc.code != "param.cardAlreadyExist":
                raise
            # Created by an earlier try whose answer was lost: deliver it (a conversation that has it gets nothing).
            results = await self._deliver(write, pinned=True)
        return await self._settle(write, results)

    async def _settle(self, write: CardWrite, results: Sequence[Mapping[str, Any]]) -> CardDelivery:
        failed = [(str(r.get("spaceType")), str(r.get("errorMsg") or "")) for r in results if not r.get("success")]
        pin_failed = any(space.upper() == "ONE_BOX" for space, _ in failed)
        pinned: bool | None = None
        if write.pin:
            pinned = not pin_failed
            if pin_failed and write.group:
                # The group refuses pinning (§1.7, UNCONFIRMED for ordinary groups): the card goes into the chat.
                more = await self._deliver(write, pinned=False)
                failed = [f for f in failed if f[0].upper() != "ONE_BOX"]
                failed += [(str(r.get("spaceType")), str(r.get("errorMsg") or "")) for r in more
                           if not r.get("success")]
        if failed:
            space, message = failed[0]
            raise InvalidRequest("card.deliverFailed", f"{space}: {message}", api="card.instances.createAndDeliver")
        return CardDelivery(pinned=pinned)

    async def _deliver(self, write: CardWrite, *, pinned: bool) -> list[Mapping[str, Any]]:
        body = {"outTrackId": write.out_track_id, "openSpaceId": self._spaces(write, pinned=pinned),
                "userIdType": write.user_id_type,
                **self._deliver_models(write, pinned=pinned)}
        payload = await self._client.call_rest("card.instances.deliver", "POST", "/v1.0/card/instances/deliver",
                                               body=body, idempotent=True)
        result = payload.get("result")
        return list(result) if isinstance(result, list) else []

    async def update(self, out_track_id: str, data: CardData | None = None,
                     private: Mapping[str, CardData] | None = None, *, by_key: bool = False) -> None:
        body: dict[str, Any] = {"outTrackId": out_track_id, "userIdType": 1}
        if data:
            body["cardData"] = {"cardParamMap": card_values(data)}
        if private:
            body["privateData"] = {user: {"cardParamMap": card_values(values)} for user, values in private.items()}
        if by_key:
            body["cardUpdateOptions"] = {"updateCardDataByKey": True, "updatePrivateDataByKey": True}
        else:
            # The public map is replaced; private maps only ever change key by key (a viewer's notice stays theirs).
            body["cardUpdateOptions"] = {"updateCardDataByKey": False, "updatePrivateDataByKey": True}
        await self._client.call_rest("card.instances.update", "PUT", "/v1.0/card/instances", body=body, idempotent=True)

    async def close_top(self, out_track_id: str, conversation_id: str) -> None:
        try:
            await self._client.call_rest("card.tops.close", "POST", "/v1.0/card/tops/close", idempotent=True,
                                         params={"outTrackId": out_track_id, "openConversationId": conversation_id})
        except InvalidRequest as exc:
            if exc.code != "param.cardNotExist":  # closed or expired already: what we wanted
                raise

    # ---- request parts -------------------------------------------------------------------------------------

    def _spaces(self, write: CardWrite, *, pinned: bool) -> str:
        parts = []
        if write.pin and pinned:
            parts.append(f"ONE_BOX.{write.pin}")
        elif write.group:
            parts.append(f"IM_GROUP.{write.group}")
        parts += [f"IM_ROBOT.{user}" for user in write.users]
        return OPEN_SPACE_PREFIX + ";".join(dict.fromkeys(parts))

    def _space_models(self, write: CardWrite) -> dict[str, Any]:
        preview = {"lastMessageI18n": {"ZH_CN": write.preview}} if write.preview else {}
        models: dict[str, Any] = {}
        if write.group:
            models["imGroupOpenSpaceModel"] = {"supportForward": False, **preview}
        if write.pin:
            models["topOpenSpaceModel"] = {"spaceType": "ONE_BOX"}
        if write.users:
            models["imRobotOpenSpaceModel"] = {"supportForward": False, **preview}
        return models

    def _deliver_models(self, write: CardWrite, *, pinned: bool) -> dict[str, Any]:
        models: dict[str, Any] = {}
        if write.pin and pinned:
            models["topOpenDeliverModel"] = {"expiredTimeMillis": write.pin_expires_ms}
        elif write.group:
            models["imGroupOpenDeliverModel"] = {"robotCode": self._robot_code}
        if write.users:
            models["imRobotOpenDeliverModel"] = {"spaceType": "IM_ROBOT", "robotCode": self._robot_code}
        return models


__all__ = ["CARD_APIS", "CardDelivery", "CardWrite", "CardsApi", "card_values"]
