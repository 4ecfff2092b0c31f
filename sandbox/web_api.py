"""The web chat page's JSON API (sandbox-only, under `/sandbox/api/`; not a DingTalk API).

Every handler runs on the emulator loop and acts through the emulator's user-side
methods, so what the page does is exactly what a DingTalk client would cause: a
CALLBACK push for a message, a workflow transition (and its EVENT frames) for an
approval. Errors are HTTP 400 with a Chinese `{"error": "..."}` for the page to show.
"""

from __future__ import annotations

import functools
import json
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import quote, unquote

from aiohttp import web

from .card_views import message_views, top_card_view
from .errors import SandboxError
from .media import MEDIA_RULES, extension
from .openapi_common import EMULATOR_KEY, json_response
from .web_views import (approvals_fingerprint, approvals_for, conversations_for, custom_robot_view, instance_view,
                        record_view, user_view, world_view)
from .workflow import WorkflowError
from .world import AmbiguousName, User

if TYPE_CHECKING:
    from .emulator import Emulator

MAX_TEXT = 5000                 # characters in one typed message
MAX_WAIT = 30.0                 # seconds a long-poll may be held
MAX_FILE = MEDIA_RULES["file"][0]
IMAGE_EXTENSIONS = MEDIA_RULES["image"][1]
HEADERS = {"Cache-Control": "no-store", "X-Sandbox-Only": "web chat page API, not part of DingTalk"}


class WebError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def _respond(data: Any, status: int = 200) -> web.Response:
    return json_response(data, status=status, headers=HEADERS)


Handler = Callable[[web.Request, "Emulator"], Awaitable[Any]]


def endpoint(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            result = await handler(request, request.app[EMULATOR_KEY])
        except WebError as exc:
            return _respond({"error": exc.message}, exc.status)
        except WorkflowError as exc:
            return _respond({"error": exc.message, "code": exc.code}, 400)
        except SandboxError as exc:
            # A client could not do this either; the emulator says why (in English).
            return _respond({"error": f"模拟器拒绝了该操作：{exc}"}, 400)
        return result if isinstance(result, web.StreamResponse) else _respond(result)

    return wrapped


# ---- input --------------------------------------------------------------------------

async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text() or "{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise WebError("请求体必须是 JSON 对象")
    return body


def _user(emulator: "Emulator", key: Any) -> User:
    if not key:
        raise WebError("请先选择身份（user）")
    try:
        user = emulator.world.users.get(str(key)) or emulator.world.find_user(str(key))
    except AmbiguousName as exc:
        listed = "、".join(f"{u.user_id}（{d}）" for u, d in zip(exc.candidates, exc.descriptions))
        raise WebError(f"有 {len(exc.candidates)} 人叫「{exc.name}」，请用 userId 指明：{listed}") from None
    if user is None:
        raise WebError(f"未知用户：{key}")
    return user


def _conversations(emulator: "Emulator", user: User) -> list[dict[str, Any]]:
    return conversations_for(emulator, user)


def _conversation(emulator: "Emulator", user: User, cid: Any) -> dict[str, Any]:
    if not cid:
        raise WebError("请先选择会话（conversation）")
    if not user.active:
        raise WebError(f"{user.name}已离职，不能再使用本组织的会话")
    for conv in _conversations(emulator, user):
        if conv["id"] == cid:
            return conv
    group = emulator.world.groups.get(str(cid))
    if group is not None:
        raise WebError(f"{user.name}不在群「{group.title}」中")
    if emulator.world.private_conversation_owner(str(cid)) is not None:
        raise WebError("不能查看或使用他人与机器人的单聊")
    raise WebError(f"未知会话：{cid}")


def _int(value: Any, name: str, default: int = 0) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise WebError(f"{name} 必须是非负整数") from None
    if number < 0:
        raise WebError(f"{name} 必须是非负整数")
    return number


def _wait(value: Any) -> float:
    if value in (None, ""):
        return 0.0
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise WebError("wait 必须是秒数") from None
    return max(0.0, min(seconds, MAX_WAIT))


# ---- world and messages -------------------------------------------------------------

@endpoint
async def get_world(request: web.Request, emulator: "Emulator") -> Any:
    return world_view(emulator)


@endpoint
async def get_conversations(request: web.Request, emulator: "Emulator") -> Any:
    user = _user(emulator, request.query.get("user"))
    return {"conversations": [{**conv, "topCard": top_card_view(emulator, conv["id"], user)}
                              for conv in _conversations(emulator, user)]}


@endpoint
async def get_messages(request: web.Request, emulator: "Emulator") -> Any:
    """One conversation's transcript after a seq (no waiting)."""
    user = _user(emulator, request.query.get("user"))
    conv = _conversation(emulator, user, request.query.get("conversation"))
    after = _int(request.query.get("after"), "after")
    last = emulator.recorder.last_seq
    records = emulator.recorder.history(conv["id"], after_seq=after)
    return {"messages": message_views(emulator, records, user), "last": max(after, last)}


@endpoint
async def get_updates(request: web.Request, emulator: "Emulator") -> Any:
    """Long-poll: new messages in any of the user's conversations, or a change in their approvals or cards.

    Returns at once if something is new after `after` (or the approvals / cards
    fingerprint differs from `approvals` / `cards`), else waits up to `wait` seconds on
    the emulator's change signal; `last` is the seq to pass next time.
    """
    user = _user(emulator, request.query.get("user"))
    after = _int(request.query.get("after"), "after")
    wait = _wait(request.query.get("wait"))
    known = request.query.get("approvals")
    known_cards = request.query.get("cards")
    visible = {c["id"] for c in _conversations(emulator, user)}

    def check(final: bool = False) -> tuple[list, str, str, int] | None:
        last = emulator.recorder.last_seq
        new = [r for r in emulator.recorder.history(None, after_seq=after) if r.conversation_id in visible]
        fingerprint = approvals_fingerprint(list(emulator.workflow.instances.values()), user)
        cards = emulator.cards.fingerprint(visible)
        if new or final or (known is not None and fingerprint != known) or \
                (known_cards is not None and cards != known_cards):
            return new, fingerprint, cards, max(after, last)
        return None

    found = check()
    if found is None and wait > 0:
        try:
            found = await emulator.wait_until(check, wait)
        except TimeoutError:
            found = None
    new, fingerprint, cards, last = found or check(final=True)
    return {"messages": message_views(emulator, new, user), "last": last, "approvals": fingerprint, "cards": cards}


@endpoint
async def post_message(request: web.Request, emulator: "Emulator") -> Any:
    body = await _body(request)
    user = _user(emulator, body.get("user"))
    conv = _conversation(emulator, user, body.get("conversation"))
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise WebError("消息不能为空")
    if len(text) > MAX_TEXT:
        raise WebError(f"消息不能超过 {MAX_TEXT} 字")
    mentions = body.get("mentions") or []
    if not isinstance(mentions, list) or not all(isinstance(m, str) for m in mentions):
        raise WebError("mentions 必须是用户 id 列表")
    if conv["type"] == "group":
        for uid in mentions:
            if uid not in conv["memberIds"]:
                raise WebError(f"只能@本群成员：{uid}")
    else:
        mentions = []      # nobody else to @ in a 1:1 chat
    record = emulator.user_message(user, conv["id"], text=text, mentions=tuple(mentions),
                                   at_bot=bool(body.get("atBot", True)), app=conv["bot"]["id"])
    return {"message": record_view(emulator.world, record)}


def _plain_name(name: str) -> str:
    # Browsers send the UTF-8 name as is; aiohttp clients percent-encode it. Both mean
    # the same file, so an all-ASCII name with %XX escapes is decoded.
    if name.isascii() and re.search(r"%[0-9A-Fa-f]{2}", name):
        name = unquote(name)
    return name.replace("/", "_").replace("\\", "_").strip()


async def _read_upload(request: web.Request) -> tuple[dict[str, str], str, bytes]:
    if not request.content_type.startswith("multipart/"):
        raise WebError("请用 multipart/form-data 上传文件")
    fields: dict[str, str] = {}
    file_name, data = "", None
    reader = await request.multipart()
    async for part in reader:
        if part.filename is not None:
            file_name = _plain_name(part.filename)
            chunks, size = [], 0
            # Streamed so an oversized file is refused without buffering all of it.
            while chunk := await part.read_chunk(256 * 1024):
                size += len(chunk)
                if size > MAX_FILE:
                    raise WebError(f"文件不能超过 {MAX_FILE // (1024 * 1024)} MB")
                chunks.append(chunk)
            data = b"".join(chunks)
        elif part.name:
            fields[part.name] = (await part.read(decode=True))[:1000].decode("utf-8", "replace")
    if data is None or not file_name:
        raise WebError("没有收到文件")
    if not data:
        raise WebError("文件是空的")
    return fields, file_name, data


@endpoint
async def post_file(request: web.Request, emulator: "Emulator") -> Any:
    fields, file_name, data = await _read_upload(request)
    user = _user(emulator, fields.get("user"))
    conv = _conversation(emulator, user, fields.get("conversation"))
    is_image = extension(file_name) in IMAGE_EXTENSIONS
    kind = fields.get("kind") or ("picture" if is_image else "file")
    if kind not in ("file", "picture"):
        raise WebError("kind 只能是 file 或 picture")
    if kind == "picture" and not is_image:
        raise WebError("图片只支持 " + "、".join(sorted(IMAGE_EXTENSIONS)))
    if kind == "file" and not conv["canSendFile"]:
        raise WebError("钉钉不允许在群里给机器人发文件；启动模拟器时加 --allow-group-files 可放开（模拟器默认已放开）")
    target, app = conv["id"], conv["bot"]["id"]
    if kind == "picture":
        record = emulator.user_picture(user, target, data, file_name, app=app)
    else:
        record = emulator.user_file(user, target, data, file_name, app=app)
    return {"message": record_view(emulator.world, record)}


@endpoint
async def get_media(request: web.Request, emulator: "Emulator") -> Any:
    """Bytes of a bot upload (by media_id) or a user's file (by downloadCode), for the page."""
    ref = request.query.get("id", "")
    media = emulator.media.by_media_id(ref) or emulator.media.by_download_code(ref)
    if media is None:
        raise WebError("文件不存在或已失效", 404)
    attach = request.query.get("download") == "1" or media.kind != "image"
    disposition = "attachment" if attach else "inline"
    # `name`: the file name the message shows (a sampleFile's fileName may differ from the upload's).
    name = (request.query.get("name") or media.file_name).replace("/", "_").replace("\\", "_")[:200]
    return web.Response(body=media.data, content_type=media.content_type, headers={
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name, safe='')}",
        "Cache-Control": "private, max-age=3600"})


# ---- the directory ------------------------------------------------------------------

MAX_NAME = 20                   # characters in a person's name


@endpoint
async def post_user_update(request: web.Request, emulator: "Emulator") -> Any:
    """An admin renames someone, or someone leaves (active=false) or comes back (active=true)."""
    body = await _body(request)
    user = _user(emulator, body.get("user"))
    name, active = body.get("name"), body.get("active")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME):
        raise WebError(f'name 必须是 1–{MAX_NAME} 个字的姓名，例如 {{"user": "liming", "name": "李明远"}}')
    if active is not None and not isinstance(active, bool):
        raise WebError('active 只能是 true（在职）或 false（离职），例如 {"user": "liming", "active": false}')
    if name is None and active is None:
        raise WebError('请给出 name 或 active，例如 {"user": "liming", "name": "李明远"}')
    if active is not None and user.external:
        raise WebError(f"{user.name}不是本组织成员，不能设置在职或离职")
    updated = emulator.update_user(user, name=name.strip() if name else None, active=active)
    return {"user": user_view(emulator.world, updated)}


# ---- external groups and custom robots ----------------------------------------------

@endpoint
async def post_settings(request: web.Request, emulator: "Emulator") -> Any:
    """Switch the emulator's UNCONFIRMED behaviour: may the app's robot be in an external group?"""
    body = await _body(request)
    allowed = body.get("appRobotsInExternalGroups")
    if not isinstance(allowed, bool):
        raise WebError('appRobotsInExternalGroups 只能是 true 或 false，例如 {"appRobotsInExternalGroups": false}')
    emulator.config.app_robots_in_external_groups = allowed
    emulator.signal.bump()
    return {"settings": {"appRobotsInExternalGroups": allowed, "allowGroupFiles": emulator.config.allow_group_files}}


@endpoint
async def get_custom_robots(request: web.Request, emulator: "Emulator") -> Any:
    return {"robots": [custom_robot_view(emulator.world, r) for r in emulator.live_custom_robots()]}


@endpoint
async def post_custom_robot(request: web.Request, emulator: "Emulator") -> Any:
    """An admin adds a custom robot to a group: the only answer that shows its webhook and secret."""
    body = await _body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise WebError(f'name 必须是 1–{MAX_NAME} 个字，例如 {{"conversation": "<群的 id 或名称>", "name": "周报推送"}}')
    conversation = body.get("conversation")
    group = emulator.world.find_group(str(conversation)) if conversation else None
    if group is None:
        raise WebError(f"自定义机器人只能添加到群里：没有群「{conversation}」")
    robot = emulator.add_custom_robot(group, name)
    return {"robot": custom_robot_view(emulator.world, robot), "webhook": robot.webhook, "secret": robot.secret}


@endpoint
async def post_custom_robot_remove(request: web.Request, emulator: "Emulator") -> Any:
    body = await _body(request)
    robot = emulator.custom_robots.get(str(body.get("id") or ""))
    if robot is None or robot.removed:
        raise WebError(f"没有这个自定义机器人：{body.get('id')}")
    emulator.remove_custom_robot(robot.robot_id)
    return {"robot": custom_robot_view(emulator.world, robot)}


# ---- approvals ----------------------------------------------------------------------

@endpoint
async def get_approvals(request: web.Request, emulator: "Emulator") -> Any:
    user = _user(emulator, request.query.get("user"))
    instances = list(emulator.workflow.instances.values())
    tabs = approvals_for(instances, user)
    world = emulator.world
    return {"fingerprint": approvals_fingerprint(instances, user),
            **{tab: [instance_view(world, i, user) for i in items] for tab, items in tabs.items()}}


@endpoint
async def post_approval_action(request: web.Request, emulator: "Emulator") -> Any:
    body = await _body(request)
    user = _user(emulator, body.get("user"))
    instance_id = body.get("instanceId")
    if not instance_id or str(instance_id) not in emulator.workflow.instances:
        raise WebError(f"审批实例不存在：{instance_id}")
    result = body.get("result")
    if result not in ("agree", "refuse"):
        raise WebError("result 只能是 agree（同意）或 refuse（拒绝）")
    remark = body.get("remark") or ""
    if not isinstance(remark, str) or len(remark) > 1000:
        raise WebError("审批意见不能超过 1000 字")
    instance = emulator.workflow.get(str(instance_id))
    if not any(t.user_id == user.user_id and t.status == "RUNNING" for t in instance.tasks):
        raise WebError(f"{user.name}在该审批中没有待处理的任务")
    emulator.workflow.act(instance.instance_id, user.user_id, result, remark.strip())
    instances = list(emulator.workflow.instances.values())
    return {"instance": instance_view(emulator.world, instance, user),
            "fingerprint": approvals_fingerprint(instances, user)}


@endpoint
async def api_not_found(request: web.Request, emulator: "Emulator") -> Any:
    raise WebError(f"没有这个接口：{request.method} {request.path}", 404)


# (method, path under /sandbox/api, handler)
ROUTES = (
    ("GET", "/world", get_world),
    ("GET", "/conversations", get_conversations),
    ("GET", "/messages", get_messages),
    ("POST", "/messages", post_message),
    ("GET", "/updates", get_updates),
    ("POST", "/files", post_file),
    ("GET", "/media", get_media),
    ("POST", "/users/update", post_user_update),
    ("POST", "/settings", post_settings),
    ("GET", "/custom-robots", get_custom_robots),
    ("POST", "/custom-robots", post_custom_robot),
    ("POST", "/custom-robots/remove", post_custom_robot_remove),
    ("GET", "/approvals", get_approvals),
    ("POST", "/approvals/act", post_approval_action),
)
