"""The project registers kept throughout (问题/需求/风险/变更/升级记录/实施日志/下周计划/会议记录), in one table.

One table with a ``kind`` column: the registers share almost every column, listing and closing work the same way, and
a new register kind needs no migration. ``seq`` numbers entries per project and kind so users can say 问题#3.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import (
    ENUM_LEN,
    SHORT_LEN,
    TITLE_LEN,
    USER_ID_LEN,
    TableBase,
    created_at_field,
    table_args,
    updated_at_field,
    utc_field,
)
from storage.models.enums import Level, RegisterKind, RegisterStatus, RiskResponse
from storage.models.types import EnumString, JsonText, LongText


class RegisterEntry(TableBase, table=True):
    __tablename__ = "register_entries"
    __table_args__ = table_args(
        UniqueConstraint("project_id", "kind", "seq"),
        # Listing open entries of one register of one project.
        Index("ix_register_entries_project_kind_status", "project_id", "kind", "status"),
        # One register across all projects (the 看板 counts every project's open high risks): the risk columns ride
        # along, so that the count needs the index alone.
        Index("ix_register_entries_kind_status", "kind", "status", "project_id", "probability", "impact", "closed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    kind: RegisterKind = Field(sa_type=EnumString(RegisterKind, ENUM_LEN), nullable=False)
    seq: int  # per (project, kind): 问题#1, 问题#2 …
    title: str = Field(max_length=TITLE_LEN)
    content: str | None = Field(default=None, sa_type=LongText())
    owner_user_id: str | None = Field(default=None, max_length=USER_ID_LEN)
    status: RegisterStatus = Field(sa_type=EnumString(RegisterStatus, ENUM_LEN), nullable=False)
    resolution: str | None = Field(default=None, sa_type=LongText())
    due_date: date | None = None
    probability: Level | None = Field(default=None, sa_type=EnumString(Level, 8))  # risks
    impact: Level | None = Field(default=None, sa_type=EnumString(Level, 8))  # risks
    response: RiskResponse | None = Field(default=None, sa_type=EnumString(RiskResponse, 8))  # risks
    meeting_type: str | None = Field(default=None, max_length=SHORT_LEN)  # 定期会议, 临时会议, 启动会 …
    version: str | None = Field(default=None, max_length=SHORT_LEN * 2)  # upgrades: the version installed
    extra: dict[str, Any] | None = Field(default=None, sa_type=JsonText())
    created_by: str = Field(max_length=USER_ID_LEN)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    closed_at: datetime | None = utc_field()
