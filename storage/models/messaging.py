"""The transactional inbox (frames persisted before the ack) and outbox (proactive messages sent by the relay)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import (
    ENUM_LEN,
    KEY_LEN,
    MESSAGE_ID_LEN,
    PATH_LEN,
    SHORT_LEN,
    TableBase,
    created_at_field,
    table_args,
    utc_field,
)
from storage.models.enums import InboxKind, InboxState, OutboxMessageKind, OutboxState, OutboxTargetKind
from storage.models.types import EnumString, JsonText, LongText, UtcDateTime, utcnow


class InboxMessage(TableBase, table=True):
    __tablename__ = "inbox"
    __table_args__ = table_args(
        # A redelivered frame carries the same messageId; the same bot message re-sent in a new frame carries the
        # same msgId. Either unique key drops the duplicate. msg_id is NULL for events (NULLs never collide).
        UniqueConstraint("message_id"),
        UniqueConstraint("msg_id"),
        Index("ix_inbox_state_received_at", "state", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=MESSAGE_ID_LEN)  # Stream frame headers.messageId
    msg_id: str | None = Field(default=None, max_length=MESSAGE_ID_LEN)  # the bot message's msgId
    kind: InboxKind = Field(default=InboxKind.MESSAGE, sa_type=EnumString(InboxKind, ENUM_LEN), nullable=False)
    payload: str = Field(sa_type=LongText(), nullable=False)  # the frame's data, as received (JSON text)
    state: InboxState = Field(default=InboxState.PENDING, sa_type=EnumString(InboxState, ENUM_LEN), nullable=False)
    attempts: int = Field(default=0, nullable=False)
    claimed_by: str | None = Field(default=None, max_length=SHORT_LEN * 2)
    claimed_until: datetime | None = utc_field()
    received_at: datetime = created_at_field()
    processed_at: datetime | None = utc_field()
    error: str | None = Field(default=None, sa_type=LongText())


class OutboxMessage(TableBase, table=True):
    __tablename__ = "outbox"
    __table_args__ = table_args(
        UniqueConstraint("idempotency_key"),
        # The relay's poll: state = pending AND next_attempt_at <= now, oldest first.
        Index("ix_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=KEY_LEN)  # business key, e.g. weekly:{project}:{iso_week}
    target_kind: OutboxTargetKind = Field(sa_type=EnumString(OutboxTargetKind, ENUM_LEN), nullable=False)
    target_ids: list[str] = Field(sa_type=JsonText(), nullable=False)  # conversation ids, user ids or a webhook URL
    msg_kind: OutboxMessageKind = Field(sa_type=EnumString(OutboxMessageKind, ENUM_LEN), nullable=False)
    params: dict[str, Any] = Field(sa_type=JsonText(), nullable=False)  # msgParam / webhook body fields
    attachment_path: str | None = Field(default=None, max_length=PATH_LEN)  # uploaded at send time
    state: OutboxState = Field(default=OutboxState.PENDING, sa_type=EnumString(OutboxState, ENUM_LEN), nullable=False)
    attempts: int = Field(default=0, nullable=False)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime(), nullable=False)
    claimed_by: str | None = Field(default=None, max_length=SHORT_LEN * 2)
    claimed_until: datetime | None = utc_field()
    last_error: str | None = Field(default=None, sa_type=LongText())
    created_at: datetime = created_at_field()
    sent_at: datetime | None = utc_field()
