"""the directory: people as DingTalk knows them (employees and external contacts), departments, organizations,
conversations with external members, client-contact exclusions, walk checkpoints and client-group custom robots

Revision ID: 0004_directory
Revises: 0003_project_charter
Create Date: 2026-11-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004_directory"
down_revision: str | Sequence[str] | None = "0003_project_charter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Spelled out as in 0001 (a revision never imports the application's types).
def utc_datetime() -> sa.types.TypeEngine:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def long_text() -> sa.types.TypeEngine:
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}

USER_COLUMNS = ("union_id", "dingtalk_id", "corp_id", "external", "title", "mobile", "dept_ids", "active", "left_at",
                "synced_at")
USER_INDEXES = {"ix_users_name": "name", "ix_users_mobile": "mobile", "ix_users_union_id": "union_id",
                "ix_users_dingtalk_id": "dingtalk_id"}


def upgrade() -> None:
    # Existing people are employees who have not left: that is what every row meant so far.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("union_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("dingtalk_id", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("corp_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("external", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("title", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("mobile", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("dept_ids", long_text(), nullable=True))
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("left_at", utc_datetime(), nullable=True))
        batch.add_column(sa.Column("synced_at", utc_datetime(), nullable=True))
    for name, column in USER_INDEXES.items():
        op.create_index(name, "users", [column], unique=False)

    op.create_table("departments",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("dept_id", sa.BigInteger(), nullable=False),
    sa.Column("name", sa.String(length=128), nullable=False),
    sa.Column("parent_id", sa.BigInteger(), nullable=True),
    sa.Column("synced_at", utc_datetime(), nullable=True),
    sa.Column("updated_at", utc_datetime(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
    sa.UniqueConstraint("dept_id", name=op.f("uq_departments_dept_id")),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table("organizations",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("corp_id", sa.String(length=64), nullable=False),
    sa.Column("name", sa.String(length=128), nullable=False),
    sa.Column("updated_at", utc_datetime(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    sa.UniqueConstraint("corp_id", name=op.f("uq_organizations_corp_id")),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table("conversations",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("conversation_id", sa.String(length=128), nullable=False),
    sa.Column("title", sa.String(length=255), nullable=True),
    sa.Column("external_members", sa.Boolean(), nullable=False),
    sa.Column("members_synced_at", utc_datetime(), nullable=True),
    sa.Column("updated_at", utc_datetime(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    sa.UniqueConstraint("conversation_id", name=op.f("uq_conversations_conversation_id")),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table("project_member_exclusions",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("project_id", sa.Integer(), nullable=False),
    sa.Column("user_id", sa.String(length=64), nullable=False),
    sa.Column("created_at", utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                            name=op.f("fk_project_member_exclusions_project_id_projects"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_project_member_exclusions")),
    sa.UniqueConstraint("project_id", "user_id", name=op.f("uq_project_member_exclusions_project_id_user_id")),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table("sync_checkpoints",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(length=255), nullable=False),
    sa.Column("state", long_text(), nullable=True),
    sa.Column("updated_at", utc_datetime(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_checkpoints")),
    sa.UniqueConstraint("name", name=op.f("uq_sync_checkpoints_name")),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table("client_robots",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("project_id", sa.Integer(), nullable=False),
    sa.Column("webhook", sa.String(length=1024), nullable=False),
    sa.Column("secret", sa.String(length=255), nullable=False),
    sa.Column("created_at", utc_datetime(), nullable=False),
    sa.Column("updated_at", utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_client_robots_project_id_projects"),
                            ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_client_robots")),
    sa.UniqueConstraint("project_id", name=op.f("uq_client_robots_project_id")),
    **MYSQL_TABLE_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("client_robots")
    op.drop_table("sync_checkpoints")
    op.drop_table("project_member_exclusions")
    op.drop_table("conversations")
    op.drop_table("organizations")
    op.drop_table("departments")
    for name in USER_INDEXES:
        op.drop_index(name, table_name="users")
    with op.batch_alter_table("users") as batch:
        for column in USER_COLUMNS:
            batch.drop_column(column)
