"""免登 routes (P2 §5): the code exchange of oapi, and the emulator's own JSAPI stand-in.

`POST /topapi/v2/user/getuserinfo?access_token=` is DingTalk's. The `/__emulator/…` paths are not: they stand in
for the DingTalk client, which in reality hands codes to the page through the JSAPI. The bot's H5 page runs on
another origin (the bot's port), so the code endpoint answers CORS.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from .h5 import AUTHCODE_PATH, JSAPI_PATH, AuthCodeError
from .openapi_common import EMULATOR_KEY, ApiContext, OldApiError, api, json_response

JSAPI_FILE = Path(__file__).parent / "static" / "jsapi.js"

# §5.1 `sys_level`: 1 main admin, 2 sub-admin, 100 boss, 0 others. The world marks admins and bosses only:
# admins count as sub-admins.
SYS_LEVEL_ADMIN, SYS_LEVEL_BOSS = 2, 100


@api("user.getuserinfo", "old")
async def get_user_info(request: web.Request, ctx: ApiContext) -> web.Response:
    # The doc's curl samples post the code as a form as often as JSON.
    if request.content_type == "application/x-www-form-urlencoded":
        code = (await request.post()).get("code")
    else:
        code = (await ctx.json_body()).get("code")
    if not code:
        raise OldApiError(40035, "不合法的参数", request_id=ctx.request_id)
    found = ctx.emulator.h5.redeem(code, ctx.app)
    if found is None:
        raise OldApiError(40078, "不存在的临时授权码", request_id=ctx.request_id)
    user, issued = found
    level = SYS_LEVEL_BOSS if user.boss else SYS_LEVEL_ADMIN if user.admin else 0
    return ctx.ok({"errcode": 0, "errmsg": "ok", "request_id": ctx.request_id, "result": {
        "userid": user.user_id, "unionid": user.union_id, "name": user.name, "device_id": issued.device_id,
        "sys": user.admin, "sys_level": level}})


def _cors(request: web.Request) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": request.headers.get("Origin", "*"), "Vary": "Origin",
            "Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600", "Cache-Control": "no-store"}


async def authcode_preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={**_cors(request), "Access-Control-Allow-Private-Network": "true"})


async def mint_authcode(request: web.Request) -> web.Response:
    """`{userId, corpId, clientId?}` -> 200 `{code}` or 400 `{errorCode, errorMessage}` (the stand-in's onFail)."""
    try:
        body = json.loads(await request.text() or "{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    try:
        code = request.app[EMULATOR_KEY].h5.mint(body.get("userId"), body.get("corpId"), body.get("clientId"))
    except AuthCodeError as exc:
        return json_response(exc.to_json(), status=400, headers=_cors(request))
    return json_response({"code": code.code}, headers=_cors(request))


async def jsapi_script(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(JSAPI_FILE, headers={"Content-Type": "text/javascript; charset=utf-8",
                                                 "Cache-Control": "no-cache",
                                                 "Cross-Origin-Resource-Policy": "cross-origin"})


ROUTES = (
    ("POST", "/topapi/v2/user/getuserinfo", get_user_info),
    ("GET", JSAPI_PATH, jsapi_script),
    ("POST", AUTHCODE_PATH, mint_authcode),
    ("OPTIONS", AUTHCODE_PATH, authcode_preflight),
)
