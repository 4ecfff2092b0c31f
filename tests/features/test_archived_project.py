"""归档 closes a project for good: it checks completeness first, then nothing invites changes (the overview says
已归档, no 「推进」 or 「提交」 hints) and every command that would change something is refused in Chinese."""

from __future__ import annotations

import re

from storage.models import AuditLog, Deliverable, DeliverableStatus, ProjectStatus

from .conftest import PEOPLE, Chat, new_project
from .test_closing import to_closing_phase

SIGNED = b"%PDF-1.7 signed acceptance form"
# Commands that only read, or make something from the project without changing it, stay available.
READERS = {"帮助", "项目列表", "我的项目", "项目", "交付物", "暂存文件", "审批", "文档", "导出", "周报 预览",
           "问题 列表", "需求 列表", "风险 列表", "变更 列表", "升级 列表"}
# Commands that do not work on an existing project.
ELSEWHERE = {"新建项目"}


async def archived(chat: Chat) -> str:
    code = await to_closing_phase(chat)
    await chat.send_file("pm", "验收确认单-签字.pdf", SIGNED)
    assert (await chat.say("pm", "验收")).outcome == "ok"
    assert (await chat.say("pm", "交接 @孙售后", mentions=["after_sales"])).outcome == "ok"
    done = await chat.say("pm", "归档 豁免 原因:过程文档与纸质资料已线下移交")
    assert done.outcome == "ok", done.text
    return code


async def test_archive_waives_the_gaps_with_the_reason(chat: Chat) -> None:
    await archived(chat)
    waived = await chat.rows(Deliverable, Deliverable.status == DeliverableStatus.WAIVED)
    assert {d.name for d in waived} == {"实施过程文档", "复盘记录", "纸质资料存档"}
    assert {d.waiver_reason for d in waived} == {"归档时豁免：过程文档与纸质资料已线下移交"}
    [archive] = await chat.rows(AuditLog, AuditLog.action == "project.archive")
    assert sorted(archive.after["waived"]) == sorted(d.name for d in waived)
    assert archive.after["reason"] == "过程文档与纸质资料已线下移交"


async def test_archive_asks_for_a_reason_to_waive(chat: Chat) -> None:
    await new_project(chat)
    for text in ("归档 豁免", "归档 原因:不需要了"):
        said = await chat.say("pm", text)
        assert said.outcome == "usage_error" and "例如：归档 豁免 原因:" in said.text


async def test_the_overview_and_lists_invite_nothing(chat: Chat) -> None:
    code = await archived(chat)
    overview = await chat.say("pm", "项目")
    assert "- 状态：**已归档**（项目已关闭，只能查看）" in overview.text
    assert "推进" not in overview.text and "「提交" not in overview.text
    listing = await chat.say("engineer", "交付物 全部")
    assert listing.outcome == "ok" and "项目已归档关闭，交付物只能查看。" in listing.text
    assert "「提交" not in listing.text
    sent = await chat.send_file("engineer", "补充资料.docx", b"PK\x03\x04 late")
    assert sent.outcome == "conflict" and f"{code}「智慧工厂MES」已归档关闭，不能再修改" in sent.text
    assert "「提交" not in sent.text and "要提交为哪个交付物" not in sent.text


async def test_every_changing_command_is_refused(chat: Chat) -> None:
    await archived(chat)
    before = len(await chat.rows(AuditLog))
    tried = 0
    for command in chat.dispatcher.commands.commands:
        if command.reads_only or command.name in READERS | ELSEWHERE:
            continue
        who = "leader" if command.name in ("变更 批准", "变更 驳回") else "pm"
        # Whoever the example names is 王工, a member.
        text, people = re.subn(r"@[^\s:：]+", f"@{PEOPLE['engineer'].nick}", command.examples[0])
        said = await chat.say(who, text, mentions=["engineer"] * people)
        tried += 1
        assert said.outcome in ("conflict", "user_error", "usage_error", "denied"), (command.name, said.text)
        assert "已归档" in said.text, (command.name, said.text)
    assert tried >= 25
    # And the usual ones, as people type them.
    for text in ("提交 接口说明文档 https://example.com/api", "日志 还想记一笔", "问题 新增 新问题", "推进", "立项",
                 "计划 接口说明文档 截止:2026-12-01", "项目 设置 合同编号:X", "周报 发送", "暂停 原因:无", "恢复", "归档"):
        said = await chat.say("pm", text)
        assert said.outcome == "conflict" and "已归档关闭，不能再修改" in said.text, (text, said.text)
    assert len(await chat.rows(AuditLog)) == before  # nothing changed
    assert (await chat.project()).status == ProjectStatus.CLOSED
