"""Message bodies for the two ways a bot talks (platform reference §4, §5.4).

One neutral form, ``RobotMessage`` (an OpenAPI ``msgKey`` + its params), is built by the ``robot_*`` functions and is
what the outbox stores. ``webhook_body`` turns it into a sessionWebhook body when the webhook supports that type
(text, markdown, actionCard, link); images and files exist only on the OpenAPI, so ``webhook_body`` returns ``None``
and the caller sends them proactively. ``robot_message_from_webhook`` goes the other way, for the fallback after a
sessionWebhook expired (errcode 300001).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Mapping, Sequence

from bot.dingtalk.errors import InvalidRequest
from domain import replies
from reports.user_text import text_literal

MSG_PARAM_MAX_BYTES = 15_000  # groupMessages/send msgParam limit (§5.1)
WEBHOOK_BODY_MAX_BYTES = 20_000  # "body 大小不合法" above this (§4)
FILE_TYPES = frozenset({"xlsx", "pdf", "zip", "rar", "doc", "docx"})  # sampleFile fileType values (§5.4)


@dataclass(frozen=True, slots=True)
class Button:
    title: str
    url: str


@dataclass(frozen=True)
class RobotMessage:
    """An OpenAPI robot message: ``msgKey`` and the params that become the ``msgParam`` JSON string."""

    msg_key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def msg_param(self) -> str:
        text = json.dumps(dict(self.params), ensure_ascii=False, separators=(",", ":"))
        if len(text.encode("utf-8")) > MSG_PARAM_MAX_BYTES:
            raise InvalidRequest("msgParam.tooLarge", f"msgParam over {MSG_PARAM_MAX_BYTES} bytes", api=self.msg_key)
        return text


def robot_text(content: str) -> RobotMessage:
    return RobotMessage("sampleText", {"content": content})


def robot_markdown(title: str, text: str) -> RobotMessage:
    return RobotMessage("sampleMarkdown", {"title": title, "text": text})


def robot_link(title: str, text: str, message_url: str, pic_url: str = "") -> RobotMessage:
    return RobotMessage("sampleLink", {"title": title, "text": text, "messageUrl": message_url, "picUrl": pic_url})


def robot_action_card(title: str, text: str, buttons: Sequence[Button]) -> RobotMessage:
    """One button -> ``sampleActionCard``; 2-5 -> ``sampleActionCard{n}`` (vertical buttons)."""
    if not 1 <= len(buttons) <= 5:
        raise InvalidRequest("actionCard.buttons", "an action card needs 1 to 5 buttons")
    if len(buttons) == 1:
        return RobotMessage("sampleActionCard", {
            "title": title, "text": text, "singleTitle": buttons[0].title, "singleURL": buttons[0].url,
        })
    params: dict[str, Any] = {"title": title, "text": text}
    for i, button in enumerate(buttons, start=1):
        params[f"actionTitle{i}"] = button.title
        params[f"actionURL{i}"] = button.url
    return RobotMessage(f"sampleActionCard{len(buttons)}", params)


def robot_image(media_id_or_url: str) -> RobotMessage:
    """``photoURL`` takes either an https URL or a media_id from ``upload_media("image", ...)``."""
    return RobotMessage("sampleImageMsg", {"photoURL": media_id_or_url})


def robot_file(media_id: str, file_name: str, file_type: str | None = None) -> RobotMessage:
    file_type = (file_type or PurePath(file_name).suffix.lstrip(".")).lower()
    if file_type not in FILE_TYPES:
        raise InvalidRequest("fileType.invalid", f"sampleFile supports {sorted(FILE_TYPES)}, not {file_type!r}")
    return RobotMessage("sampleFile", {"mediaId": media_id, "fileName": file_name, "fileType": file_type})


def _at_block(at_user_ids: Sequence[str], at_all: bool) -> dict[str, Any]:
    return {"atUserIds": list(at_user_ids), "atMobiles": [], "isAtAll": at_all}


def _with_mentions(text: str, at_user_ids: Sequence[str]) -> str:
    # The webhook only highlights a mention whose "@userId" also appears in the text (§4).
    missing = [uid for uid in at_user_ids if f"@{uid}" not in text]
    return text + "".join(f" @{uid}" for uid in missing) if missing else text


def webhook_body(message: RobotMessage, *, at_user_ids: Sequence[str] = (), at_all: bool = False
                 ) -> dict[str, Any] | None:
    """The sessionWebhook body for ``message``, or ``None`` if the webhook cannot carry this type."""
    p = dict(message.params)
    key = message.msg_key
    if key == "sampleText":
        return {"msgtype": "text", "text": {"content": _with_mentions(str(p.get("content", "")), at_user_ids)},
                "at": _at_block(at_user_ids, at_all)}
    if key == "sampleMarkdown":
        return {"msgtype": "markdown",
                "markdown": {"title": p.get("title", ""), "text": _with_mentions(str(p.get("text", "")), at_user_ids)},
                "at": _at_block(at_user_ids, at_all)}
    if key == "sampleLink":
        return {"msgtype": "link", "link": {"title": p.get("title", ""), "text": p.get("text", ""),
                                            "messageUrl": p.get("messageUrl", ""), "picUrl": p.get("picUrl", "")}}
    if key == "sampleActionCard":
        return {"msgtype": "actionCard", "actionCard": {
            "title": p.get("title", ""), "text": p.get("text", ""), "singleTitle": p.get("singleTitle", ""),
            "singleURL": p.get("singleURL", ""), "btnOrientation": "0"}}
    if key.startswith("sampleActionCard") and key[len("sampleActionCard"):] in {"2", "3", "4", "5"}:
        count = int(key[len("sampleActionCard"):])
        btns = [{"title": p.get(f"actionTitle{i}", ""), "actionURL": p.get(f"actionURL{i}", "")}
                for i in range(1, count + 1)]
        return {"msgtype": "actionCard", "actionCard": {
            "title": p.get("title", ""), "text": p.get("text", ""), "btns": btns, "btnOrientation": "0"}}
    return None


def robot_message_from_webhook(body: Mapping[str, Any]) -> RobotMessage:
    """The OpenAPI equivalent of a webhook body (the OpenAPI cannot @, so mentions stay only as text)."""
    msgtype = body.get("msgtype")
    if msgtype == "text":
        return robot_text(str(body.get("text", {}).get("content", "")))
    if msgtype == "markdown":
        md = body.get("markdown", {})
        return robot_markdown(str(md.get("title", "")), str(md.get("text", "")))
    if msgtype == "link":
        link = body.get("link", {})
        return robot_link(str(link.get("title", "")), str(link.get("text", "")), str(link.get("messageUrl", "")),
                          str(link.get("picUrl", "")))
    if msgtype == "actionCard":
        card = body.get("actionCard", {})
        if card.get("btns"):
            buttons = [Button(str(b.get("title", "")), str(b.get("actionURL", ""))) for b in card["btns"]]
        else:
            buttons = [Button(str(card.get("singleTitle", "")), str(card.get("singleURL", "")))]
        return robot_action_card(str(card.get("title", "")), str(card.get("text", "")), buttons)
    raise InvalidRequest("msgtype.unsupported", f"no OpenAPI equivalent for webhook msgtype {msgtype!r}")


def check_webhook_body_size(body: Mapping[str, Any]) -> bytes:
    """Serialize a webhook body, refusing what DingTalk would reject as too large."""
    raw = json.dumps(dict(body), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(raw) > WEBHOOK_BODY_MAX_BYTES:
        raise InvalidRequest("body.tooLarge", f"webhook body over {WEBHOOK_BODY_MAX_BYTES} bytes",
                             api="robot/sendBySession")
    return raw


# ---- reply values (domain/replies.py) -> bodies---------------------------------------------------------------

def robot_message_for_reply(reply: Any, *, media_id: str | None = None) -> RobotMessage:
    """The OpenAPI message for a handler's reply value. ``Image``/``File`` need the uploaded ``media_id`` (or the
    Image's own), see ``DingTalkClient.robot_message_for``."""
    reply = replies.as_reply(reply)
    if isinstance(reply, replies.Text):
        # Text replies quote users (names, titles, links they typed) and carry no link of the bot's own.
        return robot_text(text_literal(reply.text))
    if isinstance(reply, replies.Markdown):
        return robot_markdown(reply.title, reply.text)
    if isinstance(reply, replies.ActionCard):
        buttons = [Button(b.title, b.url) for b in reply.buttons]
        if reply.horizontal and len(buttons) == 2:
            # sampleActionCard6: two side-by-side buttons (field names per §5.4, UNCONFIRMED upstream).
            return RobotMessage("sampleActionCard6", {
                "title": reply.title, "text": reply.text,
                "buttonTitle1": buttons[0].title, "buttonUrl1": buttons[0].url,
                "buttonTitle2": buttons[1].title, "buttonUrl2": buttons[1].url,
            })
        return robot_action_card(reply.title, reply.text, buttons)
    if isinstance(reply, replies.Image):
        chosen = media_id or reply.media_id
        if not chosen:
            raise InvalidRequest("media.missing", "an Image reply must be uploaded first")
        return robot_image(chosen)
    if isinstance(reply, replies.File):
        if not media_id:
            raise InvalidRequest("media.missing", "a File reply must be uploaded first")
        return robot_file(media_id, reply.name, reply.file_type)
    raise TypeError(f"not a reply value: {type(reply).__name__}")


def webhook_body_for_reply(reply: Any) -> dict[str, Any] | None:
    """The sessionWebhook body for a reply value (with its @-mentions), or ``None`` for images and files."""
    reply = replies.as_reply(reply)
    if isinstance(reply, (replies.Image, replies.File)):
        return None
    at_user_ids = getattr(reply, "at_user_ids", ())
    body = webhook_body(robot_message_for_reply(reply), at_user_ids=at_user_ids)
    if body is None and isinstance(reply, replies.ActionCard):
        # sampleActionCard6 has no webhook twin; the webhook's own form is btns + horizontal orientation.
        body = {"msgtype": "actionCard", "actionCard": {
            "title": reply.title, "text": reply.text, "btnOrientation": "1",
            "btns": [{"title": b.title, "actionURL": b.url} for b in reply.buttons]}}
    return body
