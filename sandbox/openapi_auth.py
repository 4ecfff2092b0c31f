"""Access-token APIs of both hosts (§6)."""

from __future__ import annotations

from aiohttp import web

from .openapi_common import ApiContext, NewApiError, OldApiError, api, missing


@api("oauth2.accessToken", "new", auth="none")
async def new_access_token(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    app_key, app_secret = body.get("appKey"), body.get("appSecret")
    if not app_key:
        raise missing("appKey")
    if not app_secret:
        raise missing("appSecret")
    app = ctx.emulator.world.apps.get(str(app_key))
    if app is None or app.client_secret != app_secret:
        raise NewApiError(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
    ctx.throttle(app)
    issued = ctx.emulator.tokens.issue(app)
    return ctx.ok({"accessToken": issued.token, "expireIn": int(ctx.emulator.tokens.ttl)})


@api("gettoken", "old", auth="none")
async def old_get_token(request: web.Request, ctx: ApiContext) -> web.Response:
    app = ctx.emulator.world.apps.get(request.query.get("appkey", ""))
    if app is None or app.client_secret != request.query.get("appsecret"):
        raise OldApiError(40096, "不合法的appKey或appSecret")
    ctx.throttle(app)
    issued = ctx.emulator.tokens.issue(app)
    return ctx.ok({"errcode": 0, "access_token": issued.token, "errmsg": "ok",
                   "expires_in": int(ctx.emulator.tokens.ttl)})
