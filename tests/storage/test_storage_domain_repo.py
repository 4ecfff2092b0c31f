"""Users, projects (codes, groups, members), registers, versions, weekly reports, audit and approvals."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from storage.db import Database
from storage.models import (
    Approval,
    ApprovalKind,
    Deliverable,
    MemberRole,
    Project,
    ProjectStatus,
    RegisterEntry,
    RegisterKind,
    RegisterStatus,
    ReportVariant,
    User,
    utcnow,
)
from storage.repo import (
    add_deliverable_version,
    add_member,
    add_register_entry,
    create_project,
    get_approval_by_instance,
    get_project_by_code,
    get_project_by_conversation,
    get_register_entry,
    get_weekly_report,
    list_audit,
    list_members,
    list_projects,
    list_register_entries,
    mark_approval_applied,
    member_roles,
    memberships_of_user,
    next_project_code,
    projects_of_user,
    record_weekly_report,
    remove_member,
    running_approvals,
    upsert_user,
    user_names,
    write_audit,
)


async def test_upsert_user_creates_then_renames(db: Database) -> None:
    async with db.write() as session:
        created = await upsert_user(session=session, user_id="u1", name="王五")
        same = await upsert_user(session=session, user_id="u1", name="王五")
        assert created.id == same.id
    async with db.write() as session:
        renamed = await upsert_user(session=session, user_id="u1", name="王小五")
        assert renamed.name == "王小五" and renamed.id == created.id
        assert await user_names(session=session, user_ids=["u1", "nobody"]) == {"u1": "王小五"}
        assert len((await session.exec(select(User))).all()) == 1


async def test_project_codes_count_per_year(db: Database) -> None:
    async with db.write() as session:
        assert await next_project_code(session=session, year=2026) == "XM-2026-001"
        first = await create_project(session=session, name="一期", template="软件实施", year=2026)
        second = await create_project(session=session, name="二期", template="软件实施", year=2026)
        other_year = await create_project(session=session, name="旧项目", template="软件实施", year=2025)
    assert (first.code, second.code, other_year.code) == ("XM-2026-001", "XM-2026-002", "XM-2025-001")
    async with db.write() as session:
        session.add(Project(code="XM-2026-999", name="手工编号", template="软件实施"))
        await session.flush()
        assert await next_project_code(session=session, year=2026) == "XM-2026-1000"
        session.add(Project(code="XM-2026-1000", name="千号", template="软件实施"))
        await session.flush()
        assert await next_project_code(session=session, year=2026) == "XM-2026-1001"  # not fooled by text order
    async with db.read() as session:
        found = await get_project_by_code(session=session, code=" xm-2026-002 ")
        assert found is not None and found.name == "二期"


async def test_group_belongs_to_one_project(db: Database) -> None:
    async with db.write() as session:
        project = await create_project(
            session=session, name="一期", template="软件实施", year=2026,
            internal_conversation_id="cidInternal==", client_conversation_id="cidClient==",
        )
        await create_project(session=session, name="未建群", template="软件实施", year=2026)
        await create_project(session=session, name="也未建群", template="软件实施", year=2026)  # NULLs don't collide
    async with db.read() as session:
        by_internal = await get_project_by_conversation(session=session, conversation_id="cidInternal==")
        by_client = await get_project_by_conversation(session=session, conversation_id="cidClient==")
        assert by_internal is not None and by_client is not None and by_internal.id == by_client.id == project.id
        assert await get_project_by_conversation(session=session, conversation_id="cidinternal==") is None
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            taken = Project(code="XM-2026-900", name="抢群", template="软件实施", internal_conversation_id="cidInternal==")
            session.add(taken)


async def test_members_and_roles(db: Database) -> None:
    async with db.write() as session:
        project = await create_project(session=session, name="一期", template="软件实施", year=2026)
        closed = await create_project(
            session=session, name="已关闭", template="软件实施", year=2026, status=ProjectStatus.CLOSED
        )
        assert await add_member(session=session, project_id=project.id, user_id="u1", role=MemberRole.PM) is True
        assert await add_member(session=session, project_id=project.id, user_id="u1", role=MemberRole.PM) is False
        assert await add_member(session=session, project_id=project.id, user_id="u1", role=MemberRole.ENGINEER)
        assert await add_member(session=session, project_id=closed.id, user_id="u1", role=MemberRole.CLIENT)
    async with db.write() as session:
        assert await member_roles(session=session, project_id=project.id, user_id="u1") == {
            MemberRole.PM,
            MemberRole.ENGINEER,
        }
        mine = await projects_of_user(session=session, user_id="u1", statuses=[ProjectStatus.DRAFT])
        assert [p.id for p in mine] == [project.id]
        assert len(await projects_of_user(session=session, user_id="u1")) == 2
        assert [(p.id, roles) for p, roles in await memberships_of_user(session=session, user_id="u1")] == [
            (project.id, {MemberRole.PM, MemberRole.ENGINEER}), (closed.id, {MemberRole.CLIENT})]
        assert await memberships_of_user(session=session, user_id="nobody") == []
        assert await remove_member(session=session, project_id=project.id, user_id="u1", role=MemberRole.ENGINEER) == 1
        assert [m.role for m in await list_members(session=session, project_id=project.id)] == [MemberRole.PM]
        assert [p.name for p in await list_projects(session=session, statuses=[ProjectStatus.CLOSED])] == ["已关闭"]


async def test_register_numbers_per_project_and_kind(db: Database) -> None:
    async with db.write() as session:
        a = await create_project(session=session, name="A", template="软件实施", year=2026)
        b = await create_project(session=session, name="B", template="软件实施", year=2026)
        async def add(project: Project, kind: RegisterKind, title: str) -> RegisterEntry:
            return await add_register_entry(
                session=session, project_id=project.id, kind=kind, title=title, created_by="u1"
            )

        i1 = await add(a, RegisterKind.ISSUE, "扫码枪无法识别")
        i2 = await add(a, RegisterKind.ISSUE, "打印机缺纸")
        r1 = await add(a, RegisterKind.RISK, "到货延迟")
        b1 = await add(b, RegisterKind.ISSUE, "B的问题")
    assert (i1.seq, i2.seq, r1.seq, b1.seq) == (1, 2, 1, 1)
    assert i1.status is RegisterStatus.OPEN
    async with db.write() as session:
        entry = await get_register_entry(session=session, project_id=a.id, kind=RegisterKind.ISSUE, seq=2)
        assert entry is not None and entry.title == "打印机缺纸"
        entry.status = RegisterStatus.CLOSED
    async with db.read() as session:
        still_open = await list_register_entries(
            session=session, project_id=a.id, kind=RegisterKind.ISSUE, statuses=[RegisterStatus.OPEN]
        )
    assert [e.seq for e in still_open] == [1]


async def test_deliverable_versions_count_up(db: Database) -> None:
    async with db.write() as session:
        project = await create_project(session=session, name="A", template="软件实施", year=2026)
        deliverable = Deliverable(project_id=project.id, name="培训签到表")
        session.add(deliverable)
        await session.flush()
        did = deliverable.id
        v1 = await add_deliverable_version(session=session, deliverable_id=did, submitted_by="u1", link="https://x.cn")
        v2 = await add_deliverable_version(session=session, deliverable_id=did, submitted_by="u2", file_path="签到表.pdf")
    assert (v1.version, v2.version) == (1, 2)


async def test_weekly_report_is_unique_per_week_and_audience(db: Database) -> None:
    async with db.write() as session:
        project = await create_project(session=session, name="A", template="软件实施", year=2026)
        pid: int = project.id
        week = {"project_id": pid, "iso_year": 2026, "iso_week": 10}
        report, created = await record_weekly_report(session=session, **week, content_md="v1")
        assert created and report.content_md == "v1"
        internal, created = await record_weekly_report(
            session=session, **week, content_md="内部", variant=ReportVariant.INTERNAL
        )
        assert created and internal.id != report.id
    sent = utcnow()
    async with db.write() as session:
        again, created = await record_weekly_report(session=session, **week, content_md="v2", sent_at=sent)
        assert not created and again.id == report.id and again.content_md == "v2"
    async with db.write() as session:
        regenerated, _ = await record_weekly_report(session=session, **week, content_md="v3")
        assert regenerated.sent_at == sent  # regenerating does not forget that it was sent
        assert await get_weekly_report(session=session, project_id=pid, iso_year=2026, iso_week=11) is None


async def test_audit_log(db: Database) -> None:
    async with db.write() as session:
        project = await create_project(session=session, name="A", template="软件实施", year=2026)
        await write_audit(
            session=session, action="project.pause", actor_user_id="u1", project_id=project.id,
            entity="project", entity_id=project.id, before={"状态": "进行中"}, after={"状态": "已暂停"},
        )
    async with db.read() as session:
        (record,) = await list_audit(session=session, project_id=project.id)
    assert (record.action, record.entity_id, record.after) == ("project.pause", str(project.id), {"状态": "已暂停"})


async def test_approval_final_state_applies_once(db: Database) -> None:
    async with db.write() as session:
        session.add(
            Approval(
                kind=ApprovalKind.INITIATION, process_instance_id="pi-1", process_code="PROC", requester_user_id="u1"
            )
        )
    async with db.write() as session:
        approval = await get_approval_by_instance(session=session, process_instance_id="pi-1")
        assert approval is not None and [a.id for a in await running_approvals(session=session)] == [approval.id]
        assert await mark_approval_applied(session=session, approval_id=approval.id, event_key="COMPLETED:agree")
        assert not await mark_approval_applied(session=session, approval_id=approval.id, event_key="COMPLETED:agree")
