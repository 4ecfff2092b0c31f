"""SQLModel table models of dingpm (one module per area) and the shared ``metadata`` Alembic migrates.

Conventions: datetimes are naive UTC (use ``utcnow()``); every string column has a max length; enums are stored by
value in short VARCHARs; JSON columns are text. See ``storage.models.types`` for why.
"""

from storage.models.approvals import Approval
from storage.models.base import MYSQL_TABLE_OPTIONS, NAMING_CONVENTION, TableBase, metadata
from storage.models.calendar import CalendarDay
from storage.models.cards import ReportAck, StatusCard
from storage.models.deliverables import Deliverable, DeliverableVersion
from storage.models.enums import (
    ACTIVE_PROJECT_STATUSES,
    ApprovalKind,
    ApprovalResult,
    ApprovalStatus,
    DeliverableStatus,
    InboxKind,
    InboxState,
    JobRunState,
    Level,
    MemberRole,
    OutboxMessageKind,
    OutboxState,
    OutboxTargetKind,
    PendingKind,
    ProjectStatus,
    Recurrence,
    RegisterKind,
    RegisterStatus,
    ReportVariant,
    RiskResponse,
    TodoState,
    parse_member_role,
)
from storage.models.intake import PendingFile
from storage.models.messaging import InboxMessage, OutboxMessage
from storage.models.operations import AuditLog, JobRun
from storage.models.people import (
    EXTERNAL_KEY_PREFIX,
    ClientRobot,
    Conversation,
    Department,
    Organization,
    ProjectMemberExclusion,
    SyncCheckpoint,
    User,
    external_key,
    is_external_key,
)
from storage.models.phases import Activity, Phase
from storage.models.projects import Project, ProjectMember
from storage.models.registers import RegisterEntry
from storage.models.reports import WeeklyReport, WeeklyReportRender
from storage.models.todos import TodoItem
from storage.models.types import EnumString, JsonText, LongText, UtcDateTime, to_naive_utc, utcnow

__all__ = [
    "TodoItem",
    "TodoState",
    "ACTIVE_PROJECT_STATUSES",
    "EXTERNAL_KEY_PREFIX",
    "ClientRobot",
    "ReportAck",
    "StatusCard",
    "Conversation",
    "Department",
    "Organization",
    "ProjectMemberExclusion",
    "SyncCheckpoint",
    "external_key",
    "is_external_key",
    "MYSQL_TABLE_OPTIONS",
    "NAMING_CONVENTION",
    "Activity",
    "Approval",
    "ApprovalKind",
    "ApprovalResult",
    "ApprovalStatus",
    "AuditLog",
    "CalendarDay",
    "Deliverable",
    "DeliverableStatus",
    "DeliverableVersion",
    "EnumString",
    "InboxKind",
    "InboxMessage",
    "InboxState",
    "JobRun",
    "JobRunState",
    "JsonText",
    "Level",
    "LongText",
    "MemberRole",
    "OutboxMessage",
    "OutboxMessageKind",
    "OutboxState",
    "OutboxTargetKind",
    "PendingFile",
    "PendingKind",
    "Phase",
    "Project",
    "ProjectMember",
    "ProjectStatus",
    "Recurrence",
    "RegisterEntry",
    "RegisterKind",
    "RegisterStatus",
    "ReportVariant",
    "RiskResponse",
    "TableBase",
    "User",
    "UtcDateTime",
    "WeeklyReport",
    "WeeklyReportRender",
    "metadata",
    "parse_member_role",
    "to_naive_utc",
    "utcnow",
]
