"""A 设备系统类项目 from 新建项目 to 归档 through the sandbox, with a pause (项目进度变更单) and a resume, and the
acceptance given as 「验收」 first, then the signed 试运行报告 sent as a file."""

from __future__ import annotations

import zipfile

import pytest

from lifecycle_chat import (
    CLIENT,
    ENGINEER,
    INTERNAL,
    LEADER,
    PM,
    SALES,
    LifecycleChat,
    close_project,
    create_project,
    work_through_phases,
)

pytestmark = [pytest.mark.timeout(120)]




async def test_an_equipment_project_with_a_pause(chat: LifecycleChat) -> None:
    code = await create_project(chat, "设备", "仓储RFID二期")
    denied = await chat.ask(SALES, INTERNAL, "立项")
    assert "只有项目经理（或领导、项目管理员）可以申请立项。你当前的角色：拓展/业务负责人" in denied.text
    assert "已立项" in (await chat.ask(LEADER, INTERNAL, "立项")).text  # a company leader (config) may

    internal_before = chat.last_seq(INTERNAL)
    paused = await chat.ask(PM, None, f"暂停 原因:客户机房改造 项目:{code}")
    assert "已暂停（变更#1，项目进度变更单）" in paused.text
    [announcement] = chat.since(INTERNAL, internal_before)
    assert "项目暂停：客户机房改造" in (announcement.text or "")
    assert "已暂停，请先发送「恢复」" in (await chat.ask(PM, INTERNAL, "推进")).text
    assert "暂停了 0 个工作日" in (await chat.ask(PM, INTERNAL, "恢复")).text

    risk = await chat.ask(PM, INTERNAL, "风险 新增 设备到货延迟 概率:中 影响:高 应对:转移 措施:合同约定违约金")
    assert "已登记风险#1" in risk.text
    meeting = await chat.ask(ENGINEER, CLIENT, "会议 周会 确认到货时间和安装顺序")
    assert "已记录周会纪要" in meeting.text

    sent = await work_through_phases(chat, code)
    assert len(sent) == 3
    archive = await close_project(chat, code, form_first=False)
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
    assert any(n.startswith("04-收尾/试运行报告/") and n.endswith("验收确认单-客户签字盖章.pdf") for n in names)
    assert all(any(n.endswith("/" + file_name) for n in names) for file_name in sent)
