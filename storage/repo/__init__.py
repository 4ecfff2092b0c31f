"""Repository functions: the queries other layers need, correct on SQLite, PostgreSQL and MySQL/MariaDB.

Every function takes the session as the keyword argument ``session`` and does not commit: the caller's unit of work
(``async with db.write() as session:``) decides. Functions that must be atomic under concurrency (inbox/outbox
claims, job-run claims, numbered inserts) are written so, per backend; see ``_sql`` and ``_claim``.
"""

from storage.repo.approvals import get_approval_by_instance, mark_approval_applied, running_approvals
from storage.repo.audit import list_audit, write_audit
from storage.repo.deliverables import add_deliverable_version, overdue_deliverables
from storage.repo.inbox import (
    claim_pending_inbox,
    insert_inbox,
    mark_inbox_done,
    mark_inbox_failed,
    pending_inbox_count,
)
from storage.repo.jobs import claim_job_run, finish_job_run, get_job_run
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
    next_project_code,
    projects_of_user,
    remove_member,
)
from storage.repo.registers import add_register_entry, get_register_entry, list_register_entries
from storage.repo.reports import get_weekly_report, record_weekly_report
from storage.repo.users import get_user, upsert_user, user_names

__all__ = [
    "add_deliverable_version",
    "add_member",
    "add_register_entry",
    "claim_due_outbox",
    "claim_job_run",
    "claim_pending_inbox",
    "create_project",
    "enqueue_outbox",
    "finish_job_run",
    "format_project_code",
    "get_approval_by_instance",
    "get_job_run",
    "get_outbox_by_key",
    "get_project",
    "get_project_by_code",
    "get_project_by_conversation",
    "get_register_entry",
    "get_user",
    "get_weekly_report",
    "insert_inbox",
    "list_audit",
    "list_dead",
    "list_members",
    "list_projects",
    "list_register_entries",
    "mark_approval_applied",
    "mark_dead",
    "mark_inbox_done",
    "mark_inbox_failed",
    "mark_retry",
    "mark_sent",
    "member_roles",
    "next_project_code",
    "overdue_deliverables",
    "pending_inbox_count",
    "projects_of_user",
    "record_weekly_report",
    "remove_member",
    "replay_dead",
    "running_approvals",
    "upsert_user",
    "user_names",
    "write_audit",
]
