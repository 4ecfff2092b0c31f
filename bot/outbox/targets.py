"""Where an outbox message goes: a group, some users (1:1), a client group's custom robot, or a message's
sessionWebhook with an OpenAPI fallback. Plain values, stored with the row (``target_kind``, ``target_ids``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.incoming import Incoming
from storage.models import OutboxTargetKind, is_external_key

log = logging.getLogger("dingpm.outbox")


@dataclass(frozen=True)
class Target:
    """Where a message goes: a group, some users (1:1), or a message's sessionWebhook with an OpenAPI fallback."""

    kind: OutboxTargetKind
    ids: tuple[str, ...]
    fallback: Target | None = None  # webhook only: used when the webhook expired, and for images and files
    expires_at: datetime | None = None  # webhook only: naive UTC

    def __post_init__(self) -> None:
        if not self.ids or not all(self.ids):
            raise ValueError("a message target needs at least one non-empty id")
        if self.kind == OutboxTargetKind.GROUP and len(self.ids) != 1:
            raise ValueError("a group target names exactly one conversation (queue one message per group)")
        if self.kind == OutboxTargetKind.WEBHOOK and len(self.ids) != 1:
            raise ValueError("a webhook target is exactly one sessionWebhook URL")
        if self.fallback is not None and self.fallback.kind == OutboxTargetKind.WEBHOOK:
            raise ValueError("a webhook's fallback is a group or users, not another webhook")

    def __repr__(self) -> str:  # the webhook URL carries a credential: never print it
        shown = ("<sessionWebhook>",) if self.kind == OutboxTargetKind.WEBHOOK else self.ids
        return f"Target({self.kind.value}, {shown!r}, fallback={self.fallback!r})"


def group_target(conversation_id: str) -> Target:
    """A group chat, by its openConversationId (``groupMessages/send``)."""
    return Target(OutboxTargetKind.GROUP, (conversation_id,))


def users_target(user_ids: Sequence[str] | str) -> Target:
    """1:1 chats with these users (``oToMessages/batchSend``, 20 per call). External contacts (``ext:…`` keys) are
    left out: DingTalk sends no 1:1 robot message to someone of another organization (reference part 2 §4); what is
    meant for them goes to their project's client group."""
    ids = (user_ids,) if isinstance(user_ids, str) else tuple(dict.fromkeys(user_ids))
    internal = tuple(i for i in ids if not is_external_key(i))
    if len(internal) < len(ids):
        log.warning("outbox: %d external contacts left out of a 1:1 message", len(ids) - len(internal))
    return Target(OutboxTargetKind.USER, internal)


def custom_robot_target(project_code: str) -> Target:
    """The project's client group through its custom robot (``bot.client_robots``): text and markdown only."""
    return Target(OutboxTargetKind.CUSTOM_ROBOT, (project_code,))


def conversation_target(incoming: Incoming) -> Target | None:
    """Where a proactive answer to this message goes: its group, or the sender's 1:1 chat."""
    if incoming.is_group and incoming.conversation_id:
        return group_target(incoming.conversation_id)
    if incoming.sender_id:
        return users_target(incoming.sender_id)
    return None


def target_params(target: Target | None) -> dict[str, Any] | None:
    """A group or users target as JSON-able params (a job request remembering where to answer)."""
    if target is None:
        return None
    if target.kind == OutboxTargetKind.WEBHOOK:
        raise ValueError("a sessionWebhook expires: remember the conversation (conversation_target) instead")
    return {"kind": target.kind.value, "ids": list(target.ids)}


def target_from_params(params: Any) -> Target | None:
    """The target ``target_params`` stored, or None when there is none (or it is not one)."""
    if not isinstance(params, dict) or not params.get("ids"):
        return None
    try:
        return Target(OutboxTargetKind(params["kind"]), tuple(str(i) for i in params["ids"]))
    except (KeyError, ValueError):
        return None


def reply_target(incoming: Incoming) -> Target:
    """The answer to a message: its sessionWebhook (it can @ the sender), falling back to the OpenAPI."""
    fallback = conversation_target(incoming)
    if incoming.session_webhook:
        return Target(OutboxTargetKind.WEBHOOK, (incoming.session_webhook,), fallback=fallback,
                      expires_at=incoming.session_webhook_expires_at)
    if fallback is None:
        raise ValueError(f"message {incoming.message_id} has neither a sessionWebhook nor a sender to answer")
    return fallback
