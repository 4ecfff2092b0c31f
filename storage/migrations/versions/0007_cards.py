"""interactive cards: each project's live status card, and the clients' acknowledgements of weekly reports

Revision ID: 0007_cards
Revises: 0006_todos
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0007_cards"
down_revision: str | Sequence[str] | None = "0006_todos"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Spelled out as in 0001 (a revision never imports the application's types).
def utc_datetime() -> sa.types.TypeEngine:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def long_text() -> sa.types.TypeEngine:
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    op.create_table("status_cards",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("project_id", sa.Integer(), nullable=False),
    sa.Column("conversation_id", sa.String(length=128), nullable=False),
    sa.Column("out_track_id", sa.String(length=64), nullable=False),
    sa.Column("serial", sa.Integer(), nullable=False),
    sa.Column("pinned", sa.Boolean(), nullable=True),
    sa.Column("data_hash", sa.String(length=64), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("audit_id", sa.Integer(), nullable=False),
    sa.Column("posted_on", sa.Date(), nullable=False),
    sa.Column("updated_at", utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_status_cards_project_id_projects"),
                            ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_status_cards")),
    sa.UniqueConstraint("out_track_id", name=op.f("uq_status_cards_out_track_id")),
    sa.UniqueConstraint("project_id", name=op.f("uq_status_cards_project_id")),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table("report_acks",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("project_id", sa.Integer(), nullable=False),
    sa.Column("week", sa.String(length=32), nullable=False),
    sa.Column("person_key", sa.String(length=128), nullable=False),
    sa.Column("person_name", sa.String(length=128), nullable=False),
    sa.Column("status", sa.String(length=32), nullable=False),
    sa.Column("question", long_text(), nullable=True),
    sa.Column("via", sa.String(length=32), nullable=False),
    sa.Column("at", utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_report_acks_project_id_projects"),
                            ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_report_acks")),
    sa.UniqueConstraint("project_id", "week", "person_key", name=op.f("uq_report_acks_project_id_week_person_key")),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_report_acks_project_id_week", "report_acks", ["project_id", "week"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_report_acks_project_id_week", table_name="report_acks")
    op.drop_table("report_acks")
    op.drop_table("status_cards")
