"""What every emulated HTTP API shares: error bodies, auth, throttling, faults, counting.

Two error families (§11.1):
  new  (`/v1.0/...`, api.dingtalk.com): HTTP 4xx/5xx `{"code","message","requestid"}`
  old  (`/gettoken`, `/media/upload`, oapi.dingtalk.com): HTTP 200 `{"errcode","errmsg",…}`
Session-webhook replies use the old family's shape too.

Each route handler is wrapped by `api(name, family, auth=...)`, which counts the call,
applies injected faults, authenticates the token (`auth="token"`), throttles per app
per API, and turns `NewApiError` / `OldApiError` into the right response.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from .throttle import CallRecord

if TYPE_CHECKING:
    from .emulator import Emulator
    from .world import App

log = logging.getLogger(__name__)

EMULATOR_KEY: web.AppKey["Emulator"] = web.AppKey("sandbox_emulator")

NEW_TOKEN_HEADER = "x-acs-dingtalk-access-token"


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # The real service sends raw UTF-8, not \u escapes.
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status,
                        content_type="application/json", charset="utf-8", headers=headers)


class NewApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.extra = status, code, message, extra


class OldApiError(Exception):
    def __init__(self, errcode: int, errmsg: str, **extra: Any):
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode, self.errmsg, self.extra = errcode, errmsg, extra


def missing(field_name: str) -> NewApiError:
    # The new API gateway's wording for an absent mandatory parameter.
    return NewApiError(400, f"Missing{field_name}", f"{field_name} is mandatory for this action.")


def require(body: dict[str, Any], *names: str) -> None:
    for name in names:
        value = body.get(name)
        if value is None or value == "" or value == []:
            raise missing(name)


@dataclass
class ApiContext:
    emulator: "Emulator"
    name: str
    family: str                 # "new" or "old"
    request: web.Request
    request_id: str
    app: "App | None" = None
    error: str | None = None    # for the call log
    system_error: str = "systemError"   # the new-API code of this API's internal errors
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- responses ----------------------------------------------------------------
    def ok(self, data: Any, *, status: int = 200) -> web.Response:
        headers = {"x-acs-request-id": self.request_id} if self.family == "new" else None
        return json_response(data, status=status, headers=headers)

    def new_error(self, status: int, code: str, message: str, **extra: Any) -> web.Response:
        self.error = code
        body = {"code": code, "message": message, "requestid": self.request_id, **extra}
        return json_response(body, status=status, headers={"x-acs-request-id": self.request_id})

    def old_error(self, errcode: int, errmsg: str, **extra: Any) -> web.Response:
        self.error = str(errcode)
        body = {"errcode": errcode, "errmsg": errmsg, **extra}
        return json_response(body, status=200)

    def error_response(self, exc: NewApiError | OldApiError) -> web.Response:
        if isinstance(exc, NewApiError):
            return self.new_error(exc.status, exc.code, exc.message, **exc.extra)
        return self.old_error(exc.errcode, exc.errmsg, **exc.extra)

    # ---- request helpers ----------------------------------------------------------
    async def json_body(self) -> dict[str, Any]:
        raw = await self.request.read()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if not isinstance(body, dict):
            if self.family == "new":
                raise NewApiError(400, "InvalidParameter.Body", "请求体必须是合法的JSON对象")
            raise OldApiError(40035, "缺少参数 json")
        return body

    # ---- auth and throttling ------------------------------------------------------
    def authenticate(self) -> "App":
        tokens = self.emulator.tokens
        if self.family == "new":
            token = self.request.headers.get(NEW_TOKEN_HEADER)
            if not token:
                # Query parameter or Authorization: Bearer are not read by the new gateway (§6).
                raise NewApiError(400, "AuthenticationFailed.MissingParameter", f"缺少参数：{NEW_TOKEN_HEADER}")
            app = tokens.resolve(token)
            if app is None:
                raise NewApiError(400, "InvalidAuthentication", "不合法的access_token")
        else:
            app = tokens.resolve(self.request.query.get("access_token"))
            if app is None:
                raise OldApiError(88, "ding talk error[subcode=40014,submsg=不合法的access_token]",
                                  sub_code="40014", sub_msg="不合法的access_token", request_id=self.request_id)
        self.app = app
        return app

    def throttle(self, app: "App") -> None:
        self.app = app
        if not self.emulator.throttle.allow(app.client_id, self.name):
            raise self.throttle_error()

    def throttle_error(self) -> NewApiError | OldApiError:
        if self.family == "new":
            return NewApiError(403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                               "应用调用该接口的QPS超出限制，请降低调用频率后重试")
        return OldApiError(90018, "禁止调用：应用调用该接口的QPS超出限制，请降低调用频率", request_id=self.request_id)


Handler = Callable[[web.Request, ApiContext], Awaitable[web.StreamResponse]]


def api(name: str, family: str, *, auth: str = "token", system_error: str = "systemError"
        ) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Wrap a route handler with counting, faults, auth and throttling.

    auth="token": the wrapper authenticates the access token and throttles; "none":
    the handler identifies the app itself (token APIs, connections/open, webhooks)
    and calls `ctx.throttle(app)` when the API is throttled. `system_error`: the code
    of the API's HTTP 500 (an unexpected failure, or the "busy" fault).
    """
    assert family in ("new", "old") and auth in ("token", "none")

    def decorate(handler: Handler):
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            emulator = request.app[EMULATOR_KEY]
            ctx = ApiContext(emulator, name, family, request, emulator.ids.request_id(), system_error=system_error)
            status = 0
            try:
                response = await _handle(ctx, handler, auth)
                status = response.status
                return response
            finally:
                emulator.counters.add(CallRecord(name, request.method, request.path, status, ctx.error,
                                                 ctx.app.client_id if ctx.app else None, emulator.clock.now_ms()))
                emulator.signal.bump()

        wrapped.api_name = name  # type: ignore[attr-defined]
        return wrapped

    return decorate


def refusing(refusal: type[Exception], to_api_error: Callable[[Any, ApiContext], NewApiError | OldApiError]
             ) -> Callable[[Handler], Handler]:
    """Turn a state module's refusal (e.g. `TodoError`) into the API's error body; use inside `api()`."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def refused_as_api_errors(request: web.Request, ctx: ApiContext) -> web.StreamResponse:
            try:
                return await handler(request, ctx)
            except refusal as exc:
                raise to_api_error(exc, ctx) from None

        return refused_as_api_errors

    return decorate


async def _handle(ctx: ApiContext, handler: Handler, auth: str) -> web.StreamResponse:
    emulator = ctx.emulator
    decision = emulator.faults.decide(ctx.name, ctx.request.path)
    if decision.latency > 0:
        await asyncio.sleep(decision.latency)
    if decision.kind is not None:
        return await _inject(ctx, decision.kind)
    try:
        if auth == "token":
            ctx.throttle(ctx.authenticate())
        return await handler(ctx.request, ctx)
    except (NewApiError, OldApiError) as exc:
        return ctx.error_response(exc)
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("sandbox API %s failed", ctx.name)
        return _system_busy(ctx)


def _system_busy(ctx: ApiContext) -> web.Response:
    # What a failing backend answers: old APIs errcode -1 (retry, §3.2), new APIs a 500 with the API's own code.
    if ctx.family == "new":
        return ctx.new_error(500, ctx.system_error, "系统错误")
    return ctx.old_error(-1, "系统繁忙")


async def _inject(ctx: ApiContext, kind: str) -> web.StreamResponse:
    if kind == "throttle":
        return ctx.error_response(ctx.throttle_error())
    if kind == "busy":
        return _system_busy(ctx)
    if kind == "5xx":
        if ctx.family == "new":
            return ctx.new_error(503, "ServiceUnavailable", "服务暂时不可用，请稍后重试")
        ctx.error = "502"
        return web.Response(status=502, content_type="text/html",
                            text="<html><head><title>502 Bad Gateway</title></head><body><center>"
                                 "<h1>502 Bad Gateway</h1></center><hr><center>Tengine</center></body></html>")
    if kind == "timeout":
        # Hold the request until the client gives up (aiohttp cancels this handler when
        # the client disconnects), but never longer than the configured bound.
        await asyncio.sleep(ctx.emulator.config.timeout_fault_max_hold)
        if ctx.family == "new":
            return ctx.new_error(504, "GatewayTimeout", "后端服务调用超时")
        return ctx.old_error(15, "远程服务调用超时", sub_code="isp.top-remote-connection-timeout",
                             request_id=ctx.request_id)
    if kind == "reset":
        ctx.error = "reset"
        transport = ctx.request.transport
        if transport is not None:
            transport.abort()
        # Nothing reaches the client after the abort; aiohttp drops this response.
        return web.Response(status=500)
    raise AssertionError(kind)
