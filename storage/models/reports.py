"""Weekly reports as generated and sent, one per project, ISO week and audience; and renders made ahead of the push."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from storage.models.base import (
    ENUM_LEN,
    PATH_LEN,
    TITLE_LEN,
    TableBase,
    created_at_field,
    table_args,
    updated_at_field,
    utc_field,
)
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


class WeeklyReportRender(TableBase, table=True):
    """A weekly report rendered ahead of its push (the pre-render job), kept until the push uses it.

    ``fingerprint`` identifies what it was rendered from (``reports.pool.bundle_fingerprint``: the report data, the
    variants, the renderers): the push gathers the data again and reuses this render only when the fingerprint is
    unchanged, so what goes out is always current. The .docx files live under ``storage.files_dir``; the push copies
    them to the report's own place, so a later render never changes a file already queued."""

    __tablename__ = "weekly_report_renders"
    __table_args__ = table_args(UniqueConstraint("project_id", "iso_year", "iso_week"))

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    iso_year: int
    iso_week: int
    fingerprint: str = Field(max_length=64)  # sha256 hex
    title: str = Field(max_length=TITLE_LEN)
    content_md: str = Field(sa_type=LongText(), nullable=False)
    file_path: str = Field(max_length=PATH_LEN)  # relative to storage.files_dir
    # The internal variant, rendered only for a project with an internal group.
    internal_title: str | None = Field(default=None, max_length=TITLE_LEN)
    internal_content_md: str | None = Field(default=None, sa_type=LongText())
    internal_file_path: str | None = Field(default=None, max_length=PATH_LEN)
    rendered_at: datetime = utc_field(nullable=False)
