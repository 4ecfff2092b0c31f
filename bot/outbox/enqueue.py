"""Queueing a message: the row form of a reply value, written in the caller's transaction under its business key.

Inside a unit of work (a command, an event, ``relay.unit_of_work()``) the row is stored already claimed by this
worker and the relay sends it right after the commit (the fast path); otherwise the relay's poll finds it.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.context import current_unit_of_work
from bot.dingtalk.cards import CardWrite
from bot.dingtalk.messages import (
    RobotMessage,
    check_webhook_body_size,
    robot_file,
    robot_image,
    robot_message_for_reply,
    webhook_body,
    webhook_body_for_reply,
)
from bot.outbox.targets import Target
from domain.file_store import unlink_quietly
from domain.replies import Card, File, Image, Reply, Text
from storage.models import OutboxMessage, OutboxMessageKind, OutboxState, OutboxTargetKind, utcnow
from storage.models.base import KEY_LEN
from storage.repo.kernel import insert_outbox_row

Message = Reply | RobotMessage | CardWrite | str


# ---- the row form of a message -----------------------------------------------------------------------------------------

_KIND_BY_MSG_KEY = {
    "sampleText": OutboxMessageKind.TEXT,
    "sampleMarkdown": OutboxMessageKind.MARKDOWN,
    "sampleLink": OutboxMessageKind.LINK,
    "sampleImageMsg": OutboxMessageKind.IMAGE,
    "sampleFile": OutboxMessageKind.FILE,
}


def _kind_of(msg_key: str) -> OutboxMessageKind:
    if msg_key.startswith("sampleActionCard"):
        return OutboxMessageKind.ACTION_CARD
    try:
        return _KIND_BY_MSG_KEY[msg_key]
    except KeyError:
        raise ValueError(f"the outbox cannot send msgKey {msg_key!r}") from None


@dataclass(frozen=True)
class _Encoded:
    kind: OutboxMessageKind
    params: dict[str, Any]
    path: Path | None = None  # an attachment already on disk
    data: bytes | None = field(default=None, repr=False)  # an attachment to write to the spool first
    file_name: str | None = None


def _encode(message: Message) -> _Encoded:
    """The row form of a message. Fails here (in the handler) rather than at send time for what can never be sent."""
    if isinstance(message, str):
        message = Text(message)
    if isinstance(message, CardWrite):
        return _Encoded(OutboxMessageKind.CARD, message.as_params())
    if isinstance(message, RobotMessage):
        message.msg_param()  # raises when over DingTalk's size limit
        params: dict[str, Any] = {"msgKey": message.msg_key, "msgParam": dict(message.params)}
        body = webhook_body(message)
        if body is not None:
            check_webhook_body_size(body)
            params["webhook"] = body
        return _Encoded(_kind_of(message.msg_key), params)
    if isinstance(message, Image):
        if message.media_id is not None:
            return _encode(robot_image(message.media_id))
        return _Encoded(OutboxMessageKind.IMAGE, {"media": {"kind": "image", "fileName": "image.png"}},
                        data=message.png, file_name="image.png")
    if isinstance(message, File):
        robot_file("@check", message.name, message.file_type)  # raises for a file type DingTalk cannot send
        media = {"kind": "file", "fileName": message.name, "fileType": message.file_type}
        return _Encoded(OutboxMessageKind.FILE, {"media": media}, path=message.path, data=message.data,
                        file_name=message.name)
    robot = robot_message_for_reply(message)
    robot.msg_param()
    params = {"msgKey": robot.msg_key, "msgParam": dict(robot.params)}
    body = webhook_body_for_reply(message)
    if body is not None:
        check_webhook_body_size(body)
        params["webhook"] = body
    return _Encoded(_kind_of(robot.msg_key), params)


def _card_answer(card: Card, target: Target, key: str) -> CardWrite:
    """A card answer as the write that creates it where the answer goes (a group, or 1:1 chats); its outTrackId is
    derived from the answer's own outbox key, so a re-run names the same card."""
    where = target.fallback if target.kind == OutboxTargetKind.WEBHOOK and target.fallback else target
    out_track_id = "dpm-" + uuid.uuid5(uuid.NAMESPACE_URL, key).hex
    if where.kind == OutboxTargetKind.GROUP:
        return CardWrite("create", out_track_id, template_id=card.template_id, data=card.data, group=where.ids[0],
                         preview=card.preview)
    return CardWrite("create", out_track_id, template_id=card.template_id, data=card.data, users=where.ids,
                     preview=card.preview)


_SAFE_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")


def _spool(directory: Path, file_name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = Path(file_name).suffix.lower()
    if not _SAFE_SUFFIX.fullmatch(suffix):
        suffix = ""
    path = directory / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(data)
    return path


async def enqueue(
    session: Any,
    key: str,
    target: Target,
    message: Message,
    *,
    not_before: datetime | None = None,
    spool_dir: Path | None = None,
) -> bool:
    """Queue ``message`` for ``target`` in the caller's transaction; False if ``key`` was queued before (then nothing
    changes, so a re-run job or a retried command never sends twice).

    Inside a unit of work (a command, an event, ``outbox.unit_of_work()``) the row is sent right after the commit;
    otherwise (or with ``not_before`` in the future) by the relay's poll. ``message``: a reply value
    (``Text``, ``Markdown``, ``ActionCard``, ``Image``, ``File``), a ``RobotMessage`` or a plain string. Images and
    files are uploaded at send time, once; in-memory ones are written to the spool directory now.
    """
    if not key or len(key) > KEY_LEN:
        raise ValueError(f"an outbox key is 1..{KEY_LEN} characters: {key[:40]!r}…")
    work = current_unit_of_work()
    in_work = work is not None and work.session is session
    if isinstance(message, Card):
        message = _card_answer(message, target, key)
    encoded = _encode(message)
    params = dict(encoded.params)
    if target.kind == OutboxTargetKind.WEBHOOK and encoded.kind == OutboxMessageKind.CARD and target.fallback:
        target = target.fallback  # a card goes through the card APIs, never a sessionWebhook
    if encoded.kind == OutboxMessageKind.CARD and target.kind not in (OutboxTargetKind.GROUP, OutboxTargetKind.USER):
        raise ValueError("a card write names its group or users (the target orders it with their messages)")
    if target.kind == OutboxTargetKind.WEBHOOK:
        if "webhook" in params:
            if target.fallback is not None:
                params["fallback"] = {"kind": target.fallback.kind.value, "ids": list(target.fallback.ids)}
            if target.expires_at is not None:
                params["expiresAt"] = target.expires_at.isoformat()
        elif target.fallback is not None:
            target = target.fallback  # images and files cannot go through a sessionWebhook
        else:
            raise ValueError("an image or file answer needs a conversation to send to; the webhook cannot carry it")
    if target.kind == OutboxTargetKind.CUSTOM_ROBOT and "webhook" not in params:
        raise ValueError("a custom robot sends text, markdown, links and action cards only, not images or files")
    path = encoded.path
    if encoded.data is not None:
        directory = spool_dir or (work.spool_dir if in_work and work is not None else None)
        if directory is None:
            raise ValueError("an in-memory attachment needs spool_dir= outside a unit of work")
        path = await asyncio.to_thread(_spool, Path(directory), encoded.file_name or "attachment", encoded.data)
        params["spooled"] = True
    now = utcnow()
    fast = bool(in_work and work is not None and work.worker and (not_before is None or not_before <= now))
    row = OutboxMessage(
        idempotency_key=key,
        target_kind=target.kind,
        target_ids=list(target.ids),
        msg_kind=encoded.kind,
        params=params,
        attachment_path=str(path) if path is not None else None,
        next_attempt_at=not_before or now,
        created_at=now,
    )
    if fast and work is not None:
        row.state = OutboxState.SENDING
        row.claimed_by = work.worker
        row.claimed_until = now + timedelta(seconds=work.outbox_lease_seconds)
        row.attempts = 1
    new_id = await insert_outbox_row(session=session, row=row)
    if new_id is None:
        if params.get("spooled") and path is not None:
            await asyncio.to_thread(unlink_quietly, path)
        return False
    row.id = new_id
    if in_work and work is not None:
        if fast:
            work.claimed_outbox.append(row)
        else:
            work.queued_outbox += 1
    return True


async def enqueue_row(session: Any, row: OutboxMessage) -> bool:
    """Queue a row built by its caller (a 待办 call for the leader's todo relay, ``domain.todo_sync``) in the caller's
    transaction; False if its key was queued before. Counted in the unit of work, so its commit wakes the relay that
    sends it; never claimed for the fast path, which sends messages only."""
    queued = await insert_outbox_row(session=session, row=row) is not None
    work = current_unit_of_work()
    if queued and work is not None and work.session is session:
        work.queued_outbox += 1
    return queued
