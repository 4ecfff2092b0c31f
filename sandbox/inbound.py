"""Callback payloads of messages users send to the bot (topic /v1.0/im/bot/messages/get, §3).

`build_payload` produces the `data` object exactly as §3.2/§3.3 describe: group vs
1:1 fields, the bot's @-mention stripped from `text.content` (leading space kept),
`atUsers` with the bot (dingtalkId only) and other mentioned members (dingtalkId +
staffId), and the per-msgtype `text` / `content` objects.

Outsiders (P2 §4, §7.1 item 7; UNCONFIRMED points with the §7.2 defaults): a message
from an external member has no `senderStaffId`, its own organization's
`senderCorpId` (none at all for a personal DingTalk user), a `senderUnionId` and
`isAdmin: false`; insiders get `senderUnionId` too. An @'d outsider's `atUsers` entry
has only `dingtalkId`: the documented entry has `dingtalkId` and `staffId` and the
SDKs parse nothing else, so no `unionId` by default (`at_users_union_id=True` adds
one to every entry but the bot's).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from .world import App, Group, User

UNKNOWN_MSG_TEXT = "用户发送了一条消息，机器人暂不支持接收。"


@dataclass
class Mentions:
    content: str                # text.content as the bot receives it
    users: list[User]           # other members @'d, in order of appearance


def parse_mentions(text: str, app: App, members: list[User], extra: list[User]) -> Mentions:
    """Strip the bot's own @ and find the other members @'d by name in the text.

    `extra` are the members picked from the client's @ list. A name that several
    members share, typed as text, says nobody in particular: only a pick @'s one of them.
    """
    bot_tag = f"@{app.robot_name}"
    if bot_tag in text:
        content = text.replace(bot_tag, "", 1)
    else:
        # The mention sits in front, as when one taps the bot's name first.
        content = " " + text
    picked = {u.user_id for u in extra}
    shared = {name for name, n in Counter(u.name for u in members).items() if n > 1}
    found: list[tuple[int, User]] = []
    for user in members:
        if user.name in shared and user.user_id not in picked:
            continue
        pos = text.find(f"@{user.name}")
        if pos >= 0:
            found.append((pos, user))
    users = [u for _, u in sorted(found, key=lambda item: item[0])]
    for user in extra:
        if user not in users:
            users.append(user)
    return Mentions(content, users)


def at_user_entry(user: User, *, with_union_id: bool = False) -> dict[str, str]:
    entry = {"dingtalkId": user.dingtalk_id}
    if not user.external:
        entry["staffId"] = user.user_id
    if with_union_id:
        entry["unionId"] = user.union_id
    return entry


def build_payload(*, app: App, sender: User, group: Group | None, conversation_id: str, msg_id: str,
                  created_at: int, session_url: str, session_expires_at: int, msgtype: str,
                  body: dict[str, Any], at_users: list[User] | None = None,
                  at_users_union_id: bool = False) -> dict[str, Any]:
    """`body` is the msgtype part: {"text": {...}} for text, {"content": {...}} otherwise."""
    data: dict[str, Any] = {"conversationId": conversation_id}
    if group is not None:
        data["atUsers"] = [{"dingtalkId": app.chatbot_user_id}] + [
            at_user_entry(u, with_union_id=at_users_union_id) for u in at_users or []]
    data.update({
        "chatbotCorpId": app.corp_id,
        "chatbotUserId": app.chatbot_user_id,
        "msgId": msg_id,
        "senderNick": sender.name,
        "isAdmin": sender.admin and not sender.external,
    })
    if not sender.external:
        # External contacts have no staffId in this org.
        data["senderStaffId"] = sender.user_id
    data["senderUnionId"] = sender.union_id
    data.update({
        "sessionWebhookExpiredTime": session_expires_at,
        "createAt": created_at,
    })
    if sender.corp_id:
        # A personal DingTalk user belongs to no corp: the field is absent.
        data["senderCorpId"] = sender.corp_id
    data.update({
        "conversationType": "2" if group is not None else "1",
        "senderId": sender.dingtalk_id,
    })
    if group is not None:
        data["conversationTitle"] = group.title
        data["isInAtList"] = True
    data["sessionWebhook"] = session_url
    data.update(body)
    data.update({
        "robotCode": app.robot_code,
        "msgtype": msgtype,
        "senderPlatform": "Win",
        "openThreadId": conversation_id,
    })
    return data
