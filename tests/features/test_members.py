"""成员, 成员 添加, 成员 移除: roles by the standard's words, deliverable owners following the team."""

from __future__ import annotations

from storage.models import Deliverable, MemberRole, OutboxMessage, ProjectMember

from .conftest import CLIENT_GROUP, INTERNAL, PEOPLE, Chat, new_project


async def owners(chat: Chat, *names: str) -> dict[str, str | None]:
    rows = await chat.rows(Deliverable)
    return {d.name: d.owner_user_id for d in rows if d.name in names}


async def test_adding_members_hands_them_their_deliverables(chat: Chat) -> None:
    code = await new_project(chat, team=False)
    assert await owners(chat, "商务合同", "接口说明文档", "测评报告") == {
        "商务合同": None, "接口说明文档": None, "测评报告": None}
    said = await chat.say("pm", "成员 添加 @李拓展 拓展", mentions=["sales"])
    assert said.outcome == "ok"
    assert "已把 李拓展 加入项目 XM-2026-001，角色：拓展/业务负责人。1 项拓展/业务负责人负责的交付物已交给他。" in said.text
    await chat.say("pm", "成员 添加 @王工 @吴质控 实施工程师", mentions=["engineer", "qa"])
    await chat.say("pm", "成员 添加 @吴质控 质控", mentions=["qa"])
    assert await owners(chat, "商务合同", "接口说明文档", "测评报告") == {
        "商务合同": PEOPLE["sales"].user_id, "接口说明文档": PEOPLE["engineer"].user_id, "测评报告": PEOPLE["qa"].user_id}
    again = await chat.say("pm", "成员 添加 @王工 实施工程师", mentions=["engineer"])
    assert "王工 已经是实施工程师" in again.text
    await chat.say("pm", "成员 添加 @陈客户 甲方", mentions=["client"])
    listed = await chat.say("client", "成员", group=CLIENT_GROUP)
    assert "**拓展/业务负责人**：李拓展" in listed.text and "**实施工程师**：王工、吴质控" in listed.text
    roles = {(m.user_id, m.role) for m in await chat.rows(ProjectMember)}
    assert (PEOPLE["sales"].user_id, MemberRole.SALES) in roles and (PEOPLE["qa"].user_id, MemberRole.QUALITY) in roles
    # Commands in the internal group are answered there: no second announcement through the outbox.
    assert [row.idempotency_key for row in await chat.rows(OutboxMessage)
            if row.idempotency_key.startswith("member-added")] == []
    assert (await chat.audit_actions()).count("member.add") == 5
    assert code == "XM-2026-001"


async def test_changes_made_elsewhere_are_announced_in_the_internal_group(chat: Chat) -> None:
    code = await new_project(chat, team=False)
    said = await chat.say("pm", f"成员 添加 @王工 实施工程师 项目:{code}", group=None, mentions=["engineer"])
    assert said.outcome == "ok"
    [row] = [r for r in await chat.rows(OutboxMessage) if r.idempotency_key.startswith("member-added")]
    assert row.idempotency_key == f"member-added:{code}:{PEOPLE['engineer'].user_id}:实施工程师"
    assert row.target_ids == [INTERNAL]
    assert "张经理：王工 加入项目，角色：实施工程师" in row.params["msgParam"]["text"]


async def test_removing_members(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "成员 添加 @吴质控 实施工程师", mentions=["qa"])
    said = await chat.say("pm", "成员 移除 @王工", mentions=["engineer"])
    assert said.outcome == "ok" and "已移除 王工 的角色：实施工程师。他负责的未完成交付物已转给 吴质控。" in said.text
    assert (await owners(chat, "接口说明文档"))["接口说明文档"] == PEOPLE["qa"].user_id
    gone = await chat.say("pm", "成员 移除 @王工", mentions=["engineer"])
    assert gone.outcome == "not_found" and "王工不是本项目成员" in gone.text
    only_pm = await chat.say("pm", "成员 移除 @张经理", mentions=["pm"])
    assert only_pm.outcome == "conflict" and "不能移除项目唯一的项目经理" in only_pm.text
    one_role = await chat.say("pm", "成员 移除 @吴质控 质控", mentions=["qa"])
    assert "已移除 吴质控 的角色：质控" in one_role.text
    assert {m.role for m in await chat.rows(ProjectMember, ProjectMember.user_id == PEOPLE["qa"].user_id)} == {
        MemberRole.ENGINEER}


async def test_removal_says_only_what_happened_to_the_deliverables(chat: Chat) -> None:
    await new_project(chat)
    # The only engineer leaves: his deliverables have nobody to go to, and the PM is told to plan them.
    alone = await chat.say("pm", "成员 移除 @王工", mentions=["engineer"])
    assert alone.outcome == "ok" and "已转给" not in alone.text
    assert "项未完成交付物暂无负责人" in alone.text and "计划 接口说明文档 负责人:@王五" in alone.text
    assert (await owners(chat, "接口说明文档"))["接口说明文档"] is None
    # Someone who owns nothing open: no word of a hand-over at all.
    await chat.say("pm", "成员 添加 @李拓展 质控", mentions=["sales"])
    await chat.say("pm", "成员 添加 @吴质控 质控", mentions=["qa"])
    nothing = await chat.say("pm", "成员 移除 @李拓展 质控", mentions=["sales"])
    assert nothing.outcome == "ok" and nothing.text.endswith("已移除 李拓展 的角色：质控。")


async def test_member_commands_refuse_bad_input_and_other_roles(chat: Chat) -> None:
    await new_project(chat)
    unknown = await chat.say("pm", "成员 添加 @路人甲 厨师", mentions=["stranger"])
    assert unknown.outcome == "usage_error" and "未知角色「厨师」" in unknown.text
    assert "例如：成员 添加 @王五 实施工程师" in unknown.text
    no_one = await chat.say("pm", "成员 添加 实施工程师")
    assert no_one.outcome == "usage_error" and "缺少必填参数「成员」" in no_one.text
    denied = await chat.say("engineer", "成员 添加 @路人甲 实施工程师", mentions=["stranger"])
    assert denied.outcome == "denied"
    assert denied.text == "只有项目经理（或领导、项目管理员）可以管理项目成员。你当前的角色：实施工程师"
    assert not await chat.rows(ProjectMember, ProjectMember.user_id == PEOPLE["stranger"].user_id)
    outsider = await chat.say("stranger", "成员")
    assert outsider.outcome == "denied" and "你当前的角色：无（不是本项目成员）" in outsider.text
    # A sub-command that does not exist points to the ones that do.
    wrong = await chat.say("pm", "成员 加入 @王工", mentions=["engineer"])
    assert wrong.outcome == "usage_error" and "「成员」没有子命令「加入」。子命令：添加、移除。" in wrong.text
    assert "例如：成员 添加 @王五 实施工程师" in wrong.text
