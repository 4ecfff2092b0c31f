"""todos: the DingTalk 待办 the bot keeps for deliverable owners (one row per deliverable and owner)

Revision ID: 0006_todos
Revises: 0005_dashboard_indexes
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006_todos"
down_revision: str | Sequence[str] | None = "0005_dashboard_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


# Spelled out as in 0001 (a revision never imports the application's types).
def utc_datetime() -> sa.types.TypeEngine:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table("todos",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("project_id", sa.Integer(), nullable=False),
    sa.Column("deliverable_id", sa.Integer(), nullable=False),
    sa.Column("owner_user_id", sa.String(length=64), nullable=False),
    sa.Column("creator_union_id", sa.String(length=64), nullable=False),
    sa.Column("executor_union_id", sa.String(length=64), nullable=False),
    sa.Column("source_id", sa.String(length=255), nullable=False),
    sa.Column("generation", sa.Integer(), nullable=False),
    sa.Column("task_id", sa.String(length=128), nullable=True),
    sa.Column("subject", sa.String(length=510), nullable=False),
    sa.Column("due_at", utc_datetime(), nullable=False),
    sa.Column("state", sa.String(length=16), nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("created_at", utc_datetime(), nullable=False),
    sa.Column("updated_at", utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(["deliverable_id"], ["deliverables.id"], name=op.f("fk_todos_deliverable_id_deliverables"),
                            ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_todos_project_id_projects"),
                            ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_todos")),
    sa.UniqueConstraint("deliverable_id", "owner_user_id", name=op.f("uq_todos_deliverable_id_owner_user_id")),
    sa.UniqueConstraint("source_id", name=op.f("uq_todos_source_id")),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_todos_project_id", "todos", ["project_id"], unique=False)
    op.create_index("ix_todos_task_id", "todos", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_todos_task_id", table_name="todos")
    op.drop_index("ix_todos_project_id", table_name="todos")
    op.drop_table("todos")
