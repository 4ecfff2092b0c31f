"""A 提交 waiting for its file ends when it is answered any other way, says until when it waits, and a later file is
never filed under an old wait (the symptom: a signed acceptance form filed as 《问题记录表》 v2)."""

from __future__ import annotations

from datetime import timedelta

from storage.models import Deliverable, DeliverableStatus, DeliverableVersion, PendingFile

from .conftest import Chat, new_project


async def _versions(chat: Chat, name: str) -> list[DeliverableVersion]:
    [item] = await chat.rows(Deliverable, Deliverable.name == name)
    return await chat.rows(DeliverableVersion, DeliverableVersion.deliverable_id == item.id)


async def test_the_wait_says_until_when(chat: Chat) -> None:
    await new_project(chat)
    waiting = await chat.say("engineer", "提交 问题记录表")
    # 10:00 in Shanghai, plus 30 minutes.
    assert "请在 30 分钟内在这里发送《问题记录表》的文件（10:30 前有效）" in waiting.text


async def test_a_link_ends_the_wait_and_a_later_file_is_asked_about(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("engineer", "提交 问题记录表")
    linked = await chat.say("engineer", "提交 问题记录表 链接:https://space.dingtalk.com/s/issues")
    assert "已提交《问题记录表》第 1 版（链接" in linked.text
    later = await chat.send_file("engineer", "项目验收确认单-签字.docx", b"PK\x03\x04 signed")
    assert "要提交为哪个交付物" in later.text and "已提交" not in later.text
    assert len(await _versions(chat, "问题记录表")) == 1
    [kept] = await chat.rows(PendingFile, PendingFile.kind == "file")
    assert kept.file_name == "项目验收确认单-签字.docx" and kept.consumed_at is None


async def test_another_submit_ends_the_wait(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("engineer", "提交 问题记录表")
    other = await chat.say("engineer", "提交 需求调研报告 https://space.dingtalk.com/s/survey")
    assert other.text.startswith("不再等待《问题记录表》的文件。\n已提交《需求调研报告》第 1 版")
    later = await chat.send_file("engineer", "问题清单.xlsx", b"PK\x03\x04 issues")
    assert "要提交为哪个交付物" in later.text
    assert await _versions(chat, "问题记录表") == []


async def test_someone_else_submitting_or_a_waiver_ends_the_wait(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("engineer", "提交 需求调研报告")
    await chat.say("pm", "提交 需求调研报告 https://space.dingtalk.com/s/pm-survey")
    later = await chat.send_file("engineer", "调研报告-补充.docx", b"PK\x03\x04 extra")
    assert "要提交为哪个交付物" in later.text
    assert len(await _versions(chat, "需求调研报告")) == 1

    # (In the engineer's 1:1 chat: the file kept in the group would be taken by the next 提交 there.)
    await chat.say("engineer", "提交 需求规格说明书", group=None)
    waived = await chat.say("pm", "豁免 需求规格说明书 原因:客户沿用一期规格")
    assert waived.outcome == "ok"
    after_waiver = await chat.send_file("engineer", "SRS.docx", b"PK\x03\x04 srs", group=None)
    assert "要提交为哪个交付物" in after_waiver.text
    [srs] = await chat.rows(Deliverable, Deliverable.name == "需求规格说明书")
    assert srs.status == DeliverableStatus.WAIVED and await _versions(chat, "需求规格说明书") == []


async def test_a_file_named_for_another_document_is_not_filed_under_the_wait(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("engineer", "提交 问题记录表")
    wrong = await chat.send_file("engineer", "项目验收确认单-签字.docx", b"PK\x03\x04 signed")
    assert wrong.text.startswith("你在等待《问题记录表》的文件（10:30 前有效），但这个文件名看起来是《项目验收确认单》，"
                                 "所以没有提交为《问题记录表》。")
    assert "要提交为哪个交付物" in wrong.text and await _versions(chat, "问题记录表") == []
    # The wait is still there for the right file.
    right = await chat.send_file("engineer", "问题记录表-0302.xlsx", b"PK\x03\x04 issues")
    assert "已提交《问题记录表》第 1 版（文件《问题记录表-0302.xlsx》" in right.text


async def test_an_expired_wait_says_nothing_of_itself(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("engineer", "提交 问题记录表")
    chat.clock.advance(timedelta(minutes=31))
    later = await chat.send_file("engineer", "项目验收确认单-签字.docx", b"PK\x03\x04 signed")
    assert later.text.startswith("收到文件「项目验收确认单-签字.docx」")


async def test_a_kept_file_named_for_another_document_is_not_taken_by_a_submit(chat: Chat) -> None:
    await new_project(chat)
    kept = await chat.send_file("engineer", "项目验收确认单-签字.docx", b"PK\x03\x04 signed")
    assert "要提交为哪个交付物" in kept.text
    other = await chat.say("engineer", "提交 需求调研报告")
    assert "请在 30 分钟内在这里发送《需求调研报告》的文件" in other.text  # the kept file was not taken
    assert await _versions(chat, "需求调研报告") == []
    [pending] = await chat.rows(PendingFile, PendingFile.kind == "file")
    assert pending.consumed_at is None
    # A file named for no document at all is still taken by the next 提交, as before.
    await chat.send_file("engineer", "调研.docx", b"PK\x03\x04 survey", group=None)
    taken = await chat.say("engineer", "提交 需求调研报告", group=None)
    assert "已提交《需求调研报告》第 1 版（文件《调研.docx》" in taken.text


async def test_of_several_kept_files_the_one_named_for_the_document_is_submitted(chat: Chat) -> None:
    # Seen in a walk: three files sent together, then 「提交 接口说明文档」 filed the newest one, 《系统蓝图设计.docx》,
    # although 《接口说明文档.docx》 was waiting too.
    await new_project(chat)
    await chat.send_file("engineer", "接口说明文档.docx", b"PK\x03\x04 interfaces")
    await chat.send_file("engineer", "系统蓝图设计.docx", b"PK\x03\x04 blueprint")
    taken = await chat.say("engineer", "提交 接口说明文档")
    assert "已提交《接口说明文档》第 1 版（文件《接口说明文档.docx》" in taken.text
    [version] = await _versions(chat, "接口说明文档")
    assert version.original_name == "接口说明文档.docx"
    # The file named for no document is still there for the next 提交.
    rest = await chat.say("engineer", "提交 需求调研报告")
    assert "已提交《需求调研报告》第 1 版（文件《系统蓝图设计.docx》" in rest.text
