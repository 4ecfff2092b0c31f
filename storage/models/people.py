"""People as DingTalk knows them: the directory of employees and external contacts, their departments and
organizations, the conversations the bot has seen, and the custom robots that reach client groups.

**The person key.** Every other table stores people by one string, ``users.user_id`` (no foreign key: people show
up in mentions and approval callbacks before the bot knows them, and refusing those rows would lose real data):

* an employee's key is their DingTalk **userId** (= staffId), as before;
* an external contact (a client's person: another organization, no staffId) gets ``ext:<unionId>``, or
  ``ext:d<digest of their dingtalkId>`` when only the encrypted id was seen (an @-mention). The key is chosen once,
  when the person is first seen, and kept: ids learned later (the unionId of someone first @-mentioned) fill the
  row's columns, never the key. So nothing is ever keyed on a possibly empty ``senderStaffId``.

``is_external_key`` tells the two apart without a query: the outbox never sends 1:1 to an external key (DingTalk
cannot, §4), and reminders meant for a client contact go to the project's client group instead.

Employees come from the contacts walk (``directory_sync``) and from every message; externals from messages,
@-mentions and group-member lists. People who left stay (history keeps their names) with ``active`` false and
``left_at`` set; a renamed person's row carries the new name.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import (
    CONVERSATION_ID_LEN,
    NAME_LEN,
    TITLE_LEN,
    URL_LEN,
    USER_ID_LEN,
    TableBase,
    created_at_field,
    table_args,
    updated_at_field,
    utc_field,
)
from storage.models.types import JsonText

EXTERNAL_KEY_PREFIX = "ext:"
CORP_ID_LEN = 64
UNION_ID_LEN = 64
DINGTALK_ID_LEN = 128  # the encrypted ``$:LWCP_v1:$…`` id of callbacks
MOBILE_LEN = 32


def is_external_key(key: str | None) -> bool:
    """Whether a person key names an external contact (someone of another organization)."""
    return bool(key) and key.startswith(EXTERNAL_KEY_PREFIX)  # type: ignore[union-attr]


def external_key(*, union_id: str | None = None, dingtalk_id: str | None = None) -> str:
    """The key a new external contact gets: from the unionId when known, else from the encrypted id."""
    if union_id:
        key = EXTERNAL_KEY_PREFIX + union_id
        if len(key) <= USER_ID_LEN:
            return key
        return EXTERNAL_KEY_PREFIX + "u" + hashlib.sha256(union_id.encode()).hexdigest()[:40]
    if dingtalk_id:
        return EXTERNAL_KEY_PREFIX + "d" + hashlib.sha256(dingtalk_id.encode()).hexdigest()[:40]
    raise ValueError("an external contact needs a unionId or a dingtalkId")


class User(TableBase, table=True):
    """One person: an employee (key = userId) or an external contact (key = ``ext:…``)."""

    __tablename__ = "users"
    __table_args__ = table_args(
        UniqueConstraint("user_id"),
        Index("ix_users_name", "name"),  # 经理:王建国 looks people up by name
        Index("ix_users_mobile", "mobile"),
        Index("ix_users_union_id", "union_id"),
        Index("ix_users_dingtalk_id", "dingtalk_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=USER_ID_LEN)  # the person key (see the module docstring)
    name: str = Field(max_length=NAME_LEN)
    # The project this person last worked on: in a 1:1 chat, a command without 项目:编号 means that one.
    last_project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="SET NULL")
    union_id: str | None = Field(default=None, max_length=UNION_ID_LEN)
    dingtalk_id: str | None = Field(default=None, max_length=DINGTALK_ID_LEN)  # as last seen in a callback
    corp_id: str | None = Field(default=None, max_length=CORP_ID_LEN)  # the person's organization
    external: bool = Field(default=False, nullable=False)
    title: str | None = Field(default=None, max_length=NAME_LEN)
    mobile: str | None = Field(default=None, max_length=MOBILE_LEN)
    dept_ids: list[int] | None = Field(default=None, sa_type=JsonText())  # DingTalk department ids
    active: bool = Field(default=True, nullable=False)  # False: left the organization (kept for history)
    left_at: datetime | None = utc_field()
    synced_at: datetime | None = utc_field()  # last seen by the contacts walk: its data is authoritative
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class Department(TableBase, table=True):
    __tablename__ = "departments"
    __table_args__ = table_args(UniqueConstraint("dept_id"))

    id: int | None = Field(default=None, primary_key=True)
    dept_id: int = Field(sa_type=BigInteger(), nullable=False)  # DingTalk's id (1 = the root)
    name: str = Field(max_length=NAME_LEN)
    parent_id: int | None = Field(default=None, sa_type=BigInteger())
    synced_at: datetime | None = utc_field()
    updated_at: datetime = updated_at_field()


class Organization(TableBase, table=True):
    """An organization by its corpId: ours, and the clients' whose people are external contacts."""

    __tablename__ = "organizations"
    __table_args__ = table_args(UniqueConstraint("corp_id"))

    id: int | None = Field(default=None, primary_key=True)
    corp_id: str = Field(max_length=CORP_ID_LEN)
    name: str = Field(max_length=NAME_LEN)
    updated_at: datetime = updated_at_field()


class Conversation(TableBase, table=True):
    """A group chat the bot has seen. ``external_members``: someone of another organization is in it (a sender, an
    @-mention or the member list said so), so it never gets internal content, bound to a project or not."""

    __tablename__ = "conversations"
    __table_args__ = table_args(UniqueConstraint("conversation_id"))

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(max_length=CONVERSATION_ID_LEN)
    title: str | None = Field(default=None, max_length=TITLE_LEN)
    external_members: bool = Field(default=False, nullable=False)
    members_synced_at: datetime | None = utc_field()
    updated_at: datetime = updated_at_field()


class ProjectMemberExclusion(TableBase, table=True):
    """External members of a bound client group are the project's 客户联系人 by default; the PM removing one leaves
    this row, so the next message or member walk does not add them back (adding them again deletes it)."""

    __tablename__ = "project_member_exclusions"
    __table_args__ = table_args(UniqueConstraint("project_id", "user_id"))

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    user_id: str = Field(max_length=USER_ID_LEN)
    created_at: datetime = created_at_field()


class SyncCheckpoint(TableBase, table=True):
    """Where a long walk (the contacts walk of one day) stands, written with each page it stores, so a walk cut by a
    fault resumes where it stopped instead of starting over."""

    __tablename__ = "sync_checkpoints"
    __table_args__ = table_args(UniqueConstraint("name"))

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=TITLE_LEN)  # directory:2026-11-02
    state: dict[str, Any] | None = Field(default=None, sa_type=JsonText())
    updated_at: datetime = updated_at_field()


class ClientRobot(TableBase, table=True):
    """A custom robot (自定义机器人) of a project's client group, for one-way pushes where the app's robot cannot be.
    Set by an administrator (``dingpm client-robot``), never from a chat. The webhook carries an access token and
    the secret signs every send: neither is ever logged or shown."""

    __tablename__ = "client_robots"
    __table_args__ = table_args(UniqueConstraint("project_id"))

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    webhook: str = Field(max_length=URL_LEN)
    secret: str = Field(max_length=TITLE_LEN)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


__all__ = [
    "EXTERNAL_KEY_PREFIX",
    "ClientRobot",
    "Conversation",
    "Department",
    "Organization",
    "ProjectMemberExclusion",
    "SyncCheckpoint",
    "User",
    "external_key",
    "is_external_key",
]
