"""JSON views for the web chat page: the world, conversations, messages and approvals.

Pure functions from emulator state to plain dicts. The page never sees raw payloads:
each record is reduced to what a DingTalk client would draw (who, when, which kind
of bubble, its text, buttons and attachments), so the JavaScript stays a renderer.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .custom_robots import CustomRobot
from .media import MediaFile, extension
from .recorder import ReceivedMessage, Record, SentMessage
from .workflow import Instance, Task
from .world import App, Group, User, World

if TYPE_CHECKING:
    from .emulator import Emulator

MEDIA_PATH = "/sandbox/api/media"

ROLE_TEAM, ROLE_LEADER, ROLE_CLIENT = "team", "leader", "client"
ROLE_LABELS = {ROLE_TEAM: "项目团队", ROLE_LEADER: "领导", ROLE_CLIENT: "客户联系人"}
STATUS_LABELS = {"RUNNING": "审批中", "TERMINATED": "已撤销"}
RESULT_LABELS = {"agree": "已同意", "refuse": "已拒绝"}
TASK_LABELS = {"RUNNING": "审批中", "CANCELED": "已取消", "TERMINATED": "已终止", "NEW": "未开始", "PAUSED": "已暂停"}
RECORD_LABELS = {"START_PROCESS_INSTANCE": "发起审批", "EXECUTE_TASK_NORMAL": "审批",
                 "TERMINATE_PROCESS_INSTANCE": "撤销审批", "FINISH_PROCESS_INSTANCE": "审批结束",
                 "ADD_REMARK": "评论"}


def media_url(ref: str) -> str:
    return f"{MEDIA_PATH}?id={quote(ref, safe='')}"


def initials(name: str) -> str:
    # DingTalk avatars without a photo show the last two characters of a Chinese name.
    return name[-2:] if name else "?"


def role_of(user: User) -> str:
    if user.external:
        return ROLE_CLIENT
    return ROLE_LEADER if user.admin else ROLE_TEAM


def org_label(world: World, user: User) -> str:
    """What DingTalk shows beside a name: the outsider's organization, else the department."""
    if user.external:
        return user.corp_name or "个人用户"
    dept = world.department_name(user.department_ids[0]) if user.department_ids else ""
    return dept or world.corp_name


def user_view(world: World, user: User) -> dict[str, Any]:
    role = role_of(user)
    return {"id": user.user_id, "name": user.name, "title": user.title, "role": role,
            "roleLabel": ROLE_LABELS[role], "external": user.external, "org": org_label(world, user),
            "initials": initials(user.name), "unionId": user.union_id, "corpId": user.corp_id,
            "personal": user.personal, "active": user.active, "description": world.describe(user)}


def bot_view(app: App) -> dict[str, Any]:
    return {"id": app.client_id, "name": app.robot_name, "appName": app.name, "default": app.default,
            "initials": initials(app.robot_name)}


def group_kind(world: World, group: Group) -> str:
    return "client" if world.has_outsiders(group) else "internal"


def custom_robot_view(world: World, robot: CustomRobot) -> dict[str, Any]:
    """A custom robot as anyone may see it: never its webhook token or secret."""
    group = world.groups.get(robot.conversation_id)
    return {"id": robot.robot_id, "name": robot.name, "conversationId": robot.conversation_id,
            "conversationTitle": group.title if group else "", "createdAt": robot.created_at,
            "throttledUntil": robot.throttled_until or None, "initials": initials(robot.name)}


def world_view(emulator: "Emulator") -> dict[str, Any]:
    world = emulator.world
    return {
        "sandboxOnly": True,
        "corp": {"id": world.corp_id, "name": world.corp_name},
        "bot": bot_view(world.default_app),
        "bots": [bot_view(a) for a in world.apps.values()],
        "roles": [{"id": r, "label": label} for r, label in ROLE_LABELS.items()],
        "users": [user_view(world, u) for u in world.users.values()],
        "organizations": [{"corpId": corp_id, "name": name,
                           "userIds": [u.user_id for u in world.users.values() if u.corp_id == corp_id]}
                          for corp_id, name in world.organizations().items()],
        "groups": [{"id": g.conversation_id, "title": g.title, "kind": group_kind(world, g),
                    "memberIds": list(g.member_ids), "botIds": list(g.bot_client_ids)} for g in world.groups.values()],
        "allowGroupFiles": emulator.config.allow_group_files,
        "appRobotsInExternalGroups": emulator.config.app_robots_in_external_groups,
        "customRobots": [custom_robot_view(world, r) for r in emulator.live_custom_robots()],
    }


def conversations_for(emulator: "Emulator", user: User) -> list[dict[str, Any]]:
    """What the user's DingTalk shows: the groups they are in, then their 1:1 chats with bots.

    Someone who left the organization has none of its conversations any more.
    """
    if not user.active:
        return []
    world, allow_group_files = emulator.world, emulator.config.allow_group_files
    result = []
    for group in world.groups.values():
        if user.user_id not in group.member_ids or not group.bot_client_ids:
            continue
        bot = world.apps[group.bot_client_ids[0]]
        if world.default_app.client_id in group.bot_client_ids:
            bot = world.default_app
        kind = group_kind(world, group)
        # botAvailable false: the app's robot may not be in this external group (the emulator's switch).
        result.append({"id": group.conversation_id, "type": "group", "kind": kind, "title": group.title,
                       "memberIds": [u.user_id for u in world.present_members(group)], "bot": bot_view(bot),
                       "botAvailable": emulator.robot_in_group(bot, group),
                       "customRobots": [custom_robot_view(world, r) for r in emulator.live_custom_robots(group)],
                       "canSendFile": allow_group_files, "canSendPicture": True})
    if not user.external:
        # External contacts cannot chat 1:1 with the organization's bots.
        for app in sorted(world.apps.values(), key=lambda a: not a.default):
            result.append({"id": world.private_conversation_id(user, app), "type": "single", "kind": "bot",
                           "title": app.robot_name, "memberIds": [user.user_id], "bot": bot_view(app),
                           "canSendFile": True, "canSendPicture": True})
    return result


# ---- messages -------------------------------------------------------------------------

def file_view(media: MediaFile | None, name: str | None = None, file_type: str | None = None) -> dict[str, Any] | None:
    if media is None:
        return None
    ref = media.media_id or media.download_code or ""
    shown = name or media.file_name
    # The shown name rides along: the message's fileName is what DingTalk shows and saves as.
    return {"name": shown, "size": media.size, "type": (file_type or extension(shown) or "").lower(),
            "url": f"{media_url(ref)}&name={quote(shown, safe='')}"}


def _image_src(ref: str) -> str | None:
    ref = ref.strip()
    if ref.startswith("@"):
        return media_url(ref)       # a media_id works as an image URL (§7)
    if ref.startswith(("http://", "https://")):
        return ref
    return None


def _card_buttons(params: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """Buttons of an actionCard from any of its encodings, and "0" vertical / "1" horizontal."""
    if params.get("singleTitle"):
        return [{"title": str(params["singleTitle"]), "url": str(params.get("singleURL", ""))}], "0"
    if isinstance(params.get("btns"), list):
        buttons = [{"title": str(b.get("title", "")), "url": str(b.get("actionURL", ""))}
                   for b in params["btns"] if isinstance(b, dict)]
        return buttons, str(params.get("btnOrientation", "0"))
    if params.get("buttonTitle1"):      # sampleActionCard6: two side-by-side buttons
        buttons = [{"title": str(params[f"buttonTitle{i}"]), "url": str(params.get(f"buttonUrl{i}", ""))}
                   for i in (1, 2) if params.get(f"buttonTitle{i}")]
        return buttons, "1"
    buttons = [{"title": str(params[f"actionTitle{i}"]), "url": str(params.get(f"actionURL{i}", ""))}
               for i in range(1, 6) if params.get(f"actionTitle{i}")]
    return buttons, "0"


def _names(world: World, user_ids: tuple[str, ...] | list[str], mobiles: tuple[str, ...] = ()) -> list[str]:
    names = [world.users[u].name for u in user_ids if u in world.users]
    by_mobile = {u.mobile: u.name for u in world.users.values() if u.mobile}
    names += [by_mobile[m] for m in mobiles if m in by_mobile and by_mobile[m] not in names]
    return names


def _robot_sender(world: World, message: SentMessage) -> dict[str, Any]:
    if message.custom_robot is not None:
        robot = message.custom_robot
        return {"type": "bot", "custom": True, "id": robot.robot_id, "name": robot.name,
                "initials": initials(robot.name)}
    app = world.apps.get(message.app_id)
    return {"type": "bot", **(bot_view(app) if app else {"id": message.app_id, "name": "机器人", "initials": "机器"})}


def sent_view(world: World, message: SentMessage) -> dict[str, Any]:
    view: dict[str, Any] = {
        "seq": message.seq, "conversationId": message.conversation_id, "direction": "out",
        "createdAt": message.created_at, "msgtype": message.msgtype, "via": message.via, "api": message.api,
        "sender": _robot_sender(world, message),
        "title": message.title, "text": message.text,
        "atNames": _names(world, message.at_user_ids, message.at_mobiles), "atAll": message.is_at_all,
    }
    params = message.params or {}
    if message.msgtype == "actionCard":
        view["buttons"], view["orientation"] = _card_buttons(params)
    elif message.msgtype == "link":
        view["url"] = params.get("messageUrl", "")
        view["picUrl"] = _image_src(str(params.get("picUrl") or ""))
    elif message.msgtype == "feedCard":
        view["links"] = [{"title": str(link.get("title", "")), "url": str(link.get("messageURL", "")),
                          "picUrl": _image_src(str(link.get("picURL") or ""))} for link in params.get("links", [])]
    elif message.msgtype == "image":
        view["imageUrl"] = _image_src(str(params.get("photoURL", "")))
    elif message.msgtype == "file":
        view["file"] = file_view(message.media, params.get("fileName"), params.get("fileType"))
    elif message.msgtype in ("audio", "video"):
        view["file"] = file_view(message.media)
        view["duration"] = params.get("duration")
    return view


def received_view(world: World, message: ReceivedMessage) -> dict[str, Any]:
    sender = world.users.get(message.sender_id)
    payload = message.payload
    at_staff = [a.get("staffId") for a in payload.get("atUsers", []) if a.get("staffId")]
    at_ding = {a["dingtalkId"] for a in payload.get("atUsers", []) if "staffId" not in a}
    # External members are @'d by dingtalkId only (no staffId in this org).
    at_external = [u.user_id for u in world.users.values() if u.external and u.dingtalk_id in at_ding]
    app = world.apps.get(message.app_id)
    group = message.conversation_type == "2"
    view: dict[str, Any] = {
        "seq": message.seq, "conversationId": message.conversation_id, "direction": "in",
        "createdAt": message.created_at, "msgtype": message.msgtype,
        "sender": {"type": "user", **(user_view(world, sender) if sender else
                                      {"id": message.sender_id, "name": message.sender_name,
                                       "initials": initials(message.sender_name)})},
        "delivered": message.delivered, "atBot": group and message.delivered, "botAbsent": message.bot_absent,
        "botName": app.robot_name if app else "", "atNames": _names(world, at_staff + at_external),
        "text": message.text,
    }
    content = payload.get("content") if isinstance(payload.get("content"), dict) else {}
    if message.msgtype == "file":
        view["file"] = file_view(message.media, content.get("fileName"))
    elif message.msgtype == "picture":
        view["imageUrl"] = file_view(message.media)["url"] if message.media else None
    elif message.msgtype in ("audio", "video"):
        view["file"] = file_view(message.media)
        view["text"] = content.get("recognition") or message.text
    elif message.msgtype == "richText":
        parts = []
        for element in content.get("richText", []):
            if "text" in element:
                parts.append({"text": element["text"]})
            elif element.get("downloadCode"):
                parts.append({"imageUrl": media_url(element["downloadCode"])})
        view["parts"] = parts
    elif message.msgtype == "unknownMsgType":
        view["text"] = content.get("unknownMsgType", "")
    return view


def record_view(world: World, record: Record) -> dict[str, Any]:
    if isinstance(record, SentMessage):
        return sent_view(world, record)
    return received_view(world, record)


# ---- approvals ------------------------------------------------------------------------

def _display_value(raw: str) -> str:
    # Multi-selects and date ranges are JSON lists in a string (§8.3); show them joined.
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return raw
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return "、".join(str(v) for v in value)
    return raw


def instance_status(instance: Instance) -> tuple[str, str]:
    """(tone, label): tone is one of running, agree, refuse, terminated (a CSS class)."""
    if instance.status == "COMPLETED":
        return instance.result or "agree", RESULT_LABELS.get(instance.result, "已完成")
    if instance.status == "TERMINATED":
        return "terminated", STATUS_LABELS["TERMINATED"]
    return "running", STATUS_LABELS["RUNNING"]


def _person(world: World, user_id: str) -> dict[str, str]:
    user = world.users.get(user_id)
    name = user.name if user else user_id
    return {"id": user_id, "name": name, "initials": initials(name), "title": user.title if user else ""}


def _task_view(world: World, task: Task) -> dict[str, Any]:
    label = RESULT_LABELS.get(task.result.lower()) if task.status == "COMPLETED" else TASK_LABELS.get(task.status)
    return {"taskId": task.task_id, "user": _person(world, task.user_id), "status": task.status,
            "result": task.result, "label": label or task.status, "step": task.step,
            "createdAt": task.create_time, "finishedAt": task.finish_time, "remark": task.remark}


def instance_view(world: World, instance: Instance, me: User | None = None) -> dict[str, Any]:
    tone, label = instance_status(instance)
    mine = [t for t in instance.tasks if me is not None and t.user_id == me.user_id]
    running = next((t for t in mine if t.status == "RUNNING"), None)
    my_task = running or (mine[-1] if mine else None)
    return {
        "id": instance.instance_id, "title": instance.title, "formName": instance.form.name,
        "processCode": instance.process_code, "businessId": instance.business_id,
        "originator": _person(world, instance.originator.user_id), "deptName": instance.originator_dept_name,
        "createdAt": instance.create_time, "finishedAt": instance.finish_time,
        "status": instance.status, "result": instance.result, "tone": tone, "statusLabel": label,
        "form": [{"name": _display_value(v["name"]), "value": _display_value(v["value"])}
                 for v in instance.form_values],
        "records": [{"user": _person(world, r.user_id), "type": r.type,
                     "typeLabel": RECORD_LABELS.get(r.type, r.show_name or r.type), "result": r.result,
                     "resultLabel": RESULT_LABELS.get(r.result.lower(), ""), "remark": r.remark, "date": r.date}
                    for r in instance.records],
        "tasks": [_task_view(world, t) for t in instance.tasks],
        "steps": [{"actionType": s.action_type, "users": [_person(world, u) for u in s.user_ids]}
                  for s in instance.steps],
        "currentStep": instance.current_step,
        "ccNames": _names(world, instance.cc_user_ids),
        "myTask": _task_view(world, my_task) if my_task else None,
        "canAct": running is not None and instance.status == "RUNNING",
    }


def approvals_for(instances: list[Instance], me: User) -> dict[str, list[Instance]]:
    """The inbox tabs: waiting for me, handled by me, started by me (newest first)."""
    ordered = sorted(instances, key=lambda i: i.create_time, reverse=True)
    pending = [i for i in ordered if any(t.user_id == me.user_id and t.status == "RUNNING" for t in i.tasks)]
    done = [i for i in ordered if i not in pending and any(t.user_id == me.user_id for t in i.tasks)]
    started = [i for i in ordered if i.originator.user_id == me.user_id]
    return {"pending": pending, "done": done, "started": started}


def approvals_fingerprint(instances: list[Instance], me: User) -> str:
    """Changes whenever anything the user's inbox shows changes; the long-poll compares it."""
    parts = []
    for i in instances:
        if i.originator.user_id != me.user_id and not any(t.user_id == me.user_id for t in i.tasks):
            continue
        parts.append(f"{i.instance_id}:{i.status}:{i.result}:{len(i.records)}:{len(i.tasks)}")
    return hashlib.sha1("|".join(sorted(parts)).encode()).hexdigest()[:16]
