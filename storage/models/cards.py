"""Interactive cards (互动卡片) the bot keeps up to date, and what people answered on them.

``StatusCard``: the one live status card of a project's internal group (pinned, or posted and re-posted when the
group refuses pinning). The refresher renders the card's data from the project, compares it with ``data_hash`` and
queues an update only when something shown changed; ``audit_id`` is the last audit row it has seen (every change that
shows on the card is audited in the command's own transaction, so the audit trail is the card's dirty mark).

``ReportAck``: a client's acknowledgement of a weekly report (确认已阅, or 有疑问 with the question), by card or by a
reply in the client group: the evidence that the report was delivered and read.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import (
    CONVERSATION_ID_LEN,
    NAME_LEN,
    SHORT_LEN,
    TableBase,
    created_at_field,
    table_args,
    updated_at_field,
)
from storage.models.types import LongText

OUT_TRACK_ID_LEN = 64  # DingTalk's documented maximum (/v2.0/im/topBoxes/close)


class StatusCard(TableBase, table=True):
    __tablename__ = "status_cards"
    __table_args__ = table_args(UniqueConstraint("project_id"), UniqueConstraint("out_track_id"))

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    conversation_id: str = Field(max_length=CONVERSATION_ID_LEN)  # the internal group it lives in
    out_track_id: str = Field(max_length=OUT_TRACK_ID_LEN)  # the current card instance
    serial: int = Field(default=1, nullable=False)  # the instance's number: a re-post is a new card
    pinned: bool | None = Field(default=None)  # None: not delivered yet; False: the group refused pinning
    data_hash: str = Field(default="", max_length=SHORT_LEN * 2)  # of the data last queued
    version: int = Field(default=0, nullable=False)  # updates queued: the outbox key of each
    audit_id: int = Field(default=0, nullable=False)  # the last audit row reflected on the card
    posted_on: date  # the day this instance was posted (a refused pin is re-posted after a quiet day)
    updated_at: datetime = updated_at_field()


class ReportAck(TableBase, table=True):
    __tablename__ = "report_acks"
    # One answer per person and report: pressing again or replying again changes nothing.
    __table_args__ = table_args(UniqueConstraint("project_id", "week", "person_key"),
                                Index("ix_report_acks_project_id_week", "project_id", "week"))

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    week: str = Field(max_length=SHORT_LEN)  # 2026-W45
    person_key: str = Field(max_length=NAME_LEN)  # userId, or ext:… for someone of the client's organization
    person_name: str = Field(max_length=NAME_LEN)
    status: str = Field(max_length=SHORT_LEN)  # acked | question
    question: str | None = Field(default=None, sa_type=LongText())
    via: str = Field(max_length=SHORT_LEN)  # card | reply
    at: datetime = created_at_field()
