"""The 待办 APIs (reference part 2 §2.2–2.3, ``api.dingtalk.com/v1.0/todo``) on the app's ``DingTalkClient``: its one
HTTP session, its per-API pacing and retries, its typed errors.

Every person is a unionId. ``{unionId}`` in the path is the task's creator (the bot creates each todo as its owner,
so the path is the owner's unionId for every call), ``operatorId`` the acting person (the same).

Answers the bot acts on are typed here: ``TaskExists`` (the sourceId is taken: a retried create that did get through)
and ``TaskMissing`` ("task not exist": deleted in DingTalk). Flow control and the sourceId lock come back as
``Throttled`` (``bot.dingtalk.errors``), retried by the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bot.dingtalk.errors import InvalidRequest

BASE = "/v1.0/todo/users/{union_id}"


class TaskExists(InvalidRequest):
    """``task exist``: a todo with this sourceId is there already."""


class TaskMissing(InvalidRequest):
    """``task not exist``: no such todo (deleted in DingTalk, or never created)."""


@dataclass(frozen=True, slots=True)
class TodoTask:
    """A task as ``GET`` shows it: what the bot compares with its row."""

    task_id: str
    subject: str
    due_ms: int | None
    done: bool
    executor_ids: tuple[str, ...]
    source_id: str | None

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> TodoTask:
        return cls(task_id=str(body.get("id") or ""), subject=str(body.get("subject") or ""),
                   due_ms=body.get("dueTime"), done=bool(body.get("done")),
                   executor_ids=tuple(str(e) for e in body.get("executorIds") or ()),
                   source_id=body.get("sourceId"))


@dataclass(frozen=True, slots=True)
class TodoDraft:
    """What the bot wants a todo to be."""

    subject: str
    due_ms: int
    executor_id: str
    detail_url: str
    source_id: str


def _typed(exc: InvalidRequest) -> InvalidRequest:
    text = exc.message or ""
    if "task exist" in text and "not exist" not in text:
        # Retryable: the retry finds the task by its sourceId, or moves to the next sourceId.
        return TaskExists(exc.code, text, http_status=exc.http_status, api=exc.api, retryable=True)
    if "task not exist" in text:
        return TaskMissing(exc.code, text, http_status=exc.http_status, api=exc.api)
    return exc


class TodoApi:
    def __init__(self, client: Any) -> None:
        self.client = client

    async def _call(self, api: str, method: Any, creator: str, tail: str = "", *, body: dict[str, Any] | None = None,
                    operator: bool = True, idempotent: bool = True) -> dict[str, Any]:
        path = BASE.format(union_id=quote(creator, safe="")) + tail
        try:
            return await self.client.call_rest(api, method, path, body=body,
                                               params={"operatorId": creator} if operator else None,
                                               idempotent=idempotent)
        except InvalidRequest as exc:
            raise _typed(exc) from None

    async def create(self, creator: str, draft: TodoDraft) -> TodoTask:
        body = {"subject": draft.subject, "sourceId": draft.source_id, "creatorId": creator,
                "executorIds": [draft.executor_id], "dueTime": draft.due_ms,
                "detailUrl": {"appUrl": draft.detail_url, "pcUrl": draft.detail_url},
                "isOnlyShowExecutor": True, "priority": 20,
                # The owner creates their own todo: no DING pop-up (§2.2), the todo list's own notice only.
                "notifyConfigs": {"dingNotify": "0"}}
        # Not idempotent on the wire: a timed-out create may have gone through; the caller checks by sourceId.
        return TodoTask.from_api(await self._call("todo.taskCreate", "POST", creator, "/tasks", body=body,
                                                  idempotent=False))

    async def get(self, creator: str, task_id: str) -> TodoTask:
        return TodoTask.from_api(await self._call("todo.taskGet", "GET", creator, f"/tasks/{quote(task_id, safe='')}",
                                                  operator=False))

    async def by_source(self, creator: str, source_id: str) -> TodoTask | None:
        try:
            return TodoTask.from_api(await self._call(
                "todo.taskGetBySource", "GET", creator, f"/tasks/sources/{quote(source_id, safe='')}", operator=False))
        except TaskMissing:
            return None

    async def update(self, creator: str, task_id: str, *, subject: str, due_ms: int, done: bool,
                     executor_id: str) -> None:
        body = {"subject": subject, "dueTime": due_ms, "done": done, "executorIds": [executor_id]}
        await self._call("todo.taskUpdate", "PUT", creator, f"/tasks/{quote(task_id, safe='')}", body=body)

    async def delete(self, creator: str, task_id: str) -> None:
        """Delete the task; one that is gone already counts as deleted."""
        try:
            await self._call("todo.taskDelete", "DELETE", creator, f"/tasks/{quote(task_id, safe='')}")
        except TaskMissing:
            return


__all__ = ["TaskExists", "TaskMissing", "TodoApi", "TodoDraft", "TodoTask"]
