"""The plan of a project: ordered phases (启动/规划/执行/监控/收尾) and their activities, instantiated from a template."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from storage.models.base import NAME_LEN, SHORT_LEN, USER_ID_LEN, TableBase, table_args, utc_field


class Phase(TableBase, table=True):
    __tablename__ = "phases"
    __table_args__ = table_args(UniqueConstraint("project_id", "seq"))

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    seq: int  # 1-based order within the project
    name: str = Field(max_length=SHORT_LEN * 2)
    # The phase this one runs alongside (监控 beside 执行): it has no gate of its own and is never "current".
    parallel_with: str | None = Field(default=None, max_length=SHORT_LEN * 2)
    planned_start: date | None = None
    planned_end: date | None = None
    actual_start: date | None = None
    actual_end: date | None = None
    # Phase gate: who let the project leave this phase, and when.
    gate_passed_by: str | None = Field(default=None, max_length=USER_ID_LEN)
    gate_passed_at: datetime | None = utc_field()


class Activity(TableBase, table=True):
    __tablename__ = "activities"
    __table_args__ = table_args(UniqueConstraint("phase_id", "seq"))

    id: int | None = Field(default=None, primary_key=True)
    phase_id: int = Field(foreign_key="phases.id", ondelete="CASCADE")
    seq: int
    name: str = Field(max_length=NAME_LEN)
