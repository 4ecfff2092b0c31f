"""工作通知 routes (P2 §6, oapi): `asyncsend_v2` and `getsendresult`; the state lives in `worknotice.py`."""

from __future__ import annotations

from aiohttp import web

from .openapi_common import ApiContext, OldApiError, api, refusing
from .worknotice import WorkNoticeError

BASE = "/topapi/message/corpconversation"
as_errcode = refusing(WorkNoticeError, lambda exc, ctx: OldApiError(exc.errcode, exc.errmsg, request_id=ctx.request_id))


@api("message.corpconversation.asyncsend_v2", "old")
@as_errcode
async def async_send(request: web.Request, ctx: ApiContext) -> web.Response:
    task = ctx.emulator.work_notices.send(ctx.app, await ctx.json_body())
    return ctx.ok({"errcode": 0, "errmsg": "ok", "task_id": task.task_id, "request_id": ctx.request_id})


@api("message.corpconversation.getsendresult", "old")
@as_errcode
async def send_result(request: web.Request, ctx: ApiContext) -> web.Response:
    result = ctx.emulator.work_notices.result(ctx.app, await ctx.json_body())
    return ctx.ok({"errcode": 0, "errmsg": "ok", "send_result": result, "request_id": ctx.request_id})


ROUTES = (
    ("POST", f"{BASE}/asyncsend_v2", async_send),
    ("POST", f"{BASE}/getsendresult", send_result),
)
