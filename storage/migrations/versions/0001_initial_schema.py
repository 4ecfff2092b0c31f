"""initial schema: every table of storage.models as of the Foundation and lifecycle issues

Revision ID: 0001
Revises:
Create Date: 2026-01-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Spelled out here rather than imported from storage.models.types, so this revision never changes when the
# application's types do. tests/storage/test_storage_migrations.py checks that they match the models on every backend.
def utc_datetime() -> sa.types.TypeEngine:
    """Naive UTC timestamp; MySQL needs fsp=6 to keep microseconds."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def long_text() -> sa.types.TypeEngine:
    """Unbounded text; MySQL TEXT stops at 64 KiB."""
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


# Binary collation: ids compare exactly (case-sensitive) as on PostgreSQL and SQLite.
MYSQL_TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=128), nullable=False),
    sa.Column('msg_id', sa.String(length=128), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('payload', long_text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_until', utc_datetime(), nullable=True),
    sa.Column('received_at', utc_datetime(), nullable=False),
    sa.Column('processed_at', utc_datetime(), nullable=True),
    sa.Column('error', long_text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox')),
    sa.UniqueConstraint('message_id', name=op.f('uq_inbox_message_id')),
    sa.UniqueConstraint('msg_id', name=op.f('uq_inbox_msg_id')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index('ix_inbox_state_received_at', 'inbox', ['state', 'received_at'], unique=False)

    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=64), nullable=False),
    sa.Column('period_key', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('started_at', utc_datetime(), nullable=False),
    sa.Column('lease_until', utc_datetime(), nullable=True),
    sa.Column('params', long_text(), nullable=True),
    sa.Column('finished_at', utc_datetime(), nullable=True),
    sa.Column('error', long_text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs')),
    sa.UniqueConstraint('job', 'period_key', name=op.f('uq_job_runs_job_period_key')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('target_kind', sa.String(length=16), nullable=False),
    sa.Column('target_ids', long_text(), nullable=False),
    sa.Column('msg_kind', sa.String(length=16), nullable=False),
    sa.Column('params', long_text(), nullable=False),
    sa.Column('attachment_path', sa.String(length=512), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', utc_datetime(), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claimed_until', utc_datetime(), nullable=True),
    sa.Column('last_error', long_text(), nullable=True),
    sa.Column('created_at', utc_datetime(), nullable=False),
    sa.Column('sent_at', utc_datetime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_idempotency_key')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index('ix_outbox_state_next_attempt_at', 'outbox', ['state', 'next_attempt_at'], unique=False)

    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('customer', sa.String(length=128), nullable=True),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('current_phase', sa.String(length=64), nullable=True),
    sa.Column('pm_user_id', sa.String(length=64), nullable=True),
    sa.Column('planned_start', sa.Date(), nullable=True),
    sa.Column('planned_end', sa.Date(), nullable=True),
    sa.Column('actual_start', sa.Date(), nullable=True),
    sa.Column('actual_end', sa.Date(), nullable=True),
    sa.Column('internal_conversation_id', sa.String(length=128), nullable=True),
    sa.Column('client_conversation_id', sa.String(length=128), nullable=True),
    sa.Column('paused_at', utc_datetime(), nullable=True),
    sa.Column('paused_workdays', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=True),
    sa.Column('created_at', utc_datetime(), nullable=False),
    sa.Column('updated_at', utc_datetime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('client_conversation_id', name=op.f('uq_projects_client_conversation_id')),
    sa.UniqueConstraint('code', name=op.f('uq_projects_code')),
    sa.UniqueConstraint('internal_conversation_id', name=op.f('uq_projects_internal_conversation_id')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index('ix_projects_pm_user_id', 'projects', ['pm_user_id'], unique=False)
    op.create_index('ix_projects_status', 'projects', ['status'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('last_project_id', sa.Integer(), nullable=True),
    sa.Column('created_at', utc_datetime(), nullable=False),
    sa.Column('updated_at', utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(['last_project_id'], ['projects.id'], name=op.f('fk_users_last_project_id_projects'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('user_id', name=op.f('uq_users_user_id')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table('approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('process_instance_id', sa.String(length=64), nullable=False),
    sa.Column('process_code', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('result', sa.String(length=16), nullable=True),
    sa.Column('requester_user_id', sa.String(length=64), nullable=False),
    sa.Column('form_values', long_text(), nullable=True),
    sa.Column('remarks', long_text(), nullable=True),
    sa.Column('applied_event', sa.String(length=64), nullable=True),
    sa.Column('created_at', utc_datetime(), nullable=False),
    sa.Column('updated_at', utc_datetime(), nullable=False),
    sa.Column('decided_at', utc_datetime(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_approvals_project_id_projects'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approvals')),
    sa.UniqueConstraint('process_instance_id', name=op.f('uq_approvals_process_instance_id')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index('ix_approvals_project_id', 'approvals', ['project_id'], unique=False)
    op.create_index('ix_approvals_status', 'approvals', ['status'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor_user_id', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('entity', sa.String(length=32), nullable=True),
    sa.Column('entity_id', sa.String(length=64), nullable=True),
    sa.Column('before', long_text(), nullable=True),
    sa.Column('after', long_text(), nullable=True),
    sa.Column('at', utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_audit_log_project_id_projects'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index('ix_audit_log_project_id_at', 'audit_log', ['project_id', 'at'], unique=False)

    op.create_table('phases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('parallel_with', sa.String(length=64), nullable=True),
    sa.Column('planned_start', sa.Date(), nullable=True),
    sa.Column('planned_end', sa.Date(), nullable=True),
    sa.Column('actual_start', sa.Date(), nullable=True),
    sa.Column('actual_end', sa.Date(), nullable=True),
    sa.Column('gate_passed_by', sa.String(length=64), nullable=True),
    sa.Column('gate_passed_at', utc_datetime(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_phases_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phases')),
    sa.UniqueConstraint('project_id', 'seq', name=op.f('uq_phases_project_id_seq')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table('project_members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('created_at', utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_project_members_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project_members')),
    sa.UniqueConstraint('project_id', 'user_id', 'role', name=op.f('uq_project_members_project_id_user_id_role')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index('ix_project_members_user_id', 'project_members', ['user_id'], unique=False)

    op.create_table('register_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('content', long_text(), nullable=True),
    sa.Column('owner_user_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('resolution', long_text(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('probability', sa.String(length=8), nullable=True),
    sa.Column('impact', sa.String(length=8), nullable=True),
    sa.Column('response', sa.String(length=8), nullable=True),
    sa.Column('meeting_type', sa.String(length=32), nullable=True),
    sa.Column('version', sa.String(length=64), nullable=True),
    sa.Column('extra', long_text(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', utc_datetime(), nullable=False),
    sa.Column('updated_at', utc_datetime(), nullable=False),
    sa.Column('closed_at', utc_datetime(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_register_entries_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_register_entries')),
    sa.UniqueConstraint('project_id', 'kind', 'seq', name=op.f('uq_register_entries_project_id_kind_seq')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index('ix_register_entries_project_kind_status', 'register_entries', ['project_id', 'kind', 'status'], unique=False)

    op.create_table('weekly_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('iso_year', sa.Integer(), nullable=False),
    sa.Column('iso_week', sa.Integer(), nullable=False),
    sa.Column('variant', sa.String(length=16), nullable=False),
    sa.Column('content_md', long_text(), nullable=False),
    sa.Column('file_path', sa.String(length=512), nullable=True),
    sa.Column('sent_at', utc_datetime(), nullable=True),
    sa.Column('created_at', utc_datetime(), nullable=False),
    sa.Column('updated_at', utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_weekly_reports_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_weekly_reports')),
    sa.UniqueConstraint('project_id', 'iso_year', 'iso_week', 'variant', name=op.f('uq_weekly_reports_project_id_iso_year_iso_week_variant')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table('weekly_report_renders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('iso_year', sa.Integer(), nullable=False),
    sa.Column('iso_week', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('content_md', long_text(), nullable=False),
    sa.Column('file_path', sa.String(length=512), nullable=False),
    sa.Column('internal_title', sa.String(length=255), nullable=True),
    sa.Column('internal_content_md', long_text(), nullable=True),
    sa.Column('internal_file_path', sa.String(length=512), nullable=True),
    sa.Column('rendered_at', utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_weekly_report_renders_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_weekly_report_renders')),
    sa.UniqueConstraint('project_id', 'iso_year', 'iso_week', name=op.f('uq_weekly_report_renders_project_id_iso_year_iso_week')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table('activities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_activities_phase_id_phases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities')),
    sa.UniqueConstraint('phase_id', 'seq', name=op.f('uq_activities_phase_id_seq')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table('deliverables',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('phase_id', sa.Integer(), nullable=True),
    sa.Column('activity_id', sa.Integer(), nullable=True),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('recurrence', sa.String(length=16), nullable=False),
    sa.Column('flags', long_text(), nullable=True),
    sa.Column('register_kind', sa.String(length=16), nullable=True),
    sa.Column('notes', long_text(), nullable=True),
    sa.Column('period_key', sa.String(length=32), nullable=True),
    sa.Column('owner_role', sa.String(length=16), nullable=True),
    sa.Column('owner_user_id', sa.String(length=64), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('waiver_reason', sa.String(length=500), nullable=True),
    sa.Column('waived_by', sa.String(length=64), nullable=True),
    sa.Column('submitted_at', utc_datetime(), nullable=True),
    sa.Column('created_at', utc_datetime(), nullable=False),
    sa.Column('updated_at', utc_datetime(), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activities.id'], name=op.f('fk_deliverables_activity_id_activities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['phase_id'], ['phases.id'], name=op.f('fk_deliverables_phase_id_phases'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_deliverables_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliverables')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index('ix_deliverables_activity_id', 'deliverables', ['activity_id'], unique=False)
    op.create_index('ix_deliverables_phase_id', 'deliverables', ['phase_id'], unique=False)
    op.create_index('ix_deliverables_project_id', 'deliverables', ['project_id'], unique=False)
    op.create_index('ix_deliverables_status_due_date', 'deliverables', ['status', 'due_date'], unique=False)

    op.create_table('deliverable_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deliverable_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('file_path', sa.String(length=512), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('original_name', sa.String(length=255), nullable=True),
    sa.Column('link', sa.String(length=1024), nullable=True),
    sa.Column('submitted_by', sa.String(length=64), nullable=False),
    sa.Column('submitted_at', utc_datetime(), nullable=False),
    sa.Column('note', long_text(), nullable=True),
    sa.ForeignKeyConstraint(['deliverable_id'], ['deliverables.id'], name=op.f('fk_deliverable_versions_deliverable_id_deliverables'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliverable_versions')),
    sa.UniqueConstraint('deliverable_id', 'version', name=op.f('uq_deliverable_versions_deliverable_id_version')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_table('pending_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('conversation_id', sa.String(length=128), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('deliverable_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.String(length=128), nullable=True),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('file_path', sa.String(length=512), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('note', long_text(), nullable=True),
    sa.Column('created_at', utc_datetime(), nullable=False),
    sa.Column('expires_at', utc_datetime(), nullable=False),
    sa.Column('consumed_at', utc_datetime(), nullable=True),
    sa.ForeignKeyConstraint(['deliverable_id'], ['deliverables.id'], name=op.f('fk_pending_files_deliverable_id_deliverables'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_pending_files_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_files')),
    sa.UniqueConstraint('message_id', name=op.f('uq_pending_files_message_id')),
    **MYSQL_TABLE_OPTIONS,
    )
    op.create_index('ix_pending_files_conversation_user', 'pending_files', ['conversation_id', 'user_id', 'consumed_at'], unique=False)


def downgrade() -> None:
    # Dropping a table drops its indexes; dropping them first would fail on MySQL for those backing a foreign key.
    op.drop_table('pending_files')
    op.drop_table('deliverable_versions')
    op.drop_table('deliverables')
    op.drop_table('activities')
    op.drop_table('weekly_report_renders')
    op.drop_table('weekly_reports')
    op.drop_table('register_entries')
    op.drop_table('project_members')
    op.drop_table('phases')
    op.drop_table('audit_log')
    op.drop_table('approvals')
    op.drop_table('users')
    op.drop_table('projects')
    op.drop_table('outbox')
    op.drop_table('job_runs')
    op.drop_table('inbox')
