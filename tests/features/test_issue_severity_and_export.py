"""问题 新增 … 严重程度:高 需客户协助:是: the severity fills the register's column, and the client weekly report's
section 四 lists only what needs the client, once; 导出 sends the 项目登记表 with every register into the chat."""

from __future__ import annotations

import io

import openpyxl

from reports.weekly import SECTION_CLIENT, SECTION_MILESTONES
from storage.models import RegisterEntry

from .conftest import CLIENT_GROUP, Chat, new_project


async def test_severity_and_client_help_are_kept_and_shown(chat: Chat) -> None:
    await new_project(chat)
    said = await chat.say("engineer", "问题 新增 医保目录编码缺失 严重程度:高 需客户协助:是")
    assert said.outcome == "ok"
    assert said.text == "已登记问题#1：医保目录编码缺失，严重程度高，需客户协助（会列入客户项目周报）。解决后发送「问题 关闭 1 解决方法」。"
    await chat.say("engineer", "问题 新增 报表导出乱码 严重程度:低 需客户协助:否")
    await chat.say("engineer", "问题 新增 登录慢")
    first, second, third = await chat.rows(RegisterEntry)
    assert first.extra == {"priority": "高", "needs_client": True}
    assert second.extra == {"priority": "低"} and third.extra is None
    listing = await chat.say("engineer", "问题 列表")
    assert "问题#1 医保目录编码缺失（打开，王工，严重程度高，需客户协助）" in listing.text
    assert "问题#2 报表导出乱码（打开，王工，严重程度低）" in listing.text
    bad = await chat.say("engineer", "问题 新增 另一个问题 严重程度:紧急")
    assert bad.outcome == "usage_error" and "「严重程度」应为 高、中、低 之一，收到「紧急」" in bad.text


async def test_the_client_report_lists_only_what_needs_the_client_once(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    await chat.say("engineer", "问题 新增 医保目录编码缺失 严重程度:高 需客户协助:是")
    await chat.say("engineer", "问题 新增 报表导出乱码 需客户协助:否")
    preview = await chat.say("pm", "周报 预览")
    section = preview.text.split(SECTION_CLIENT)[1].split(SECTION_MILESTONES)[0]
    assert section.count("医保目录编码缺失") == 1 and "（严重程度高，打开，负责人" in section and "**需贵方协助**" in section
    assert "报表导出乱码" not in section


async def test_export_sends_every_register_as_one_workbook(chat: Chat) -> None:
    code = await new_project(chat)
    await chat.say("engineer", "问题 新增 医保目录编码缺失 严重程度:高 需客户协助:是")
    await chat.say("pm", "风险 新增 接口文档迟迟未提供 概率:高 影响:中 应对:减轻")
    await chat.say("engineer", "日志 完成服务器部署")
    said = await chat.say("engineer", "登记簿 导出")
    assert said.outcome == "ok"
    assert said.text.startswith(f"项目 {code} 的项目登记表：问题记录表 1 条、需求跟踪表 0 条、风险登记 1 条")
    [workbook] = said.files
    assert workbook.name == f"项目登记表_{code}.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(workbook.data))
    assert book.sheetnames == ["项目信息", "问题记录表", "需求跟踪表", "风险登记", "变更记录", "升级记录表", "实施日志",
                               "工作计划", "会议记录"]
    issues = book["问题记录表"]
    header = [c.value for c in issues[1]]
    row = dict(zip(header, [c.value for c in issues[2]]))
    assert row["问题描述"] == "医保目录编码缺失" and row["严重程度"] == "高" and row["需客户协助"] == "是"
    assert row["详细说明"] is None  # a one-line issue is not printed twice
    assert (await chat.say("pm", "导出")).files[0].name == workbook.name
    refused = await chat.say("client", "导出", group=CLIENT_GROUP)
    assert refused.outcome in ("denied", "user_error") and not refused.files
    in_client_group = await chat.say("pm", "导出", group=CLIENT_GROUP)
    # Every internal command is refused in a client group by the one guard (issue 12), whoever asks.
    assert in_client_group.outcome == "denied" and not in_client_group.files
    assert "客户群里不显示内部内容" in in_client_group.text and "「导出」请在项目内部群" in in_client_group.text
