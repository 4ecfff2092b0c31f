"""The two webhook sends of the old host, in the custom-robot message format (§4):

`POST /robot/sendBySession?session=…`   replies through a message's session webhook
`POST /robot/send?access_token=…&timestamp=…&sign=…`   a custom robot (自定义机器人) posts into its group

Both answer HTTP 200 `{"errcode": 0, "errmsg": "ok"}` or an errcode: bodies over
20 000 bytes 460101, a malformed body 40035. Session webhooks: 300001 once expired
(or once the app's robot may no longer be in the group). Custom robots (P1 §10,
§11.2): 300005 unknown token, 310000 bad or missing signature / timestamp off by
more than an hour, 410100 over 20 messages a minute (then throttled for 10 minutes).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .custom_robots import CustomRobot, admit_per_minute
from .messages import Normalized, validate_webhook_body
from .openapi_common import ApiContext, OldApiError, api
from .recorder import SentMessage
from .world import App

SIGN_MISMATCH = ("description:机器人发送签名不匹配;solution:请确认签名和生成签名的时间戳必须都放在调用的网址中，"
                 "请确认机器人的密钥加密和填写正确;")


async def _webhook_body(ctx: ApiContext) -> tuple[dict[str, Any], Normalized]:
    """The body and what it shows; only a well-formed message counts against a rate limit."""
    limit = ctx.emulator.config.webhook_max_body
    if len(await ctx.request.read()) > limit:
        raise OldApiError(460101, f"body 大小不合法;解决方案:请保持大小在 {limit}bytes 以内")
    body = await ctx.json_body()
    return body, validate_webhook_body(body)


def _record(ctx: ApiContext, body: dict[str, Any], normalized: Normalized, conversation_id: str, *,
            app: App | None, via: str, to_user_id: str | None = None,
            custom_robot: CustomRobot | None = None) -> SentMessage:
    at = body.get("at") if isinstance(body.get("at"), dict) else {}
    if normalized.msgtype in ("link", "feedCard"):
        at = {}     # these types cannot @ anyone
    return ctx.emulator.record_bot_message(
        conversation_id=conversation_id, app=app, via=via, api=ctx.name, normalized=normalized,
        at_user_ids=[str(u) for u in at.get("atUserIds") or []],
        at_mobiles=[str(m) for m in at.get("atMobiles") or []],
        is_at_all=bool(at.get("isAtAll", False)), raw=body, to_user_id=to_user_id, custom_robot=custom_robot)


@api("robot.sendBySession", "old", auth="none")
async def send_by_session(request: web.Request, ctx: ApiContext) -> web.Response:
    emulator = ctx.emulator
    session = emulator.sessions.get_valid(request.query.get("session"))
    group = emulator.world.groups.get(session.conversation_id) if session else None
    app = emulator.world.apps[session.app_id] if session else None
    if session is None or (group is not None and not emulator.robot_in_group(app, group)):
        raise OldApiError(300001, "session 不存在")
    ctx.app = app
    body, normalized = await _webhook_body(ctx)
    per_minute = emulator.config.session_webhook_per_minute
    if per_minute > 0 and not admit_per_minute(session.sends, emulator.clock.now_ms(), per_minute):
        raise OldApiError(660026, "sending too many messages per minute")
    _record(ctx, body, normalized, session.conversation_id, app=app, via="webhook",
            to_user_id=session.user_id if session.conversation_type == "1" else None)
    return ctx.ok({"errcode": 0, "errmsg": "ok"})


@api("robot.send", "old", auth="none")
async def custom_robot_send(request: web.Request, ctx: ApiContext) -> web.Response:
    emulator = ctx.emulator
    robot = emulator.custom_robot_by_token(request.query.get("access_token"))
    if robot is None:
        raise OldApiError(300005, "token is not exist")
    problem = robot.signature_ok(request.query.get("timestamp"), request.query.get("sign"), emulator.clock.now_ms())
    if problem == "timestamp":
        raise OldApiError(310000, "invalid timestamp")
    if problem:
        raise OldApiError(310000, SIGN_MISMATCH)
    body, normalized = await _webhook_body(ctx)
    config = emulator.config
    if not robot.admit(emulator.clock.now_ms(), config.custom_robot_per_minute,
                       int(config.custom_robot_throttle * 1000)):
        raise OldApiError(410100, "发送速度太快而限流")
    _record(ctx, body, normalized, robot.conversation_id, app=None, via="custom_robot", custom_robot=robot)
    return ctx.ok({"errcode": 0, "errmsg": "ok"})
