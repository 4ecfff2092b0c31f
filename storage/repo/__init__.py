"""Repository functions: the queries other layers need, correct on SQLite, PostgreSQL and MySQL/MariaDB.

Every function takes the session as the keyword argument ``session`` and does not commit: the caller's unit of work
(``async with db.write() as session:``) decides. Functions that must be atomic under concurrency (inbox/outbox
claims, job-run claims, numbered inserts) are written so, per backend; see ``_sql`` and ``_claim``.
"""

from storage.repo.approvals import get_approval_by_instance, mark_approval_applied, running_approvals
from storage.repo.audit import list_audit, write_audit
from storage.repo.calendar import calendar_revision, official_days, replace_official_years
from storage.repo.deliverables import (
    DeliverableHeading,
    add_deliverable_version,
    assign_unowned_deliverables,
    deliverable_headings,
    latest_versions,
    list_deliverables,
    overdue_deliverables,
    reassign_deliverables,
)
from storage.repo.intake import (
    add_pending,
    cancel_waiting,
    consume_pending,
    delete_expired_pending,
    open_pending,
    pending_file_paths,
)
from storage.repo.inbox import (
    claim_pending_inbox,
    insert_inbox,
    mark_inbox_done,
    mark_inbox_failed,
    pending_inbox_count,
    release_inbox_claims,
)
from storage.repo.jobs import (
    claim_job_run,
    finish_job_run,
    get_job_run,
    is_reclaimable,
    reclaim_job_run,
    reclaimable_job_runs,
    renew_job_run_lease,
    request_job_run,
)
from storage.repo.outbox import (
    claim_due_outbox,
    enqueue_outbox,
    get_outbox_by_key,
    list_dead,
    mark_dead,
    mark_retry,
    mark_sent,
    replay_dead,
)
from storage.repo.phases import list_phases
from storage.repo.plans import create_project_from_plan
from storage.repo.projects import (
    add_member,
    create_project,
    format_project_code,
    get_project,
    get_project_by_code,
    get_project_by_conversation,
    list_members,
    list_projects,
    member_roles,
    memberships_of_user,
    next_project_code,
    projects_of_user,
    remove_member,
)
from storage.repo.registers import add_register_entry, get_register_entry, list_register_entries
from storage.repo.reports import (
    delete_weekly_renders_before,
    get_weekly_report,
    record_weekly_report,
    store_weekly_render,
    weekly_renders,
)
from storage.repo.message_scope import known_last_project, load_message_scope
from storage.repo.users import get_user, last_project_id, remember_project, upsert_user, user_names

__all__ = [
    "calendar_revision",
    "official_days",
    "replace_official_years",
    "DeliverableHeading",
    "add_deliverable_version",
    "add_member",
    "add_pending",
    "add_register_entry",
    "assign_unowned_deliverables",
    "cancel_waiting",
    "claim_due_outbox",
    "claim_job_run",
    "claim_pending_inbox",
    "consume_pending",
    "create_project",
    "create_project_from_plan",
    "deliverable_headings",
    "delete_expired_pending",
    "enqueue_outbox",
    "finish_job_run",
    "format_project_code",
    "get_approval_by_instance",
    "get_job_run",
    "is_reclaimable",
    "get_outbox_by_key",
    "get_project",
    "get_project_by_code",
    "get_project_by_conversation",
    "get_register_entry",
    "get_user",
    "delete_weekly_renders_before",
    "get_weekly_report",
    "insert_inbox",
    "last_project_id",
    "latest_versions",
    "list_audit",
    "list_dead",
    "list_deliverables",
    "list_members",
    "list_phases",
    "list_projects",
    "list_register_entries",
    "mark_approval_applied",
    "mark_dead",
    "mark_inbox_done",
    "mark_inbox_failed",
    "release_inbox_claims",
    "mark_retry",
    "mark_sent",
    "member_roles",
    "known_last_project",
    "load_message_scope",
    "next_project_code",
    "open_pending",
    "overdue_deliverables",
    "pending_file_paths",
    "pending_inbox_count",
    "memberships_of_user",
    "projects_of_user",
    "reassign_deliverables",
    "reclaim_job_run",
    "reclaimable_job_runs",
    "record_weekly_report",
    "remember_project",
    "remove_member",
    "renew_job_run_lease",
    "request_job_run",
    "replay_dead",
    "running_approvals",
    "store_weekly_render",
    "upsert_user",
    "user_names",
    "weekly_renders",
    "write_audit",
]
