"""待办 OpenAPI routes (P2 §2.2–2.3, `api.dingtalk.com/v1.0/todo`); the state lives in `todo.py`.

Each API is named after its DingTalk operation (`todo.taskCreate`, …), which is also the prefix of its error
codes: HTTP 400 `todo.<op>.paramError` / `todo.<op>.flowControlError`, HTTP 500 `todo.<op>.systemError`
(the "busy" fault). Token checks, the per-app per-API QPS limit and faults come from `api()`.
"""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from .openapi_common import ApiContext, Handler, NewApiError, api, refusing
from .todo import TodoError, TodoTask

BASE = "/v1.0/todo/users/{unionId}"


def todo_api(operation: str) -> Callable[[Handler], Callable]:
    name = f"todo.{operation}"
    as_error = refusing(TodoError, lambda exc, ctx: NewApiError(400, f"{name}.{exc.kind}", exc.message))
    return lambda handler: api(name, "new", system_error=f"{name}.systemError")(as_error(handler))


def _operator(request: web.Request) -> str | None:
    return request.query.get("operatorId") or None


@todo_api("taskCreate")
async def create_task(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    task = ctx.emulator.todos.create(ctx.app, request.match_info["unionId"], _operator(request), body)
    return ctx.ok({**task.to_api(ctx.emulator.world), "requestId": ctx.request_id})


def _readable(ctx: ApiContext, request: web.Request, task: TodoTask | None) -> web.Response:
    ctx.emulator.todos.person(request.match_info["unionId"])
    if task is None:
        raise TodoError("task not exist")
    return ctx.ok(task.to_api(ctx.emulator.world))


@todo_api("taskGet")
async def get_task(request: web.Request, ctx: ApiContext) -> web.Response:
    task = ctx.emulator.todos.tasks.get(request.match_info["taskId"])
    return _readable(ctx, request, None if task is None or task.deleted else task)


@todo_api("taskGetBySource")
async def get_task_by_source(request: web.Request, ctx: ApiContext) -> web.Response:
    return _readable(ctx, request, ctx.emulator.todos.by_source(ctx.app, request.match_info["sourceId"]))


@todo_api("taskUpdate")
async def update_task(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    ctx.emulator.todos.update(ctx.app, request.match_info["taskId"], _operator(request), body)
    return ctx.ok({"result": True})


@todo_api("taskExecutorStatusUpdate")
async def update_executor_status(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    ctx.emulator.todos.set_executor_status(ctx.app, request.match_info["taskId"], _operator(request),
                                           body.get("executorStatusList"))
    return ctx.ok({"result": True})


@todo_api("taskDelete")
async def delete_task(request: web.Request, ctx: ApiContext) -> web.Response:
    ctx.emulator.todos.delete(ctx.app, request.match_info["taskId"], _operator(request))
    return ctx.ok({"result": True, "requestId": ctx.request_id})


@todo_api("orgTaskQuery")
async def query_org_tasks(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    page, token = ctx.emulator.todos.org_query(request.match_info["unionId"], body)
    return ctx.ok({"todoCards": [t.card(ctx.emulator.world) for t in page], "nextToken": token})


@todo_api("taskList")
async def query_user_tasks(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    page, token, total = ctx.emulator.todos.user_query(request.match_info["unionId"], body)
    return ctx.ok({"todoCards": [t.card(ctx.emulator.world) for t in page], "nextToken": token,
                   "totalCount": total})


@todo_api("taskCount")
async def count_user_tasks(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    return ctx.ok({"result": ctx.emulator.todos.user_count(request.match_info["unionId"], body)})


ROUTES = (
    ("POST", f"{BASE}/tasks", create_task),
    ("POST", f"{BASE}/tasks/list", query_user_tasks),
    ("POST", f"{BASE}/tasks/count", count_user_tasks),
    ("GET", f"{BASE}/tasks/sources/{{sourceId}}", get_task_by_source),
    ("GET", f"{BASE}/tasks/{{taskId}}", get_task),
    ("PUT", f"{BASE}/tasks/{{taskId}}", update_task),
    ("DELETE", f"{BASE}/tasks/{{taskId}}", delete_task),
    ("PUT", f"{BASE}/tasks/{{taskId}}/executorStatus", update_executor_status),
    ("POST", f"{BASE}/org/tasks/query", query_org_tasks),
)
