"""Approvals at the dispatcher level: 立项 through the sandbox's approval state machine, each emulator event applied
by the event handler in its own unit of work, the reconciler, 审批, and 暂停 / 变更 申请 through ``request_approval``."""

from __future__ import annotations

import io
import zipfile
import aiohttp
import pytest

from domain.approval_flow import local_day
from domain.approval_forms import provision_forms
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.models import (
    Approval,
    ApprovalResult,
    ApprovalStatus,
    Deliverable,
    DeliverableStatus,
    OutboxMessage,
    Phase,
    ProjectStatus,
    RegisterEntry,
)

from .test_approvals_support import (
    CALENDAR,
    PLANNED_START,
    ApprovalWorld,
    add_project,
    approvals_config,
    make_world,
    only_instance,
)


@pytest.fixture
async def sandbox():
    async with Sandbox(config=EmulatorConfig.for_tests(), seed=7) as sb:
        yield sb


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def world(sandbox, sqlite_db, http, tmp_path) -> ApprovalWorld:
    world = await make_world(sandbox, sqlite_db, http, tmp_path)
    await add_project(world)
    return world


@pytest.fixture
async def two_step(sandbox, sqlite_db, http, tmp_path) -> ApprovalWorld:
    """No ``approvals.approvers``: the two leaders approve one after the other."""
    world = await make_world(sandbox, sqlite_db, http, tmp_path, approvals_config(sandbox, approvers=()))
    await add_project(world)
    return world


async def submit(world: ApprovalWorld, text: str = "立项 建设MES系统，覆盖冲压、焊接、总装三个车间") -> str:
    said = await world.say("pm", text)
    assert said.outcome == "ok", said.text
    await world.feed()
    return only_instance([a.process_instance_id for a in await world.approvals()
                          if a.status == ApprovalStatus.RUNNING])


async def test_initiation_fills_the_form_answers_with_the_link_and_the_docx(world: ApprovalWorld, sandbox) -> None:
    said = await world.say("pm", "立项 建设MES系统，覆盖冲压、焊接、总装三个车间")
    assert said.outcome == "ok"
    instance_id = only_instance(await sandbox.instance_ids())
    assert "已提交立项申请：XM-2026-001" in said.text and "待立项审批" in said.text
    assert f"procInstId={instance_id}" in said.text and "审批人：刘强" in said.text
    [document] = said.files
    assert document.name == "项目立项申请表_XM-2026-001.docx"
    assert "项目立项申请表" in zipfile.ZipFile(io.BytesIO(document.data)).read("word/document.xml").decode()

    detail = await sandbox.instance(instance_id)
    values = {v["name"]: v["value"] for v in detail["formComponentValues"]}
    project = await world.project()
    assert values["项目名称"] == "智慧工厂MES" and values["项目编号"] == "XM-2026-001"
    assert values["项目经理"] == "王建国" and values["项目类型"] == "软件系统实施"
    assert values["计划开始"] == project.planned_start.isoformat() == PLANNED_START.isoformat()
    assert values["计划结束"] == project.planned_end.isoformat()
    # 项目目标 and 项目范围 are fields of their own now; the 立项 note fills 项目目标 while the project has none.
    assert values["项目目标"].startswith("建设MES系统") and values["立项说明"].startswith("建设MES系统")
    assert values["主要风险"] == "暂未识别"
    assert all(isinstance(v, str) for v in values.values())
    assert detail["originatorUserId"] == "wangjianguo" and detail["approverUserIds"] == ["liuqiang"]

    assert project.status == ProjectStatus.PENDING_APPROVAL
    [approval] = await world.approvals()
    assert approval.status == ApprovalStatus.RUNNING and approval.kind == "立项"
    assert approval.requester_user_id == "wangjianguo" and approval.form_values == values
    assert [a.action for a in await world.audit("approval.submit")] == ["approval.submit"]

    again = await world.say("pm", "立项")
    assert again.outcome == "conflict" and "立项正在审批中" in again.text
    assert len(await sandbox.instance_ids()) == 1


async def test_two_leaders_approve_in_turn_and_the_plan_starts_on_the_approval_day(two_step: ApprovalWorld,
                                                                                   sandbox) -> None:
    world = two_step
    said = await world.say("pm", "立项")
    assert "审批人：刘强 → 周敏" in said.text
    await world.feed()
    instance_id = only_instance(await sandbox.instance_ids())
    assert (await sandbox.instance(instance_id))["approverUserIds"] == ["liuqiang", "zhoumin"]

    await sandbox.approve(instance_id, "刘强", "同意")
    assert await world.feed() == ["step", "ignored"]  # 刘强's task finish, then 周敏's task start
    [step] = await world.message_texts()
    assert "✅ 刘强 已同意「项目立项申请」，意见：同意。" in step and "下一位审批人：周敏" in step
    assert (await world.project()).status == ProjectStatus.PENDING_APPROVAL

    await sandbox.approve(instance_id, "周敏", "预算内，同意")
    assert await world.feed() == ["step", "applied"]
    project = await world.project()
    [approval] = await world.approvals()
    assert project.status == ProjectStatus.APPROVED
    assert approval.status == ApprovalStatus.COMPLETED and approval.result == ApprovalResult.AGREE
    assert approval.remarks == "刘强（同意）：同意\n周敏（同意）：预算内，同意"
    final = (await world.message_texts())[-1]
    assert "✅ 立项审批通过（审批人：刘强、周敏）" in final and "已立项" in final

    # The plan now starts on the approval day (working days), and the 立项申请表 counts as submitted.
    day = CALENDAR.roll_forward(local_day(approval.decided_at, world.config.tz))
    phases = await world.rows(Phase)
    assert phases[0].planned_start == day == project.planned_start == project.actual_start
    assert all(CALENDAR.is_workday(p.planned_start) and CALENDAR.is_workday(p.planned_end) for p in phases)
    assert project.planned_end == phases[-1].planned_end
    form = next(d for d in await world.rows(Deliverable) if d.name == "项目立项申请表")
    assert form.status == DeliverableStatus.SUBMITTED
    pending = [d for d in await world.rows(Deliverable) if d.status == DeliverableStatus.PENDING and d.due_date]
    assert min(d.due_date for d in pending) >= day

    # The same events again (new event ids), and a poll: nothing is applied or announced twice.
    world.fed = 0
    assert set(await world.feed(duplicate=True)) <= {"ignored", "duplicate"}
    assert (await world.reconcile(after_minutes=60)).applied == 0
    assert len(await world.message_texts()) == 3  # two steps and the decision
    assert len(await world.audit("approval.decided")) == 1


async def test_refusal_with_a_remark_then_resubmission(world: ApprovalWorld, sandbox) -> None:
    first = await submit(world)
    await sandbox.refuse(first, "刘强", "预算不足，请补充成本测算")
    assert await world.feed() == ["applied", "duplicate"]  # the task refusal decides; the instance finish finds it done
    project = await world.project()
    [approval] = await world.approvals()
    assert project.status == ProjectStatus.REJECTED
    assert approval.result == ApprovalResult.REFUSE and approval.remarks == "刘强（拒绝）：预算不足，请补充成本测算"
    messages = await world.messages()
    assert [m.target_kind for m in messages] == ["group", "user"]
    assert "刘强 驳回，意见：预算不足，请补充成本测算" in messages[0].params["msgParam"]["text"]
    assert messages[1].target_ids == ["wangjianguo"] and "重新提交" in messages[1].params["msgParam"]["text"]

    listing = await world.say("engineer", "审批")
    assert "1. 立项 · **已驳回** · 王建国" in listing.text and "预算不足" in listing.text
    detail = await world.say("engineer", "审批 1")
    assert "发起审批" in detail.text and "刘强 拒绝：预算不足，请补充成本测算" in detail.text

    second = await submit(world, "立项 已补充成本测算")
    assert second != first and (await world.project()).status == ProjectStatus.PENDING_APPROVAL
    await sandbox.approve(second, "刘强")
    assert "applied" in await world.feed()
    assert (await world.project()).status == ProjectStatus.APPROVED
    listing = await world.say("pm", "审批")
    assert "2. 立项 · **已通过**" in listing.text


async def test_withdrawn_approval_returns_the_project_to_draft(world: ApprovalWorld, sandbox) -> None:
    instance_id = await submit(world)
    await sandbox.advance(16)  # DingTalk refuses to revoke within 15 s of the start
    await sandbox.terminate(instance_id, remark="内容有误，撤回修改")
    assert await world.feed() == ["applied"]
    assert (await world.project()).status == ProjectStatus.DRAFT
    [approval] = await world.approvals()
    assert approval.status == ApprovalStatus.TERMINATED and approval.result is None
    assert "立项审批已撤销" in (await world.message_texts())[-1]
    assert (await world.say("pm", "立项")).outcome == "ok"  # may be submitted again


async def test_a_missed_final_event_is_healed_by_the_reconciler_once(world: ApprovalWorld, sandbox) -> None:
    instance_id = await submit(world)
    sandbox.faults.skip_approval_events(1, event_type="bpms_instance_change")
    await sandbox.approve(instance_id, "刘强")
    assert await world.feed() == ["step"]  # the instance finish never came
    assert (await world.project()).status == ProjectStatus.PENDING_APPROVAL

    assert (await world.reconcile(after_minutes=10)).polled == 0  # not quiet long enough yet
    result = await world.reconcile(after_minutes=31)
    assert (result.polled, result.applied) == (1, 1)
    assert (await world.project()).status == ProjectStatus.APPROVED
    assert (await world.reconcile(after_minutes=90)).polled == 0
    decided = await world.audit("approval.decided")
    assert len(decided) == 1 and decided[0].after["source"] == "reconcile"


async def test_a_running_approval_is_polled_once_per_quiet_period(world: ApprovalWorld, sandbox) -> None:
    await submit(world)
    assert (await world.reconcile(after_minutes=31)).still_running == 1
    assert (await world.reconcile(after_minutes=40)).polled == 0  # touched at +31 min: quiet again only at +61
    assert (await world.reconcile(after_minutes=62)).still_running == 1


async def test_events_of_other_forms_are_ignored(world: ApprovalWorld, sandbox) -> None:
    client = world.services.dingtalk
    code = await client.create_form("请假单", [{"componentType": "TextField",
                                              "props": {"componentId": "TextField-x", "label": "事由"}}])
    other = await client.create_process_instance(code, "liming", {"事由": "家中有事"}, approvers=["liuqiang"])
    await sandbox.approve(other, "刘强")
    assert set(await world.feed()) == {"ignored"}
    assert await world.messages() == [] and await world.approvals() == []


async def test_detail_query_applies_a_decision_the_events_missed(world: ApprovalWorld, sandbox) -> None:
    instance_id = await submit(world)
    sandbox.faults.skip_approval_events(3)
    await sandbox.refuse(instance_id, "刘强", "范围不清")
    said = await world.say("pm", "审批 1")
    assert "已驳回" in said.text and "已同步钉钉中的审批结果" in said.text and "刘强 拒绝：范围不清" in said.text
    assert (await world.project()).status == ProjectStatus.REJECTED


async def test_pause_through_its_form_pauses_the_project_when_approved(world: ApprovalWorld, sandbox) -> None:
    async with world.work() as unit:
        project = await unit.session.get(type(await world.project()), (await world.project()).id)
        project.status = ProjectStatus.IN_PROGRESS
    said = await world.say("pm", "暂停 客户机房改造，预计一个月")
    assert said.outcome == "ok" and "项目进度变更单" in said.text
    instance_id = only_instance(await sandbox.instance_ids())
    values = {v["name"]: v["value"] for v in (await sandbox.instance(instance_id))["formComponentValues"]}
    assert values["原因"] == "客户机房改造，预计一个月" and values["项目编号"] == "XM-2026-001"
    [entry] = await world.rows(RegisterEntry)
    assert entry.status == "待审批" and entry.extra["审批编号"] == instance_id

    again = await world.say("pm", "暂停 又一次")
    assert again.outcome == "conflict" and "已有审批中的「项目进度变更单」" in again.text

    await world.feed()
    await sandbox.approve(instance_id, "刘强")
    assert "applied" in await world.feed()
    project = await world.project()
    [entry] = await world.rows(RegisterEntry)
    assert project.status == ProjectStatus.PAUSED and project.paused_at is not None
    assert entry.status == "已批准"
    assert "项目已暂停" in (await world.message_texts())[-1]


async def test_change_requests_are_recorded_as_approved_or_refused(world: ApprovalWorld, sandbox) -> None:
    first = await world.say("engineer", "变更 申请 增加移动端审核功能 影响:工期延后10个工作日")
    second = await world.say("engineer", "变更 申请 接入第二套MES 影响:增加费用3万元")
    assert first.outcome == second.outcome == "ok"  # several change requests may run at once
    one, two = (a.process_instance_id for a in await world.approvals())
    await world.feed()
    await sandbox.approve(one, "刘强", "同意实施")
    await sandbox.refuse(two, "刘强", "不在合同范围内")
    await world.feed()
    entries = await world.rows(RegisterEntry)
    assert [e.status for e in entries] == ["已批准", "已驳回"]
    assert "刘强（同意）：同意实施" in entries[0].resolution
    assert "不在合同范围内" in entries[1].resolution and entries[1].closed_at is not None
    texts = await world.message_texts()
    assert any("变更#1「增加移动端审核功能」 审批通过" in t for t in texts)
    assert any("变更#2「接入第二套MES」 未通过" in t for t in texts)


async def test_nothing_is_announced_twice_even_when_two_sources_race(db, sandbox, http, tmp_path) -> None:
    """On every backend: the instance's final event applied twice and the poll: one decision, one announcement."""
    world = await make_world(sandbox, db, http, tmp_path)
    await add_project(world)
    instance_id = await submit(world)
    await sandbox.approve(instance_id, "刘强")
    assert (await world.reconcile(after_minutes=45)).applied == 1
    # The step's event arrives after the decision (not announced any more), the final event twice.
    assert set(await world.feed(duplicate=True)) == {"late", "duplicate"}
    [approval] = await world.rows(Approval)
    assert approval.applied_event == "COMPLETED:agree" and approval.remarks == "刘强（同意）"
    keys = [m.idempotency_key for m in await world.rows(OutboxMessage)]
    assert keys == [f"approval:{instance_id}:COMPLETED:agree"]
    assert len(await world.audit("approval.decided")) == 1


async def test_approval_before_the_planned_start_keeps_the_plan(world: ApprovalWorld, sandbox) -> None:
    """A project planned to start after its approval is not pulled forward."""
    async with world.work() as unit:
        for phase in await world.rows(Phase):
            row = await unit.session.get(Phase, phase.id)
            row.planned_start = CALENDAR.shift(row.planned_start, 2000)
            row.planned_end = CALENDAR.shift(row.planned_end, 2000)
    before = [(p.planned_start, p.planned_end) for p in await world.rows(Phase)]
    instance_id = await submit(world)
    await sandbox.approve(instance_id, "刘强")
    await world.feed()
    assert [(p.planned_start, p.planned_end) for p in await world.rows(Phase)] == before
    assert "计划保持不变" in (await world.message_texts())[-1]


async def test_the_forms_own_flow_in_dingtalk_is_followed(sandbox, sqlite_db, http, tmp_path) -> None:
    """No approvers in the config: the flow an administrator set on the form decides, and the steps still show."""
    world = await make_world(sandbox, sqlite_db, http, tmp_path, approvals_config(sandbox, approvers=(), leaders=()))
    await add_project(world)
    await provision_forms(world.config, world.services.dingtalk)
    await sandbox.set_approvers("项目立项申请", [("NONE", ["刘强"]), ("NONE", ["周敏"])])
    instance_id = await submit(world)
    assert (await world.rows(Approval))[0].status == ApprovalStatus.RUNNING
    await sandbox.approve(instance_id, "刘强")
    await world.feed()
    assert "下一位审批人：周敏" in (await world.message_texts())[-1]
    await sandbox.approve(instance_id, "周敏")
    assert "applied" in await world.feed()
    assert (await world.project()).status == ProjectStatus.APPROVED
    assert "审批人：刘强、周敏" in (await world.message_texts())[-1]
