"""Card OpenAPI routes (P2 §1.2–1.7); the card platform itself lives in `cards.py`.

Each route needs its permission scope (`Card.Instance.Write`, `Card.Streaming.Write`,
`qyapi_chat_manage`); a scope listed in `EmulatorConfig.missing_scopes` makes the call
fail like an app without it: HTTP 403 `Forbidden.AccessDenied.AccessTokenPermissionDenied`
with `accessdenieddetail.requiredScopes` (P2 §1.11, §7.1 item 10).
"""

from __future__ import annotations

import functools
from typing import Any, Awaitable, Callable

from aiohttp import web

from .cards import CardError
from .openapi_common import ApiContext, NewApiError, api, missing

CARD_WRITE = "Card.Instance.Write"
STREAMING_WRITE = "Card.Streaming.Write"
CHAT_MANAGE = "qyapi_chat_manage"

CardHandler = Callable[[web.Request, ApiContext], Awaitable[dict[str, Any]]]


def card_api(name: str, scope: str) -> Callable[[CardHandler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """`api(name, "new")` plus the scope check; the handler returns the 200 body."""

    def decorate(handler: CardHandler):
        @api(name, "new", system_error="system.busy")  # the card APIs document system.busy
        @functools.wraps(handler)
        async def wrapped(request: web.Request, ctx: ApiContext) -> web.Response:
            if scope in ctx.emulator.config.missing_scopes:
                raise NewApiError(403, "Forbidden.AccessDenied.AccessTokenPermissionDenied",
                                  f"没有调用该接口的权限，请在开发者后台申请权限：{scope}",
                                  accessdenieddetail={"requiredScopes": [scope]})
            try:
                return ctx.ok(await handler(request, ctx))
            except CardError as exc:
                raise NewApiError(exc.status, exc.code, exc.message) from None

        return wrapped

    return decorate


@card_api("card.instances.createAndDeliver", CARD_WRITE)
async def create_and_deliver(request: web.Request, ctx: ApiContext) -> dict[str, Any]:
    card, results = ctx.emulator.cards.create_and_deliver(ctx.app, await ctx.json_body(), api=ctx.name)
    return {"success": True, "result": {"outTrackId": card.out_track_id, "deliverResults": results}}


@card_api("card.instances.create", CARD_WRITE)
async def create(request: web.Request, ctx: ApiContext) -> dict[str, Any]:
    card = ctx.emulator.cards.create(ctx.app, await ctx.json_body(), api=ctx.name)
    return {"success": True, "result": card.out_track_id}


@card_api("card.instances.deliver", CARD_WRITE)
async def deliver(request: web.Request, ctx: ApiContext) -> dict[str, Any]:
    # A bare array of results, unlike createAndDeliver (P2 §1.2).
    return {"success": True, "result": ctx.emulator.cards.deliver(ctx.app, await ctx.json_body(), api=ctx.name)}


@card_api("card.instances.spaces", CARD_WRITE)
async def add_spaces(request: web.Request, ctx: ApiContext) -> dict[str, Any]:
    ctx.emulator.cards.add_spaces(ctx.app, await ctx.json_body())
    return {"success": True, "result": True}


@card_api("card.instances.update", CARD_WRITE)
async def update(request: web.Request, ctx: ApiContext) -> dict[str, Any]:
    ctx.emulator.cards.update(ctx.app, await ctx.json_body(), api=ctx.name)
    return {"success": True, "result": True}


@card_api("card.streaming", STREAMING_WRITE)
async def streaming(request: web.Request, ctx: ApiContext) -> dict[str, Any]:
    ctx.emulator.cards.stream(ctx.app, await ctx.json_body())
    return {"success": True, "result": True}


@card_api("card.tops.close", CARD_WRITE)
async def close_top(request: web.Request, ctx: ApiContext) -> dict[str, Any]:
    # Parameters in the query string, empty body (P2 §1.7).
    ctx.emulator.cards.close_top(ctx.app, request.query.get("outTrackId"), request.query.get("openConversationId"),
                                 by=ctx.name)
    return {"success": True, "result": True}


@card_api("im.topBoxes.close", CHAT_MANAGE)
async def close_top_box(request: web.Request, ctx: ApiContext) -> dict[str, Any]:
    """POST /v2.0/im/topBoxes/close: conversationType 1 (group) or 2 (单聊助手, the 1:1 with the robot)."""
    body = await ctx.json_body()
    emulator = ctx.emulator
    for name in ("outTrackId", "conversationType"):
        if body.get(name) in (None, ""):
            raise missing(name)
    kind = str(body["conversationType"])
    if kind == "1":
        if not body.get("openConversationId"):
            raise missing("openConversationId")
        conversation_id = str(body["openConversationId"])
    elif kind == "2":
        if not body.get("robotCode"):
            raise missing("robotCode")
        if str(body["robotCode"]) != ctx.app.robot_code:
            raise NewApiError(400, "invalidParameter.robotCode", "robotCode与调用应用不一致")
        key, id_type = (body.get("userId"), 1) if body.get("userId") else (body.get("unionId"), 2)
        if not key:
            raise missing("userId")
        user = emulator.cards.resolve_user(key, id_type)
        if user is None or user.external:
            raise NewApiError(400, "param.userIdNotExist", f"用户不存在：{key}")
        conversation_id = emulator.world.private_conversation_id(user, ctx.app)
    else:
        raise NewApiError(400, "invalidParameter.conversationType", "conversationType只能是1（群聊）或2（单聊助手）")
    emulator.cards.close_top(ctx.app, body["outTrackId"], conversation_id, by=ctx.name)
    return {"success": True}


# (method, path, handler), registered with the other emulated APIs in `app.py`.
ROUTES = (
    ("POST", "/v1.0/card/instances/createAndDeliver", create_and_deliver),
    ("POST", "/v1.0/card/instances", create),
    ("POST", "/v1.0/card/instances/deliver", deliver),
    ("PUT", "/v1.0/card/instances/spaces", add_spaces),
    ("PUT", "/v1.0/card/instances", update),
    ("PUT", "/v1.0/card/streaming", streaming),
    ("POST", "/v1.0/card/tops/close", close_top),
    ("POST", "/v2.0/im/topBoxes/close", close_top_box),
)
