"""新建项目, 项目列表, 我的项目, 项目, 绑定, and which project a command works on."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from storage.models import Deliverable, OutboxMessage, Phase, Project, ProjectMember, ProjectStatus, User

from .conftest import CALENDAR, CLIENT_GROUP, INTERNAL, OTHER_GROUP, PEOPLE, Chat, new_project


async def test_new_project_lays_out_the_template_on_working_days(chat: Chat) -> None:
    said = await chat.say("pm", "新建项目 智慧工厂 MES 一期 客户:某某制造 类型:软件 经理:@张经理", group=None,
                          mentions=["pm"])
    assert said.outcome == "ok"
    assert "已新建项目 XM-2026-001" in said.text and "软件系统实施（5 个阶段，42 项交付物）" in said.text
    assert "绑定 XM-2026-001 内部群" in said.text  # the next step, with the code filled in
    # The phase plan as a list a phone shows well (DingTalk squeezes markdown tables): 2026-03-02 is a Monday.
    assert "- 启动：3月2日(周一) 至 " in said.text and "|" not in said.text
    project = await chat.project()
    assert project.name == "智慧工厂 MES 一期" and project.customer == "某某制造"
    assert project.status == ProjectStatus.DRAFT and project.current_phase == "启动"
    assert project.pm_user_id == PEOPLE["pm"].user_id and project.planned_start == date(2026, 3, 2)
    phases = await chat.rows(Phase)
    assert [p.name for p in phases] == ["启动", "规划", "执行", "监控", "收尾"]
    deliverables = await chat.rows(Deliverable)
    assert deliverables[0].name == "商务合同" and deliverables[-1].name == "纸质资料存档"
    assert all(CALENDAR.is_workday(d.due_date) for d in deliverables if d.due_date)
    assert [m.role for m in await chat.rows(ProjectMember)] == ["项目经理"]
    assert (await chat.rows(User, User.user_id == PEOPLE["pm"].user_id))[0].name == "张经理"
    assert await chat.audit_actions() == ["project.create"]


async def test_new_project_with_dates_and_another_type(chat: Chat) -> None:
    said = await chat.say("pm", "新建项目 仓储RFID 客户:某某物流 类型:设备 经理:@张经理 开始:2026-09-28 结束:2026年12月31日",
                          mentions=["pm"])
    assert said.outcome == "ok" and "已按结束日期缩放工期" in said.text
    project = await chat.project()
    assert project.template == "设备系统类项目"
    assert project.planned_start == date(2026, 9, 28) and project.planned_end == date(2026, 12, 31)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("新建项目 智慧工厂 客户:某某 类型:园艺 经理:@张经理", "没有名为「园艺」的项目类型。可选：设备系统类项目（设备、设备项目）、技改项目"),
        ("新建项目 智慧工厂 客户:某某 类型:软件 经理:@张经理 开始:2026-02-30", "日期不存在"),
        ("新建项目 智慧工厂 客户:某某 类型:软件 经理:@张经理 开始:2026-05-01 结束:2026-04-01", "早于开始日期"),
        ("新建项目 智慧工厂 客户:某某 类型:软件 经理:@张经理 开始:2026-03-02 结束:2026-03-03", "工期过短"),
        ("新建项目 智慧工厂 客户:某某 类型:软件", "缺少必填参数「经理」"),
        ("新建项目 客户:某某 类型:软件 经理:@张经理", "缺少必填参数「名称」"),
        ("新建项目 " + "很长的名字" * 30 + " 客户:某某 类型:软件 经理:@张经理", "「名称」太长了"),
        ("新建项目 智慧工厂 客户:某某 类型:软件 经理:@张经理 预算:100万", "未知参数「预算」"),
    ],
)
async def test_new_project_refuses_bad_input_with_the_right_usage(chat: Chat, text: str, answer: str) -> None:
    said = await chat.say("pm", text, mentions=["pm"] if "@" in text else [])
    assert said.outcome == "usage_error"
    assert answer in said.text
    assert "例如：新建项目 智慧工厂MES 客户:某某制造 类型:软件 经理:@张三" in said.text
    assert await chat.rows(Project) == [] and await chat.audit_actions() == []


async def test_lists_and_my_projects(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "新建项目 仓储二期 客户:某某物流 类型:技改 经理:@张经理", group=None, mentions=["pm"])
    listed = await chat.say("stranger", "项目列表", group=None)
    assert "XM-2026-001" in listed.text and "XM-2026-002" in listed.text and "技改" not in listed.text
    mine = await chat.say("engineer", "我的项目", group=None)
    assert "XM-2026-001" in mine.text and "XM-2026-002" not in mine.text and "我是实施工程师" in mine.text
    # A client contact sees only their own projects, and never the list in the client group.
    client = await chat.say("client", "项目列表", group=None)
    assert "XM-2026-001" in client.text and "XM-2026-002" not in client.text
    refused = await chat.say("client", "项目列表", group=CLIENT_GROUP)
    assert refused.outcome == "denied" and "客户群里不显示" in refused.text
    nobody = await chat.say("stranger", "我的项目", group=None)
    assert "你还没有参与任何项目" in nobody.text


async def test_overview_shows_phase_progress_overdue_and_next_milestones(chat: Chat) -> None:
    code = await new_project(chat)
    await chat.say("pm", "立项")
    chat.clock.advance(timedelta(days=8))  # Tuesday 10 March: the first documents are late
    said = await chat.say("pm", "项目")
    assert said.outcome == "ok"
    text = said.text
    assert f"#### {code} 智慧工厂MES" in text and "状态：**已立项**" in text and "当前阶段：**启动**" in text
    assert "进度：0%（必交交付物 0/34）" in text
    assert "⚠️ 逾期 4 项" in text and "商务合同（启动）李拓展，应于 3月2日(周一)，逾期 6 个工作日" in text
    assert "接下来" in text and "需求调研报告" in text
    # Issue 12: the client group gets the client's view: the same progress, how many are late, but not the internal
    # details (which internal document, whose), whoever asks there.
    for who in ("client", "pm"):
        client = (await chat.say(who, "项目", group=CLIENT_GROUP)).text
        assert f"#### {code} 智慧工厂MES" in client and "进度：0%（必交交付物 0/34）" in client
        assert "逾期交付物：4 项" in client and "商务合同" not in client and "李拓展" not in client
        assert "接下来" in client and "需求调研报告" in client and "内部群" not in client


async def test_overview_by_code_checks_the_named_project(chat: Chat) -> None:
    code = await new_project(chat)
    assert "智慧工厂MES" in (await chat.say("engineer", f"项目 {code.lower()}", group=None)).text
    unknown = await chat.say("engineer", "项目 XM-2026-999", group=None)
    assert unknown.outcome == "not_found" and "未找到项目「XM-2026-999」" in unknown.text
    denied = await chat.say("stranger", f"项目 {code}", group=None)
    assert denied.outcome == "denied" and "只有项目组成员和客户联系人" in denied.text
    assert (await chat.say("leader", f"项目 {code}", group=None)).outcome == "ok"  # 领导 from the config


async def test_binding_a_group(chat: Chat) -> None:
    code = await new_project(chat, bind=False, team=False)
    in_private = await chat.say("pm", f"绑定 {code} 内部群", group=None)
    assert in_private.outcome == "user_error" and "请在要绑定的群里" in in_private.text
    bound = await chat.say("pm", f"绑定 {code} 内部群", group=INTERNAL)
    assert bound.outcome == "ok" and "提醒和状态变更会发到这里" in bound.text
    assert (await chat.say("pm", f"绑定 {code} 内部群", group=INTERNAL)).text.startswith("本群已是项目")
    same_group = await chat.say("pm", f"绑定 {code} 客户群", group=INTERNAL)
    assert same_group.outcome == "conflict" and "不能是同一个群" in same_group.text
    await chat.say("pm", "新建项目 二期 客户:某某 类型:软件 经理:@张经理", group=None, mentions=["pm"])
    taken = await chat.say("pm", "绑定 XM-2026-002 内部群", group=INTERNAL)
    assert taken.outcome == "conflict" and f"本群已绑定项目 {code}" in taken.text
    denied = await chat.say("engineer", f"绑定 {code} 客户群", group=CLIENT_GROUP)
    assert denied.outcome == "denied"
    assert "只有项目经理（或领导、项目管理员）可以绑定项目群" in denied.text and "无（不是本项目成员）" in denied.text
    assert (await chat.say("pm", f"绑定 {code} 客户群", group=CLIENT_GROUP)).outcome == "ok"
    moved = await chat.say("pm", f"绑定 {code} 内部群", group=OTHER_GROUP)
    assert "原来绑定的群已解除" in moved.text
    project = await chat.project(code)
    assert (project.internal_conversation_id, project.client_conversation_id) == (OTHER_GROUP, CLIENT_GROUP)
    # The client-group binding was announced in the internal group of the time, through the outbox.
    keys = [row.idempotency_key for row in await chat.rows(OutboxMessage)]
    assert f"project-bound:{code}:client_conversation_id:{CLIENT_GROUP}" in keys


async def test_in_a_bound_group_commands_default_to_its_project(chat: Chat) -> None:
    code = await new_project(chat)
    said = await chat.say("engineer", "交付物")
    assert said.outcome == "ok" and f"{code} 交付物（启动）" in said.text and "未指定项目" not in said.text
    unbound = await chat.say("engineer", "交付物", group=OTHER_GROUP)
    assert unbound.outcome == "user_error" and "需要先指定项目" in unbound.text and "项目:编号" in unbound.text


async def test_in_a_private_chat_the_last_project_is_used_and_said(chat: Chat) -> None:
    first = await new_project(chat)
    await chat.say("pm", "新建项目 二期 客户:某某 类型:设备 经理:@张经理", group=None, mentions=["pm"])
    # The PM created the second project last: a private command without a code works on it, and says so.
    said = await chat.say("pm", "交付物", group=None)
    assert said.outcome == "ok" and "XM-2026-002 交付物" in said.text
    assert "未指定项目，使用你最近操作的项目 XM-2026-002「二期」" in said.text
    named = await chat.say("pm", f"交付物 项目:{first}", group=None)
    assert f"{first} 交付物" in named.text and "未指定项目" not in named.text
    assert "XM-2026-001 交付物" in (await chat.say("pm", "交付物", group=None)).text  # now the last one
    # The engineer is only in the first project: that one, without asking.
    assert f"{first} 交付物" in (await chat.say("engineer", "交付物", group=None)).text
    lost = await chat.say("stranger", "交付物", group=None)
    assert lost.outcome == "user_error" and "需要先指定项目" in lost.text


async def test_weekly_report_and_documents_resolve_their_project_like_every_project_command(chat: Chat) -> None:
    """周报 预览, 周报 发送 and 文档 go through the same project middleware: in a 1:1 chat they work on the sender's
    last project, say which one, and remember the one named by 项目:编号."""
    first = await new_project(chat)
    await chat.say("pm", "新建项目 二期 客户:某某 类型:设备 经理:@张经理", group=None, mentions=["pm"])
    note = "未指定项目，使用你最近操作的项目 XM-2026-002「二期」"
    preview = await chat.say("pm", "周报 预览", group=None)
    assert preview.outcome == "ok" and note in preview.text and preview.replies[0].title.startswith("【预览】")
    document = await chat.say("pm", "文档 项目立项申请表", group=None)
    assert document.outcome == "ok" and note in document.text and len(document.files) == 1
    named = await chat.say("pm", f"文档 项目立项申请表 项目:{first}", group=None)
    assert named.outcome == "ok" and "未指定项目" not in named.text and len(named.files) == 1
    # Named by 项目:编号, then 立项 in its group: the first project is the PM's last one, and 周报 发送 uses it.
    assert (await chat.say("pm", "立项", group=INTERNAL)).outcome == "ok"
    sent = await chat.say("pm", "周报 发送", group=None)
    assert sent.outcome == "ok" and f"未指定项目，使用你最近操作的项目 {first}" in sent.text
    assert (await chat.say("stranger", "周报 预览", group=None)).outcome == "user_error"


async def test_projects_by_name_and_ambiguous_names(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "新建项目 智慧工厂WMS 客户:某某 类型:软件 经理:@张经理", group=None, mentions=["pm"])
    by_name = await chat.say("pm", "交付物 项目:智慧工厂WMS", group=None)
    assert "XM-2026-002 交付物" in by_name.text
    ambiguous = await chat.say("pm", "交付物 项目:智慧工厂", group=None)
    assert ambiguous.outcome == "user_error"
    assert "「智慧工厂」对应多个项目：XM-2026-001「智慧工厂MES」、XM-2026-002「智慧工厂WMS」" in ambiguous.text
    unknown = await chat.say("pm", "交付物 项目:不存在的项目", group=None)
    assert unknown.outcome == "not_found" and "未找到项目「不存在的项目」" in unknown.text


async def test_a_plan_reaching_into_2027_avoids_its_holidays_and_says_they_are_estimated(chat: Chat) -> None:
    """Started on 2026-12-07 (a Monday): the first due dates fall in January 2027, and the plan runs through 春节."""
    said = await chat.say("pm", "新建项目 智慧工厂MES 客户:某某制造 类型:软件 经理:@张经理 开始:2026-12-07", mentions=["pm"])
    assert said.outcome == "ok"
    caveat = "注意：2027 年的官方放假安排尚未导入，其中的日期按法定节日推算、未计调休上班日"
    assert said.text.count(caveat) == 1 and "dingpm calendar import" in said.text
    dues = [d.due_date for d in await chat.rows(Deliverable) if d.due_date is not None]
    assert dues and max(dues) > date(2027, 2, 11)
    spring_festival = {date(2027, 1, 1), *(date(2027, 2, d) for d in range(5, 11))}
    assert not spring_festival & set(dues)
    assert all(due.weekday() < 5 for due in dues)
    await chat.say("pm", f"绑定 {said.text.split('已新建项目 ')[1].split()[0]} 内部群")
    moved = await chat.say("pm", "计划 商务合同 截止:2027-02-08")
    assert "2027年2月8日(周一) 不是工作日，已顺延到 2027年2月11日(周四)" in moved.text
    assert moved.text.count(caveat) == 1
    within_2026 = await chat.say("pm", "计划 商务合同 截止:2026-12-10")
    assert within_2026.outcome == "ok" and "注意" not in within_2026.text


async def test_full_width_colons_and_quotes_wherever_a_colon_is_accepted(chat: Chat) -> None:
    code = await new_project(chat)
    for typed in (f"项目：{code}", f"项目:{code}", f"项目 项目：{code}", f"项目 项目: {code}", f"概况：{code}"):
        said = await chat.say("engineer", typed, group=None)
        assert said.outcome == "ok" and said.text.startswith(f"#### {code} 智慧工厂MES"), typed
    for typed in (f"交付物 项目：{code}", f"交付物 项目：“{code}”", f"交付物 项目：「{code}」", f"交付物 项目＇{code}＇"):
        said = await chat.say("engineer", typed.replace("项目＇", "项目：＇"), group=None)
        assert said.outcome == "ok" and f"{code} 交付物" in said.text, typed
    logged = await chat.say("engineer", "日志：完成3号楼AP安装调试")
    formula = await chat.say("engineer", "问题 新增 =1+1")
    assert formula.outcome == "ok" and "问题#1：=1+1" in formula.text  # after a space the text is the user's
    assert logged.outcome == "ok"
    quoted = await chat.say("engineer", "日志 ＇客户说：下周验收＇ 已记录")
    assert quoted.outcome == "ok"
    from storage.models import RegisterEntry, RegisterKind
    logs = await chat.rows(RegisterEntry, RegisterEntry.kind == RegisterKind.LOG)
    assert [e.title for e in logs] == ["完成3号楼AP安装调试", "客户说：下周验收 已记录"]
    risk = await chat.say("pm", "风险 新增 到货晚 概率：高 影响：中 应对：减轻 负责人：@王工", mentions=["engineer"])
    assert risk.outcome == "ok" and "概率高、影响中，应对：减轻" in risk.text
