"""立项, 推进 (the phase gate), 暂停 and 恢复."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import update

from storage.models import Deliverable, OutboxMessage, Phase, Project, ProjectStatus, RegisterEntry, RegisterKind
from storage.repo import overdue_deliverables

from .conftest import CALENDAR, INTERNAL, Chat, complete_current_phase, new_project


async def due(chat: Chat, name: str) -> date | None:
    return (await chat.rows(Deliverable, Deliverable.name == name))[0].due_date


async def test_the_gate_lists_what_is_missing_then_lets_the_project_through(chat: Chat) -> None:
    code = await new_project(chat)
    draft = await chat.say("pm", "推进")
    assert draft.outcome == "conflict" and "项目尚未立项，不能离开启动阶段。请项目经理先发送「立项」" in draft.text
    approved = await chat.say("pm", "立项")
    assert approved.outcome == "ok" and "已立项（未启用钉钉审批，直接生效）" in approved.text
    project = await chat.project()
    assert project.status == ProjectStatus.APPROVED and project.actual_start == date(2026, 3, 2)
    assert (await chat.say("pm", "立项")).outcome == "conflict"

    await chat.say("sales", "提交 商务合同 https://docs.example.com/contract")
    await chat.say("pm", "豁免 会议记录表 原因:内外部启动会合并")
    blocked = await chat.say("pm", "推进")
    assert blocked.outcome == "conflict"
    assert blocked.text.splitlines() == [
        "「启动」阶段还有 4 项必交的交付物未完成，暂不能推进：",
        "- #2 项目启动会记录表：张经理，截止 3月3日(周二)",
        "- #3 项目立项申请表：张经理，截止 3月4日(周三)",
        "- #5 需求调研报告：张经理，截止 3月12日(周四)",
        "- #6 需求规格说明书：张经理，截止 3月13日(周五)",
        "提交它们（「提交 交付物名称」），或由项目经理「豁免 交付物名称 原因:…」后再推进。",
    ]
    assert (await chat.project()).current_phase == "启动"
    assert await complete_current_phase(chat) == 4
    chat.clock.advance(timedelta(days=10))  # Thursday 12 March
    moved = await chat.say("pm", "进入下一阶段")
    assert moved.outcome == "ok"
    assert moved.text.startswith("「启动」阶段完成，已进入「规划」阶段（计划 3月16日(周一) 至 4月3日(周五)，8 项交付物）")
    project = await chat.project()
    assert project.current_phase == "规划" and project.status == ProjectStatus.IN_PROGRESS
    phases = {p.name: p for p in await chat.rows(Phase)}
    assert phases["启动"].actual_end == date(2026, 3, 12) and phases["启动"].gate_passed_by == "pm01"
    assert phases["规划"].actual_start == date(2026, 3, 12)
    assert "phase.advance" in await chat.audit_actions()
    denied = await chat.say("engineer", "推进")
    assert denied.outcome == "denied" and denied.text == (
        "只有项目经理（或领导、项目管理员）可以推进阶段。你当前的角色：实施工程师")
    assert code


async def test_leaving_execution_also_needs_the_monitoring_records(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    for _ in range(2):
        await complete_current_phase(chat)
        assert (await chat.say("pm", "推进")).outcome == "ok"
    assert (await chat.project()).current_phase == "执行"
    blocked = await chat.say("pm", "推进")
    assert blocked.outcome == "conflict" and "「执行」阶段还有 14 项" in blocked.text
    assert "问题记录表" in blocked.text and "需求跟踪表" in blocked.text
    assert "客户项目周报" not in blocked.text and "升级记录表" not in blocked.text  # recurring records do not gate
    await complete_current_phase(chat)
    assert "已进入「收尾」阶段" in (await chat.say("pm", "推进")).text
    phases = {p.name: p for p in await chat.rows(Phase)}
    assert phases["监控"].actual_end is not None and phases["监控"].gate_passed_at is not None
    last = await chat.say("pm", "推进")
    assert last.outcome == "conflict" and "「收尾」已是最后一个阶段" in last.text


async def test_an_initiation_waiting_for_approval_holds_the_first_gate(chat: Chat) -> None:
    await new_project(chat)
    await complete_current_phase(chat)
    async with chat.db.write() as session:  # as the approvals feature leaves it after submitting 项目立项申请
        await session.exec(update(Project).values(status=ProjectStatus.PENDING_APPROVAL))
    waiting = await chat.say("pm", "推进")
    assert waiting.outcome == "conflict" and "立项审批尚未通过，不能离开启动阶段" in waiting.text
    assert (await chat.say("pm", "立项")).outcome == "conflict"
    async with chat.db.write() as session:
        await session.exec(update(Project).values(status=ProjectStatus.REJECTED))
    assert "立项未通过审批" in (await chat.say("pm", "推进")).text
    assert (await chat.say("pm", "立项")).outcome == "ok"  # a rejected project may apply again
    assert (await chat.say("pm", "推进")).outcome == "ok"


async def test_pause_stops_the_clock_and_resume_shifts_open_dates(chat: Chat) -> None:
    code = await new_project(chat)
    early = await chat.say("pm", "暂停 原因:客户机房改造")
    assert early.outcome == "conflict" and "尚未立项" in early.text
    await chat.say("pm", "立项")
    await chat.say("sales", "提交 商务合同 https://docs.example.com/contract")
    before = {name: await due(chat, name) for name in ("商务合同", "项目启动会记录表", "需求规格说明书")}
    paused = await chat.say("pm", "暂停 原因:客户机房改造，预计一周", group=None)
    assert paused.outcome == "ok" and "已暂停（变更#1，项目进度变更单）" in paused.text
    project = await chat.project()
    assert project.status == ProjectStatus.PAUSED and project.paused_at is not None
    [entry] = await chat.rows(RegisterEntry, RegisterEntry.kind == RegisterKind.CHANGE)
    assert entry.status == "已批准" and entry.extra["类型"] == "暂停"
    keys = [r.idempotency_key for r in await chat.rows(OutboxMessage)]
    assert f"project-paused:{code}:1" in keys
    # Paused: no reminders (the overdue scan skips it), no phase changes, no second pause.
    chat.clock.advance(timedelta(days=3))  # Thursday 5 March: Mon, Tue, Wed were paused
    async with chat.db.read() as session:
        assert await overdue_deliverables(session=session, today=chat.clock.today()) == []
    assert "已暂停，请先发送「恢复」" in (await chat.say("pm", "推进")).text
    assert "已经暂停了" in (await chat.say("pm", "暂停 原因:再停")).text
    assert "已暂停" in (await chat.say("client", "项目", group="cid-client-group")).text
    resumed = await chat.say("pm", "恢复")
    assert resumed.outcome == "ok" and "暂停了 3 个工作日" in resumed.text
    assert await due(chat, "商务合同") == before["商务合同"]  # submitted: keeps its date
    assert await due(chat, "项目启动会记录表") == CALENDAR.add_workdays(before["项目启动会记录表"], 3)
    assert await due(chat, "需求规格说明书") == date(2026, 3, 18)  # Friday 13 March + 3 working days
    project = await chat.project()
    assert project.status == ProjectStatus.APPROVED and project.paused_workdays == 3 and project.paused_at is None
    [entry] = await chat.rows(RegisterEntry, RegisterEntry.kind == RegisterKind.CHANGE)
    assert entry.status == "已关闭" and "暂停 3 个工作日" in entry.resolution
    assert "没有暂停" in (await chat.say("pm", "恢复")).text
    assert [a for a in await chat.audit_actions() if a.startswith("project.")][-2:] == ["project.pause",
                                                                                       "project.resume"]
    assert INTERNAL


async def test_pause_needs_a_reason_and_the_pm(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    missing = await chat.say("pm", "暂停")
    assert missing.outcome == "usage_error" and "缺少必填参数「原因」" in missing.text
    assert "例如：暂停 原因:客户机房改造，预计一个月" in missing.text
    denied = await chat.say("sales", "暂停 原因:我想休息")
    assert denied.outcome == "denied" and "只有项目经理（或领导、项目管理员）可以暂停项目。你当前的角色：拓展/业务负责人" in denied.text
    assert (await chat.project()).status == ProjectStatus.APPROVED
