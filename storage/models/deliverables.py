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
from storage.models.enums import DeliverableStatus, MemberRole, Recurrence, RegisterKind
from storage.models.types import EnumString, JsonText, LongText


class Deliverable(TableBase, table=True):
    __tablename__ = "deliverables"
    __table_args__ = table_args(
        # The overdue reminder job: status = 待提交 AND due_date < today. Project and required ride along, so that the
        # 看板 reads every overdue deliverable of every project from the index alone.
        Index("ix_deliverables_status_due_date", "status", "due_date", "project_id", "required"),
        Index("ix_deliverables_project_id", "project_id"),
        Index("ix_deliverables_phase_id", "phase_id"),
        Index("ix_deliverables_activity_id", "activity_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    phase_id: int | None = Field(default=None, foreign_key="phases.id", ondelete="CASCADE")
    activity_id: int | None = Field(default=None, foreign_key="activities.id", ondelete="CASCADE")
    # Position in the template across all phases (1, 2, …): lists keep the standard's order, and users may say 提交 #7.
    seq: int = Field(default=0, nullable=False)
    name: str = Field(max_length=NAME_LEN)
    required: bool = Field(default=True, nullable=False)
    recurrence: Recurrence = Field(
        default=Recurrence.NONE, sa_type=EnumString(Recurrence, ENUM_LEN), nullable=False
    )
    # Template markers (storage.templates.DeliverableFlag values: acceptance, handover, project_approval …); a JSON
    # list because features look them up per project in Python, never inside SQL.
    flags: list[str] | None = Field(default=None, sa_type=JsonText())
    # The register whose entries satisfy this document (问题 for 问题记录表). Not named ``register``: pydantic's
    # BaseModel is an ABC and already has a ``register`` method.
    register_kind: RegisterKind | None = Field(default=None, sa_type=EnumString(RegisterKind, ENUM_LEN))
    notes: str | None = Field(default=None, sa_type=LongText())  # the standard's guidance (需客户签字 …)
    # For recurring deliverables, one row per period (e.g. "2026-W05"); NULL for one-off ones.
    period_key: str | None = Field(default=None, max_length=SHORT_LEN)
    owner_role: MemberRole | None = Field(default=None, sa_type=EnumString(MemberRole, ENUM_LEN))
    owner_user_id: str | None = Field(default=None, max_length=USER_ID_LEN)
    due_date: date | None = None  # None for per_event documents: they are due when their event happens
    status: DeliverableStatus = Field(
        default=DeliverableStatus.PENDING, sa_type=EnumString(DeliverableStatus, ENUM_LEN), nullable=False
    )
    waiver_reason: str | None = Field(default=None, max_length=500)
    waived_by: str | None = Field(default=None, max_length=USER_ID_LEN)
    submitted_at: datetime | None = utc_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    def has_flag(self, flag: str) -> bool:
        return str(flag) in (self.flags or ())


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
