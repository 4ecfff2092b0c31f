"""Workflow OpenAPI routes (§8.1); the state machine lives in `workflow.py`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .openapi_common import ApiContext, NewApiError, api, missing
from .workflow import WorkflowError, iso_minute


def _api_error(exc: WorkflowError) -> NewApiError:
    return NewApiError(exc.status, exc.code, exc.message)


@api("workflow.forms.save", "new")
async def save_form(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    try:
        form = ctx.emulator.workflow.save_form(ctx.app, body)
    except WorkflowError as exc:
        raise _api_error(exc) from None
    return ctx.ok({"result": {"processCode": form.process_code}})


@api("workflow.processCodes.byName", "new")
async def process_code_by_name(request: web.Request, ctx: ApiContext) -> web.Response:
    name = request.query.get("name")
    if not name:
        raise missing("name")
    if len(name) > 64:
        raise NewApiError(400, "invalidParameter", "name长度不能超过64")
    form = ctx.emulator.workflow.form_by_name(name)
    if form is None:
        raise NewApiError(400, "processCodeError", f"未找到名称为{name}的审批模板")
    # Nested body per §13.2 (one third-party test saw a flat one).
    return ctx.ok({"result": {"processCode": form.process_code, "gmtModified": iso_minute(form.modified_at)}})


@api("workflow.forms.schema", "new")
async def form_schema(request: web.Request, ctx: ApiContext) -> web.Response:
    code = request.query.get("processCode")
    if not code:
        raise missing("processCode")
    try:
        schema = ctx.emulator.workflow.schema(code)
    except WorkflowError as exc:
        raise _api_error(exc) from None
    return ctx.ok({"result": schema})


@api("workflow.processInstances.create", "new")
async def create_instance(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    try:
        instance = ctx.emulator.workflow.create_instance(ctx.app, body)
    except WorkflowError as exc:
        raise _api_error(exc) from None
    return ctx.ok({"instanceId": instance.instance_id})


@api("workflow.processInstances.get", "new")
async def get_instance(request: web.Request, ctx: ApiContext) -> web.Response:
    instance_id = request.query.get("processInstanceId")
    if not instance_id:
        raise missing("processInstanceId")
    try:
        instance = ctx.emulator.workflow.get(instance_id)
    except WorkflowError as exc:
        raise _api_error(exc) from None
    # `success` is the string "true" in the documented sample of this API.
    return ctx.ok({"result": instance.to_api(ctx.emulator.world.corp_id), "success": "true"})


@api("workflow.processInstances.terminate", "new")
async def terminate_instance(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    if not body.get("processInstanceId"):
        raise missing("processInstanceId")
    try:
        ctx.emulator.workflow.terminate(str(body["processInstanceId"]),
                                        operating_user_id=body.get("operatingUserId"),
                                        is_system=bool(body.get("isSystem", False)),
                                        remark=str(body.get("remark") or ""))
    except WorkflowError as exc:
        raise _api_error(exc) from None
    return ctx.ok({"result": True, "success": True})


@api("workflow.processInstances.execute", "new")
async def execute_task(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    for name in ("processInstanceId", "taskId", "actionerUserId", "result"):
        if body.get(name) in (None, ""):
            raise missing(name)
    try:
        ctx.emulator.workflow.execute(str(body["processInstanceId"]), task_id=body["taskId"],
                                      actioner_user_id=str(body["actionerUserId"]), result=str(body["result"]),
                                      remark=str(body.get("remark") or ""))
    except WorkflowError as exc:
        raise _api_error(exc) from None
    return ctx.ok({"result": True, "success": True})


@api("workflow.instanceIds.query", "new")
async def query_instance_ids(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    if not body.get("processCode"):
        raise missing("processCode")
    if body.get("startTime") in (None, ""):
        raise missing("startTime")
    max_results = _int(body.get("maxResults", 20), "maxResults")
    if not 1 <= max_results <= 20:
        raise NewApiError(400, "invalidParameter", "maxResults取值范围为1~20")
    try:
        ids, next_token = ctx.emulator.workflow.query_ids(
            process_code=str(body["processCode"]), start_time=_int(body["startTime"], "startTime"),
            end_time=_int(body["endTime"], "endTime") if body.get("endTime") not in (None, "") else None,
            next_token=_int(body.get("nextToken", 0) or 0, "nextToken"), max_results=max_results,
            user_ids=[str(u) for u in body.get("userIds") or []] or None,
            statuses=[str(s) for s in body.get("statuses") or []] or None)
    except WorkflowError as exc:
        raise _api_error(exc) from None
    result: dict[str, Any] = {"list": ids}
    if next_token is not None:
        result["nextToken"] = str(next_token)
    return ctx.ok({"result": result, "success": True})


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NewApiError(400, "invalidParameter", f"{name}不合法") from None
