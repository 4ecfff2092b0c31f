"""Typed inbound messages: every Stream frame becomes one of these at the edge.

Handlers never see raw frame dicts or the JSON string in ``data``. Parsing is total: a frame we do not understand
becomes an ``Incoming`` with ``msgtype="unknownMsgType"`` (or an ``ApprovalEvent`` of an unknown type), never an
exception, because an exception at the edge would leave the frame unacked and DingTalk would redeliver it forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

BOT_MESSAGE_TOPIC = "/v1.0/im/bot/messages/get"
APPROVAL_EVENT_TYPES = frozenset({"bpms_task_change", "bpms_instance_change"})
# 待办 changed or deleted in DingTalk (reference part 2 §2.4): data {unionIdList, bizTag, taskId}, carried by the same
# event type (its task_id and raw) to the same handlers, each of which looks at the event types it knows.
TODO_EVENT_TYPES = frozenset({"todo_task_update", "todo_task_delete"})
STREAM_EVENT_TYPES = APPROVAL_EVENT_TYPES | TODO_EVENT_TYPES

ConversationType = Literal["1", "2"]


@dataclass(frozen=True, slots=True)
class Mention:
    """A user @-mentioned in a bot message. The bot itself carries only ``dingtalk_id``; so does a person of another
    organization (no staffId), perhaps with a ``union_id``.

    ``key`` is the person key the directory resolved (``bot.lookups.identify``): the staffId of an employee,
    ``ext:…`` for an external contact; None for the bot itself and before resolution."""

    dingtalk_id: str
    staff_id: str | None = None
    union_id: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    """A file (or picture) the user sent; ``download_code`` is exchanged for a URL via messageFiles/download."""

    download_code: str
    file_name: str
    kind: Literal["file", "picture", "audio", "video"] = "file"
    file_id: str | None = None
    space_id: str | None = None
    # Filled in before the command's transaction (a feature's ``preparers``): where the file was downloaded to
    # (relative to storage.files_dir), or why it could not be taken (the answer the command gives).
    staged_path: str | None = None
    staged_size: int = 0
    staged_sha256: str = ""
    staging_error: str | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """A bot message (CALLBACK frame on ``/v1.0/im/bot/messages/get``)."""

    message_id: str  # the frame's headers.messageId: reused by DingTalk on redelivery
    msg_id: str  # data.msgId: the message's own id, the second dedupe key
    msgtype: str
    conversation_id: str
    conversation_type: ConversationType
    sender_id: str  # senderStaffId (the userId); empty for external users: never key a person on it alone
    sender_nick: str
    text: str = ""  # stripped; the bot's own @mention already removed by DingTalk
    conversation_title: str | None = None
    mentions: tuple[Mention, ...] = ()
    files: tuple[ReceivedFile, ...] = ()
    session_webhook: str | None = None
    session_webhook_expires_at: datetime | None = None  # UTC
    robot_code: str | None = None
    created_at: datetime | None = None  # UTC
    is_admin: bool = False
    sender_union_id: str | None = None
    sender_dingtalk_id: str | None = None  # senderId: encrypted, but present for everyone
    sender_corp_id: str | None = None  # the sender's own organization
    chatbot_corp_id: str | None = None  # the bot's organization: ours
    chatbot_user_id: str | None = None  # the bot's own dingtalkId (its entry in atUsers)
    # The sender's person key (``storage.models.people``): the staffId, or ``ext:…`` for someone of another
    # organization once the directory resolved them (``bot.lookups.identify``). Defaults to ``sender_id``.
    sender_key: str = ""

    def __post_init__(self) -> None:
        if not self.sender_key and self.sender_id:
            object.__setattr__(self, "sender_key", self.sender_id)

    @property
    def is_group(self) -> bool:
        return self.conversation_type == "2"

    @property
    def mentioned_staff_ids(self) -> tuple[str, ...]:
        """Staff ids of the other users mentioned (the bot's own entry has no staff id)."""
        return tuple(m.staff_id for m in self.mentions if m.staff_id)

    @property
    def mentioned_keys(self) -> tuple[str, ...]:
        """Person keys of the other users mentioned, in order: employees and (once resolved) external contacts."""
        return tuple(key for m in self.mentions if (key := m.key or m.staff_id))

    @property
    def mentioned_people(self) -> tuple[Mention, ...]:
        """The mentions that are people, not the bot itself: a staffId, a unionId, or a dingtalkId other than the
        bot's (when the payload says which one is the bot's)."""
        return tuple(m for m in self.mentions if m.staff_id or m.union_id or (
            self.chatbot_user_id and m.dingtalk_id and m.dingtalk_id != self.chatbot_user_id))


@dataclass(frozen=True, slots=True)
class ApprovalEvent:
    """A ``bpms_task_change`` / ``bpms_instance_change`` EVENT frame."""

    message_id: str
    event_id: str
    event_type: str  # bpms_task_change | bpms_instance_change
    process_instance_id: str
    process_code: str
    change: str  # data.type: start | finish | terminate | cancel | comment | delete
    result: str | None = None  # agree | refuse | redirect | audit
    staff_id: str | None = None  # approver (task) or originator (instance)
    remark: str | None = None
    task_id: str | None = None
    title: str | None = None
    url: str | None = None
    occurred_at: datetime | None = None  # UTC
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _ms_to_utc(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _load_data(data: Any) -> dict[str, Any]:
    """``data`` is a JSON string on the wire; the SDK sometimes hands it over already decoded."""
    if isinstance(data, dict):
        return data
    if isinstance(data, (str, bytes)):
        try:
            loaded = json.loads(data)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _files_of(msgtype: str, content: Any) -> tuple[ReceivedFile, ...]:
    if not isinstance(content, dict):
        return ()
    if msgtype == "file" and content.get("downloadCode"):
        return (
            ReceivedFile(
                download_code=str(content["downloadCode"]),
                file_name=str(content.get("fileName") or "未命名文件"),
                kind="file",
                file_id=content.get("fileId"),
                space_id=content.get("spaceId"),
            ),
        )
    if msgtype in ("picture", "audio", "video") and content.get("downloadCode"):
        suffix = {"picture": ".png", "audio": ".amr", "video": "." + str(content.get("videoType") or "mp4")}[msgtype]
        return (ReceivedFile(download_code=str(content["downloadCode"]), file_name=f"{msgtype}{suffix}", kind=msgtype),)
    if msgtype == "richText":
        files = []
        for part in content.get("richText") or ():
            if isinstance(part, dict) and part.get("type") == "picture" and part.get("downloadCode"):
                files.append(ReceivedFile(download_code=str(part["downloadCode"]), file_name="picture.png", kind="picture"))
        return tuple(files)
    return ()


def _text_of(msgtype: str, data: dict[str, Any]) -> str:
    if msgtype == "text":
        text = data.get("text")
        return str(text.get("content", "")).strip() if isinstance(text, dict) else ""
    content = data.get("content")
    if msgtype == "richText" and isinstance(content, dict):
        return "".join(str(p.get("text", "")) for p in content.get("richText") or () if isinstance(p, dict)).strip()
    if msgtype == "audio" and isinstance(content, dict):
        return str(content.get("recognition") or "").strip()
    return ""


def _text_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def parse_bot_message(headers: dict[str, Any], data: Any) -> Incoming:
    """Build an ``Incoming`` from a CALLBACK frame's headers and ``data``."""
    body = _load_data(data)
    msgtype = str(body.get("msgtype") or "unknownMsgType")
    mentions = tuple(
        Mention(dingtalk_id=str(u.get("dingtalkId", "")), staff_id=u.get("staffId") or None,
                union_id=u.get("unionId") or None)
        for u in body.get("atUsers") or ()
        if isinstance(u, dict)
    )
    conversation_type = "2" if str(body.get("conversationType")) == "2" else "1"
    message_id = str(headers.get("messageId") or body.get("msgId") or "")
    return Incoming(
        message_id=message_id,
        msg_id=str(body.get("msgId") or message_id),
        msgtype=msgtype,
        conversation_id=str(body.get("conversationId") or ""),
        conversation_type=conversation_type,  # type: ignore[arg-type]
        sender_id=str(body.get("senderStaffId") or ""),
        sender_nick=str(body.get("senderNick") or ""),
        text=_text_of(msgtype, body),
        conversation_title=body.get("conversationTitle"),
        mentions=mentions,
        files=_files_of(msgtype, body.get("content")),
        session_webhook=body.get("sessionWebhook") or None,
        session_webhook_expires_at=_ms_to_utc(body.get("sessionWebhookExpiredTime")),
        robot_code=body.get("robotCode"),
        created_at=_ms_to_utc(body.get("createAt")),
        is_admin=bool(body.get("isAdmin")),
        sender_union_id=_text_or_none(body.get("senderUnionId")),
        sender_dingtalk_id=_text_or_none(body.get("senderId")),
        sender_corp_id=_text_or_none(body.get("senderCorpId")),
        chatbot_corp_id=_text_or_none(body.get("chatbotCorpId")),
        chatbot_user_id=_text_or_none(body.get("chatbotUserId")),
    )


def parse_approval_event(headers: dict[str, Any], data: Any) -> ApprovalEvent:
    """Build an ``ApprovalEvent`` from an EVENT frame (the caller checked ``eventType``)."""
    body = _load_data(data)
    task_id = body.get("taskId")
    return ApprovalEvent(
        message_id=str(headers.get("messageId") or ""),
        event_id=str(headers.get("eventId") or headers.get("messageId") or ""),
        event_type=str(headers.get("eventType") or ""),
        process_instance_id=str(body.get("processInstanceId") or ""),
        process_code=str(body.get("processCode") or ""),
        change=str(body.get("type") or ""),
        result=body.get("result") or None,
        staff_id=body.get("staffId") or None,
        remark=body.get("remark") or None,
        task_id=str(task_id) if task_id is not None else None,
        title=body.get("title"),
        url=body.get("url"),
        occurred_at=_ms_to_utc(body.get("finishTime") or body.get("createTime") or headers.get("eventBornTime")),
        raw=body,
    )
