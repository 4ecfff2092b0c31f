"""项目立项 facts on projects (合同编号, 合同金额, 项目背景, 项目目标, 项目范围) and the steps of each approval

Revision ID: 0003_project_charter
Revises: 0002_calendar_days
Create Date: 2026-11-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0003_project_charter"
down_revision: str | Sequence[str] | None = "0002_calendar_days"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def long_text() -> sa.types.TypeEngine:
    """Unbounded text; MySQL TEXT stops at 64 KiB (spelled out, as in 0001)."""
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


PROJECT_COLUMNS = (
    ("contract_no", lambda: sa.String(length=64)),
    ("contract_amount", lambda: sa.String(length=32)),
    ("background", long_text),
    ("objectives", long_text),
    ("scope", long_text),
)


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        for name, kind in PROJECT_COLUMNS:
            batch.add_column(sa.Column(name, kind(), nullable=True))
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("steps", long_text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("steps")
    with op.batch_alter_table("projects") as batch:
        for name, _ in reversed(PROJECT_COLUMNS):
            batch.drop_column(name)
