"""What users type reaches others inert, end to end through the sandbox: the client group's markdown (a project named
like a link, logs and issues carrying links, images, headings, @所有人, HTML), the registers workbook and the audit
CSV in the archive the bot produces (formula payloads), and a program sent as a PDF."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from lifecycle_chat import (
    CLIENT,
    ENGINEER,
    INTERNAL,
    LIFECYCLE_FEATURES,
    PM,
    LifecycleChat,
    emulator_config,
    start_lifecycle_app,
)

from domain.archive_service import archive_command
from handlers import weekly_reports
from sandbox.harness import Sandbox

pytestmark = [pytest.mark.timeout(120)]

LINK_NAME = "[官方补偿链接](http://evil.example/phish)"
MARKDOWN_PAYLOADS = [
    "[官方补偿链接](http://evil.example/phish)",
    "![二维码](http://evil.example/qr.png)",
    "# 紧急通知 @所有人 请点击 www.evil.com/login",
    '<a href="http://evil.example">点我领取</a> **加粗**',
]
FORMULA_PAYLOADS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example","点我")', "+1+1 报表", "-2+3 接口",
                    "@SUM(A1:A2) 数据"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
async def chat(tmp_path: Path, loop_watch):
    async with Sandbox(config=emulator_config(), seed=20240601) as sandbox:
        app = await start_lifecycle_app(sandbox, tmp_path, (*LIFECYCLE_FEATURES, weekly_reports.feature))
        try:
            yield LifecycleChat(sandbox, app, tmp_path / "files")
        finally:
            await asyncio.wait_for(app.stop(), 30)


def _no_live_markup(markdown: str) -> None:
    """No markdown link or image, heading, HTML tag, bare URL or @所有人 made from the payloads."""
    assert "](" not in markdown and "http://evil" not in markdown and "www.evil" not in markdown
    assert "<a " not in markdown and "@所有人" not in markdown
    assert not re.search(r"^\s*#+ 紧急通知", markdown, re.MULTILINE)


async def test_user_text_reaches_the_client_group_the_workbook_and_the_audit_csv_inert(chat: LifecycleChat,
                                                                                       tmp_path: Path) -> None:
    created = await chat.ask(PM, INTERNAL, f"新建项目 {LINK_NAME} 客户:华东某制造集团 类型:软件 经理:@{PM}")
    code = re.search(r"XM-\d{4}-\d{3}", created.text).group(0)
    _no_live_markup(created.text)
    assert "[官方补偿链接]\u200b(http:\u200b//evil.\u200bexample/phish)" in created.text  # shown, not linked
    await chat.ask(PM, INTERNAL, f"绑定 {code} 内部群")
    await chat.ask(PM, CLIENT, f"绑定 {code} 客户群")
    await chat.ask(PM, INTERNAL, f"成员 添加 @{ENGINEER} 实施工程师")
    assert "已立项" in (await chat.ask(PM, INTERNAL, "立项")).text
    for payload in MARKDOWN_PAYLOADS + FORMULA_PAYLOADS:
        assert (await chat.ask(ENGINEER, INTERNAL, f"日志 {payload}")).messages
    for payload in FORMULA_PAYLOADS:
        assert "已登记问题" in (await chat.ask(ENGINEER, INTERNAL, f"问题 新增 {payload}")).text

    # The client group: the weekly report's markdown lists this week's logs and the open issues.
    client_before = chat.last_seq(CLIENT)
    await chat.ask(PM, INTERNAL, "周报 发送")
    await asyncio.wait_for(chat.app.scheduler.wait_idle(), 60)  # the report is rendered after the command
    await chat.app.relay.wait_idle(30)
    report = next(m for m in chat.since(CLIENT, client_before) if m.msgtype == "markdown")
    _no_live_markup(report.text)
    assert "[官方补偿链接]\u200b(http:\u200b//evil.\u200bexample/phish)" in report.text
    assert report.text.count("[官方补偿链接]\u200b(http:\u200b//evil.\u200bexample/phish)") >= 2  # name and a log
    assert "![二维码]\u200b(http:\u200b//evil.\u200bexample/qr.\u200bpng)" in report.text
    overview = await chat.ask(PM, None, f"项目 {code}")
    _no_live_markup(overview.text)

    # The archive the bot produces: the registers workbook keeps every payload as text, the audit CSV too.
    config = chat.app.config
    out = tmp_path / "archive.zip"
    assert await archive_command(config, code, out, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        workbook_name = next(n for n in names if n.endswith(".xlsx"))
        workbook = openpyxl.load_workbook(io.BytesIO(archive.read(workbook_name)))
        for sheet in workbook.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
        issues = [c.value for c in workbook["问题记录表"]["B"][1:]]
        logs = [c.value for c in workbook["实施日志"]["D"][1:]]
        assert issues == FORMULA_PAYLOADS and set(FORMULA_PAYLOADS) <= set(logs)
        assert all(workbook["问题记录表"][f"B{row}"].quotePrefix for row in range(2, 2 + len(FORMULA_PAYLOADS)))
        assert workbook["项目信息"]["B2"].value == LINK_NAME
        audit_name = next(n for n in names if n.endswith(".csv"))
        rows = list(csv.reader(io.StringIO(archive.read(audit_name).decode("utf-8-sig"), newline="")))
    assert len(rows) > 10
    assert not [cell for row in rows for cell in row if cell.startswith(FORMULA_START)]


async def test_a_program_named_pdf_is_refused_and_nothing_is_kept(chat: LifecycleChat) -> None:
    created = await chat.ask(PM, INTERNAL, f"新建项目 智慧工厂MES 客户:华东某制造集团 类型:软件 经理:@{PM}")
    assert "已新建项目" in created.text
    program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 50 + b"This program cannot be run in DOS mode.\r\n"
    refused = await chat.upload(PM, INTERNAL, "商务合同-盖章版.pdf", program)
    assert "文件「商务合同-盖章版.pdf」实际上是Windows 程序，为安全起见不能接收，也没有保存" in refused.text
    assert not [p for p in chat.files_dir.rglob("*") if p.is_file()]
    listed = await chat.ask(PM, INTERNAL, "暂存文件")
    assert "商务合同-盖章版.pdf" not in listed.text
