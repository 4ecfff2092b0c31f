"""Every status, role and kind the bot stores, as ``StrEnum`` members.

User-facing values are the Chinese words of the company standard, so a value read from the database can be shown
as-is and matched against what users type. Technical states that users never see (inbox, outbox, job runs) use
short English words. All are stored as VARCHAR (see ``EnumString``): adding a member needs no migration.
"""

from __future__ import annotations

from enum import StrEnum


class ProjectStatus(StrEnum):
    DRAFT = "草稿"
    PENDING_APPROVAL = "待立项审批"
    APPROVED = "已立项"
    IN_PROGRESS = "进行中"
    PAUSED = "已暂停"
    ACCEPTED = "已验收"
    CLOSED = "已关闭"
    REJECTED = "已驳回"


# Projects whose deadlines run and whose reminders go out; a paused project's clock is stopped.
ACTIVE_PROJECT_STATUSES: tuple[ProjectStatus, ...] = (ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS)


class MemberRole(StrEnum):
    """A person's role in a project; the same words as ``storage.templates.Role`` (a test keeps them equal), so a
    template's ``owner_role`` is stored as it is and resolved to the member holding that role."""

    PM = "项目经理"
    ENGINEER = "实施工程师"
    SALES = "拓展/业务负责人"  # the standard says 拓展 in one place and 业务负责人 in another: one role
    LEADER = "领导"
    CLIENT = "客户"
    AFTER_SALES = "售后"
    ADMIN = "项目管理员"
    QUALITY = "质控"  # the QA department; owns 测评报告


# What people type for a role, beyond the canonical words (matched after removing spaces, case-insensitively).
MEMBER_ROLE_SYNONYMS: dict[str, MemberRole] = {
    "拓展": MemberRole.SALES,
    "业务负责人": MemberRole.SALES,
    "业务": MemberRole.SALES,
    "销售": MemberRole.SALES,
    "拓展业务负责人": MemberRole.SALES,
    "经理": MemberRole.PM,
    "pm": MemberRole.PM,
    "实施": MemberRole.ENGINEER,
    "工程师": MemberRole.ENGINEER,
    "实施人员": MemberRole.ENGINEER,
    "公司领导": MemberRole.LEADER,
    "客户联系人": MemberRole.CLIENT,
    "甲方": MemberRole.CLIENT,
    "售后服务": MemberRole.AFTER_SALES,
    "售后服务组": MemberRole.AFTER_SALES,
    "管理员": MemberRole.ADMIN,
    "质控部门": MemberRole.QUALITY,
    "质量": MemberRole.QUALITY,
    "qa": MemberRole.QUALITY,
}


def parse_member_role(text: str) -> MemberRole | None:
    """The role a user's word stands for (``拓展`` -> 拓展/业务负责人), or None."""
    key = "".join(text.split()).casefold()
    for role in MemberRole:
        if key == role.value.casefold():
            return role
    return MEMBER_ROLE_SYNONYMS.get(key)


class DeliverableStatus(StrEnum):
    PENDING = "待提交"
    SUBMITTED = "已提交"
    WAIVED = "已豁免"


class Recurrence(StrEnum):
    """How often a deliverable is produced; the same values as ``storage.templates.Recurrence``."""

    NONE = "none"  # once
    DAILY = "daily"  # 实施日志, every working day
    WEEKLY = "weekly"  # 客户项目周报
    PER_CYCLE = "per_cycle"  # 审核报告, once per client audit cycle
    PER_EVENT = "per_event"  # 升级记录表 after each upgrade: no planned due date
    CONTINUOUS = "continuous"  # a living register (问题记录表) whose final version is due at the planned date


class PendingKind(StrEnum):
    """What a row of ``pending_files`` holds: a file waiting to be told its deliverable, or a command waiting for
    its file (DingTalk sends a file as a message of its own, without text, so the two halves arrive apart)."""

    FILE = "file"  # received and stored; ``提交 <交付物>`` attaches it
    SUBMIT = "submit"  # ``提交 <交付物>`` came first: the next file of that user in that chat is submitted
    ACCEPT = "accept"  # ``验收`` came first: the next file is the signed acceptance form


class ApprovalKind(StrEnum):
    INITIATION = "立项"
    SCHEDULE_CHANGE = "进度变更"
    CHANGE_REQUEST = "变更申请"


class ApprovalStatus(StrEnum):
    """DingTalk's instance status (NEW/RUNNING -> RUNNING, COMPLETED, TERMINATED/CANCELED -> TERMINATED)."""

    RUNNING = "审批中"
    COMPLETED = "已完成"
    TERMINATED = "已撤销"


class ApprovalResult(StrEnum):
    AGREE = "同意"
    REFUSE = "拒绝"


class RegisterKind(StrEnum):
    ISSUE = "问题"
    REQUIREMENT = "需求"
    RISK = "风险"
    CHANGE = "变更"
    UPGRADE = "升级记录"
    LOG = "实施日志"
    PLAN = "下周计划"
    MEETING = "会议记录"


class RegisterStatus(StrEnum):
    """One vocabulary for all registers; each kind uses the subset that fits it."""

    OPEN = "打开"  # issues, risks
    IN_PROGRESS = "处理中"
    CLOSED = "已关闭"
    PENDING = "待处理"  # requirements, plans, changes
    DONE = "已完成"
    AWAITING_APPROVAL = "待审批"  # changes, until the approval decides
    APPROVED = "已批准"  # changes
    REJECTED = "已驳回"
    RECORDED = "已记录"  # logs, meetings, upgrades: nothing left to do


class Level(StrEnum):
    HIGH = "高"
    MEDIUM = "中"
    LOW = "低"


class RiskResponse(StrEnum):
    AVOID = "规避"
    TRANSFER = "转移"
    MITIGATE = "减轻"
    ACCEPT = "接受"


class ReportVariant(StrEnum):
    CLIENT = "客户版"  # 客户项目周报: sent to the client group
    INTERNAL = "内部版"  # for the team and leaders


class InboxKind(StrEnum):
    MESSAGE = "message"
    EVENT = "event"
    CARD = "card"  # a press on an interactive card (its CALLBACK frame)


class InboxState(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class OutboxTargetKind(StrEnum):
    GROUP = "group"
    USER = "user"
    WEBHOOK = "webhook"
    CUSTOM_ROBOT = "custom_robot"  # a client group's custom robot (自定义机器人), by the project's code
    TODO = "todo"  # a DingTalk 待办 call (bot.todo_relay, the leader only), by the todo's creator unionId


class OutboxMessageKind(StrEnum):
    """DingTalk message types (msgKey families) the relay knows how to send."""

    TEXT = "text"
    MARKDOWN = "markdown"
    ACTION_CARD = "actionCard"
    LINK = "link"
    IMAGE = "image"
    FILE = "file"
    CARD = "card"  # an interactive card written through the card APIs (create, update, close)
    TODO = "todo"  # not a message: bring one 待办 in line with its ``todos`` row


class OutboxState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


class JobRunState(StrEnum):
    PENDING = "pending"  # requested by a command, to run right after it commits (an on-demand job)
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class TodoState(StrEnum):
    """What a deliverable owner's DingTalk 待办 should be."""

    OPEN = "open"  # in the owner's list, with the row's subject and due time
    DONE = "done"  # completed: the deliverable was submitted
    REMOVED = "removed"  # deleted: no longer due (waived, paused, archived, out of the window, another owner)
