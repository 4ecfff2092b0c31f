"""Bot-sent message formats: the robot msgKey catalogue (§5.4) and webhook bodies (§4).

Both validators return a `Normalized` view (kind, title, text, media) that the
recorder stores, so tests assert on what a chat member would see regardless of the
path the bot used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from .media import MediaFile
from .openapi_common import NewApiError, OldApiError


@dataclass
class Normalized:
    msgtype: str
    title: str | None
    text: str | None
    params: dict[str, Any]
    media: MediaFile | None = None


# msgKey -> (required msgParam fields, kind shown in chat)
_ACTION_FIELDS = {n: tuple(f"{p}{i}" for i in range(1, n + 1) for p in ("actionTitle", "actionURL"))
                  for n in range(2, 6)}
MSG_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "sampleText": (("content",), "text"),
    "sampleMarkdown": (("title", "text"), "markdown"),
    "sampleImageMsg": (("photoURL",), "image"),
    "sampleLink": (("text", "title", "messageUrl"), "link"),
    "sampleActionCard": (("title", "text", "singleTitle", "singleURL"), "actionCard"),
    **{f"sampleActionCard{n}": (("title", "text") + fields, "actionCard") for n, fields in _ACTION_FIELDS.items()},
    # Field names of the 2-horizontal-button card per §13.2 (UNCONFIRMED upstream).
    "sampleActionCard6": (("title", "text", "buttonTitle1", "buttonUrl1", "buttonTitle2", "buttonUrl2"), "actionCard"),
    "sampleAudio": (("mediaId", "duration"), "audio"),
    "sampleFile": (("mediaId", "fileName", "fileType"), "file"),
    "sampleVideo": (("duration", "videoMediaId", "videoType", "picMediaId"), "video"),
}
SAMPLE_FILE_TYPES = frozenset({"xlsx", "pdf", "zip", "rar", "doc", "docx"})

MediaLookup = Callable[[str], MediaFile | None]


def _param_error(message: str) -> NewApiError:
    return NewApiError(400, "invalidParameter.msgParam.invalid", message)


def validate_msg_param(msg_key: str, msg_param: Any, *, max_bytes: int, media: MediaLookup) -> Normalized:
    """Check a robot OpenAPI message (groupMessages/send, oToMessages/batchSend)."""
    if msg_key not in MSG_KEYS:
        raise NewApiError(400, "invalidParameter.msgKey.invalid", f"msgKey不合法：{msg_key}")
    if not isinstance(msg_param, str):
        raise _param_error("msgParam格式不正确;解决方案:请使用json格式")
    if len(msg_param.encode("utf-8")) > max_bytes:
        raise _param_error(f"msgParam长度超过限制;解决方案:请保持大小在 {max_bytes}bytes 以内")
    try:
        params = json.loads(msg_param)
    except json.JSONDecodeError:
        params = None
    if not isinstance(params, dict):
        raise _param_error("msgParam格式不正确;解决方案:请使用json格式")
    required, kind = MSG_KEYS[msg_key]
    for name in required:
        value = params.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if msg_key == "sampleMarkdown" and name == "title":
                raise NewApiError(400, "miss.param.markdownTotitle", "markdown消息的title不能为空")
            raise _param_error(f"msgParam缺少参数：{name}")

    def known_media(field_name: str, media_kind: str) -> MediaFile:
        found = media(str(params[field_name]))
        if found is None or found.kind != media_kind:
            raise NewApiError(400, "resource.unavailable", f"资源不可用：{field_name}={params[field_name]}")
        return found

    attached: MediaFile | None = None
    if msg_key == "sampleImageMsg":
        url = str(params["photoURL"])
        if url.startswith("@"):
            attached = known_media("photoURL", "image")
        elif not url.startswith(("http://", "https://")):
            raise _param_error("photoURL必须是图片链接或mediaId")
    elif msg_key == "sampleAudio":
        attached = known_media("mediaId", "voice")
    elif msg_key == "sampleFile":
        if str(params["fileType"]).lower() not in SAMPLE_FILE_TYPES:
            raise _param_error(f"fileType不支持：{params['fileType']}")
        attached = known_media("mediaId", "file")
    elif msg_key == "sampleVideo":
        attached = known_media("videoMediaId", "video")
        known_media("picMediaId", "image")

    title = params.get("title")
    if msg_key == "sampleText":
        text = params["content"]
    elif msg_key == "sampleFile":
        text, title = None, params.get("fileName")
    else:
        text = params.get("text")
    return Normalized(kind, title, text, params, attached)


# ---- session webhook bodies -----------------------------------------------------------

WEBHOOK_MSGTYPES = ("text", "markdown", "actionCard", "link", "feedCard")


def _need(section: Any, *names: str) -> None:
    if not isinstance(section, dict):
        raise OldApiError(40035, "缺少参数 json")
    for name in names:
        value = section.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise OldApiError(40035, f"缺少参数 {name}")


def validate_webhook_body(body: dict[str, Any]) -> Normalized:
    msgtype = body.get("msgtype")
    if not msgtype:
        raise OldApiError(40035, "缺少参数 msgtype")
    if msgtype not in WEBHOOK_MSGTYPES:
        # image / file / voice / video cannot go through a webhook (§4).
        raise OldApiError(40035, f"不支持的消息类型：{msgtype}")
    section = body.get(msgtype)
    if msgtype == "text":
        _need(section, "content")
        return Normalized("text", None, section["content"], section)
    if msgtype == "markdown":
        _need(section, "title", "text")
        return Normalized("markdown", section["title"], section["text"], section)
    if msgtype == "actionCard":
        _need(section, "title", "text")
        buttons = section.get("btns")
        if not (section.get("singleTitle") and section.get("singleURL")):
            if not isinstance(buttons, list) or not buttons:
                raise OldApiError(40035, "缺少参数 singleTitle/singleURL 或 btns")
            for button in buttons:
                _need(button, "title", "actionURL")
        return Normalized("actionCard", section["title"], section["text"], section)
    if msgtype == "link":
        _need(section, "title", "text", "messageUrl")
        return Normalized("link", section["title"], section["text"], section)
    # feedCard
    if not isinstance(section, dict) or not isinstance(section.get("links"), list) or not section["links"]:
        raise OldApiError(40035, "缺少参数 links")
    for link in section["links"]:
        _need(link, "title", "messageURL", "picURL")
    titles = [link["title"] for link in section["links"]]
    return Normalized("feedCard", titles[0], "\n".join(titles), section)
