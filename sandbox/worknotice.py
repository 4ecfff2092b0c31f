"""工作通知 (work notifications, P2 §6): what an app sends to people's 工作通知 conversation.

`asyncsend_v2` answers a task_id at once and delivers right away (§7.2). The limits drop messages silently, and
only `getsendresult` tells: a person gets one copy of the same content per day (143106) and at most
`config.work_notice_daily_cap` messages per app per day (143105); unknown userids are `invalid_user_id_list`,
outsiders and people who left `forbidden_user_id_list`. A delivered message is unread until the person opens the
pane (the page) or `sb.read_work_notices`. Days are China days.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .clock import Clock
from .config import EmulatorConfig
from .ids import IdFactory
from .signals import ChangeSignal
from .todo import CHINA
from .world import App, User, World

MAX_USERS = 100              # userid_list
MAX_DEPTS = 20               # dept_id_list
MAX_RECIPIENTS = 5000        # per call; beyond, silently not sent
MSG_MAX_BYTES = 2048
MARKDOWN_MAX = 5000
RESULT_WINDOW_MS = 86_400_000    # getsendresult knows tasks of the last 24 h
DAILY_CAP_CODE, DUPLICATE_CODE = "143105", "143106"

# msg types and the fields each needs (§6, [DOC:message-types-and-data-format]).
REQUIRED = {"text": ("content",), "image": ("media_id",), "voice": ("media_id",), "file": ("media_id",),
            "link": ("messageUrl", "title", "text"), "markdown": ("title", "text"),
            "action_card": ("title", "markdown"), "oa": ("message_url", "body")}


class WorkNoticeError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errmsg)
        self.errcode, self.errmsg = errcode, errmsg


@dataclass
class Notice:
    seq: int
    task_id: int
    app_id: str
    user_id: str
    msg: dict[str, Any]
    sent_at: int
    read: bool = False


@dataclass
class SendTask:
    task_id: int
    app_id: str
    created_at: int
    delivered: list[str] = field(default_factory=list)
    invalid_users: list[str] = field(default_factory=list)
    forbidden_users: list[str] = field(default_factory=list)
    invalid_depts: list[int] = field(default_factory=list)
    forbidden: list[dict[str, Any]] = field(default_factory=list)


def china_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, CHINA).date().isoformat()


def _ids(value: Any, name: str) -> list[str]:
    """A comma-separated list, as the API takes it."""
    if value in (None, ""):
        return []
    if not isinstance(value, str):
        raise WorkNoticeError(40035, f"不合法的参数：{name} 须为逗号分隔的字符串")
    return [part.strip() for part in value.split(",") if part.strip()]


def check_msg(msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict) or not isinstance(msg.get("msgtype"), str):
        raise WorkNoticeError(40035, "缺少参数 msg")
    kind = msg["msgtype"]
    body = msg.get(kind)
    if kind not in REQUIRED or not isinstance(body, dict):
        raise WorkNoticeError(40035, f"不合法的参数：msg.msgtype {kind}")
    missing = [f for f in REQUIRED[kind] if not body.get(f)]
    if missing:
        raise WorkNoticeError(40035, f"缺少参数 msg.{kind}.{missing[0]}")
    if kind == "markdown" and len(str(body["text"])) > MARKDOWN_MAX:
        raise WorkNoticeError(40035, f"不合法的参数：markdown 内容超过 {MARKDOWN_MAX} 字")
    if len(json.dumps(msg, ensure_ascii=False).encode()) > MSG_MAX_BYTES:
        raise WorkNoticeError(40035, f"不合法的参数：msg 超过 {MSG_MAX_BYTES} 字节")
    return msg


class WorkNotices:
    def __init__(self, *, world: World, clock: Clock, ids: IdFactory, config: EmulatorConfig,
                 signal: ChangeSignal):
        self.world, self.clock, self.ids, self.config, self.signal = world, clock, ids, config, signal
        self.notices: list[Notice] = []
        self.tasks: dict[int, SendTask] = {}

    def send(self, app: App, body: dict[str, Any]) -> SendTask:
        agent = body.get("agent_id")
        if agent in (None, ""):
            raise WorkNoticeError(40035, "缺少参数 agent_id")
        if str(agent) != str(app.agent_id):
            raise WorkNoticeError(40056, "不合法的agentid")
        msg = check_msg(body.get("msg"))
        user_ids = _ids(body.get("userid_list"), "userid_list")
        dept_ids = _ids(body.get("dept_id_list"), "dept_id_list")
        to_all = body.get("to_all_user") in (True, "true")
        if len(user_ids) > MAX_USERS:
            raise WorkNoticeError(40035, f"不合法的参数：userid_list 最多 {MAX_USERS} 个")
        if len(dept_ids) > MAX_DEPTS:
            raise WorkNoticeError(40035, f"不合法的参数：dept_id_list 最多 {MAX_DEPTS} 个")
        if not (user_ids or dept_ids or to_all):
            raise WorkNoticeError(40035, "缺少参数 userid_list、dept_id_list 或 to_all_user")
        now = self.clock.now_ms()
        task = SendTask(int(self.ids.numeric(12)), app.client_id, now)
        recipients = self._recipients(task, user_ids, dept_ids, to_all)[:MAX_RECIPIENTS]
        for user in recipients:
            self._deliver(task, app, user, msg, now)
        self.tasks[task.task_id] = task
        self.signal.bump()
        return task

    def _recipients(self, task: SendTask, user_ids: list[str], dept_ids: list[str], to_all: bool) -> list[User]:
        chosen: dict[str, User] = {}
        for user_id in user_ids:
            user = self.world.users.get(user_id)
            if user is None:
                task.invalid_users.append(user_id)
            elif user.external or not user.active:
                task.forbidden_users.append(user_id)
            else:
                chosen.setdefault(user_id, user)
        depts: set[int] = set()
        for raw in dept_ids:
            if not raw.isdigit() or int(raw) not in self.world.departments:
                task.invalid_depts.append(int(raw) if raw.isdigit() else raw)
            else:
                depts |= self._with_children(int(raw))
        for user in self.world.internal_users():
            if user.active and (to_all or depts & set(user.department_ids)):
                chosen.setdefault(user.user_id, user)
        return list(chosen.values())

    def _with_children(self, dept_id: int) -> set[int]:
        found, frontier = {dept_id}, [dept_id]
        while frontier:
            parent = frontier.pop()
            children = [d.dept_id for d in self.world.departments.values() if d.parent_id == parent]
            frontier += [c for c in children if c not in found]
            found.update(children)
        return found

    def _deliver(self, task: SendTask, app: App, user: User, msg: dict[str, Any], now: int) -> None:
        today = china_day(now)
        mine = [n for n in self.notices
                if n.user_id == user.user_id and n.app_id == app.client_id and china_day(n.sent_at) == today]
        if any(n.msg == msg for n in mine):
            task.forbidden.append({"code": DUPLICATE_CODE, "count": 1, "userid": user.user_id})
        elif len(mine) >= self.config.work_notice_daily_cap:
            task.forbidden.append({"code": DAILY_CAP_CODE, "count": len(mine), "userid": user.user_id})
        else:
            self.notices.append(Notice(len(self.notices) + 1, task.task_id, app.client_id, user.user_id, msg, now))
            task.delivered.append(user.user_id)

    def result(self, app: App, body: dict[str, Any]) -> dict[str, Any]:
        agent, task_id = body.get("agent_id"), body.get("task_id")
        if agent in (None, "") or task_id in (None, ""):
            raise WorkNoticeError(40035, "缺少参数 agent_id 或 task_id")
        if str(agent) != str(app.agent_id):
            raise WorkNoticeError(40056, "不合法的agentid")
        task = self.tasks.get(int(task_id)) if str(task_id).isdigit() else None
        if task is None or task.app_id != app.client_id or task.created_at < self.clock.now_ms() - RESULT_WINDOW_MS:
            raise WorkNoticeError(40035, "不合法的参数：task_id 不存在或已超过 24 小时")
        read = {n.user_id for n in self.notices if n.task_id == task.task_id and n.read}
        return {"invalid_user_id_list": task.invalid_users, "forbidden_user_id_list": task.forbidden_users,
                "failed_user_id_list": [], "read_user_id_list": [u for u in task.delivered if u in read],
                "unread_user_id_list": [u for u in task.delivered if u not in read],
                "invalid_dept_id_list": task.invalid_depts, "forbidden_list": task.forbidden}

    # ---- the person's 工作通知 ----------------------------------------------------------
    def of(self, user: User) -> list[Notice]:
        return [n for n in self.notices if n.user_id == user.user_id]

    def mark_read(self, user: User) -> int:
        unread = [n for n in self.of(user) if not n.read]
        for notice in unread:
            notice.read = True
        if unread:
            self.signal.bump()
        return len(unread)
