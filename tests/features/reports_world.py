"""A small world for the report tests: projects with phases, deliverables, registers and approvals written straight
into the database, a config, services with a frozen clock and an outbox relay that never sends, and helpers to read
what was queued. Shared by tests/features/test_reports_*.py and tests/e2e/test_reports_*.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.app import build_dispatcher
from bot.config import Config, parse_config
from bot.context import FrozenClock, Services
from bot.feature import Feature
from bot.outbox import OutboxRelay
from bot.scheduler import JobRunResult, Scheduler
from bot.testing import RecordingUnits, make_incoming, run_text
from bot.transactions import Transactions
from storage.models import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    Deliverable,
    DeliverableStatus,
    DeliverableVersion,
    MemberRole,
    OutboxMessage,
    Phase,
    Project,
    ProjectStatus,
    RegisterEntry,
    RegisterKind,
    RegisterStatus,
)
from storage.repo import add_member, create_project, upsert_user
from storage.workdays import WorkCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
PEOPLE = {
    "wangjianguo": "王建国",  # PM
    "liming": "李明",
    "zhaolei": "赵磊",
    "chenjing": "陈静",
    "liuqiang": "刘强",  # leader
    "zhoumin": "周敏",  # leader
    "huanglei": "黄蕾",  # client
}
LEADERS = ("liuqiang", "zhoumin")


def sh(text: str) -> datetime:
    """A Shanghai wall-clock time, aware."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def utc(text: str) -> datetime:
    """A Shanghai wall-clock time as the naive UTC the database stores."""
    return sh(text).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def make_config(files_dir: Path, *, leaders: Sequence[str] = LEADERS, **sections: dict[str, Any]) -> Config:
    raw: dict[str, Any] = {
        "dingtalk": {"client_id": "ding-test", "client_secret": "s3cret"},
        "organization": {"leaders": list(leaders)},
        "storage": {"files_dir": str(files_dir)},
    }
    for key, values in sections.items():
        raw.setdefault(key, {}).update(values)
    return parse_config(raw, environ={}, require_real_secret=False)


def make_services(database: Any, config: Config, now: datetime) -> Services:
    """Services with a frozen clock; the relay is never started and has no worker name, so queued rows stay in the
    outbox for the test to read."""
    relay = OutboxRelay(transactions=Transactions(database), client=None, config=config, worker="",
                        spool_dir=Path(config.storage.files_dir) / "outbox")
    return Services(config=config, clock=FrozenClock(now, SHANGHAI), database=database, calendar=WorkCalendar(),
                    outbox=relay)


@dataclass
class DeliverableSpec:
    name: str
    due: date | None
    owner: str | None = "liming"
    phase: str = "执行"
    status: DeliverableStatus = DeliverableStatus.PENDING
    required: bool = True
    submitted_at: datetime | None = None  # naive UTC
    file: tuple[str, bytes] | None = None  # (original name, content) stored under files_dir


@dataclass
class EntrySpec:
    kind: RegisterKind
    title: str
    created_at: datetime  # naive UTC
    status: RegisterStatus | None = None
    closed_at: datetime | None = None
    owner: str | None = "liming"
    due: date | None = None
    probability: str | None = None
    impact: str | None = None
    extra: dict[str, Any] | None = None


@dataclass
class ProjectSpec:
    name: str
    status: ProjectStatus = ProjectStatus.IN_PROGRESS
    internal: str | None = None
    client: str | None = None
    customer: str = "华东某制造集团"
    planned_start: date = date(2026, 9, 1)
    planned_end: date = date(2027, 3, 31)
    created_at: datetime = datetime(2026, 8, 20, 2, 0)
    phases: Sequence[tuple[str, date, date, bool]] = (
        ("启动", date(2026, 9, 1), date(2026, 9, 15), True),
        ("规划", date(2026, 9, 16), date(2026, 10, 20), False),
        ("执行", date(2026, 10, 21), date(2027, 2, 28), False),
    )
    current_phase: str = "规划"
    deliverables: Sequence[DeliverableSpec] = ()
    entries: Sequence[EntrySpec] = ()
    running_approvals: int = 0
    members: Sequence[tuple[str, MemberRole]] = (("liming", MemberRole.ENGINEER), ("zhaolei", MemberRole.ENGINEER),
                                                 ("huanglei", MemberRole.CLIENT))
    extra: dict[str, Any] = field(default_factory=dict)
    pm: str = "wangjianguo"


async def add_people(session: Any) -> None:
    for user_id, name in PEOPLE.items():
        await upsert_user(session=session, user_id=user_id, name=name)


async def add_project(session: Any, spec: ProjectSpec, *, files_dir: Path | None = None) -> Project:
    """Insert a project as the lifecycle commands would leave it (its PM: ``spec.pm``, wangjianguo by default)."""
    project = await create_project(
        session=session, name=spec.name, template="软件系统实施", year=2026, created_by=spec.pm,
        customer=spec.customer, pm_user_id=spec.pm, status=spec.status, current_phase=spec.current_phase,
        planned_start=spec.planned_start, planned_end=spec.planned_end, actual_start=spec.planned_start,
        internal_conversation_id=spec.internal, client_conversation_id=spec.client,
        created_at=spec.created_at, updated_at=spec.created_at,
    )
    assert project.id is not None
    await add_member(session=session, project_id=project.id, user_id=spec.pm, role=MemberRole.PM)
    for user_id, role in spec.members:
        await add_member(session=session, project_id=project.id, user_id=user_id, role=role)
    phases: dict[str, Phase] = {}
    for seq, (name, start, end, passed) in enumerate(spec.phases, 1):
        phases[name] = Phase(project_id=project.id, seq=seq, name=name, planned_start=start, planned_end=end,
                             actual_start=start if passed or name == spec.current_phase else None,
                             actual_end=end if passed else None,
                             gate_passed_at=datetime.combine(end, datetime.min.time()) if passed else None,
                             gate_passed_by="wangjianguo" if passed else None)
    session.add_all(phases.values())
    await session.flush()
    for seq, d in enumerate(spec.deliverables, 1):
        row = Deliverable(project_id=project.id, phase_id=phases[d.phase].id if d.phase in phases else None, seq=seq,
                          name=d.name, required=d.required, owner_user_id=d.owner, due_date=d.due, status=d.status,
                          submitted_at=d.submitted_at)
        session.add(row)
        await session.flush()
        if d.file is not None and files_dir is not None:
            original, content = d.file
            relative = Path("deliverables") / project.code / f"{row.id}-v1{Path(original).suffix}"
            (files_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            (files_dir / relative).write_bytes(content)
            session.add(DeliverableVersion(deliverable_id=row.id, version=1, file_path=str(relative),
                                           original_name=original, size=len(content), submitted_by=d.owner or "x",
                                           submitted_at=d.submitted_at or spec.created_at))
    counters: dict[RegisterKind, int] = {}
    for e in spec.entries:
        counters[e.kind] = counters.get(e.kind, 0) + 1
        default_status = {RegisterKind.LOG: RegisterStatus.RECORDED, RegisterKind.MEETING: RegisterStatus.RECORDED,
                          RegisterKind.UPGRADE: RegisterStatus.RECORDED, RegisterKind.PLAN: RegisterStatus.PENDING,
                          RegisterKind.REQUIREMENT: RegisterStatus.PENDING}.get(e.kind, RegisterStatus.OPEN)
        session.add(RegisterEntry(project_id=project.id, kind=e.kind, seq=counters[e.kind], title=e.title,
                                  owner_user_id=e.owner, status=e.status or default_status, created_by="wangjianguo",
                                  created_at=e.created_at, updated_at=e.created_at, closed_at=e.closed_at,
                                  due_date=e.due, probability=e.probability, impact=e.impact, extra=e.extra))
    for n in range(spec.running_approvals):
        session.add(Approval(project_id=project.id, kind=ApprovalKind.SCHEDULE_CHANGE,
                             process_instance_id=f"proc-{project.code}-{n}", process_code="PROC-X",
                             status=ApprovalStatus.RUNNING, requester_user_id="wangjianguo"))
    await session.flush()
    return project


async def outbox_rows(database: Any, prefix: str = "") -> list[OutboxMessage]:
    async with database.read() as session:
        rows = (await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    return [r for r in rows if r.idempotency_key.startswith(prefix)]


def keys(rows: Iterable[OutboxMessage]) -> list[str]:
    return [r.idempotency_key for r in rows]


class ChatHarness:
    """Push a message through the kernel's door (``bot.kernel.answer``, as the inbox does), get its replies."""

    def __init__(self, services: Services, *features: Feature, jobs: Sequence[Any] = ()) -> None:
        self.services = services
        self.dispatcher = build_dispatcher(services, features, identify_people=False)
        # Runs the on-demand jobs a command requests, as the app does right after the commit (awaited here, so a
        # test reads their outcome in ``followups`` when ``say`` returns).
        self.scheduler = Scheduler(services, jobs, owner="test")
        self.followups: list[JobRunResult] = []

    async def say(self, text: str, *, sender: str = "wangjianguo", conversation: str = "cid-internal",
                  group: bool = True) -> list[Any]:
        incoming = make_incoming(text, sender_id=sender, sender_nick=PEOPLE.get(sender, sender),
                                 conversation_id=conversation, group=group)
        units = RecordingUnits(self.services.database, self.services.outbox.spool_dir)
        self.last = await run_text(self.dispatcher, incoming, units)  # the kernel's door, as the inbox runs it
        known = set(self.scheduler.job_names)  # a job not given stays requested: as if the process died first
        requested = [run for work in units.settled for run in work.requested_runs]
        self.followups = [await self.scheduler.run_requested(job, key) for job, key in requested if job in known]
        return units.replies


def a_week_of_work(monday: date) -> list[EntrySpec]:
    """Logs, an issue closed this week, an open issue the client must answer, next week's plan, a high risk."""
    def at(day: int, hour: int = 10) -> datetime:
        return utc(f"{monday + timedelta(days=day)}T{hour:02d}:00")

    return [
        EntrySpec(RegisterKind.LOG, "完成生产管理模块需求调研访谈", at(0)),
        EntrySpec(RegisterKind.LOG, "完成质量模块需求调研并整理纪要", at(2), owner="zhaolei"),
        EntrySpec(RegisterKind.LOG, "上周的日志不应出现", at(-5)),
        EntrySpec(RegisterKind.ISSUE, "车间网络不通导致终端无法登录", at(-10), status=RegisterStatus.CLOSED,
                  closed_at=at(1)),
        EntrySpec(RegisterKind.ISSUE, "客户需确认物料编码规则", at(1), extra={"needs_client": True}),
        EntrySpec(RegisterKind.PLAN, "完成需求规格说明书初稿", at(3), due=monday + timedelta(days=9)),
        EntrySpec(RegisterKind.RISK, "关键用户参与度不足", at(-20), probability="高", impact="高",
                  extra={"措施": "请客户指定专人"}),
    ]
