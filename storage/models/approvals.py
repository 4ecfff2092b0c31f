"""DingTalk approval instances (OA 审批) the bot started or follows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import (
    ENUM_LEN,
    SHORT_LEN,
    USER_ID_LEN,
    TableBase,
    created_at_field,
    table_args,
    updated_at_field,
    utc_field,
)
from storage.models.enums import ApprovalKind, ApprovalResult, ApprovalStatus
from storage.models.types import EnumString, JsonText, LongText


class Approval(TableBase, table=True):
    __tablename__ = "approvals"
    __table_args__ = table_args(
        UniqueConstraint("process_instance_id"),
        # Reconciliation polls the ones still running.
        Index("ix_approvals_status", "status"),
        Index("ix_approvals_project_id", "project_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="SET NULL")
    kind: ApprovalKind = Field(sa_type=EnumString(ApprovalKind, ENUM_LEN), nullable=False)
    process_instance_id: str = Field(max_length=SHORT_LEN * 2)
    process_code: str = Field(max_length=SHORT_LEN * 2)
    status: ApprovalStatus = Field(
        default=ApprovalStatus.RUNNING, sa_type=EnumString(ApprovalStatus, ENUM_LEN), nullable=False
    )
    result: ApprovalResult | None = Field(default=None, sa_type=EnumString(ApprovalResult, ENUM_LEN))
    requester_user_id: str = Field(max_length=USER_ID_LEN)
    form_values: dict[str, Any] | None = Field(default=None, sa_type=JsonText())
    remarks: str | None = Field(default=None, sa_type=LongText())
    # Who acted on the instance, in order: [{"user": id, "action": 同意|拒绝|撤销, "remark": …, "at": ISO UTC}], from
    # task events and the instance detail (the 审批记录 and the approved 立项申请表 print them).
    steps: list[dict[str, Any]] | None = Field(default=None, sa_type=JsonText())
    # The key of the final state whose effects were applied (e.g. "COMPLETED:agree"); callbacks and the reconciler
    # both deliver final states, and a compare-and-set on this column applies each one exactly once.
    applied_event: str | None = Field(default=None, max_length=SHORT_LEN * 2)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
    decided_at: datetime | None = utc_field()
