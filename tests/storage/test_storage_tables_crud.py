"""Every table can be written, read back and updated on every backend, with Chinese text and naive-UTC times."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from sqlmodel import select

from storage.db import Database
from storage.models import (
    Activity,
    Approval,
    ApprovalKind,
    ApprovalResult,
    ApprovalStatus,
    AuditLog,
    Deliverable,
    DeliverableStatus,
    DeliverableVersion,
    InboxMessage,
    InboxState,
    JobRun,
    JobRunState,
    Level,
    MemberRole,
    OutboxMessage,
    OutboxMessageKind,
    OutboxTargetKind,
    Phase,
    Project,
    ProjectMember,
    ProjectStatus,
    Recurrence,
    RegisterEntry,
    RegisterKind,
    RegisterStatus,
    ReportVariant,
    RiskResponse,
    User,
    WeeklyReport,
    utcnow,
)

# 4-byte UTF-8 on purpose: a rare CJK ideograph (Extension B) and an emoji fail on MySQL's 3-byte "utf8".
CHINESE = "智慧仓储RFID项目（一期）𠀀🚀"


async def _project(db: Database, **fields: object) -> Project:
    async with db.write() as session:
        project = Project(code=fields.pop("code", "XM-2026-001"), name=CHINESE, template="软件实施", **fields)
        session.add(project)
    return project


async def test_user_round_trip_and_update(db: Database) -> None:
    async with db.write() as session:
        session.add(User(user_id="manager0001", name="张三"))
    async with db.write() as session:
        user = (await session.exec(select(User).where(User.user_id == "manager0001"))).one()
        assert user.name == "张三"
        created = user.updated_at
        user.name = "张三丰"
    async with db.read() as session:
        user = (await session.exec(select(User).where(User.user_id == "manager0001"))).one()
        assert user.name == "张三丰"
        assert user.updated_at >= created


async def test_project_member_phase_activity(db: Database) -> None:
    project = await _project(
        db,
        customer="某某市第一人民医院",
        status=ProjectStatus.IN_PROGRESS,
        current_phase="执行",
        pm_user_id="manager0001",
        planned_start=date(2026, 1, 5),
        planned_end=date(2026, 6, 30),
        internal_conversation_id="cidInternal==",
        client_conversation_id="cidClient==",
        paused_workdays=3,
    )
    async with db.write() as session:
        session.add(ProjectMember(project_id=project.id, user_id="manager0001", role=MemberRole.PM))
        phase = Phase(project_id=project.id, seq=1, name="启动", planned_start=date(2026, 1, 5))
        session.add(phase)
        await session.flush()
        session.add(Activity(phase_id=phase.id, seq=1, name="项目内部启动会"))
    async with db.write() as session:
        stored = await session.get(Project, project.id)
        assert stored is not None
        assert stored.name == CHINESE and stored.customer == "某某市第一人民医院"
        assert stored.status is ProjectStatus.IN_PROGRESS  # read back as the enum, not a bare string
        assert stored.planned_end == date(2026, 6, 30) and stored.paused_workdays == 3
        stored.status = ProjectStatus.PAUSED
        stored.paused_at = utcnow()
        member = (await session.exec(select(ProjectMember))).one()
        assert member.role is MemberRole.PM
        phase = (await session.exec(select(Phase))).one()
        phase.gate_passed_by = "manager0001"
        phase.gate_passed_at = utcnow()
        activity = (await session.exec(select(Activity))).one()
        assert activity.name == "项目内部启动会"
    async with db.read() as session:
        stored = await session.get(Project, project.id)
        assert stored is not None and stored.status is ProjectStatus.PAUSED and stored.paused_at is not None
        assert (await session.exec(select(Phase))).one().gate_passed_by == "manager0001"


async def test_deliverable_and_versions(db: Database) -> None:
    project = await _project(db)
    async with db.write() as session:
        deliverable = Deliverable(
            project_id=project.id,
            name="项目立项申请表",
            recurrence=Recurrence.WEEKLY,
            owner_role=MemberRole.PM,
            due_date=date(2026, 1, 9),
        )
        session.add(deliverable)
        await session.flush()
        session.add(
            DeliverableVersion(
                deliverable_id=deliverable.id,
                version=1,
                file_path="files/XM-2026-001/立项申请表.docx",
                sha256="ab" * 32,
                size=5_000_000_000,  # larger than 32 bits
                original_name="立项申请表.docx",
                submitted_by="manager0001",
                note="第一版",
            )
        )
    async with db.write() as session:
        stored = (await session.exec(select(Deliverable))).one()
        assert stored.required is True and stored.recurrence is Recurrence.WEEKLY
        assert stored.status is DeliverableStatus.PENDING and stored.owner_role is MemberRole.PM
        stored.status = DeliverableStatus.WAIVED
        stored.waiver_reason = "客户不需要纸质版"
        version = (await session.exec(select(DeliverableVersion))).one()
        assert version.size == 5_000_000_000 and version.original_name == "立项申请表.docx"
    async with db.read() as session:
        stored = (await session.exec(select(Deliverable))).one()
        assert stored.status is DeliverableStatus.WAIVED and stored.waiver_reason == "客户不需要纸质版"


async def test_approval_with_form_values(db: Database) -> None:
    project = await _project(db)
    form = {"项目名称": CHINESE, "预算": 12.5, "成员": ["张三", "李四"]}
    async with db.write() as session:
        session.add(
            Approval(
                project_id=project.id,
                kind=ApprovalKind.INITIATION,
                process_instance_id="proc-inst-1",
                process_code="PROC-XM-1",
                requester_user_id="manager0001",
                form_values=form,
            )
        )
    async with db.write() as session:
        approval = (await session.exec(select(Approval))).one()
        assert approval.form_values == form and approval.status is ApprovalStatus.RUNNING
        approval.status = ApprovalStatus.COMPLETED
        approval.result = ApprovalResult.AGREE
        approval.decided_at = utcnow()
        approval.remarks = "同意立项"
    async with db.read() as session:
        approval = (await session.exec(select(Approval))).one()
        assert approval.result is ApprovalResult.AGREE and approval.remarks == "同意立项"


async def test_register_entry_kinds(db: Database) -> None:
    project = await _project(db)
    async with db.write() as session:
        session.add(
            RegisterEntry(
                project_id=project.id,
                kind=RegisterKind.RISK,
                seq=1,
                title="设备到货延迟",
                content="供应商排产紧张",
                status=RegisterStatus.OPEN,
                probability=Level.HIGH,
                impact=Level.MEDIUM,
                response=RiskResponse.MITIGATE,
                extra={"标签": ["供货"]},
                created_by="manager0001",
            )
        )
    async with db.write() as session:
        entry = (await session.exec(select(RegisterEntry))).one()
        assert (entry.kind, entry.probability, entry.response) == (RegisterKind.RISK, Level.HIGH, RiskResponse.MITIGATE)
        assert entry.extra == {"标签": ["供货"]}
        entry.status = RegisterStatus.CLOSED
        entry.resolution = "改用备选供应商"
        entry.closed_at = utcnow()
    async with db.read() as session:
        entry = (await session.exec(select(RegisterEntry))).one()
        assert entry.status is RegisterStatus.CLOSED and entry.resolution == "改用备选供应商"


async def test_weekly_report_row(db: Database) -> None:
    project = await _project(db)
    content = "## 本周完成\n- 完成接口对接\n" * 5000  # well past MySQL TEXT's 64 KiB
    async with db.write() as session:
        session.add(WeeklyReport(project_id=project.id, iso_year=2026, iso_week=2, content_md=content))
    async with db.write() as session:
        report = (await session.exec(select(WeeklyReport))).one()
        assert report.content_md == content and report.variant is ReportVariant.CLIENT
        report.sent_at = utcnow()
    async with db.read() as session:
        assert (await session.exec(select(WeeklyReport))).one().sent_at is not None


async def test_inbox_outbox_job_audit_rows(db: Database) -> None:
    project = await _project(db)
    async with db.write() as session:
        session.add(InboxMessage(message_id="frame-1", msg_id="msg-1", payload='{"text":{"content":"项目 状态"}}'))
        session.add(
            OutboxMessage(
                idempotency_key="weekly:1:2026-W02",
                target_kind=OutboxTargetKind.GROUP,
                target_ids=["cidClient=="],
                msg_kind=OutboxMessageKind.MARKDOWN,
                params={"title": "周报", "text": "## 本周完成"},
            )
        )
        session.add(JobRun(job="weekly_report_job", period_key="2026-W02", owner="host:1"))
        session.add(AuditLog(action="project.create", project_id=project.id, after={"名称": CHINESE}))
    async with db.write() as session:
        inbox = (await session.exec(select(InboxMessage))).one()
        assert inbox.state is InboxState.PENDING and "项目 状态" in inbox.payload
        inbox.state = InboxState.DONE
        outbox = (await session.exec(select(OutboxMessage))).one()
        assert outbox.target_ids == ["cidClient=="] and outbox.params["title"] == "周报"
        outbox.attempts = 2
        job = (await session.exec(select(JobRun))).one()
        job.state = JobRunState.DONE
        audit = (await session.exec(select(AuditLog))).one()
        assert audit.after == {"名称": CHINESE} and audit.before is None
    async with db.read() as session:
        assert (await session.exec(select(InboxMessage))).one().state is InboxState.DONE
        assert (await session.exec(select(OutboxMessage))).one().attempts == 2
        assert (await session.exec(select(JobRun))).one().state is JobRunState.DONE


async def test_datetimes_are_naive_utc_with_microseconds(db: Database) -> None:
    local = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))
    async with db.write() as session:
        session.add(User(user_id="u1", name="李四", created_at=local, updated_at=local.astimezone(UTC)))
    async with db.read() as session:
        user = (await session.exec(select(User))).one()
    expected = datetime(2026, 3, 2, 1, 30, 15, 123456)  # the same instant, as naive UTC
    assert user.created_at == expected and user.created_at.tzinfo is None
    assert user.updated_at == expected
