"""Files on their way to a deliverable.

DingTalk delivers a file as a message of its own (msgtype ``file``, a ``downloadCode``, no text), so "this file is
the 接口说明文档" arrives in two messages, in either order. A row here is the first half, kept per user and chat
until the second half comes: a received file (already downloaded and hashed, since download codes expire) waiting
for ``提交 <交付物>``, or a ``提交``/``验收`` command waiting for the file.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import (
    CONVERSATION_ID_LEN,
    ENUM_LEN,
    MESSAGE_ID_LEN,
    PATH_LEN,
    TITLE_LEN,
    USER_ID_LEN,
    TableBase,
    created_at_field,
    table_args,
    utc_field,
)
from storage.models.enums import PendingKind
from storage.models.types import EnumString, LongText, UtcDateTime


class PendingFile(TableBase, table=True):
    __tablename__ = "pending_files"
    __table_args__ = table_args(
        # A redelivered file message must not be taken in twice (NULL for the command rows: NULLs never collide).
        UniqueConstraint("message_id"),
        # "The latest open row of this user in this chat".
        Index("ix_pending_files_conversation_user", "conversation_id", "user_id", "consumed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: PendingKind = Field(sa_type=EnumString(PendingKind, ENUM_LEN), nullable=False)
    conversation_id: str = Field(max_length=CONVERSATION_ID_LEN)
    user_id: str = Field(max_length=USER_ID_LEN)
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="CASCADE")
    deliverable_id: int | None = Field(default=None, foreign_key="deliverables.id", ondelete="CASCADE")
    message_id: str | None = Field(default=None, max_length=MESSAGE_ID_LEN)  # the file message, for kind=file
    file_name: str | None = Field(default=None, max_length=TITLE_LEN)  # as the user named it (sanitised)
    file_path: str | None = Field(default=None, max_length=PATH_LEN)  # relative to storage.files_dir
    sha256: str | None = Field(default=None, max_length=64)
    size: int | None = Field(default=None, sa_type=BigInteger())
    note: str | None = Field(default=None, sa_type=LongText())  # 说明 given with a command that waits for its file
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UtcDateTime(), nullable=False)
    consumed_at: datetime | None = utc_field()
