"""变更 申请 … 工期:+10 [从:阶段或交付物]: a change states its purpose and its 工期 in working days; once approved,
the remaining due dates move by that much and the answer lists what moved."""

from __future__ import annotations

from datetime import timedelta

from storage.models import Deliverable, DeliverableStatus, Phase, RegisterEntry, RegisterKind

from .conftest import CALENDAR, Chat, complete_current_phase, new_project


async def _dates(chat: Chat) -> tuple[dict[str, object], dict[str, object]]:
    deliverables = {d.name: (d.status, d.due_date) for d in await chat.rows(Deliverable)}
    phases = {p.name: (p.planned_start, p.planned_end) for p in await chat.rows(Phase)}
    return deliverables, phases


async def test_an_approved_change_moves_the_remaining_dates_from_a_phase(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    await complete_current_phase(chat)
    assert (await chat.say("pm", "推进")).outcome == "ok"  # now in 规划
    before, phases_before = await _dates(chat)
    end_before = (await chat.project()).planned_end
    asked = await chat.say("engineer", "变更 申请 增加移动端审核功能 目的:领导要在手机上审批 影响:增加费用3万元 工期:+10 从:执行")
    assert asked.outcome == "ok", asked.text
    assert "批准后，未完成的截止日期自「执行」阶段起顺延：工期延后 10 个工作日。" in asked.text
    assert "建议写明变更目的" not in asked.text
    [entry] = await chat.rows(RegisterEntry, RegisterEntry.kind == RegisterKind.CHANGE)
    assert entry.extra == {"影响": "增加费用3万元", "目的": "领导要在手机上审批", "工期": 10, "工期自阶段": "执行"}
    assert await _dates(chat) == (before, phases_before)  # nothing moves before the approval

    approved = await chat.say("leader", "变更 批准 1")
    assert approved.outcome == "ok", approved.text
    since = phases_before["执行"][0]
    moved = {name: due for name, (status, due) in before.items()
             if status == DeliverableStatus.PENDING and due is not None and due >= since}
    assert f"工期延后 10 个工作日（自「执行」阶段起），已调整 {len(moved) + 3} 项：" in approved.text  # + 执行, 监控, 收尾
    assert "- 「执行」阶段（计划完成）：" in approved.text and "- 《接口说明文档》：" in approved.text
    after, phases_after = await _dates(chat)
    for name, (status, due) in before.items():
        expected = CALENDAR.shift(due, 10) if name in moved else due
        assert after[name] == (status, expected), name
    assert phases_after["规划"] == phases_before["规划"]  # before the anchor: kept
    assert phases_after["执行"] == tuple(CALENDAR.shift(d, 10) for d in phases_before["执行"])
    assert (await chat.project()).planned_end == CALENDAR.shift(end_before, 10)
    assert "change.schedule_moved" in await chat.audit_actions()


async def test_a_change_without_a_start_moves_from_the_approval_day(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    before, _ = await _dates(chat)
    asked = await chat.say("engineer", "变更 申请 客户晚交接口文档 工期:+3")
    assert "自批准之日起顺延：工期延后 3 个工作日" in asked.text and "建议写明变更目的（目的:…）" in asked.text
    chat.clock.advance(timedelta(days=1))  # approved the next day (Tuesday 3 March)
    approved = await chat.say("leader", "变更 批准 1")
    assert "工期延后 3 个工作日（自批准之日起）" in approved.text
    after, _ = await _dates(chat)
    today = chat.clock.today()
    for name, (status, due) in before.items():
        moves = status == DeliverableStatus.PENDING and due is not None and due >= today
        assert after[name][1] == (CALENDAR.shift(due, 3) if moves else due), name


async def test_bad_schedules_are_refused_and_change_nothing(chat: Chat) -> None:
    await new_project(chat)
    for text, answer in (
        ("变更 申请 加功能 工期:十天", "工期应为工作日数，如 工期:+10"),
        ("变更 申请 加功能 工期:+10天", "工期应为工作日数"),
        ("变更 申请 加功能 工期:+999", "工期最多调整 250 个工作日"),
        ("变更 申请 加功能 影响:费用增加 从:执行", "「从」说的是工期从哪里起调整"),
        ("变更 申请 加功能 工期:+5 从:不存在的阶段", "「从」应为阶段（启动、规划、执行、监控、收尾）或交付物"),
        ("变更 申请 加功能", "缺少必填参数「影响」"),
    ):
        said = await chat.say("engineer", text)
        assert said.outcome in ("usage_error", "not_found"), (text, said.text)
        assert answer in said.text, (text, said.text)
    assert await chat.rows(RegisterEntry, RegisterEntry.kind == RegisterKind.CHANGE) == []


async def test_a_change_can_start_from_a_deliverable_and_shorten(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    [api] = await chat.rows(Deliverable, Deliverable.name == "接口说明文档")
    [srs] = await chat.rows(Deliverable, Deliverable.name == "需求规格说明书")
    asked = await chat.say("engineer", f"变更 申请 提前联调 影响:客户提前提供环境 工期:-2 从:#{api.seq}")
    assert f"自交付物 #{api.seq} 起顺延：工期提前 2 个工作日" in asked.text
    await chat.say("leader", "变更 批准 1")
    [moved] = await chat.rows(Deliverable, Deliverable.name == "接口说明文档")
    assert moved.due_date == CALENDAR.shift(api.due_date, -2)
    [earlier] = await chat.rows(Deliverable, Deliverable.name == "需求规格说明书")
    assert earlier.due_date == srs.due_date < api.due_date  # due before the anchor: kept as planned
