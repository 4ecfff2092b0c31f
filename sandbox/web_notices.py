"""The page's 工作通知 pane (sandbox-only JSON API under `/sandbox/api/`): what apps sent the person.

    GET  notices?user=&fingerprint=&wait=   {"notices": [view…] (newest first), "unread", "fingerprint"}
    POST notices/read {user}               the person opened the pane: everything is read (getsendresult says so)

A view: `{seq, taskId, app {id, name, initials}, sentAt, read, msgtype, title, text, markdown, url, buttons
[{title, url}], form [{key, value}], status}`; `text` is markdown when `markdown` is true. URLs are null unless
http(s). With `wait` (≤ 30 s) and the last `fingerprint` the GET is a long-poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .ids import stable_digest
from .web_api import _body as read_body, _user as user_param, endpoint
from .web_todos import openable, until_changed
from .web_views import initials
from .worknotice import Notice
from .world import User

if TYPE_CHECKING:
    from .emulator import Emulator

PLACEHOLDERS = {"image": "[图片]", "voice": "[语音]", "file": "[文件]"}


def _content(msg: dict[str, Any]) -> dict[str, Any]:
    """What the 工作通知 bubble shows, per msg type (§6)."""
    kind = msg["msgtype"]
    body = msg[kind]
    view: dict[str, Any] = {"msgtype": kind, "title": "", "text": "", "markdown": False, "url": None,
                            "buttons": [], "form": [], "status": None}
    if kind == "text":
        view["text"] = str(body["content"])
    elif kind == "markdown":
        view.update(title=str(body["title"]), text=str(body["text"]), markdown=True)
    elif kind == "link":
        view.update(title=str(body["title"]), text=str(body["text"]), url=openable(str(body["messageUrl"])))
    elif kind == "action_card":
        view.update(title=str(body["title"]), text=str(body["markdown"]), markdown=True)
        if body.get("single_title"):
            view["buttons"] = [{"title": str(body["single_title"]), "url": openable(str(body.get("single_url", "")))}]
        else:
            view["buttons"] = [{"title": str(b.get("title", "")), "url": openable(str(b.get("action_url", "")))}
                               for b in body.get("btn_json_list") or [] if isinstance(b, dict)]
    elif kind == "oa":
        content = body["body"] if isinstance(body["body"], dict) else {}
        view.update(title=str(content.get("title") or (body.get("head") or {}).get("text", "")),
                    text=str(content.get("content", "")),
                    url=openable(str(body.get("pc_message_url") or body["message_url"])),
                    form=[{"key": str(f.get("key", "")), "value": str(f.get("value", ""))}
                          for f in content.get("form") or [] if isinstance(f, dict)][:6],
                    status=(body.get("status_bar") or {}).get("status_value"))
    else:
        view["text"] = PLACEHOLDERS[kind]
    return view


def notice_view(emulator: "Emulator", notice: Notice) -> dict[str, Any]:
    app = emulator.world.apps.get(notice.app_id)
    name = app.name if app else notice.app_id
    return {"seq": notice.seq, "taskId": notice.task_id, "app": {"id": notice.app_id, "name": name,
                                                                 "initials": initials(name)},
            "sentAt": notice.sent_at, "read": notice.read, **_content(notice.msg)}


def notices_answer(emulator: "Emulator", user: User) -> dict[str, Any]:
    mine = emulator.work_notices.of(user)
    return {"notices": [notice_view(emulator, n) for n in reversed(mine)],
            "unread": sum(1 for n in mine if not n.read), "fingerprint": _fingerprint(mine)}


def _fingerprint(notices: list[Notice]) -> str:
    return stable_digest(*(f"{n.seq}:{n.read}" for n in notices)).hex() if notices else "empty"


@endpoint
async def get_notices(request: web.Request, emulator: "Emulator") -> Any:
    user = user_param(emulator, request.query.get("user"))
    await until_changed(request, emulator, lambda: _fingerprint(emulator.work_notices.of(user)))
    return notices_answer(emulator, user)


@endpoint
async def read_notices(request: web.Request, emulator: "Emulator") -> Any:
    user = user_param(emulator, (await read_body(request)).get("user"))
    return {"read": emulator.work_notices.mark_read(user), **notices_answer(emulator, user)}


ROUTES = (
    ("GET", "/notices", get_notices),
    ("POST", "/notices/read", read_notices),
)
