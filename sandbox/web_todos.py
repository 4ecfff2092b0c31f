"""The page's 待办 (sandbox-only JSON API under `/sandbox/api/`): each person's todo list, and deleting one.

    GET  todos?user=&fingerprint=&wait=   {"todos": [view…], "fingerprint", "dueCount", "now"}
    POST todos/delete {user, id}          {"result": "deleted" | "left", "todos", "fingerprint", "dueCount", "now"}

A view carries `{id, subject, dueTime, done, detailUrl, sourceId}` plus what the page draws (`dueState`, `roles`,
`openUrl`, `app`, `creator`, …). `dueCount` is the red dot. With `wait` (seconds, ≤ 30) and the last
`fingerprint`, the GET is a long-poll: it answers when the list or its red dot changes, also when a todo falls
due by the emulator clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from aiohttp import web

from .todo import TodoError, TodoTask, due_state
from .web_api import WebError, _body as read_body, _user as user_param, _wait as wait_param, endpoint
from .web_views import initials
from .world import User

if TYPE_CHECKING:
    from .emulator import Emulator


def openable(url: str | None) -> str | None:
    """Only web links open from the page; anything else (javascript:, dingtalk://) is shown, not followed."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return None


def _person(emulator: "Emulator", union_id: str) -> dict[str, Any]:
    user = emulator.todos.named(union_id)
    name = user.name if user else union_id
    return {"id": user.user_id if user else None, "name": name, "initials": initials(name)}


def todo_view(emulator: "Emulator", task: TodoTask, roles: list[str], user: User) -> dict[str, Any]:
    app = emulator.world.apps.get(task.app_id)
    return {
        "id": task.task_id, "subject": task.subject, "dueTime": task.due_time, "done": task.done_for(user.union_id),
        "detailUrl": dict(task.detail_url), "sourceId": task.source_id, "description": task.description,
        "priority": task.priority, "roles": roles, "dueState": due_state(task.due_time, emulator.clock.now_ms()),
        # A desktop browser is DingTalk's PC client here: pcUrl first (§2.4 "appUrl mobile, pcUrl PC").
        "openUrl": openable(task.detail_url.get("pcUrl")) or openable(task.detail_url.get("appUrl")),
        "app": {"id": task.app_id, "name": app.name if app else task.app_id},
        "creator": _person(emulator, task.creator_id),
        "executors": [_person(emulator, e) for e in task.executor_ids],
        "createdTime": task.created_time, "finishTime": task.finish_time,
        "deleteMeans": "deleted" if task.creator_id == user.union_id else "left",
    }


def todos_answer(emulator: "Emulator", user: User) -> dict[str, Any]:
    todos = emulator.todos
    return {"todos": [todo_view(emulator, t, roles, user) for t, roles in todos.list_for(user)],
            "fingerprint": todos.fingerprint(user), "dueCount": todos.due_count(user),
            "now": emulator.clock.now_ms()}


async def until_changed(request: web.Request, emulator: "Emulator", fingerprint: Callable[[], str]) -> None:
    """The long-poll: with the last `fingerprint` and `wait` seconds in the query, return once it differs."""
    known = request.query.get("fingerprint")
    wait = wait_param(request.query.get("wait"))
    if known and wait > 0 and fingerprint() == known:
        try:
            await emulator.wait_until(lambda: fingerprint() != known, wait)
        except TimeoutError:
            pass


@endpoint
async def get_todos(request: web.Request, emulator: "Emulator") -> Any:
    user = user_param(emulator, request.query.get("user"))
    await until_changed(request, emulator, lambda: emulator.todos.fingerprint(user))
    return todos_answer(emulator, user)


@endpoint
async def delete_todo(request: web.Request, emulator: "Emulator") -> Any:
    body = await read_body(request)
    user = user_param(emulator, body.get("user"))
    task_id = body.get("id")
    if not task_id or not isinstance(task_id, str):
        raise WebError("请指定要删除的待办（id）")
    try:
        result = emulator.todos.delete_by_user(user, task_id)
    except TodoError:
        raise WebError(f"{user.name}的待办里没有这一项（可能已被删除）：{task_id}") from None
    return {"result": result, **todos_answer(emulator, user)}


ROUTES = (
    ("GET", "/todos", get_todos),
    ("POST", "/todos/delete", delete_todo),
)
