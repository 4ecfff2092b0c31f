"""A 技改项目 from 新建项目 to 归档 through the sandbox: re-planning and waiving documents, bad input answered with
the right usage, and work done from 1:1 chats with 项目:编号."""

from __future__ import annotations

import zipfile

import pytest

from lifecycle_chat import (
    CLIENT,
    ENGINEER,
    INTERNAL,
    PM,
    LifecycleChat,
    close_project,
    create_project,
    work_through_phases,
)

pytestmark = [pytest.mark.timeout(120)]




async def test_a_renovation_project_with_replanning_and_bad_input(chat: LifecycleChat) -> None:
    code = await create_project(chat, "技改", "熔炼车间除尘改造")
    assert "已立项" in (await chat.ask(PM, INTERNAL, "立项")).text

    wrong_date = await chat.ask(PM, INTERNAL, "计划 技术协议 截止:2026-11-31")
    assert "日期不存在" in wrong_date.text and "2026年11月只有30天" in wrong_date.text
    assert "例如：计划 接口说明文档 截止:2026-04-10 负责人:@王五" in wrong_date.text
    moved = await chat.ask(PM, INTERNAL, f"计划 技术协议 截止:2026-11-07 负责人:@{ENGINEER}")
    assert "不是工作日，已顺延到 11月9日(周一)" in moved.text and f"负责人 {ENGINEER}" in moved.text
    unknown = await chat.ask(PM, INTERNAL, "提交 设计图纸终版")
    assert "你是不是指" in unknown.text or "对应多个交付物" in unknown.text
    too_big = await chat.upload(ENGINEER, INTERNAL, "现场视频.exe", b"MZ\x90\x00")
    assert "不能接收「.exe」类型的文件" in too_big.text

    # From a 1:1 chat, naming the project: the internal group hears about it.
    internal_before = chat.last_seq(INTERNAL)
    requirement = await chat.ask(ENGINEER, None, f"需求 新增 除尘风机加装变频 项目:{code}")
    assert "已登记需求#1" in requirement.text
    assert any("新增需求#1" in (m.text or "") for m in chat.since(INTERNAL, internal_before))
    assert "需求#1 除尘风机加装变频" in (await chat.ask(PM, CLIENT, "需求 列表")).text

    sent = await work_through_phases(chat, code)
    assert len(sent) == 3
    archive = await close_project(chat, code, form_first=True)
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        index = bundle.read("索引.md").decode("utf-8")
    assert all(any(n.endswith("/" + f) for n in names) for f in sent)
    assert f"项目编号：{code}" in index
