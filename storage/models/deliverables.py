"""Deliverables (项目文件) each activity must produce, and every version submitted for them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import (
    ENUM_LEN,
    NAME_LEN,
    PATH_LEN,
    SHORT_LEN,
    TITLE_LEN,
    URL_LEN,
    USER_ID_LEN,
    TableBase,
    created_at_field,
    table_args,
    updated_at_field,
    utc_field,
)
from storage.models.enums import DeliverableStatus, MemberRole, Recurrence
from storage.models.types import EnumString, LongText


class Deliverable(TableBase, table=True):
    __tablename__ = "deliverables"
    __table_args__ = table_args(
        # The overdue reminder job: status = 待提交 AND due_date < today.
        Index("ix_deliverables_status_due_date", "status", "due_date"),
        Index("ix_deliverables_project_id", "project_id"),
        Index("ix_deliverables_phase_id", "phase_id"),
        Index("ix_deliverables_activity_id", "activity_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    phase_id: int | None = Field(default=None, foreign_key="phases.id", ondelete="CASCADE")
    activity_id: int | None = Field(default=None, foreign_key="activities.id", ondelete="CASCADE")
    name: str = Field(max_length=NAME_LEN)
    required: bool = Field(default=True, nullable=False)
    recurrence: Recurrence = Field(
        default=Recurrence.NONE, sa_type=EnumString(Recurrence, ENUM_LEN), nullable=False
    )
    # For recurring deliverables, one row per period (e.g. "2026-W05"); NULL for one-off ones.
    period_key: str | None = Field(default=None, max_length=SHORT_LEN)
    owner_role: MemberRole | None = Field(default=None, sa_type=EnumString(MemberRole, ENUM_LEN))
    owner_user_id: str | None = Field(default=None, max_length=USER_ID_LEN)
    due_date: date | None = None
    status: DeliverableStatus = Field(
        default=DeliverableStatus.PENDING, sa_type=EnumString(DeliverableStatus, ENUM_LEN), nullable=False
    )
    waiver_reason: str | None = Field(default=None, max_length=500)
    waived_by: str | None = Field(default=None, max_length=USER_ID_LEN)
    submitted_at: datetime | None = utc_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class DeliverableVersion(TableBase, table=True):
    __tablename__ = "deliverable_versions"
    __table_args__ = table_args(UniqueConstraint("deliverable_id", "version"))

    id: int | None = Field(default=None, primary_key=True)
    deliverable_id: int = Field(foreign_key="deliverables.id", ondelete="CASCADE")
    version: int  # 1, 2, 3 … per deliverable
    file_path: str | None = Field(default=None, max_length=PATH_LEN)  # relative to storage.files_dir
    sha256: str | None = Field(default=None, max_length=64)
    size: int | None = Field(default=None, sa_type=BigInteger())
    original_name: str | None = Field(default=None, max_length=TITLE_LEN)
    link: str | None = Field(default=None, max_length=URL_LEN)  # a DingTalk drive link instead of a file
    submitted_by: str = Field(max_length=USER_ID_LEN)
    submitted_at: datetime = created_at_field()
    note: str | None = Field(default=None, sa_type=LongText())
