"""A file's download happens before its command's transaction: a slow DingTalk download does not hold the
database's write lock, so the next people's commands are answered meanwhile (SQLite has only one writer)."""

from __future__ import annotations

import pytest

from lifecycle_chat import ENGINEER, INTERNAL, PM, LifecycleChat, create_project

pytestmark = [pytest.mark.timeout(60)]


async def test_a_slow_file_download_does_not_hold_up_the_next_command(chat: LifecycleChat) -> None:
    await create_project(chat, "软件", "智慧工厂MES一期")
    chat.sandbox.faults.set("robot.messageFiles.download", latency=1.5)
    before = chat.last_seq(INTERNAL)
    await chat.sandbox.send_file(ENGINEER, INTERNAL, b"PK\x03\x04" + b"0" * 2048, "需求调研报告.docx")
    log = await chat.ask(PM, INTERNAL, "日志 完成现场勘察，确认机房位置")
    # The log's answer comes first, while the file is still downloading.
    assert "已记录" in log.text and "实施日志" in log.text and "需求调研报告" not in log.text
    file_answer = await chat.answers(INTERNAL, chat.last_seq(INTERNAL), 1, "需求调研报告.docx")
    assert "需求调研报告" in file_answer.text
    assert len(chat.since(INTERNAL, before)) == 2
