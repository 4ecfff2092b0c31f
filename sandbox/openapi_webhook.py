"""`POST /robot/sendBySession?session=…`: replies through a message's session webhook (§4)."""

from __future__ import annotations

from aiohttp import web

from .messages import validate_webhook_body
from .openapi_common import ApiContext, OldApiError, api


@api("robot.sendBySession", "old", auth="none")
async def send_by_session(request: web.Request, ctx: ApiContext) -> web.Response:
    emulator = ctx.emulator
    session = emulator.sessions.get_valid(request.query.get("session"))
    if session is None:
        raise OldApiError(300001, "session 不存在")
    app = emulator.world.apps[session.app_id]
    ctx.app = app
    raw = await request.read()
    if len(raw) > emulator.config.webhook_max_body:
        raise OldApiError(460101, f"body 大小不合法;解决方案:请保持大小在 {emulator.config.webhook_max_body}bytes 以内")
    body = await ctx.json_body()
    per_minute = emulator.config.session_webhook_per_minute
    if per_minute > 0:
        now = emulator.clock.now_ms()
        while session.sends and now - session.sends[0] >= 60_000:
            session.sends.popleft()
        if len(session.sends) >= per_minute:
            raise OldApiError(660026, "sending too many messages per minute")
        session.sends.append(now)
    normalized = validate_webhook_body(body)
    at = body.get("at") if isinstance(body.get("at"), dict) else {}
    if normalized.msgtype in ("link", "feedCard"):
        at = {}     # these types cannot @ anyone
    emulator.record_bot_message(
        conversation_id=session.conversation_id, app=app, via="webhook", api=ctx.name, normalized=normalized,
        at_user_ids=[str(u) for u in at.get("atUserIds") or []],
        at_mobiles=[str(m) for m in at.get("atMobiles") or []],
        is_at_all=bool(at.get("isAtAll", False)), raw=body,
        to_user_id=session.user_id if session.conversation_type == "1" else None)
    return ctx.ok({"errcode": 0, "errmsg": "ok"})
