"""People in commands (issue 12): named without @ in a 1:1 chat, by 名字(部门) or mobile; an ambiguous name answered
with the candidates; nobody, a mobile of nobody, someone who left: a specific answer and nothing changed. Client
contacts from the client's own organization: 客户联系人 by default in the client group, removed and added back by
the PM, only ever a client; the client's view and 帮助 by role."""

from __future__ import annotations

from datetime import datetime

import pytest

from storage.models import AuditLog, Deliverable, ProjectMember, User
from storage.repo.directory import EmployeeRecord, mark_departed, store_departments, store_employees

from .conftest import CLIENT_GROUP, INTERNAL, OUR_CORP, OUTSIDERS, PEOPLE, Chat, new_project

WALKED = datetime(2026, 3, 1, 19, 0)  # the contacts walk of the night before


async def walk_directory(chat: Chat) -> None:
    """What the contacts walk stores: the team, two 张伟, and 赵磊 who has since left."""
    async with chat.db.write() as session:
        await store_departments(session=session, synced_at=WALKED,
                                departments=[(2, "交付中心", 1), (3, "销售部", 1), (6, "测试组", 2)])
        records = [EmployeeRecord(p.user_id, p.nick, f"union-{p.user_id}", None, f"1380000{n:04d}", (2,))
                   for n, p in enumerate(PEOPLE.values()) if p.user_id != "stranger01"]
        records += [EmployeeRecord("zhangwei", "张伟", "union-zw", "测试工程师", "13800010009", (6,)),
                    EmployeeRecord("zhangwei.sales", "张伟", "union-zws", "售前顾问", "13800010010", (3,)),
                    EmployeeRecord("zhaolei", "赵磊", "union-zl", "实施工程师", "13800010003", (2,))]
        await store_employees(session=session, records=records, corp_id=OUR_CORP, synced_at=WALKED)
    later = datetime(2026, 3, 2, 1, 0)
    async with chat.db.write() as session:  # the next walk no longer lists 赵磊
        await store_employees(session=session, records=records[:-1], corp_id=OUR_CORP, synced_at=later)
        assert await mark_departed(session=session, walk_started=later, now=later) == ["zhaolei"]


async def members_of(chat: Chat, code: str) -> set[tuple[str, str]]:
    project = await chat.project(code)
    return {(m.user_id, str(m.role)) for m in await chat.rows(ProjectMember, ProjectMember.project_id == project.id)}


async def test_a_pm_names_people_without_at_in_a_private_chat(chat: Chat) -> None:
    await walk_directory(chat)
    created = await chat.say("pm", "新建项目 仓储RFID二期 客户:某某物流 类型:软件 经理:张经理", group=None)
    assert created.outcome == "ok" and "项目经理：张经理" in created.text
    code = created.text.split("已新建项目 ")[1].split()[0]
    added = await chat.say("pm", f"成员 添加 王工 李拓展 实施工程师 项目:{code}", group=None)
    assert added.outcome == "ok" and "已把 王工、李拓展 加入项目" in added.text
    by_department = await chat.say("pm", f"成员 添加 张伟(测试组) 质控 项目:{code}", group=None)
    assert by_department.outcome == "ok" and "已把 张伟 加入项目" in by_department.text
    # A mobile names exactly one of the two 张伟: the sales one is no member, the test one is.
    other = await chat.say("pm", f"计划 #5 负责人:+86-13800010010 项目:{code}", group=None)
    assert other.outcome == "user_error" and "张伟 还不是本项目成员" in other.text
    by_mobile = await chat.say("pm", f"计划 #5 负责人:13800010009 项目:{code}", group=None)
    assert by_mobile.outcome == "ok" and "张伟" in by_mobile.text, by_mobile.text
    assert ("zhangwei", "质控") in await members_of(chat, code)
    [planned] = await chat.rows(Deliverable, Deliverable.seq == 5)
    assert planned.owner_user_id == "zhangwei"


@pytest.mark.parametrize(("typed", "answer"), [
    ("张伟", ["「成员」：「张伟」对应 2 个人", "1. 张伟（测试组·测试工程师）", "2. 张伟（销售部·售前顾问）",
             "请写 名字(部门)，例如 张伟(测试组)；或写手机号"]),
    ("13999999999", ["通讯录里没有手机号为 13999999999 的人"]),
    ("王小二", ["找不到「成员」里的「王小二」：通讯录里没有这个人", "例如 成员:张三"]),
    ("赵磊", ["赵磊 已离职，不能指定为「成员」"]),
    ("张伟(财务部)", ["找不到「成员」里的「张伟(财务部)」"]),
])
async def test_bad_people_get_a_specific_answer_and_change_nothing(chat: Chat, typed: str, answer: list[str]) -> None:
    await walk_directory(chat)
    code = await new_project(chat)
    before = (await members_of(chat, code), len(await chat.rows(AuditLog)))
    for where in (None, INTERNAL):
        said = await chat.say("pm", f"成员 添加 {typed} 实施工程师 项目:{code}", group=where)
        assert said.outcome == "usage_error", said.text
        for part in answer:
            assert part in said.text, said.text
        assert "用法：成员 添加" in said.text
    assert (await members_of(chat, code), len(await chat.rows(AuditLog))) == before


async def test_someone_who_left_can_still_be_removed(chat: Chat) -> None:
    code = await new_project(chat)
    await chat.say("pm", "成员 添加 @王工 实施工程师", mentions=["engineer"])
    async with chat.db.write() as session:
        await store_employees(session=session, corp_id=OUR_CORP, synced_at=WALKED,
                              records=[EmployeeRecord("eng01", "王工", "union-eng01")])
        await mark_departed(session=session, walk_started=datetime(2026, 3, 2), now=datetime(2026, 3, 2))
    listed = await chat.say("pm", "成员")
    assert "王工（已离职）" in listed.text
    removed = await chat.say("pm", "成员 移除 王工", group=None)
    assert removed.outcome == "ok" and "已移除 王工 的角色：实施工程师" in removed.text
    assert ("eng01", "实施工程师") not in await members_of(chat, code)


async def test_client_contacts_come_from_the_client_group_and_see_the_client_view(chat: Chat) -> None:
    code = await new_project(chat)
    await chat.say("pm", "风险 新增 客户付款延迟（内部） 概率:高 影响:高 应对:规避")
    # 黄蕾 (another organization, no staffId) writes in the bound client group: a 客户联系人 by default.
    overview = await chat.say("huang", "项目", group=CLIENT_GROUP)
    assert overview.outcome == "ok", overview.text
    assert f"#### {code} 智慧工厂MES" in overview.text and "客户群由本机器人送达" in overview.text
    assert "内部群" not in overview.text
    [huang] = await chat.rows(User, User.name == "黄蕾")
    assert huang.external and huang.user_id == "ext:union-huang" and huang.corp_id == OUTSIDERS["huang"].corp_id
    assert ("ext:union-huang", "客户") in await members_of(chat, code)
    preview = await chat.say("huang", "周报 预览", group=CLIENT_GROUP)
    assert preview.outcome == "ok" and "客户项目周报" in preview.text and "内部事项" not in preview.text
    assert "客户付款延迟" not in preview.text
    refused = await chat.say("huang", "周报 预览 内部", group=CLIENT_GROUP)
    assert refused.outcome == "denied" and "不能在客户群预览" in refused.text
    risks = await chat.say("huang", "风险 列表", group=CLIENT_GROUP)
    assert risks.outcome == "denied" and "客户付款延迟" not in risks.text

    # The PM removes her; she stays removed, though she writes again; added back by @ in the client group.
    removed = await chat.say("pm", "成员 移除 @黄蕾", group=CLIENT_GROUP, mentions=["huang"])
    assert removed.outcome == "ok" and "已移除 黄蕾 的角色：客户" in removed.text
    gone = await chat.say("huang", "项目", group=CLIENT_GROUP)
    assert gone.outcome == "denied" and "无（不是本项目成员）" in gone.text
    assert ("ext:union-huang", "客户") not in await members_of(chat, code)
    back = await chat.say("pm", "成员 添加 @黄蕾 客户联系人", group=CLIENT_GROUP, mentions=["huang"])
    assert back.outcome == "ok" and "已把 黄蕾 加入项目" in back.text
    assert (await chat.say("huang", "项目", group=CLIENT_GROUP)).outcome == "ok"

    # 高翔, @'d before he ever wrote (a dingtalkId only), can be a client contact and nothing else.
    not_staff = await chat.say("pm", "成员 添加 @高翔 实施工程师", group=CLIENT_GROUP, mentions=["gao"])
    assert not_staff.outcome == "usage_error" and "高翔 是其他单位的人（外部联系人），只能是客户联系人" in not_staff.text
    added = await chat.say("pm", "成员 添加 @高翔 客户", group=CLIENT_GROUP, mentions=["gao"])
    assert added.outcome == "ok" and "已把 高翔 加入项目" in added.text
    # His first own message (his unionId now) is recognised as the same person.
    assert (await chat.say("gao", "交付物", group=CLIENT_GROUP)).outcome == "ok"
    assert len(await chat.rows(User, User.name == "高翔")) == 1
    listed = await chat.say("pm", "成员")
    assert "**客户**：" in listed.text and "黄蕾（某某制造）" in listed.text and "高翔（" in listed.text
    # 1:1 messages never go to them: the outbox holds no user target with an external key.
    for row in await chat.outbox():
        assert not any(str(i).startswith("ext:") for i in row.target_ids), row


async def test_help_depends_on_who_asks_and_where(chat: Chat) -> None:
    await new_project(chat)
    engineer = await chat.say("engineer", "帮助")
    assert "**立项**（仅项目经理）" in engineer.text and "**日志**：" in engineer.text
    assert "（子命令：添加（仅项目经理）｜移除（仅项目经理））" in engineer.text
    pm = await chat.say("pm", "帮助")
    assert "（仅项目经理）" not in pm.text and "**立项**：" in pm.text
    client = await chat.say("huang", "帮助", group=CLIENT_GROUP)
    assert client.outcome == "ok" and "客户联系人可用的命令" in client.text
    for shown in ("**项目**", "**交付物**", "**周报** 预览", "**问题** 列表", "**帮助**"):
        assert shown in client.text, shown
    # Section titles too: 登记簿's title lists 风险、变更… which a client cannot open.
    assert "**登记簿**\n" in client.text
    for hidden in ("**立项**", "**推进**", "**风险**", "**日志**", "**新建项目**", "**归档**", "**提交**", "新增", "登记、",
                   "风险、"):
        assert hidden not in client.text, hidden
    in_client_group = await chat.say("pm", "帮助", group=CLIENT_GROUP)
    assert "客户群里可用的命令" in in_client_group.text and "（子命令：添加｜移除）" in in_client_group.text
    assert "**立项**" not in in_client_group.text
    detail = await chat.say("huang", "帮助 推进", group=CLIENT_GROUP)
    assert "「推进」不在这里可用的命令里" in detail.text


async def test_an_outsider_in_the_internal_group_ends_its_binding(chat: Chat) -> None:
    code = await new_project(chat)
    await chat.say("huang", "你好", group=INTERNAL)  # someone of the client's organization is in it after all
    assert (await chat.project(code)).internal_conversation_id is None
    [notice] = [r for r in await chat.outbox() if r.idempotency_key.startswith("internal-group-left:")]
    assert notice.target_ids == [INTERNAL] and "已不再是项目" in notice.params["msgParam"]["content"]
    refused = await chat.say("pm", f"风险 列表 项目:{code}")
    assert refused.outcome == "denied" and "客户群里不显示内部内容" in refused.text
    # Announcements no longer go there: a change is recorded, and no message is queued for the group.
    before = len(await chat.outbox())
    assert (await chat.say("pm", f"风险 新增 新风险 概率:低 影响:低 应对:接受 项目:{code}", group=None)).outcome == "ok"
    assert [r.target_ids for r in (await chat.outbox())[before:]] == []
