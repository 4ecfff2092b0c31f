"""交付物, 提交 (with files in either order, links, versions), 豁免, 计划, and files sent without a command."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest

from storage.models import Deliverable, DeliverableStatus, DeliverableVersion, OutboxMessage, PendingFile

from .conftest import CLIENT_GROUP, INTERNAL, PEOPLE, Chat, new_project

CONTRACT = b"%PDF-1.7 signed contract " * 100


async def deliverable(chat: Chat, name: str) -> Deliverable:
    return (await chat.rows(Deliverable, Deliverable.name == name))[0]


async def versions(chat: Chat, name: str) -> list[DeliverableVersion]:
    item = await deliverable(chat, name)
    return await chat.rows(DeliverableVersion, DeliverableVersion.deliverable_id == item.id)


async def test_a_file_then_submit_stores_it_by_project_phase_and_version(chat: Chat) -> None:
    code = await new_project(chat)
    asked = await chat.send_file("sales", "商务合同-盖章版.pdf", CONTRACT)
    assert asked.outcome == "ok"
    assert "收到文件「商务合同-盖章版.pdf」（2.4 KB）。要提交为哪个交付物？" in asked.text
    assert "1. 提交 商务合同（待提交，截止 3月2日(周一)）" in asked.text
    said = await chat.say("sales", "提交 商务合同 已盖章")
    assert said.outcome == "ok" and said.text.startswith("已提交《商务合同》第 1 版（文件《商务合同-盖章版.pdf》，2.4 KB")
    [version] = await versions(chat, "商务合同")
    assert version.file_path == f"{code}/启动/商务合同/v1-商务合同-盖章版.pdf"
    stored = chat.files_dir / version.file_path
    assert stored.read_bytes() == CONTRACT
    assert version.sha256 == hashlib.sha256(CONTRACT).hexdigest() and version.size == len(CONTRACT)
    assert version.note == "已盖章" and version.submitted_by == PEOPLE["sales"].user_id
    item = await deliverable(chat, "商务合同")
    assert item.status == DeliverableStatus.SUBMITTED and item.submitted_at is not None
    # A second version keeps the first one, on disk and in the database.
    await chat.send_file("sales", "商务合同（补充协议）.pdf", b"%PDF second")
    await chat.say("sales", "提交 #1")
    first, second = await versions(chat, "商务合同")
    assert (first.version, second.version) == (1, 2)
    assert second.file_path == f"{code}/启动/商务合同/v2-商务合同（补充协议）.pdf"
    assert stored.exists() and (chat.files_dir / second.file_path).read_bytes() == b"%PDF second"
    assert (await chat.audit_actions()).count("deliverable.submit") == 2


async def test_submit_first_then_the_file(chat: Chat) -> None:
    await new_project(chat)
    waiting = await chat.say("engineer", "提交 需求规格说明书 初稿", group=None)
    assert waiting.outcome == "ok" and "请在 30 分钟内在这里发送《需求规格说明书》的文件" in waiting.text
    assert (await deliverable(chat, "需求规格说明书")).status == DeliverableStatus.PENDING
    said = await chat.send_file("engineer", "SRS.docx", b"PK\x03\x04 srs", group=None)
    assert said.outcome == "ok" and "已提交《需求规格说明书》第 1 版（文件《SRS.docx》" in said.text
    [version] = await versions(chat, "需求规格说明书")
    assert version.note == "初稿" and version.original_name == "SRS.docx"
    # The wait is used up: the next file is kept and asked about.
    again = await chat.send_file("engineer", "SRS-v2.docx", b"PK\x03\x04 srs2", group=None)
    assert "要提交为哪个交付物" in again.text
    assert "第 2 版" in (await chat.say("engineer", "提交 需求规格说明书", group=None)).text
    # A wait ends after 30 minutes.
    await chat.say("engineer", "提交 需求调研报告", group=None)
    chat.clock.advance(timedelta(minutes=31))
    late = await chat.send_file("engineer", "调研.docx", b"PK\x03\x04 survey", group=None)
    assert "要提交为哪个交付物" in late.text
    assert (await deliverable(chat, "需求调研报告")).status == DeliverableStatus.PENDING


async def test_files_without_a_command_are_kept_and_guessed(chat: Chat) -> None:
    await new_project(chat)
    said = await chat.send_file("engineer", "智慧工厂-接口说明文档-终版v2.docx", b"PK\x03\x04 api")
    lines = said.text.splitlines()
    assert lines[1].startswith("1. 提交 接口说明文档（待提交，截止 4月20日(周一)）")
    listed = await chat.say("engineer", "暂存文件")
    assert "你在这里有 1 个待提交的文件" in listed.text and "智慧工厂-接口说明文档-终版v2.docx" in listed.text
    [pending] = await chat.rows(PendingFile)
    assert (chat.files_dir / pending.file_path).read_bytes() == b"PK\x03\x04 api"
    # Another person's pending file is not theirs to submit: they are asked for a file instead.
    other = await chat.say("pm", "提交 接口说明文档")
    assert "请在 30 分钟内在这里发送" in other.text
    # Files expire after a day.
    chat.clock.advance(timedelta(days=1, minutes=1))
    assert "没有待提交的文件" in (await chat.say("engineer", "暂存文件")).text


async def test_a_file_from_someone_outside_every_project(chat: Chat) -> None:
    await new_project(chat)
    said = await chat.send_file("stranger", "简历.pdf", b"%PDF cv", group=None)
    assert said.outcome == "denied" and "你还不是任何进行中项目的成员" in said.text
    assert await chat.rows(PendingFile) == []


async def test_a_file_is_matched_against_every_open_project_the_sender_works_in(chat: Chat) -> None:
    first = await new_project(chat)
    second = await new_project(chat, bind=False, team=False)
    third = await new_project(chat, bind=False, team=False)
    for code, role in ((second, "实施工程师"), (third, "客户")):  # a client role does not let one submit
        said = await chat.say("pm", f"成员 添加 @{PEOPLE['engineer'].nick} {role} 项目:{code}", group=None,
                              mentions=["engineer"])
        assert said.outcome == "ok", said.text
    asked = await chat.send_file("engineer", "需求规格说明书-v2.docx", b"PK\x03\x04 srs")
    offers = [line for line in asked.text.splitlines() if line[:1].isdigit()]
    # The group's project first, without its code; then the other project, with it.
    assert offers[:2] == ["1. 提交 需求规格说明书（待提交，截止 " + offers[0].split("截止 ")[1],
                          f"2. 提交 需求规格说明书 项目:{second}（待提交，截止 " + offers[1].split("截止 ")[1]], offers
    assert third not in asked.text and first not in asked.text


async def test_links_and_notes(chat: Chat) -> None:
    await new_project(chat)
    said = await chat.say("engineer", "提交 施工现场调研表 https://space.dingtalk.com/s/abc 现场照片在钉盘")
    assert "已提交《施工现场调研表》第 1 版（链接 https://space.dingtalk.com/s/abc）" in said.text
    [version] = await versions(chat, "施工现场调研表")
    assert version.link == "https://space.dingtalk.com/s/abc" and version.note == "现场照片在钉盘"
    keyed = await chat.say("engineer", "提交 项目实施方案 链接:https://example.com/plan.docx")
    assert keyed.outcome == "ok"
    bad = await chat.say("engineer", "提交 项目实施计划表 链接:ftp://example.com/plan")
    assert bad.outcome == "usage_error" and "链接应以 http:// 或 https:// 开头" in bad.text


@pytest.mark.parametrize(
    ("name", "data", "answer"),
    [
        ("培训录像.mp4", b"x" * (20 * 1024 * 1024 + 1), "超过 20 MB"),
        ("setup.exe", b"MZ", "不能接收「.exe」类型的文件「setup.exe」"),
        ("deploy.sh", b"#!/bin/sh", "程序和脚本请打包为 zip 后再发送"),
        ("README", b"text", "不能接收没有扩展名的文件"),
        ("空文件.docx", b"", "是空的（0 字节）"),
        # The content must match the name: a program is refused whatever it is called, and nothing is kept.
        ("商务合同-盖章版.pdf", b"MZ\x90\x00\x03" + b"\x00" * 64 + b"This program cannot be run in DOS mode",
         "实际上是Windows 程序，为安全起见不能接收，也没有保存"),
        ("现场照片.jpg", b"\x7fELF\x02\x01\x01", "实际上是Linux 程序"),
        ("部署说明.txt", b"#!/bin/bash\nrm -rf /\n", "实际上是脚本程序"),
        ("资料.zip", b"\xcf\xfa\xed\xfe\x07\x00", "实际上是macOS 程序"),
        ("需求说明书.docx", b"%PDF-1.7 a pdf renamed", "内容不是Word 文档（扩展名是 .docx，内容与扩展名不符）"),
        ("验收单.pdf", b"\x89PNG\r\n\x1a\n", "内容不是PDF 文件"),
        ("签到表.xlsx", b"\x00\x01binary", "内容不是Excel 表格"),
        ("会议纪要.txt", b"\x00\x00\x00binary", "内容不是文本文件"),
    ],
)
async def test_files_that_cannot_be_taken(chat: Chat, name: str, data: bytes, answer: str) -> None:
    await new_project(chat)
    said = await chat.send_file("engineer", name, data)
    assert said.outcome == "user_error" and answer in said.text
    assert await chat.rows(PendingFile) == []
    staging = chat.files_dir / ".incoming"
    assert not staging.exists() or not any(staging.iterdir())


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("旧版合同.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 ole"), ("新版合同.docx", b"PK\x03\x04 ooxml"),
        ("WPS文档.wps", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), ("扫描件.pdf", b"\r\n%PDF-1.4 junk first"),
        ("照片.jpeg", b"\xff\xd8\xff\xe0"), ("截图.png", b"\x89PNG\r\n\x1a\n"), ("图纸.dwg", b"AC1032"),
        ("录音.amr", b"#!AMR\n"), ("视频.mp4", b"\x00\x00\x00\x18ftypmp42"), ("备份.7z", b"7z\xbc\xaf\x27\x1c"),
        ("说明.txt", "中文说明".encode("gb18030")), ("数据.csv", "编号,名称\n1,服务器".encode()),
    ],
)
async def test_files_whose_content_matches_their_name_are_taken(chat: Chat, name: str, data: bytes) -> None:
    await new_project(chat)
    said = await chat.send_file("engineer", name, data)
    assert said.outcome == "ok" and f"收到文件「{name}」" in said.text
    assert len(await chat.rows(PendingFile)) == 1


def test_every_accepted_extension_has_a_content_check() -> None:
    from domain.file_kinds import KINDS
    from domain.file_store import ALLOWED_SUFFIXES

    assert ALLOWED_SUFFIXES <= KINDS.keys()


async def test_forbidden_kinds_are_refused_before_downloading(chat: Chat) -> None:
    await new_project(chat)
    await chat.send_file("engineer", "virus.bat", b"@echo off")
    assert chat.dingtalk.downloads == 0


async def test_path_tricks_in_file_names_stay_inside_the_files_directory(chat: Chat) -> None:
    code = await new_project(chat)
    await chat.send_file("engineer", "../../../../etc/cron.d/接口说明文档.docx", b"PK\x03\x04 sneaky")
    await chat.say("engineer", "提交 接口说明文档")
    [version] = await versions(chat, "接口说明文档")
    assert version.file_path == f"{code}/执行/接口说明文档/v1-接口说明文档.docx"
    assert version.original_name == "接口说明文档.docx"
    root = chat.files_dir.resolve()
    for path in root.rglob("*"):
        assert path.resolve().is_relative_to(root)
    windows = await chat.send_file("engineer", "..\\..\\CON.docx", b"PK\x03\x04 con")
    assert "收到文件「_CON.docx」" in windows.text


async def test_waive_and_replan(chat: Chat) -> None:
    code = await new_project(chat)
    no_reason = await chat.say("pm", "豁免 验收汇报PPT")
    assert no_reason.outcome == "usage_error" and "缺少必填参数「原因」" in no_reason.text
    assert "例如：豁免 验收汇报PPT 原因:客户不组织验收会" in no_reason.text
    waived = await chat.say("pm", "豁免 会议记录表 原因:外部启动会与内部启动会合并召开")
    assert waived.outcome == "ok" and "已豁免《会议记录表》" in waived.text
    item = await deliverable(chat, "会议记录表")
    assert item.status == DeliverableStatus.WAIVED and item.waiver_reason == "外部启动会与内部启动会合并召开"
    assert item.waived_by == PEOPLE["pm"].user_id
    denied = await chat.say("engineer", "豁免 需求调研报告 原因:不需要")
    assert denied.outcome == "denied" and "只有项目经理（或领导、项目管理员）可以豁免交付物" in denied.text

    # 4 April 2026 is the Qingming holiday (a Saturday): rolled forward to Tuesday 7 April.
    moved = await chat.say("pm", "计划 需求调研报告 截止:2026-04-04 负责人:@王工", mentions=["engineer"])
    assert moved.outcome == "ok"
    assert "4月4日(周六) 不是工作日，已顺延到 4月7日(周二)" in moved.text
    item = await deliverable(chat, "需求调研报告")
    assert item.due_date == date(2026, 4, 7) and item.owner_user_id == PEOPLE["engineer"].user_id
    past = await chat.say("pm", "计划 需求调研报告 截止:2026-01-05")
    assert past.outcome == "usage_error" and "已经过去了" in past.text
    impossible = await chat.say("pm", "计划 需求调研报告 截止:2026-02-29")
    assert impossible.outcome == "usage_error" and "2026年2月只有28天" in impossible.text
    nothing = await chat.say("pm", "计划 需求调研报告")
    assert nothing.outcome == "usage_error" and "请写出新的截止日期或负责人" in nothing.text
    stranger = await chat.say("pm", "计划 需求调研报告 负责人:@路人甲", mentions=["stranger"])
    assert stranger.outcome == "user_error" and "路人甲 还不是本项目成员" in stranger.text
    assert (await deliverable(chat, "需求调研报告")).owner_user_id == PEOPLE["engineer"].user_id
    assert code


async def test_deliverable_names_as_users_type_them(chat: Chat) -> None:
    await new_project(chat)
    ambiguous = await chat.say("pm", "豁免 报告 原因:测试")
    assert ambiguous.outcome == "user_error" and "「报告」对应多个交付物：#5 需求调研报告、#16 数据质量报告" in ambiguous.text
    assert "例如：豁免 #5" in ambiguous.text
    typo = await chat.say("pm", "豁免 需求掉研报告 原因:测试")
    assert typo.outcome == "not_found" and "你是不是指：#5 需求调研报告" in typo.text
    unknown_number = await chat.say("pm", "豁免 #99 原因:测试")
    assert unknown_number.outcome == "not_found" and "没有编号为 #99 的交付物" in unknown_number.text
    quoted = await chat.say("pm", "豁免 《验收汇报PPT》 原因:客户不开验收会")
    assert quoted.outcome == "ok"


async def test_listing_marks_overdue_and_clients_may_look(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    chat.clock.advance(timedelta(days=2))  # Wednesday 4 March
    said = await chat.say("pm", "交付物")
    assert said.outcome == "ok"
    assert "⬜ #1 商务合同：待提交，李拓展，3月2日(周一) ⚠️逾期2个工作日" in said.text
    assert "#3 项目立项申请表：待提交，张经理，3月4日(周三)\n" in said.text  # due today: not late yet
    assert "共 2 项逾期。" in said.text
    # Issue 12: the client sees the documents that concern them, not the company's internal records (商务合同,
    # the internal kick-off, the 立项 application to leaders), in the client group whoever asks.
    for who in ("client", "pm"):
        seen = await chat.say(who, "交付物", group=CLIENT_GROUP)
        assert seen.outcome == "ok" and "#4 会议记录表：待提交，张经理" in seen.text
        assert "商务合同" not in seen.text and "项目启动会记录表" not in seen.text and "立项申请表" not in seen.text
        assert "逾期" not in seen.text and "提交 交付物名称" not in seen.text
    phase = await chat.say("engineer", "交付物 监控")
    assert "#27 问题记录表" in phase.text and "#31 项目进度变更单（可选）：待提交，张经理，按需" in phase.text
    wrong = await chat.say("engineer", "交付物 设计")
    assert wrong.outcome == "not_found" and "阶段有：启动、规划、执行、监控、收尾" in wrong.text
    client_submit = await chat.say("client", "提交 商务合同", group=CLIENT_GROUP)
    assert client_submit.outcome == "denied" and "只有项目组成员（不含客户）可以提交交付物" in client_submit.text


async def test_submissions_from_elsewhere_are_announced_once(chat: Chat) -> None:
    code = await new_project(chat)
    await chat.say("engineer", f"提交 接口说明文档 https://example.com/api 项目:{code}", group=None)
    announcements = [r for r in await chat.rows(OutboxMessage) if r.idempotency_key.startswith("deliverable-")]
    assert [r.idempotency_key for r in announcements] == [f"deliverable-submitted:{code}:15:v1"]
    assert announcements[0].target_ids == [INTERNAL]


async def test_a_picture_sent_with_the_command_is_the_submission(chat: Chat) -> None:
    """A rich-text message carries the command and a photo (of a signed sheet) together."""
    await new_project(chat)
    said = await chat.say("engineer", "提交 培训签到表", files=[("picture.png", b"\x89PNG sign-in sheet")])
    assert said.outcome == "ok" and "已提交《培训签到表》第 1 版（文件《picture.png》" in said.text
