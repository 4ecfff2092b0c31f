"""No internal text reaches any client group (issue 12, item 5): in the client group of another project, in a project's
own client group, and in a group bound to nothing that has external members, every command with an internal
variant is refused (saying where to ask instead), whichever project it names, and the commands the client may use
answer with the client's view."""

from __future__ import annotations

import re

from bot.router import Command
from storage.models import OutboxMessage

from .conftest import CLIENT_GROUP, INTERNAL, PEOPLE, Chat, new_project

CLIENT_B = "cid-client-group-b"
MIXED = "cid-group-with-outsiders"
# Internal content of project A, which must never show in a client conversation: a risk, a meeting record, internal
# documents (implementation logs and the team's names are not secret: the client report lists them).
SECRETS = ("机密风险甲", "机密会议丙", "商务合同", "项目启动会记录表", "项目立项申请表")


async def internal_project(chat: Chat) -> str:
    code = await new_project(chat)
    await chat.say("pm", "立项")
    assert (await chat.say("pm", f"风险 新增 {SECRETS[0]} 概率:高 影响:高 应对:规避")).outcome == "ok"
    assert (await chat.say("pm", f"会议 周会 {SECRETS[1]}")).outcome == "ok"
    return code


def sample(command: Command, code: str) -> tuple[str, list[str]]:
    """The command's first example, its @-mentions made real people, naming project ``code``."""
    text = re.sub(r"@\S+", f"@{PEOPLE['engineer'].nick}", command.examples[0]).replace("XM-2026-001", code)
    mentions = ["engineer"] if "@" in text else []
    return (text + (f" 项目:{code}" if command.needs_project else "")), mentions


def assert_nothing_internal(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, (secret, text)
    assert "内部事项" not in text and "群：内部群" not in text, text


async def test_no_internal_text_reaches_any_client_group(chat: Chat) -> None:
    code = await internal_project(chat)
    other = await chat.say("pm", "新建项目 二期 客户:另一家 类型:软件 经理:@张经理", group=None, mentions=["pm"])
    other_code = other.text.split("已新建项目 ")[1].split()[0]
    assert (await chat.say("pm", f"绑定 {other_code} 客户群", group=CLIENT_B)).outcome == "ok"
    # A group bound to nothing, where someone of another organization has written: it has outsiders.
    assert (await chat.say("huang", "你好", group=MIXED)).outcome == "unknown_command"
    outbox_before = {row.id for row in await chat.outbox()}
    internal = [c for c in chat.dispatcher.commands.commands if not c.in_client_groups]
    assert {"风险 列表", "审批", "文档", "归档", "提交", "新建项目", "项目列表", "我的项目"} <= {c.name for c in internal}

    for where in (CLIENT_B, CLIENT_GROUP, MIXED):
        for command in internal:
            text, mentions = sample(command, code)
            said = await chat.say("pm", text, group=where, mentions=mentions)
            assert said.outcome == "denied", (where, text, said.text)
            assert "客户群里不显示内部内容" in said.text or said.text.startswith("只有"), (where, text, said.text)
            assert_nothing_internal(said.text)
        refused = await chat.say("pm", f"周报 预览 内部 项目:{code}", group=where)
        assert refused.outcome == "denied" and "不能在客户群预览" in refused.text
        # What the client may see, the client's view of it, whoever asks and for whichever project.
        for text in (f"项目 {code}", f"交付物 全部 项目:{code}", f"周报 预览 项目:{code}", f"问题 列表 项目:{code}",
                     f"成员 项目:{code}", "帮助"):
            said = await chat.say("pm", text, group=where)
            assert said.outcome == "ok", (where, text, said.text)
            assert_nothing_internal(said.text)
            assert "风险#" not in said.text and "审核报告" not in said.text and "见配置" not in said.text

    # The same commands in the internal group do show the internal content (the check is not vacuous).
    assert SECRETS[0] in (await chat.say("pm", "风险 列表")).text
    assert "内部事项" in (await chat.say("pm", "周报 预览 内部")).text
    # Nothing was queued for a client conversation: announcements of A go to A's internal group only.
    for row in await chat.outbox():
        if row.id not in outbox_before:
            assert row.target_ids == [INTERNAL], row
    assert [r for r in await chat.rows(OutboxMessage) if set(r.target_ids) & {CLIENT_B, MIXED, CLIENT_GROUP}] == []
