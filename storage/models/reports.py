"""Weekly reports as generated and sent, one per project, ISO week and audience."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from storage.models.base import ENUM_LEN, PATH_LEN, TableBase, created_at_field, table_args, updated_at_field, utc_field
from storage.models.enums import ReportVariant
from storage.models.types import EnumString, LongText


class WeeklyReport(TableBase, table=True):
    __tablename__ = "weekly_reports"
    # The audience is part of the key: the client version and the internal version of the same week both exist.
    __table_args__ = table_args(UniqueConstraint("project_id", "iso_year", "iso_week", "variant"))

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    iso_year: int
    iso_week: int
    variant: ReportVariant = Field(
        default=ReportVariant.CLIENT, sa_type=EnumString(ReportVariant, ENUM_LEN), nullable=False
    )
    content_md: str = Field(sa_type=LongText(), nullable=False)
    file_path: str | None = Field(default=None, max_length=PATH_LEN)
    sent_at: datetime | None = utc_field()
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
