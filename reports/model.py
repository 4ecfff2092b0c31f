"""What a report needs to know, as plain frozen dataclasses.

The handlers layer gathers these from the database (one query per list is enough) and hands them to
the render functions; nothing here knows about storage rows, DingTalk or the clock. Rules of thumb for
filling them:

* Names are display names (``"张伟"``), not user ids: reports print them as they are.
* Dates are local calendar dates (Asia/Shanghai by default); datetimes are naive local times or aware
  ones, reports only print them. Convert from UTC before filling.
* Working-day arithmetic (statutory holidays, 调休) is the caller's: ``overdue_working_days`` arrives
  computed, so rendering stays pure and testable.
* Status fields take the Chinese values the bot shows to people. The ``StrEnum`` classes below list the
  values reports understand; a plain ``str`` with the same text compares equal, so callers may pass
  either.
* ``ProjectReportData.today`` is the "as of" date. Reports never read the clock.

Everything is picklable (top-level classes, tuples, no callables), so a process pool can render many
projects at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum


class DeliverableStatus(StrEnum):
    PENDING = "待提交"
    SUBMITTED = "已提交"
    WAIVED = "已豁免"


class RegisterKind(StrEnum):
    ISSUE = "问题"
    REQUIREMENT = "需求"
    RISK = "风险"
    CHANGE = "变更"
    UPGRADE = "升级记录"
    LOG = "实施日志"
    PLAN = "下周计划"
    MEETING = "会议记录"


class ApprovalStatus(StrEnum):
    PENDING = "审批中"
    APPROVED = "已通过"
    REJECTED = "已拒绝"
    CANCELLED = "已撤销"


# Register statuses that mean "nothing left to do". Kept as data so the storage layer's vocabulary can
# grow without touching the renderers; an entry with ``closed_at`` set is closed whatever its status.
CLOSED_STATUSES = frozenset(
    {"已解决", "已关闭", "已完成", "已实施", "已取消", "已拒绝", "已驳回", "已规避", "已转移", "已接受", "已升级", "不处理"}
)

# Risk scale used by the standard's 风险管理 (identify -> assess probability and impact -> respond).
RISK_LEVELS = {"低": 1, "中": 2, "高": 3}


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    code: str
    name: str
    customer: str
    template: str  # 软件系统实施 / 设备系统类项目 / 技改项目 ...
    status: str  # 进行中 / 已暂停 / 已完成 / 已关闭 ...
    phase: str  # current phase name
    pm_name: str
    planned_start: date | None = None
    planned_end: date | None = None
    actual_start: date | None = None
    actual_end: date | None = None
    progress: float = 0.0  # percent, 0..100
    # Optional details used by the standard's forms (立项申请表, 验收确认单 ...); empty prints as a blank.
    pm_phone: str = ""  # the PM's mobile, printed beside their name on client reports when known
    sales_name: str = ""  # 拓展 / 业务负责人
    department: str = ""
    contract_no: str = ""
    contract_amount: str = ""  # kept as text: "¥1,280,000.00", "128 万元"
    customer_contact: str = ""
    customer_phone: str = ""
    site: str = ""  # 实施地点
    background: str = ""
    objectives: str = ""
    scope: str = ""

    @property
    def is_finished(self) -> bool:
        return project_finished(self.status, self.actual_end)


@dataclass(frozen=True, slots=True)
class PhaseInfo:
    name: str
    planned_start: date | None = None
    planned_end: date | None = None
    actual_start: date | None = None
    actual_end: date | None = None
    gate_passed: bool = False

    @property
    def state(self) -> str:
        """已完成 / 进行中 / 未开始, as printed in milestone tables."""
        if self.gate_passed or self.actual_end is not None:
            return "已完成"
        if self.actual_start is not None:
            return "进行中"
        return "未开始"


@dataclass(frozen=True, slots=True)
class DeliverableInfo:
    phase: str
    name: str
    owner_name: str = ""
    due: date | None = None
    status: str = DeliverableStatus.PENDING
    required: bool = True
    overdue: bool = False  # the caller's verdict; ``overdue_working_days > 0`` implies it too
    overdue_working_days: int = 0
    latest_file_name: str | None = None
    latest_version: int | None = None
    submitted_on: date | None = None
    counted: bool = True  # counts toward progress: required, and a one-off document or a final register
    recurring: bool = False  # produced again and again (周报, 日志, per event): not "work done" of a week by itself
    internal: bool = False  # the company's own record: named in the internal report only

    @property
    def is_overdue(self) -> bool:
        return self.status == DeliverableStatus.PENDING and (self.overdue or self.overdue_working_days > 0)


@dataclass(frozen=True, slots=True)
class DeliverableCounts:
    """The figures every view prints the same way: the required deliverables that progress counts (done = submitted
    or waived), and all of them (submitted)."""

    required_done: int = 0
    required: int = 0
    submitted: int = 0
    total: int = 0

    @classmethod
    def of(cls, items: Iterable[tuple[bool, str]]) -> DeliverableCounts:
        """From (counted toward progress, status) pairs."""
        required_done = required = submitted = total = 0
        for counted, status in items:
            total += 1
            submitted += status == DeliverableStatus.SUBMITTED
            if counted:
                required += 1
                required_done += status != DeliverableStatus.PENDING
        return cls(required_done, required, submitted, total)

    @property
    def required_text(self) -> str:
        return f"必交交付物 {self.required_done}/{self.required}"

    @property
    def all_text(self) -> str:
        return f"全部交付物 已提交 {self.submitted}/{self.total}"


@dataclass(frozen=True, slots=True)
class RegisterEntry:
    """One row of any register (问题记录表, 需求跟踪表, 风险登记, 变更记录, 升级记录表, 实施日志, 下周计划, 会议记录).

    One class for all kinds keeps filling simple (one loop over the register table); fields that do not
    apply to a kind stay empty.
    """

    kind: str  # RegisterKind value
    seq: int
    title: str  # title, or the content itself for 实施日志 / 下周计划
    owner_name: str = ""
    status: str = ""
    created_at: date | datetime | None = None
    closed_at: date | datetime | None = None
    content: str = ""  # details / description / minutes
    resolution: str = ""  # 问题: 解决方法; 需求: 完成情况; 变更: 审批结论
    reporter_name: str = ""  # who raised it (often a client contact)
    priority: str = ""  # 高 / 中 / 低
    due: date | None = None  # 计划完成 / planned date of a plan item
    needs_client: bool = False  # the client must act or decide: shown in the client weekly report
    # 风险
    probability: str = ""  # 高 / 中 / 低
    impact: str = ""  # 高 / 中 / 低
    response: str = ""  # 规避 / 转移 / 减轻 / 接受, with the measures
    # 会议记录
    meeting_type: str = ""  # 项目内部启动会 / 项目外部启动会 / 周例会 / 交接内部会议 ...
    attendees: str = ""
    location: str = ""
    # 升级记录 / 变更
    version: str = ""
    related_to_client: bool = False  # upgrade solved a client issue or need -> 系统升级确认单, else 通知单
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and self.status not in CLOSED_STATUSES

    @property
    def details(self) -> str:
        """The content where it says more than the title (a one-line entry's content is its title)."""
        return "" if self.content.strip() == self.title.strip() else self.content

    @property
    def risk_score(self) -> int:
        return RISK_LEVELS.get(self.probability, 0) * RISK_LEVELS.get(self.impact, 0)

    @property
    def is_high_risk(self) -> bool:
        """高 in one dimension and at least 中 in the other (score >= 6 on the 1-3 x 1-3 matrix)."""
        return self.kind == RegisterKind.RISK and self.risk_score >= 6

    @property
    def created_date(self) -> date | None:
        return as_date(self.created_at)

    @property
    def closed_date(self) -> date | None:
        return as_date(self.closed_at)


@dataclass(frozen=True, slots=True)
class MemberInfo:
    name: str
    role: str  # 项目经理 / 实施工程师 / 拓展 / 客户 ...
    phone: str = ""
    organization: str = ""  # 我方 / customer name / partner: lets 客户通讯录 split sides


@dataclass(frozen=True, slots=True)
class ApprovalStep:
    actor_name: str
    action: str  # 发起 / 同意 / 拒绝 / 转交 / 评论 / 撤销
    at: datetime | date | None = None
    remark: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalInfo:
    kind: str  # 项目立项 / 阶段评审 / 变更 / 项目进度变更 / 项目验收 ...
    title: str
    status: str = ApprovalStatus.PENDING
    result: str = ""  # agree / refuse as shown to people: 同意 / 拒绝
    requester_name: str = ""
    created_at: datetime | date | None = None
    finished_at: datetime | date | None = None
    remarks: str = ""
    steps: tuple[ApprovalStep, ...] = ()
    instance_id: str = ""
    current_approver: str = ""

    @property
    def is_pending(self) -> bool:
        return self.status == ApprovalStatus.PENDING


@dataclass(frozen=True, slots=True)
class WeeklyPeriod:
    iso_year: int
    iso_week: int

    @classmethod
    def containing(cls, day: date) -> WeeklyPeriod:
        y, w, _ = day.isocalendar()
        return cls(y, w)

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.iso_year, self.iso_week, 1)

    @property
    def sunday(self) -> date:
        return date.fromisocalendar(self.iso_year, self.iso_week, 7)

    @property
    def label(self) -> str:
        return f"{self.iso_year}年第{self.iso_week}周"

    @property
    def key(self) -> str:
        return f"{self.iso_year}-W{self.iso_week:02d}"

    def next(self) -> WeeklyPeriod:
        return WeeklyPeriod.containing(self.monday + timedelta(days=7))

    def contains(self, day: date | datetime | None) -> bool:
        d = as_date(day)
        return d is not None and self.monday <= d <= self.sunday


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor_name: str
    action: str
    target: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WeeklyIssueCount:
    iso_year: int
    iso_week: int
    opened: int
    closed: int

    @property
    def label(self) -> str:
        return f"{self.iso_week}周"


@dataclass(frozen=True, slots=True)
class ProjectReportData:
    """Everything about one project that any report, document or archive may print."""

    project: ProjectSummary
    today: date
    phases: tuple[PhaseInfo, ...] = ()
    deliverables: tuple[DeliverableInfo, ...] = ()
    registers: tuple[RegisterEntry, ...] = ()
    members: tuple[MemberInfo, ...] = ()
    approvals: tuple[ApprovalInfo, ...] = ()
    audit: tuple[AuditEntry, ...] = ()
    issue_counts: tuple[WeeklyIssueCount, ...] = ()
    period: WeeklyPeriod | None = None  # the reported week; defaults to the week containing ``today``
    company_name: str = ""  # 实施方 printed on forms

    @property
    def week(self) -> WeeklyPeriod:
        return self.period or WeeklyPeriod.containing(self.today)

    def entries(self, kind: str) -> tuple[RegisterEntry, ...]:
        return tuple(sorted((e for e in self.registers if e.kind == kind), key=lambda e: e.seq))

    @property
    def deliverable_counts(self) -> DeliverableCounts:
        return DeliverableCounts.of((d.counted, d.status) for d in self.deliverables)

    def phase_names(self) -> tuple[str, ...]:
        """Phases in template order, then any phase only mentioned by a deliverable."""
        names = [p.name for p in self.phases]
        for d in self.deliverables:
            if d.phase not in names:
                names.append(d.phase)
        return tuple(names)


FINISHED_PROJECT_STATUSES = frozenset({"已完成", "已关闭", "已验收"})


def project_finished(status: str, actual_end: date | None) -> bool:
    """A project whose work is over (accepted, closed, or with an actual end date): always 正常 in the digest."""
    return status in FINISHED_PROJECT_STATUSES or actual_end is not None


def as_date(value: date | datetime | None) -> date | None:
    """The calendar date of a date or datetime (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    return value
