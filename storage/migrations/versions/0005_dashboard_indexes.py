"""dashboard indexes: the 看板 reads every project's overdue deliverables and open risks from indexes alone

Revision ID: 0005_dashboard_indexes
Revises: 0004_directory
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005_dashboard_indexes"
down_revision: str | Sequence[str] | None = "0004_directory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_deliverables_status_due_date", table_name="deliverables")
    op.create_index("ix_deliverables_status_due_date", "deliverables",
                    ["status", "due_date", "project_id", "required"], unique=False)
    op.create_index("ix_register_entries_kind_status", "register_entries",
                    ["kind", "status", "project_id", "probability", "impact", "closed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_register_entries_kind_status", table_name="register_entries")
    op.drop_index("ix_deliverables_status_due_date", table_name="deliverables")
    op.create_index("ix_deliverables_status_due_date", "deliverables", ["status", "due_date"], unique=False)
