"""待办 (todo): work todos that apps create through the OpenAPI, and what people do to them in DingTalk (P2 §2).

Tasks are addressed by unionIds (§3.1), keyed by taskId, unique per app by `sourceId` ("task exist"), and belong
to the app that created them (its bizTag): another app may read them but not change them ("task not belong to
bizTag"). Work todos need a `detailUrl` (§2.1).

People act on todos in the client (the sandbox page, the harness): the creator deletes a todo or edits its
executors, participants, subject or due time; an executor or participant deletes it from their own list (they
leave it); the harness may also complete one. Each such change emits a `todo_task_create|update|delete` EVENT
frame to the owning app only, with `{unionIdList, bizTag, taskId}` (§2.4, §7.2: unionIdList = creator + executors
+ participants, before and after the change). Changes the app makes itself through the API emit events only when
`config.todo_events_on_api_changes` is on (UNCONFIRMED whether DingTalk sends them).

Everything here runs on the emulator loop.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from .clock import Clock
from .config import EmulatorConfig
from .ids import IdFactory, stable_digest
from .signals import ChangeSignal
from .world import App, User, World

TODO_CREATE_EVENT = "todo_task_create"
TODO_UPDATE_EVENT = "todo_task_update"
TODO_DELETE_EVENT = "todo_task_delete"
TODO_EVENTS = (TODO_CREATE_EVENT, TODO_UPDATE_EVENT, TODO_DELETE_EVENT)

# §2.2 / §2.3 limits.
SUBJECT_MAX = 1024
DESCRIPTION_MAX = 4096
CREATE_PEOPLE_MAX = 100
UPDATE_PEOPLE_MAX = 1000
URL_MAX_BYTES = 1024
FIELD_MAX_BYTES = 1024
PRIORITIES = frozenset({10, 20, 30, 40})
TODO_TYPES = frozenset({"TODO", "READ"})
ROLES = ("executor", "creator", "participant")
ORDER_FIELDS = {"created": "created_time", "modified": "modified_time", "finished": "finish_time",
                "startTime": "start_time", "dueTime": "due_time"}
DONE_RETENTION_MS = 180 * 86_400_000     # the org list shows done todos of the last 180 days only
MAX_DUE_TIME_MS = 32_503_680_000_000     # year 3000: anything later is not a date a person meant

# The red dot counts what is due today or overdue, today as the users in China see it.
CHINA = timezone(timedelta(hours=8))

Emit = Callable[[str, dict[str, Any], App], None]


class TodoError(Exception):
    """A refused todo call. The API names it `todo.<operation>.<kind>` (kind: paramError, flowControlError)."""

    def __init__(self, message: str, kind: str = "paramError"):
        super().__init__(message)
        self.kind, self.message = kind, message


def biz_tag(app: App) -> str:
    """The app's todo source tag (opaque in DingTalk; stable per app here)."""
    return "open_" + stable_digest("bizTag", app.client_id, length=6).hex()


@dataclass
class TodoTask:
    seq: int                            # creation order (ms timestamps tie within a burst)
    task_id: str
    app_id: str
    biz_tag: str
    subject: str
    creator_id: str                     # unionIds from here on
    executor_ids: list[str]
    participant_ids: list[str]
    detail_url: dict[str, str]
    created_time: int
    description: str = ""
    source_id: str | None = None
    due_time: int | None = None
    is_only_show_executor: bool = False
    priority: int | None = None
    notify_configs: dict[str, Any] = field(default_factory=dict)
    content_fields: list[dict[str, Any]] = field(default_factory=list)
    todo_type: str = "TODO"
    biz_category_id: str | None = None
    modified_time: int = 0
    modifier_id: str = ""
    start_time: int = 0
    finish_time: int | None = None
    done: bool = False
    executor_done: dict[str, bool] = field(default_factory=dict)
    deleted: bool = False

    def people(self) -> list[str]:
        """Creator, executors, participants: the event's unionIdList (§7.2)."""
        return list(dict.fromkeys([self.creator_id, *self.executor_ids, *self.participant_ids]))

    def roles_of(self, union_id: str) -> list[str]:
        roles = []
        if union_id in self.executor_ids:
            roles.append("executor")
        if union_id == self.creator_id:
            roles.append("creator")
        if union_id in self.participant_ids:
            roles.append("participant")
        return roles

    def listed_roles(self, union_id: str) -> list[str]:
        """The roles under which the todo shows in this person's lists (`isOnlyShowExecutor` hides the others)."""
        roles = self.roles_of(union_id)
        return [r for r in roles if r == "executor"] if self.is_only_show_executor else roles

    def done_for(self, union_id: str) -> bool:
        return self.done or self.executor_done.get(union_id, False)

    def to_api(self, world: World) -> dict[str, Any]:
        """The task as `GET …/tasks/{taskId}` returns it (§2.2 response plus the get-only fields)."""
        body: dict[str, Any] = {
            "id": self.task_id, "subject": self.subject, "description": self.description,
            "startTime": self.start_time, "dueTime": self.due_time, "finishTime": self.finish_time,
            "done": self.done, "executorIds": list(self.executor_ids), "participantIds": list(self.participant_ids),
            "detailUrl": dict(self.detail_url), "source": world.apps[self.app_id].name if self.app_id in world.apps
            else "", "sourceId": self.source_id, "createdTime": self.created_time, "modifiedTime": self.modified_time,
            "creatorId": self.creator_id, "modifierId": self.modifier_id, "bizTag": self.biz_tag,
            "isOnlyShowExecutor": self.is_only_show_executor, "priority": self.priority,
            "notifyConfigs": dict(self.notify_configs), "contentFieldList": list(self.content_fields),
            "todoType": self.todo_type, "tenantId": world.corp_id, "tenantType": "org", "cardTypeId": None,
        }
        if self.biz_category_id is not None:
            body["bizCategoryId"] = self.biz_category_id
        return body

    def card(self, world: World) -> dict[str, Any]:
        """One entry of the org list (§2.3) and of the user list ([SDK:todo_1_0] QueryTodoTasks)."""
        app = world.apps.get(self.app_id)
        return {"taskId": self.task_id, "subject": self.subject, "dueTime": self.due_time,
                "detailUrl": dict(self.detail_url), "priority": self.priority, "createdTime": self.created_time,
                "modifiedTime": self.modified_time, "creatorId": self.creator_id, "sourceId": self.source_id,
                "bizTag": self.biz_tag, "isDone": self.done, "todoType": self.todo_type,
                "orgInfo": {"corpId": world.corp_id, "name": world.corp_name},
                "originalSource": {"sourceTitle": app.name if app else ""}}


# ---- due state (the red dot) ----------------------------------------------------------

def end_of_day_ms(now_ms: int) -> int:
    """The first ms after today, China time."""
    today = datetime.fromtimestamp(now_ms / 1000, CHINA).date()
    return int(datetime(today.year, today.month, today.day, tzinfo=CHINA).timestamp() * 1000) + 86_400_000


def start_of_day_ms(ms: int) -> int:
    return end_of_day_ms(ms) - 86_400_000


def due_state(due_time: int | None, now_ms: int) -> str:
    """"overdue", "today" (due before midnight), "later", or "none" (no due time)."""
    if due_time is None:
        return "none"
    if due_time < now_ms:
        return "overdue"
    return "today" if due_time < end_of_day_ms(now_ms) else "later"


# ---- request parsing ------------------------------------------------------------------

def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise TodoError(f"{name} is empty")
        return None
    if not isinstance(value, str):
        raise TodoError(f"{name} is invalid")
    if required and not value.strip():
        raise TodoError(f"{name} is empty")
    if len(value) > limit:
        raise TodoError(f"{name} is oversize")
    return value


def _due_time(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_DUE_TIME_MS:
        raise TodoError("dueTime is invalid")
    return value


def _bool(body: dict[str, Any], name: str, default: bool | None = None) -> bool | None:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise TodoError(f"{name} is invalid")
    return value


def _detail_url(value: Any) -> dict[str, str]:
    if value is None:
        # Work todos only since 2024-02-01: nobody could open one without a detail page (§2.1).
        raise TodoError("detailUrl is empty")
    if not isinstance(value, dict) or not all(isinstance(value.get(k, ""), str) for k in ("appUrl", "pcUrl")):
        raise TodoError("detailUrl is invalid")
    urls = {k: value[k] for k in ("appUrl", "pcUrl") if value.get(k)}
    if not urls:
        raise TodoError("detailUrl is empty")
    if any(len(u.encode()) > URL_MAX_BYTES for u in urls.values()):
        raise TodoError("detailUrl is oversize")
    return urls


def _content_fields(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
        raise TodoError("contentFieldList is invalid")
    for item in value:
        if len(str(item.get("fieldValue", "")).encode()) > FIELD_MAX_BYTES:
            raise TodoError("contentFieldList is oversize")
    return [dict(f) for f in value]


def _role_types(value: Any) -> list[list[str]]:
    if value is None:
        return [[r] for r in ROLES]
    if (not isinstance(value, list) or not value
            or not all(isinstance(g, list) and g and all(r in ROLES for r in g) for g in value)):
        raise TodoError("roleTypes is invalid")
    return value


def _encode_token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_token(token: Any) -> str | None:
    """The raw cursor behind a nextToken; None for the first page. Raises on a token we never gave."""
    if token in (None, ""):
        return None
    if not isinstance(token, str):
        raise TodoError("nextToken is invalid")
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise TodoError("nextToken is invalid") from None


class TodoStore:
    def __init__(self, *, world: World, clock: Clock, ids: IdFactory, config: EmulatorConfig,
                 signal: ChangeSignal, emit: Emit):
        self.world, self.clock, self.ids, self.config = world, clock, ids, config
        self.signal, self.emit = signal, emit
        self.tasks: dict[str, TodoTask] = {}
        self._flow: dict[tuple[str, str], tuple[int, int]] = {}   # (dimension, key) -> (minute, creates)
        # Indexes, so that a burst of calls stays fast in a world of thousands of people and todos.
        self._sources: dict[tuple[str, str], str] = {}    # (app, sourceId) -> the newest task with it
        self._union_index: dict[str, str] = {}            # unionId -> userId

    # ---- people ---------------------------------------------------------------------
    def person(self, union_id: Any) -> User:
        """A current org member by unionId: the org's todos take no outsiders and nobody who left
        (UNCONFIRMED: outsiders have no todo list in this org)."""
        user = self.named(union_id) if isinstance(union_id, str) else None
        if user is None or user.external or not user.active:
            raise TodoError(f"unionId is invalid: {union_id}")
        return user

    def named(self, union_id: str) -> User | None:
        """Whoever has this unionId, also after they left (for showing names)."""
        user_id = self._union_index.get(union_id)
        if user_id is None:      # someone new (or nobody): index the directory again
            self._union_index = {u.union_id: u.user_id for u in self.world.users.values()}
            user_id = self._union_index.get(union_id)
        return self.world.users.get(user_id) if user_id is not None else None

    def _operator(self, operator_id: str | None, default: str) -> str:
        # `operatorId` is the acting person (§2.1); the path's unionId stands in when it is absent.
        return self.person(operator_id).union_id if operator_id else default

    def _people(self, value: Any, name: str, limit: int) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise TodoError(f"{name}Ids is invalid")
        if len(value) > limit:
            raise TodoError(f"{name}s is oversize")
        return list(dict.fromkeys(self.person(u).union_id for u in value))

    # ---- lookups --------------------------------------------------------------------
    def live(self, task_id: str) -> TodoTask:
        task = self.tasks.get(task_id)
        if task is None or task.deleted:
            raise TodoError("task not exist")
        return task

    def owned(self, app: App, task_id: str) -> TodoTask:
        task = self.live(task_id)
        if task.app_id != app.client_id:
            raise TodoError("task not belong to bizTag")
        return task

    def by_source(self, app: App, source_id: str, *, include_deleted: bool = False) -> TodoTask | None:
        task = self.tasks.get(self._sources.get((app.client_id, source_id), ""))
        return task if task is not None and (include_deleted or not task.deleted) else None

    # ---- the app's API calls ----------------------------------------------------------
    def create(self, app: App, owner_union_id: str, operator_id: str | None, body: dict[str, Any]) -> TodoTask:
        self.person(owner_union_id)
        operator = self._operator(operator_id, owner_union_id)
        subject = _text(body, "subject", SUBJECT_MAX, required=True)
        description = _text(body, "description", DESCRIPTION_MAX) or ""
        creator = self.person(body["creatorId"]).union_id if body.get("creatorId") else operator
        executors = self._people(body.get("executorIds"), "executor", CREATE_PEOPLE_MAX)
        participants = self._people(body.get("participantIds"), "participant", CREATE_PEOPLE_MAX)
        due = _due_time(body.get("dueTime"))
        detail_url = _detail_url(body.get("detailUrl"))
        priority = body.get("priority")
        if priority is not None and priority not in PRIORITIES:
            raise TodoError("priority is invalid")
        todo_type = body.get("todoType") or "TODO"
        if todo_type not in TODO_TYPES:
            raise TodoError("todoType is invalid")
        only_executors = _bool(body, "isOnlyShowExecutor", False)
        fields = _content_fields(body.get("contentFieldList"))
        notify = body.get("notifyConfigs") or {}
        if not isinstance(notify, dict):
            raise TodoError("notifyConfigs is invalid")
        source_id = body.get("sourceId")
        if source_id is not None:
            if not isinstance(source_id, str) or not source_id:
                raise TodoError("sourceId is invalid")
            existing = self.by_source(app, source_id, include_deleted=self.config.todo_deleted_keeps_source_id)
            if existing is not None:
                # The FAQ quotes "task existed … taskId is xxx"; clients should match "task exist".
                raise TodoError(f"task exist, taskId is {existing.task_id}")
        self._flow_control(executors or [creator])
        now = self.clock.now_ms()
        task = TodoTask(
            seq=len(self.tasks) + 1, task_id=self.ids.todo_task_id(), app_id=app.client_id, biz_tag=biz_tag(app),
            subject=subject, creator_id=creator, executor_ids=executors, participant_ids=participants,
            detail_url=detail_url, created_time=now, description=description, source_id=source_id, due_time=due,
            is_only_show_executor=only_executors, priority=priority,
            notify_configs={k: str(v) for k, v in notify.items()}, content_fields=fields, todo_type=todo_type,
            biz_category_id=body.get("bizCategoryId"), modified_time=now, modifier_id=operator, start_time=now)
        self.tasks[task.task_id] = task
        if source_id is not None:
            self._sources[(app.client_id, source_id)] = task.task_id
        self._changed(task, TODO_CREATE_EVENT, by_user=False)
        return task

    def _flow_control(self, executors: list[str]) -> None:
        """Creates per executor and per org per minute (§2.2 flowControlError; the real limits are not published)."""
        minute = int(self.clock.now() // 60)
        limits = [(("org", self.world.corp_id), self.config.todo_flow_limit_per_org)]
        limits += [(("executor", e), self.config.todo_flow_limit_per_executor) for e in executors]
        limits = [(key, limit) for key, limit in limits if limit > 0]
        used = {key: self._flow[key][1] if self._flow.get(key, (None, 0))[0] == minute else 0 for key, _ in limits}
        if any(used[key] >= limit for key, limit in limits):
            raise TodoError("flowControl because of executorId or orgId", "flowControlError")
        for key, _ in limits:
            self._flow[key] = (minute, used[key] + 1)

    def update(self, app: App, task_id: str, operator_id: str | None, body: dict[str, Any]) -> TodoTask:
        task = self.owned(app, task_id)
        operator = self._operator(operator_id, task.creator_id)
        before = task.people()
        subject = _text(body, "subject", SUBJECT_MAX, required="subject" in body)
        description = _text(body, "description", DESCRIPTION_MAX)
        executors = (self._people(body["executorIds"], "executor", UPDATE_PEOPLE_MAX)
                     if body.get("executorIds") is not None else None)
        changes = {
            "subject": subject, "description": description, "due_time": _due_time(body.get("dueTime")),
            "participant_ids": (self._people(body["participantIds"], "participant", UPDATE_PEOPLE_MAX)
                                if body.get("participantIds") is not None else None),
            "content_fields": (_content_fields(body["contentFieldList"])
                               if body.get("contentFieldList") is not None else None),
        }
        done = _bool(body, "done")
        # Everything is checked before anything changes: a refused update changes nothing.
        for attr, value in changes.items():
            if value is not None:
                setattr(task, attr, value)
        if executors is not None:
            self._set_executors(task, executors)
        if done is not None:
            self._set_done(task, done)
        self._touch(task, operator)
        self._changed(task, TODO_UPDATE_EVENT, by_user=False, before=before)
        return task

    def set_executor_status(self, app: App, task_id: str, operator_id: str | None, statuses: Any) -> TodoTask:
        task = self.owned(app, task_id)
        operator = self._operator(operator_id, task.creator_id)
        if not isinstance(statuses, list) or not statuses:
            raise TodoError("executorStatusList is empty")
        if len(statuses) > UPDATE_PEOPLE_MAX:
            raise TodoError("executorStatusList is oversize")
        changes = {}
        for item in statuses:
            if not isinstance(item, dict) or not isinstance(item.get("isDone"), bool):
                raise TodoError("executorStatusList is invalid")
            union_id = self.person(item.get("id")).union_id
            if union_id not in task.executor_ids:
                raise TodoError(f"{union_id} is not an executor of the task")
            changes[union_id] = item["isDone"]
        task.executor_done.update(changes)
        self._settle(task)
        self._touch(task, operator)
        self._changed(task, TODO_UPDATE_EVENT, by_user=False)
        return task

    def delete(self, app: App, task_id: str, operator_id: str | None) -> None:
        task = self.owned(app, task_id)
        operator = self._operator(operator_id, task.creator_id)
        task.deleted = True
        self._touch(task, operator)
        self._changed(task, TODO_DELETE_EVENT, by_user=False)

    def org_query(self, union_id: str, body: dict[str, Any]) -> tuple[list[TodoTask], str | None]:
        """`POST …/org/tasks/query`: the person's org todos in creation order, keyset-paged by nextToken."""
        user = self.person(union_id)
        roles = _role_types(body.get("roleTypes"))
        is_done = _bool(body, "isDone")
        todo_type = body.get("todoType")
        cursor = _decode_token(body.get("nextToken"))
        if cursor is not None and not cursor.isdigit():
            raise TodoError("nextToken is invalid")
        after = int(cursor or 0)        # the creation number of the last todo of the previous page
        now = self.clock.now_ms()
        matching = [t for t in self._of(user.union_id, roles, is_done)
                    if t.seq > after and todo_type in (None, "", t.todo_type)
                    and not (t.done and (t.finish_time or 0) < now - DONE_RETENTION_MS)]
        matching.sort(key=lambda t: t.seq)
        page = matching[:self.config.todo_page_size]
        more = len(matching) > len(page)
        return page, _encode_token(str(page[-1].seq)) if more else None

    def user_query(self, union_id: str, body: dict[str, Any]) -> tuple[list[TodoTask], str | None, int]:
        """`POST …/tasks/list` ([SDK:todo_1_0] QueryTodoTasks): filters, order, offset paging, totalCount."""
        matching = self._user_filter(union_id, body)
        order_by = body.get("orderBy") or "dueTime"
        direction = body.get("orderDirection") or "asc"
        if order_by not in ORDER_FIELDS:
            raise TodoError("orderBy is invalid")
        if direction not in ("asc", "desc"):
            raise TodoError("orderDirection is invalid")
        attr = ORDER_FIELDS[order_by]
        # Todos without the field sort last either way, as a list of deadlines would show them.
        present = sorted((t for t in matching if getattr(t, attr) is not None),
                         key=lambda t: (getattr(t, attr), t.seq), reverse=direction == "desc")
        ordered = present + [t for t in matching if getattr(t, attr) is None]
        cursor = _decode_token(body.get("nextToken"))
        if cursor is not None and not cursor.isdigit():
            raise TodoError("nextToken is invalid")
        offset = int(cursor or 0)
        size = self.config.todo_page_size
        page = ordered[offset:offset + size]
        token = _encode_token(str(offset + size)) if offset + size < len(ordered) else None
        return page, token, len(ordered)

    def user_count(self, union_id: str, body: dict[str, Any]) -> int:
        return len(self._user_filter(union_id, body))

    def _user_filter(self, union_id: str, body: dict[str, Any]) -> list[TodoTask]:
        user = self.person(union_id)
        roles = _role_types(body.get("roleTypes"))
        is_done = _bool(body, "isDone")
        recycled = _bool(body, "isRecycled", False)
        start, end = _due_time(body.get("fromDueTime")), _due_time(body.get("toDueTime"))
        return [t for t in self._of(user.union_id, roles, is_done, recycled=recycled)
                if (start is None or (t.due_time is not None and t.due_time >= start))
                and (end is None or (t.due_time is not None and t.due_time <= end))]

    def _of(self, union_id: str, roles: list[list[str]], is_done: bool | None, *,
            recycled: bool = False) -> Iterable[TodoTask]:
        """Tasks in the person's lists whose roles match (outer list OR, inner list AND)."""
        for task in self.tasks.values():
            if task.deleted != recycled:
                continue
            mine = set(task.listed_roles(union_id))
            if not any(set(group) <= mine for group in roles):
                continue
            if is_done is not None and task.done_for(union_id) != is_done:
                continue
            yield task

    # ---- people in DingTalk -----------------------------------------------------------
    def list_for(self, user: User) -> list[tuple[TodoTask, list[str]]]:
        """The person's 待办 (each todo once, with the roles it shows under): not done first, by due time."""
        entries = [(t, t.listed_roles(user.union_id)) for t in self.tasks.values() if not t.deleted]
        entries = [(t, roles) for t, roles in entries if roles]
        never = MAX_DUE_TIME_MS
        entries.sort(key=lambda e: (e[0].done_for(user.union_id), e[0].due_time or never, e[0].seq))
        return entries

    def delete_by_user(self, user: User, task_id: str) -> str:
        """The person deletes the todo in their list: the creator deletes it for everyone ("deleted"),
        anyone else leaves it ("left": off their list, the task goes on)."""
        task = self._visible(user, task_id)
        if user.union_id == task.creator_id:
            task.deleted = True
            self._touch(task, user.union_id)
            self._changed(task, TODO_DELETE_EVENT, by_user=True)
            return "deleted"
        before = task.people()
        task.executor_ids = [e for e in task.executor_ids if e != user.union_id]
        task.executor_done.pop(user.union_id, None)
        task.participant_ids = [p for p in task.participant_ids if p != user.union_id]
        self._settle(task)
        self._touch(task, user.union_id)
        self._changed(task, TODO_UPDATE_EVENT, by_user=True, before=before)
        return "left"

    def edit_by_user(self, user: User, task_id: str, *, executors: list[str] | None = None,
                     participants: list[str] | None = None, due_time: int | None = None,
                     subject: str | None = None) -> TodoTask:
        """The creator edits the todo in the client (reassigns it, moves its due time, renames it)."""
        task = self._visible(user, task_id)
        if user.union_id != task.creator_id:
            raise TodoError("only the creator can edit the todo")
        before = task.people()
        executors = None if executors is None else self._people(executors, "executor", UPDATE_PEOPLE_MAX)
        participants = None if participants is None else self._people(participants, "participant", UPDATE_PEOPLE_MAX)
        due_time = _due_time(due_time)
        subject = None if subject is None else _text({"subject": subject}, "subject", SUBJECT_MAX, required=True)
        if executors is not None:
            self._set_executors(task, executors)
        if participants is not None:
            task.participant_ids = participants
        if due_time is not None:
            task.due_time = due_time
        if subject is not None:
            task.subject = subject
        self._settle(task)
        self._touch(task, user.union_id)
        self._changed(task, TODO_UPDATE_EVENT, by_user=True, before=before)
        return task

    def set_done_by_user(self, user: User, task_id: str, done: bool = True) -> TodoTask:
        """The creator completes (or reopens) the todo for everyone; an executor their own part.

        Work todos cannot be ticked in DingTalk's list (§2.1, §7.2): the page never offers it; tests use this to
        exercise the status-change event."""
        task = self._visible(user, task_id)
        if user.union_id == task.creator_id:
            self._set_done(task, done)
        elif user.union_id in task.executor_ids:
            task.executor_done[user.union_id] = done
            self._settle(task)
        else:
            raise TodoError("only the creator or an executor can complete the todo")
        self._touch(task, user.union_id)
        self._changed(task, TODO_UPDATE_EVENT, by_user=True)
        return task

    def _visible(self, user: User, task_id: str) -> TodoTask:
        task = self.live(task_id)
        if not task.listed_roles(user.union_id):
            raise TodoError("task not exist")
        return task

    def fingerprint(self, user: User) -> str:
        """Changes whenever the person's list or its red dot would look different (the page long-polls on it)."""
        now = self.clock.now_ms()
        parts = [f"{t.task_id}:{t.modified_time}:{t.done_for(user.union_id)}:{due_state(t.due_time, now)}"
                 for t, _ in self.list_for(user)]
        return stable_digest(*parts, length=8).hex() if parts else "empty"

    def due_count(self, user: User) -> int:
        """The red dot: what this person has to do (executor, not done) that is due today or overdue."""
        now = self.clock.now_ms()
        return sum(1 for t, roles in self.list_for(user)
                   if "executor" in roles and not t.done_for(user.union_id)
                   and due_state(t.due_time, now) in ("today", "overdue"))

    # ---- state changes --------------------------------------------------------------
    def _set_executors(self, task: TodoTask, executors: list[str]) -> None:
        task.executor_ids = executors
        task.executor_done = {e: d for e, d in task.executor_done.items() if e in executors}

    def _set_done(self, task: TodoTask, done: bool) -> None:
        task.done = done
        task.executor_done = {e: done for e in task.executor_ids}
        task.finish_time = self.clock.now_ms() if done else None

    def _settle(self, task: TodoTask) -> None:
        """The task is done once every executor is (and open again when one is not)."""
        if task.executor_ids:
            all_done = all(task.executor_done.get(e, False) for e in task.executor_ids)
            if all_done != task.done:
                task.done = all_done
                task.finish_time = self.clock.now_ms() if all_done else None

    def _touch(self, task: TodoTask, operator: str) -> None:
        task.modified_time = self.clock.now_ms()
        task.modifier_id = operator

    def _changed(self, task: TodoTask, event_type: str, *, by_user: bool, before: list[str] = ()) -> None:
        self._wake_when_due(task)
        self.signal.bump()
        app = self.world.apps.get(task.app_id)
        if app is None or not (by_user or self.config.todo_events_on_api_changes):
            return
        union_ids = list(dict.fromkeys([*before, *task.people()]))
        self.emit(event_type, {"unionIdList": union_ids, "bizTag": task.biz_tag, "taskId": task.task_id}, app)

    def _wake_when_due(self, task: TodoTask) -> None:
        # The red dot changes when the due day starts and when the todo becomes overdue, also
        # while nothing else happens: wake the page's long-poll at both moments.
        if task.due_time is None or task.deleted:
            return
        now = self.clock.now_ms()
        for moment in (start_of_day_ms(task.due_time), task.due_time):
            if moment > now:
                self.clock.call_at(moment / 1000, self.signal.bump)
