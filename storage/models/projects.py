"""Projects and who plays which role in them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import (
    CONVERSATION_ID_LEN,
    ENUM_LEN,
    NAME_LEN,
    SHORT_LEN,
    USER_ID_LEN,
    TableBase,
    created_at_field,
    table_args,
    updated_at_field,
    utc_field,
)
from storage.models.enums import MemberRole, ProjectStatus
from storage.models.types import EnumString, LongText


class Project(TableBase, table=True):
    __tablename__ = "projects"
    __table_args__ = table_args(
        UniqueConstraint("code"),
        # A group chat belongs to at most one project. NULLs are distinct in unique indexes on all three databases,
        # so projects without a group do not collide.
        UniqueConstraint("internal_conversation_id"),
        UniqueConstraint("client_conversation_id"),
        Index("ix_projects_status", "status"),
        Index("ix_projects_pm_user_id", "pm_user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=SHORT_LEN)  # XM-2026-001
    name: str = Field(max_length=NAME_LEN)
    customer: str | None = Field(default=None, max_length=NAME_LEN)
    template: str = Field(max_length=SHORT_LEN * 2)  # process template name (storage/templates)
    status: ProjectStatus = Field(
        default=ProjectStatus.DRAFT, sa_type=EnumString(ProjectStatus, ENUM_LEN), nullable=False
    )
    current_phase: str | None = Field(default=None, max_length=SHORT_LEN * 2)  # name of the current phase
    pm_user_id: str | None = Field(default=None, max_length=USER_ID_LEN)
    planned_start: date | None = None
    planned_end: date | None = None
    actual_start: date | None = None
    actual_end: date | None = None
    internal_conversation_id: str | None = Field(default=None, max_length=CONVERSATION_ID_LEN)
    client_conversation_id: str | None = Field(default=None, max_length=CONVERSATION_ID_LEN)
    paused_at: datetime | None = utc_field()
    # Working days spent paused so far; deadlines shift by this much when the project resumes.
    paused_workdays: int = Field(default=0, nullable=False)
    # 立项 facts the 项目立项申请表 and its approval form print (新建项目 / 项目 设置); the amount is a plain decimal
    # in 元 ("1280000.00"), the rest free text.
    contract_no: str | None = Field(default=None, max_length=SHORT_LEN * 2)
    contract_amount: str | None = Field(default=None, max_length=SHORT_LEN)
    background: str | None = Field(default=None, sa_type=LongText())
    objectives: str | None = Field(default=None, sa_type=LongText())
    scope: str | None = Field(default=None, sa_type=LongText())
    created_by: str | None = Field(default=None, max_length=USER_ID_LEN)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class ProjectMember(TableBase, table=True):
    __tablename__ = "project_members"
    __table_args__ = table_args(
        UniqueConstraint("project_id", "user_id", "role"),
        # "Which projects am I in?" goes by user.
        Index("ix_project_members_user_id", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    user_id: str = Field(max_length=USER_ID_LEN)
    role: MemberRole = Field(sa_type=EnumString(MemberRole, ENUM_LEN), nullable=False)
    created_at: datetime = created_at_field()
