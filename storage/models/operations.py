"""Bookkeeping of the bot itself: scheduled job runs and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import ENUM_LEN, SHORT_LEN, USER_ID_LEN, TableBase, created_at_field, table_args, utc_field
from storage.models.enums import JobRunState
from storage.models.types import EnumString, JsonText, LongText


class JobRun(TableBase, table=True):
    __tablename__ = "job_runs"
    # One row per job and period ("weekly_report_job", "2026-W05:XM-2026-001"): the unique key is what makes a
    # scheduled run happen once even with several replicas or after a restart. A run whose owner died (its lease
    # ran out) or that failed may be taken over by one other claimer, at most ``attempts`` < the scheduler's bound.
    # An on-demand job's row starts ``pending`` (attempts 0): a command requested it, the first claimer runs it.
    __table_args__ = table_args(UniqueConstraint("job", "period_key"))

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=SHORT_LEN * 2)
    period_key: str = Field(max_length=SHORT_LEN * 4)
    state: JobRunState = Field(default=JobRunState.RUNNING, sa_type=EnumString(JobRunState, ENUM_LEN), nullable=False)
    owner: str = Field(max_length=SHORT_LEN * 2)  # the worker (host:pid) that claimed it
    attempts: int = Field(default=1, nullable=False)  # claims so far: the first run plus every take-over
    started_at: datetime = created_at_field()
    lease_until: datetime | None = utc_field()  # renewed by the running owner; once past, the owner is presumed dead
    params: dict[str, Any] | None = Field(default=None, sa_type=JsonText())  # what a requested run was asked for
    finished_at: datetime | None = utc_field()
    error: str | None = Field(default=None, sa_type=LongText())


class AuditLog(TableBase, table=True):
    __tablename__ = "audit_log"
    __table_args__ = table_args(Index("ix_audit_log_project_id_at", "project_id", "at"))

    id: int | None = Field(default=None, primary_key=True)
    actor_user_id: str | None = Field(default=None, max_length=USER_ID_LEN)  # None: the bot itself (a job)
    action: str = Field(max_length=SHORT_LEN * 2)  # e.g. deliverable.submit, project.pause
    project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="SET NULL")
    entity: str | None = Field(default=None, max_length=SHORT_LEN)  # table or concept, e.g. deliverable
    entity_id: str | None = Field(default=None, max_length=SHORT_LEN * 2)
    before: dict[str, Any] | None = Field(default=None, sa_type=JsonText())
    after: dict[str, Any] | None = Field(default=None, sa_type=JsonText())
    at: datetime = created_at_field()
