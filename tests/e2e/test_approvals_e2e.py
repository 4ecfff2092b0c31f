"""Approvals end to end: the real App (Stream client, inbox, outbox relay, scheduler) against the sandbox, whose
approval state machine pushes ``bpms_task_change`` / ``bpms_instance_change`` EVENT frames as people decide.

立项 here is the lifecycle command with the one call the approvals report asks its owner to add (``WIRING``); the
App runs the approvals feature and nothing else, so these tests do not depend on the other features' progress.
Every test runs under ``loop_watch``: nothing may hold the event loop for 100 ms.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from e2e_support import FAST, GROUP, kernel_config, wait_emulator, wait_sent
from sqlmodel import select

from bot.app import App
from bot.args import Param
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.roles import PROJECT_MANAGER, only
from bot.router import Router
from domain.approval_flow import submit_initiation
from domain.changes import lock_project
from domain.planner import plan_project
from domain.replies import Reply
from handlers.approvals import feature as approvals_feature
from handlers.help import feature as help_feature
from storage.models import (
    Approval,
    InboxKind,
    InboxMessage,
    InboxState,
    MemberRole,
    Project,
    ProjectStatus,
)
from storage.repo import (
    add_member,
    create_project_from_plan,
    pending_inbox_count,
    upsert_user,
)
from storage.templates import load_templates
from storage.workdays import WorkCalendar

pytestmark = [pytest.mark.timeout(60)]

WIRING = Router("approval-wiring-e2e", title="接线（测试）")


@WIRING.command("立项", summary="立项（测试接线）", examples=("立项",), params=(Param.text("说明", max_length=500),),
                roles=only(PROJECT_MANAGER), needs_project=True)
async def initiate(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    return await submit_initiation(ctx, project, note=ctx.args.text("说明"))


PEOPLE = {"wangjianguo": "王建国", "liuqiang": "刘强", "zhoumin": "周敏", "liming": "李明"}


@pytest.fixture
async def start(sandbox, tmp_path, database_file, loop_watch):
    """``await start(approvers=[...], leaders=[...])`` -> a started, connected App with the MES project bound to the
    sandbox's internal group (PM 王建国)."""
    apps: list[App] = []

    async def start_app(*, approvers: Sequence[str] = ("liuqiang",),
                        leaders: Sequence[str] = ("liuqiang", "zhoumin")) -> App:
        config = kernel_config(
            sandbox, f"sqlite+aiosqlite:///{database_file}", tmp_path / "files",
            dingtalk={"corp_id": sandbox.world.corp_id},
            approvals={"mode": "auto", "approvers": list(approvers), "reconcile_after_minutes": 30},
            organization={"leaders": list(leaders)},
        )
        app = App(config, options=FAST, features=(approvals_feature, help_feature, Feature("wiring", router=WIRING)))
        apps.append(app)
        await app.start()
        await app.stream.wait_for_status(lambda s: s.connected, timeout=10)
        await add_project(app, sandbox.conversation_id(GROUP))
        return app

    yield start_app
    for app in apps:
        await asyncio.wait_for(app.stop(), 30)


async def add_project(app: App, group: str) -> None:
    plan = plan_project(load_templates().get("软件"), datetime(2024, 6, 3).date(), WorkCalendar())
    async with app.transactions.write() as session:
        for user_id, name in PEOPLE.items():
            await upsert_user(session=session, user_id=user_id, name=name)
        project = await create_project_from_plan(session=session, plan=plan, name="智慧工厂MES", customer="华东某制造集团",
                                                 pm_user_id="wangjianguo", year=2026)
        project.internal_conversation_id = group
        session.add(project)
        await add_member(session=session, project_id=project.id, user_id="liming", role=MemberRole.ENGINEER)


async def project_status(app: App) -> ProjectStatus:
    async with app.database.read() as session:
        return (await session.exec(select(Project))).one().status


async def approvals(app: App) -> list[Approval]:
    async with app.database.read() as session:
        return list((await session.exec(select(Approval).order_by(Approval.id))).all())


async def wait_text(sandbox, conversation: str | None, needle: str, timeout: float = 10.0) -> Any:
    """The first bot message in ``conversation`` (a group title, or a user's name: their 1:1) containing ``needle``."""
    cid = sandbox.conversation_id(conversation) if conversation else None
    return await wait_emulator(sandbox, lambda em: next(
        (m for m in em.recorder.sent(cid) if needle in (m.text or "")), None), timeout)


async def instance_started(sandbox, count: int = 1) -> str:
    await wait_emulator(sandbox, lambda em: len(em.workflow.instances) >= count or None)
    return (await sandbox.instance_ids())[count - 1]


async def events_settled(app: App, sandbox, timeout: float = 10.0) -> None:
    """Every approval event the emulator pushed is acked and processed by the bot, and the relay is idle."""
    pushed = [mid for e in sandbox.events() for mid in e.message_ids]
    for message_id in pushed:
        first = await sandbox.wait_for_ack(message_id, timeout)
        # A duplicated push (fault injection) goes out when the first ACK arrives: its ACK counts too.
        await sandbox.wait_for_acks(message_id, len(first.deliveries), timeout)
    async with asyncio.timeout(timeout):
        while True:
            async with app.database.read() as session:
                if await pending_inbox_count(session=session) == 0 and app.inbox.in_flight == 0:
                    break
            await asyncio.sleep(0.02)
    await app.relay.wait_idle(timeout)


async def test_two_leaders_approve_in_turn(sandbox, start) -> None:
    app = await start(approvers=())  # the leaders, one step each
    await sandbox.say("王建国", GROUP, "立项 建设MES系统，覆盖三个车间")
    sent = await wait_sent(sandbox, 2, GROUP)
    answer = next(m for m in sent if m.msgtype == "markdown")
    document = next(m for m in sent if m.msgtype == "file")
    assert answer.via == "webhook" and "已提交立项申请：XM-2026-001" in answer.text and "审批人：刘强 → 周敏" in answer.text
    assert document.params["fileName"] == "项目立项申请表_XM-2026-001.docx" and document.file_bytes[:2] == b"PK"
    assert await project_status(app) == ProjectStatus.PENDING_APPROVAL

    instance_id = await instance_started(sandbox)
    await sandbox.approve(instance_id, "刘强", "同意")
    step = await wait_text(sandbox, GROUP, "刘强 已同意")
    assert "下一位审批人：周敏" in step.text and step.via == "openapi"
    assert await project_status(app) == ProjectStatus.PENDING_APPROVAL

    await sandbox.approve(instance_id, "周敏", "预算内，同意")
    final = await wait_text(sandbox, GROUP, "立项审批通过")
    assert "审批人：刘强、周敏" in final.text and "已立项" in final.text
    assert await project_status(app) == ProjectStatus.APPROVED
    await events_settled(app, sandbox)
    assert len([m for m in sandbox.sent(GROUP) if "立项审批通过" in (m.text or "")]) == 1


async def test_refusal_with_a_remark_then_resubmission(sandbox, start) -> None:
    app = await start()
    await sandbox.say("王建国", GROUP, "立项")
    first = await instance_started(sandbox)
    await sandbox.refuse(first, "刘强", "预算不足，请补充成本测算")
    told = await wait_text(sandbox, GROUP, "立项审批未通过")
    assert "刘强 驳回，意见：预算不足，请补充成本测算" in told.text
    private = await wait_text(sandbox, "王建国", "重新提交")  # the PM's 1:1 chat with the bot
    assert "预算不足" in private.text
    assert await project_status(app) == ProjectStatus.REJECTED

    await sandbox.say("王建国", GROUP, "立项 已补充成本测算")
    second = await instance_started(sandbox, 2)
    await sandbox.approve(second, "刘强")
    await wait_text(sandbox, GROUP, "立项审批通过")
    assert await project_status(app) == ProjectStatus.APPROVED
    assert [(a.process_instance_id, a.result) for a in await approvals(app)] == [(first, "拒绝"), (second, "同意")]


async def test_withdrawn_by_the_requester(sandbox, start) -> None:
    app = await start()
    await sandbox.say("王建国", GROUP, "立项")
    instance_id = await instance_started(sandbox)
    await sandbox.advance(16)  # no revoking within 15 s of the start
    await sandbox.terminate(instance_id, remark="填错了")
    await wait_text(sandbox, GROUP, "立项审批已撤销")
    assert await project_status(app) == ProjectStatus.DRAFT


async def test_a_missed_event_is_healed_by_the_reconciliation_job(sandbox, start) -> None:
    app = await start()
    await sandbox.say("王建国", GROUP, "立项")
    instance_id = await instance_started(sandbox)
    sandbox.faults.skip_approval_events(1, event_type="bpms_instance_change")
    await sandbox.approve(instance_id, "刘强")
    await wait_text(sandbox, GROUP, "刘强 已同意")
    await events_settled(app, sandbox)
    assert await project_status(app) == ProjectStatus.PENDING_APPROVAL  # the decision's event never came

    later = datetime.now(UTC) + timedelta(minutes=31)
    [run] = await app.scheduler.run_due(later, jobs=["approval_reconcile"])
    assert run.outcome == "done", run
    await wait_text(sandbox, GROUP, "立项审批通过")
    assert await project_status(app) == ProjectStatus.APPROVED
    # A later run polls nothing: the approval is no longer running.
    await app.scheduler.run_due(later + timedelta(minutes=40), jobs=["approval_reconcile"])
    await app.relay.wait_idle(5)
    assert len([m for m in sandbox.sent(GROUP) if "立项审批通过" in (m.text or "")]) == 1


async def test_duplicated_events_apply_once_and_other_forms_are_ignored(sandbox, start) -> None:
    app = await start()
    # The forms job (run by the leader at start, and here once more): the three forms exist, created once.
    await app.scheduler.run_due(jobs=["approval_forms"])
    await wait_emulator(sandbox, lambda em: len(em.workflow.forms) == 3 or None)
    await sandbox.say("王建国", GROUP, "立项")
    instance_id = await instance_started(sandbox)
    await events_settled(app, sandbox)
    sandbox.faults.duplicate_frames(10)  # every frame from now on is pushed twice
    await sandbox.approve(instance_id, "刘强")
    await wait_text(sandbox, GROUP, "立项审批通过")
    await events_settled(app, sandbox)
    assert app.inbox.stats.duplicates >= 2
    texts = [m.text or "" for m in sandbox.sent(GROUP)]
    assert sum("立项审批通过" in t for t in texts) == 1 and sum("刘强 已同意" in t for t in texts) == 1

    # Another form's approval in the same organisation: its events arrive and change nothing.
    before = len(sandbox.sent())
    assert sandbox.calls("workflow.forms.save") == 3
    client = app.dingtalk
    code = await client.create_form("请假单", [{"componentType": "TextField",
                                              "props": {"componentId": "TextField-r", "label": "事由"}}])
    other = await client.create_process_instance(code, "liming", {"事由": "家中有事"}, approvers=["liuqiang"])
    await sandbox.approve(other, "刘强")
    await events_settled(app, sandbox)
    assert len(sandbox.sent()) == before
    async with app.database.read() as session:
        events = (await session.exec(select(InboxMessage).where(InboxMessage.kind == InboxKind.EVENT))).all()
    assert events and all(row.state == InboxState.DONE for row in events)
    assert [a.process_instance_id for a in await approvals(app)] == [instance_id]
