"""Who may do what, for every role of the standard: the PM (and 领导, 项目管理员) change plans, waive, advance,
pause and close; members submit and write registers; client contacts read; outsiders get a refusal naming the role
that is needed."""

from __future__ import annotations

import pytest

from .conftest import CLIENT_GROUP, INTERNAL, Chat, new_project

READ = ("交付物", "成员", "项目", "问题 列表")
WRITE = ("日志 今天完成了接口联调", "问题 新增 报表导出乱码", "提交 #1 https://docs.example.com/contract",
         "会议 周会 确认里程碑")
MANAGE = ("豁免 #35 原因:客户不开验收会", "计划 #5 截止:2026-12-01", "立项", "暂停 原因:测试权限",
          "推进", "成员 移除 @吴质控 质控")

# role key -> (may read, may write, may manage, the role the refusal names as the sender's)
ROLES = {
    "pm": (True, True, True, "项目经理"),
    "engineer": (True, True, False, "实施工程师"),
    "sales": (True, True, False, "拓展/业务负责人"),
    "qa": (True, True, False, "质控"),
    "after_sales": (True, True, False, "售后"),
    "leader": (True, True, True, "领导"),
    "admin": (True, True, True, "项目管理员"),
    "client": (True, False, False, "客户"),
    "stranger": (False, False, False, "无（不是本项目成员）"),
}


@pytest.mark.parametrize("role", list(ROLES))
async def test_each_role_may_do_what_the_standard_says(chat: Chat, role: str) -> None:
    await new_project(chat)
    await chat.say("pm", "成员 添加 @孙售后 售后", mentions=["after_sales"])
    may_read, may_write, may_manage, shown_as = ROLES[role]
    group = CLIENT_GROUP if role == "client" else INTERNAL
    for commands, allowed, needed in ((READ, may_read, "项目组成员和客户联系人"), (WRITE, may_write, "项目组成员"),
                                      (MANAGE, may_manage, "项目经理（或领导、项目管理员）")):
        for text in commands:
            said = await chat.say(role, text, group=group, mentions=["qa"] if "@" in text else [])
            if allowed:
                assert said.outcome != "denied", (role, text, said.text)
            else:
                assert said.outcome == "denied", (role, text, said.text)
                assert said.text.startswith(f"只有{needed}"), said.text
                assert said.text.endswith(f"你当前的角色：{shown_as}"), said.text


async def test_a_refused_command_changes_nothing(chat: Chat) -> None:
    await new_project(chat)
    before = (await chat.audit_actions(), await chat.outbox())
    for text in ("立项", "豁免 #1 原因:不需要", "推进"):
        assert (await chat.say("client", text, group=CLIENT_GROUP)).outcome == "denied"
    assert (await chat.audit_actions(), await chat.outbox()) == before
    project = await chat.project()
    assert project.status == "草稿"
