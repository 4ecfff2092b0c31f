"""问题, 需求, 风险, 变更, 升级, 日志, 下周计划, 会议: the standard's monitoring records."""

from __future__ import annotations

import io
import zipfile
from datetime import date

from storage.models import RegisterEntry, RegisterKind

from .conftest import CLIENT_GROUP, PEOPLE, Chat, new_project


async def entries(chat: Chat, kind: RegisterKind) -> list[RegisterEntry]:
    return await chat.rows(RegisterEntry, RegisterEntry.kind == kind)


async def test_issues_and_requirements(chat: Chat) -> None:
    await new_project(chat)
    said = await chat.say("engineer", "问题 新增 登录页面在IE11下空白\n客户科室电脑较旧 负责人:@王工 截止:周五",
                          mentions=["engineer"])
    assert said.outcome == "ok" and said.text.startswith("已登记问题#1：登录页面在IE11下空白。")
    [issue] = await entries(chat, RegisterKind.ISSUE)
    assert issue.content == "登录页面在IE11下空白\n客户科室电脑较旧" and issue.due_date == date(2026, 3, 6)
    assert issue.owner_user_id == PEOPLE["engineer"].user_id and issue.status == "打开"
    await chat.say("engineer", "问题 新增 报表导出乱码")
    no_resolution = await chat.say("engineer", "问题 关闭 1")
    assert no_resolution.outcome == "usage_error" and "缺少必填参数「解决方法」" in no_resolution.text
    closed = await chat.say("engineer", "问题 关闭 #1 升级浏览器兼容补丁")
    assert closed.outcome == "ok" and "已关闭问题#1「登录页面在IE11下空白」，升级浏览器兼容补丁。" == closed.text
    again = await chat.say("engineer", "问题 关闭 1 再关一次")
    assert again.outcome == "conflict" and "问题#1 已经是「已关闭」了" in again.text
    missing = await chat.say("engineer", "问题 关闭 7 无")
    assert missing.outcome == "not_found" and "本项目没有问题#7。发送「问题 列表」查看编号。" in missing.text
    bad = await chat.say("engineer", "问题 关闭 第一个 无")
    assert bad.outcome == "usage_error" and "编号应为数字" in bad.text
    listed = await chat.say("client", "问题 列表", group=CLIENT_GROUP)
    assert "问题#2 报表导出乱码（打开，王工）" in listed.text and "问题#1" not in listed.text
    everything = await chat.say("client", "问题 列表 全部", group=CLIENT_GROUP)
    assert "问题#1 登录页面在IE11下空白（已关闭" in everything.text
    client_add = await chat.say("client", "问题 新增 我们也想登记", group=CLIENT_GROUP)
    assert client_add.outcome == "denied"

    await chat.say("engineer", "需求 新增 报表增加按科室导出 截止:2026-05-29")
    done = await chat.say("engineer", "需求 完成 1 已在 v2.3 上线")
    assert done.text == "已完成需求#1「报表增加按科室导出」，已在 v2.3 上线。"
    [requirement] = await entries(chat, RegisterKind.REQUIREMENT)
    assert requirement.status == "已完成" and requirement.closed_at is not None
    assert "没有未关闭的需求跟踪记录" in (await chat.say("pm", "需求 列表")).text


async def test_risks_and_changes(chat: Chat) -> None:
    await new_project(chat)
    said = await chat.say("pm", "风险 新增 客户接口文档迟迟未提供 概率:高 影响:中 应对:减轻 措施:每周催办")
    assert said.outcome == "ok" and "概率高、影响中，应对：减轻（高风险，请在周会上跟踪）" in said.text
    [risk] = await entries(chat, RegisterKind.RISK)
    assert (risk.probability, risk.impact, risk.response) == ("高", "中", "减轻")
    assert risk.extra == {"措施": "每周催办"}
    wrong = await chat.say("pm", "风险 新增 服务器到货晚 概率:很高 影响:中 应对:减轻")
    assert wrong.outcome == "usage_error" and "「概率」应为 高、中、低 之一，收到「很高」" in wrong.text
    missing = await chat.say("pm", "风险 新增 服务器到货晚 概率:高")
    assert missing.outcome == "usage_error" and "缺少必填参数「影响」" in missing.text
    assert len(await entries(chat, RegisterKind.RISK)) == 1
    assert "风险#1 客户接口文档迟迟未提供（打开，张经理，概率高/影响中，减轻）" in (await chat.say("pm", "风险 列表")).text
    assert (await chat.say("client", "风险 列表", group=CLIENT_GROUP)).outcome == "denied"
    assert "已关闭风险#1" in (await chat.say("pm", "风险 关闭 1 客户已提供")).text

    change = await chat.say("engineer", "变更 申请 增加移动端审核功能 影响:工期延后10个工作日")
    assert change.outcome == "ok" and "已登记变更#1：增加移动端审核功能（待审批）" in change.text
    [entry] = await entries(chat, RegisterKind.CHANGE)
    # The 影响 states a 工期 in working days: it is read as the change's 工期 (dates move once it is approved).
    assert entry.status == "待审批" and entry.extra == {"影响": "工期延后10个工作日", "工期": 10}
    assert "批准后，未完成的截止日期自批准之日起顺延：工期延后 10 个工作日（按影响中的「工期延后 10 个工作日」）。" in change.text
    no_impact = await chat.say("engineer", "变更 申请 再加一个功能")
    assert no_impact.outcome == "usage_error" and "缺少必填参数「影响」" in no_impact.text
    assert "变更#1 增加移动端审核功能（待审批" in (await chat.say("pm", "变更 列表")).text


async def test_without_oa_approvals_a_leader_records_the_offline_decision_and_the_change_is_then_done(
        chat: Chat) -> None:
    await new_project(chat)
    asked = await chat.say("engineer", "变更 申请 增加移动端审核功能 影响:工期延后10个工作日")
    assert "「变更 批准 1」" in asked.text  # the answer says how the decision gets recorded
    await chat.say("engineer", "变更 申请 再增加一套报表 影响:费用增加2万元")
    early = await chat.say("engineer", "变更 完成 1 已上线")
    assert early.outcome == "conflict" and "只有审批通过的变更才能执行和完成" in early.text
    assert (await chat.say("engineer", "变更 批准 1")).outcome == "denied"  # members cannot approve
    approved = await chat.say("leader", "变更 批准 1")
    assert approved.outcome == "ok" and "线下审批通过，可以执行" in approved.text
    rejected = await chat.say("admin", "变更 驳回 2 原因:费用超出合同范围")
    assert rejected.outcome == "ok" and "线下审批驳回：费用超出合同范围" in rejected.text
    again = await chat.say("leader", "变更 驳回 1 原因:改主意了")
    assert again.outcome == "conflict" and "当前为「已批准」" in again.text
    no_reason = await chat.say("leader", "变更 驳回 1")
    assert no_reason.outcome == "usage_error" and "缺少必填参数「原因」" in no_reason.text
    done = await chat.say("engineer", "变更 完成 1 移动端审核功能已上线")
    assert done.outcome == "ok" and "已完成变更#1" in done.text
    first, second = await entries(chat, RegisterKind.CHANGE)
    assert (first.status, second.status) == ("已完成", "已驳回")
    assert second.resolution == "线下审批驳回（周管理员 登记）：费用超出合同范围"
    assert "没有未关闭的变更记录" in (await chat.say("pm", "变更 列表")).text
    assert "register.decide" in await chat.audit_actions()


async def test_upgrades_produce_the_notice_or_the_confirmation(chat: Chat) -> None:
    code = await new_project(chat)
    notice = await chat.say("engineer", "升级 v2.4.0 常规性能优化")
    assert notice.outcome == "ok" and "已登记升级记录#1：v2.4.0 常规性能优化。通知单如下" in notice.text
    [document] = notice.files
    assert document.name == f"系统升级通知单_{code}_v2.4.0.docx"
    with zipfile.ZipFile(io.BytesIO(document.data or b"")) as docx:
        body = docx.read("word/document.xml").decode("utf-8")
    assert "系统升级通知单" in body and "v2.4.0" in body and "某某制造" in body
    confirmation = await chat.say("engineer", "升级 v2.3.1 修复报表导出乱码 确认")
    assert confirmation.files[0].name == f"系统升级确认单_{code}_v2.3.1.docx"
    upgrades = await entries(chat, RegisterKind.UPGRADE)
    assert [(u.version, u.title, u.extra) for u in upgrades] == [
        ("v2.4.0", "常规性能优化", {"related_to_client": False}),
        ("v2.3.1", "修复报表导出乱码", {"related_to_client": True}),
    ]
    assert "升级记录#2 修复报表导出乱码" in (await chat.say("pm", "升级 列表")).text
    empty = await chat.say("engineer", "升级 v9 确认")
    assert empty.outcome == "usage_error" and "请写出升级内容" in empty.text


async def test_logs_plans_and_meetings(chat: Chat) -> None:
    await new_project(chat)
    log = await chat.say("engineer", "日志 完成3号楼AP安装调试，培训操作员12人")
    assert log.text == "已记录 3月2日(周一) 的实施日志（日志#1），会出现在本周周报的「本周完成」里。"
    plan = await chat.say("engineer", "下周计划 完成数据接口联调")
    assert "下周计划（计划#1）" in plan.text
    [entry] = await entries(chat, RegisterKind.PLAN)
    assert entry.due_date == date(2026, 3, 13)
    meeting = await chat.say("pm", "会议 内部启动会 明确目标、范围和里程碑；王工负责接口")
    assert meeting.text == "已记录内部启动会纪要（会议记录#1）。"
    odd = await chat.say("pm", "会议 茶话会 聊了聊")
    assert "常用类型" in odd.text
    [first, _] = await entries(chat, RegisterKind.MEETING)
    assert first.meeting_type == "内部启动会" and first.content == "明确目标、范围和里程碑；王工负责接口"
    missing = await chat.say("pm", "会议 周会")
    assert missing.outcome == "usage_error" and "缺少必填参数「纪要」" in missing.text
    too_long = await chat.say("engineer", "日志 " + "很" * 2001)
    assert too_long.outcome == "usage_error" and "「内容」太长了（2001 字），最多 2000 字" in too_long.text
    assert len(await entries(chat, RegisterKind.LOG)) == 1
