"""The lifecycle fixes of issue 13, each through the sandbox with the real App: a file never filed under an old
wait; a change's 工期 moving the remaining dates once both leaders approve; issue severity and client help reaching
the client weekly report (with the company, the PM, the status colour and the overview's figures) and the
exported 项目登记表."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
from sqlmodel import select

from lifecycle_chat import (
    CLIENT,
    ENGINEER,
    INTERNAL,
    PM,
    LifecycleChat,
    approve,
    approved_project,
    create_project,
    running_instance,
)
from storage.models import Deliverable, DeliverableVersion, Phase
from storage.workdays import WorkCalendar
from tests.docx_text import docx_text

pytestmark = [pytest.mark.timeout(120)]


async def _versions(chat: LifecycleChat, code: str, name: str) -> list[DeliverableVersion]:
    project = await chat.project(code)
    async with chat.app.database.read() as session:
        [item] = (await session.exec(select(Deliverable).where(Deliverable.project_id == project.id,
                                                               Deliverable.name == name))).all()
        return list((await session.exec(select(DeliverableVersion)
                                        .where(DeliverableVersion.deliverable_id == item.id))).all())


async def test_a_later_file_is_never_filed_under_an_old_wait(chat: LifecycleChat) -> None:
    code = await create_project(chat, "软件", "智慧工厂MES")
    waiting = await chat.ask(ENGINEER, INTERNAL, "提交 问题记录表")
    assert "请在 30 分钟内在这里发送《问题记录表》的文件（10:30 前有效）" in waiting.text
    linked = await chat.ask(ENGINEER, INTERNAL, "提交 问题记录表 链接:https://space.dingtalk.com/s/issues")
    assert "已提交《问题记录表》第 1 版（链接" in linked.text
    later = await chat.upload(ENGINEER, INTERNAL, "项目验收确认单-签字.docx", b"PK\x03\x04 signed")
    assert "要提交为哪个交付物" in later.text and "已提交" not in later.text
    assert len(await _versions(chat, code, "问题记录表")) == 1
    # And a wait that is still open does not take a file named for another document.
    await chat.ask(ENGINEER, INTERNAL, "提交 需求调研报告")
    wrong = await chat.upload(ENGINEER, INTERNAL, "上线确认单-签字.pdf", b"%PDF signed")
    assert wrong.text.startswith("你在等待《需求调研报告》的文件（10:30 前有效），但这个文件名看起来是《上线确认单》")
    assert await _versions(chat, code, "需求调研报告") == []


async def test_an_approved_change_moves_the_remaining_dates(approving_chat: LifecycleChat) -> None:
    chat = approving_chat
    code = await approved_project(chat)
    project = await chat.project(code)
    async with chat.app.database.read() as session:
        before = {d.name: d.due_date for d in (await session.exec(
            select(Deliverable).where(Deliverable.project_id == project.id))).all()}
        execution = (await session.exec(select(Phase).where(Phase.project_id == project.id,
                                                            Phase.name == "执行"))).one()

    asked = await chat.ask(ENGINEER, INTERNAL, "变更 申请 增加移动端审核功能 目的:领导要在手机上审批 "
                                              "影响:增加费用3万元 工期:+10 从:执行")
    assert "已提交变更申请：变更#1" in asked.text and "自「执行」阶段起顺延：工期延后 10 个工作日" in asked.text
    instance = await running_instance(chat)
    values = {v["name"]: v["value"] for v in (await chat.sandbox.instance(instance))["formComponentValues"]}
    assert values["变更事项"] == "增加移动端审核功能" and values["目的"] == "领导要在手机上审批"
    assert values["时间"] == "工期延后 10 个工作日，自「执行」阶段起" and values["影响"] == "增加费用3万元"

    announced = await approve(chat, "变更申请审批通过", ("同意", "同意，注意成本"))
    assert "工期延后 10 个工作日（自「执行」阶段起），已调整" in announced.text
    assert "- 「执行」阶段（计划完成）：" in announced.text and "- 《接口说明文档》：" in announced.text
    calendar = WorkCalendar()
    async with chat.app.database.read() as session:
        after = {d.name: d.due_date for d in (await session.exec(
            select(Deliverable).where(Deliverable.project_id == project.id))).all()}
    assert after["接口说明文档"] == calendar.shift(before["接口说明文档"], 10)
    assert after["需求规格说明书"] == before["需求规格说明书"]  # due before 执行 starts
    assert all(after[n] == (calendar.shift(d, 10) if d and d >= execution.planned_start else d)
               for n, d in before.items() if n not in ("项目立项申请表",))


async def test_issues_reach_the_client_report_and_the_export(approving_chat: LifecycleChat) -> None:
    chat = approving_chat
    code = await approved_project(chat)
    added = await chat.ask(ENGINEER, INTERNAL, "问题 新增 医保目录编码缺失 严重程度:高 需客户协助:是")
    assert "严重程度高，需客户协助（会列入客户项目周报）" in added.text
    await chat.ask(ENGINEER, INTERNAL, "问题 新增 报表导出乱码 严重程度:低")
    overview = await chat.ask(PM, INTERNAL, "项目")
    figures = re.search(r"必交交付物 (\d+/\d+)）　全部交付物 已提交 (\d+/\d+)", overview.text)
    assert figures, overview.text

    client_before = chat.last_seq(CLIENT)
    await chat.ask(PM, INTERNAL, "周报 发送", replies=3)
    report = await chat.wait_for(CLIENT, "客户项目周报", after=client_before)
    text = report.text
    assert "- 实施方：示例数智科技有限公司" in text and f"- 项目经理：{PM}" in text
    assert "- 项目状态：🟢 正常" in text
    assert f"（必交交付物 {figures.group(1)}）" in text and f"全部交付物 已提交 {figures.group(2)}" in text
    section = text.split("四、需客户协助的问题与风险")[1].split("五、")[0]
    assert section.count("医保目录编码缺失") == 1 and "（严重程度高，打开，负责人" in section and "报表导出乱码" not in section
    [document] = [m for m in chat.since(CLIENT, client_before) if m.msgtype == "file"]
    body = docx_text(document.file_bytes)
    assert "示例数智科技有限公司" in body and "● 正常" in body and body.count("医保目录编码缺失") == 1

    exported = await chat.ask(ENGINEER, INTERNAL, "导出", replies=2)
    [workbook] = exported.files
    assert workbook.file_name == f"项目登记表_{code}.xlsx"
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.file_bytes))["问题记录表"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    header = rows[0]
    assert [dict(zip(header, r))["严重程度"] for r in rows[1:]] == ["高", "低"]
