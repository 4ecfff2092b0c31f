"""A 软件系统实施 project from 新建项目 to 归档, in chat through the sandbox: groups bound, team added, 立项, every
phase's documents (files sent in the group, links), registers, an upgrade notice, acceptance, handover, archive."""

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




async def test_a_software_project_from_creation_to_archive(chat: LifecycleChat) -> None:
    code = await create_project(chat, "软件", "智慧工厂MES")
    draft = await chat.ask(PM, INTERNAL, "推进")
    assert "项目尚未立项，不能离开启动阶段" in draft.text
    assert "已立项" in (await chat.ask(PM, INTERNAL, "立项")).text

    # In a 1:1 chat the PM's last project is used, and the answer says so.
    overview = await chat.ask(PM, None, "项目")
    assert f"#### {code} 智慧工厂MES" in overview.text
    private = await chat.ask(PM, None, "交付物")
    assert f"未指定项目，使用你最近操作的项目 {code}" in private.text

    # Registers, written in the client group: announced in the internal group through the outbox.
    internal_before = chat.last_seq(INTERNAL)
    issue = await chat.ask(ENGINEER, CLIENT, "问题 新增 报表导出乱码")
    assert "已登记问题#1：报表导出乱码" in issue.text
    [announcement] = chat.since(INTERNAL, internal_before)
    assert f"【{code}】" in (announcement.text or "") and "新增问题#1：报表导出乱码" in announcement.text
    assert "已关闭问题#1" in (await chat.ask(ENGINEER, INTERNAL, "问题 关闭 1 修复字符集配置")).text
    assert "实施日志" in (await chat.ask(ENGINEER, INTERNAL, "日志 完成应用服务器部署")).text
    upgrade = await chat.ask(ENGINEER, INTERNAL, "升级 v2.3.1 修复报表导出乱码 确认", replies=2)
    [notice] = upgrade.files
    assert notice.file_name == f"系统升级确认单_{code}_v2.3.1.docx" and notice.file_bytes.startswith(b"PK")

    sent = await work_through_phases(chat, code)
    assert len(sent) == 3  # 启动, 规划, 执行 (with 监控 beside it)
    archive = await close_project(chat, code, form_first=True)
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        for file_name in sent:
            assert any(n.endswith("/" + file_name) for n in names), file_name
        assert any(n.endswith("验收确认单-客户签字盖章.pdf") for n in names)
        assert "项目管理记录/项目登记表.xlsx" in names
    assert "已归档关闭，不能再修改" in (await chat.ask(ENGINEER, INTERNAL, "日志 还想记一笔")).text
