"""The directory on every backend: people found by name, 名字(部门), mobile and id; employees and external contacts
learned and kept apart by their keys; one outsider seen two ways stays one person; a walk's pages, renames and
departures; client conversations, default client contacts and the PM's exclusions; walk checkpoints."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.db import Database
from storage.models import MemberRole, Project, is_external_key
from storage.repo import add_member, create_project, member_roles
from storage.repo.directory import (
    EXTERNAL_PLACEHOLDER_NAME,
    EmployeeRecord,
    display_names,
    ensure_client_contact,
    exclude_member,
    find_people,
    get_person,
    is_client_conversation,
    learn_employee,
    learn_external,
    load_checkpoint,
    mark_departed,
    normalize_mobile,
    note_external_members,
    person_cards,
    save_checkpoint,
    store_departments,
    store_employees,
    store_organization,
)

T0 = datetime(2026, 11, 2, 3, 0)
CORP = "ding-ours"
CLIENT_CORP = "ding-client"


async def seed_walk(db: Database, at: datetime = T0) -> None:
    async with db.write() as session:
        await store_departments(session=session, synced_at=at,
                                departments=[(2, "交付中心", 1), (3, "销售部", 1), (4, "测试组", 2)])
        await store_employees(session=session, corp_id=CORP, synced_at=at, records=[
            EmployeeRecord("wangjianguo", "王建国", "u-wjg", "项目经理", "13800010001", (2,)),
            EmployeeRecord("zhangwei", "张伟", "u-zw1", "测试工程师", "13800010011", (4,)),
            EmployeeRecord("zhangwei.sales", "张伟", "u-zw2", "售前顾问", "13800010012", (3,)),
            EmployeeRecord("zhaolei", "赵磊", "u-zl", "实施工程师", "13800010003", (2,)),
        ])


async def test_people_are_found_by_name_department_mobile_and_id(db: Database) -> None:
    await seed_walk(db)
    async with db.read() as session:
        assert [u.user_id for u in await find_people(session=session, text="王建国")] == ["wangjianguo"]
        assert [u.user_id for u in await find_people(session=session, text="wangjianguo")] == ["wangjianguo"]
        assert [u.user_id for u in await find_people(session=session, text="138 0001 0001")] == ["wangjianguo"]
        assert [u.user_id for u in await find_people(session=session, text="+86-13800010001")] == ["wangjianguo"]
        both = await find_people(session=session, text="张伟")
        assert sorted(u.user_id for u in both) == ["zhangwei", "zhangwei.sales"]
        cards = {c.user_id: c.where for c in await person_cards(session=session, users=both)}
        assert cards == {"zhangwei": "测试组·测试工程师", "zhangwei.sales": "销售部·售前顾问"}
        assert [u.user_id for u in await find_people(session=session, text="张伟(销售部)")] == ["zhangwei.sales"]
        assert [u.user_id for u in await find_people(session=session, text="张伟（测试）")] == ["zhangwei"]
        assert await find_people(session=session, text="张伟(财务部)") == []
        assert await find_people(session=session, text="13900000000") == []
        assert await find_people(session=session, text="王小二") == []
    assert normalize_mobile("12345") is None and normalize_mobile("1380001000１") is None


async def test_a_walk_renames_and_marks_who_left_and_messages_rename_only_the_unwalked(db: Database) -> None:
    await seed_walk(db)
    async with db.write() as session:
        # A message from someone the walk knows does not rename them (the walk's name is the directory's).
        await learn_employee(session=session, user_id="wangjianguo", name="老王", union_id="u-wjg")
        await learn_employee(session=session, user_id="newbie", name="新同事", corp_id=CORP)
    day2 = T0 + timedelta(days=1)
    async with db.write() as session:
        await store_employees(session=session, corp_id=CORP, synced_at=day2, records=[
            EmployeeRecord("wangjianguo", "王建国", "u-wjg", "高级项目经理", "13800010001", (2,)),
            EmployeeRecord("zhangwei", "张伟", "u-zw1", "测试工程师", "13800010011", (4,)),
            EmployeeRecord("zhangwei.sales", "张伟然", "u-zw2", "售前顾问", "13800010012", (3,)),
        ])
        gone = await mark_departed(session=session, walk_started=day2, now=day2)
    assert gone == ["zhaolei"]
    async with db.read() as session:
        names = await display_names(session=session, user_ids=["wangjianguo", "zhangwei.sales", "zhaolei", "newbie",
                                                                "nobody", None])
        assert names == {"wangjianguo": "王建国", "zhangwei.sales": "张伟然", "zhaolei": "赵磊", "newbie": "新同事"}
        zhao = await get_person(session=session, user_id="zhaolei")
        assert zhao is not None and not zhao.active and zhao.left_at == day2
        assert (await get_person(session=session, user_id="wangjianguo")).title == "高级项目经理"  # type: ignore
        [left] = await find_people(session=session, text="赵磊")
        assert not left.active  # still found: history and 成员 移除 need them
        newbie = await get_person(session=session, user_id="newbie")
        assert newbie is not None and newbie.active  # never walked: not concluded to have left
    async with db.write() as session:  # someone writing to the bot has not left
        await learn_employee(session=session, user_id="zhaolei", name="赵磊")
    async with db.read() as session:
        assert (await get_person(session=session, user_id="zhaolei")).active  # type: ignore[union-attr]


async def test_an_outsider_seen_by_mention_then_by_member_list_is_one_person(db: Database) -> None:
    async with db.write() as session:
        mentioned = await learn_external(session=session, dingtalk_id="$:LWCP_v1:$huang", name="黄蕾", rename=False)
        assert mentioned.user_id.startswith("ext:d") and is_external_key(mentioned.user_id)
        listed = await learn_external(session=session, union_id="u-huang", name="黄蕾")
        assert listed.user_id == mentioned.user_id  # the one outsider of that name without a unionId
        speaking = await learn_external(session=session, union_id="u-huang", dingtalk_id="$:LWCP_v1:$huang",
                                        corp_id=CLIENT_CORP, name="黄蕾")
        assert speaking.user_id == mentioned.user_id
        other = await learn_external(session=session, union_id="u-gao", corp_id=CLIENT_CORP, name="高翔")
        assert other.user_id == "ext:u-gao"
        unnamed = await learn_external(session=session, dingtalk_id="$:LWCP_v1:$x")
        assert unnamed.name == EXTERNAL_PLACEHOLDER_NAME
        await store_organization(session=session, corp_id=CLIENT_CORP, name="华东某制造集团")
        await store_organization(session=session, corp_id=CLIENT_CORP, name="猜的名字", replace=False)
    async with db.read() as session:
        person = await get_person(session=session, user_id=mentioned.user_id)
        assert person is not None and person.union_id == "u-huang" and person.corp_id == CLIENT_CORP
        [card] = await person_cards(session=session, users=[person])
        assert card.external and card.where == "华东某制造集团"
        assert [u.user_id for u in await find_people(session=session, text="黄蕾(华东)")] == [mentioned.user_id]


async def test_client_conversations_and_default_client_contacts(db: Database) -> None:
    async with db.write() as session:
        project = await create_project(session=session, name="智慧工厂MES", template="软件系统实施", year=2026,
                                       customer="华东某制造集团", client_conversation_id="cid-client")
        await note_external_members(session=session, conversation_id="cid-mixed", title="外部交流群")
        await note_external_members(session=session, conversation_id="cid-mixed")
        huang = await learn_external(session=session, union_id="u-huang", corp_id=CLIENT_CORP, name="黄蕾")
        assert await ensure_client_contact(session=session, project=project, user_id=huang.user_id,
                                           corp_id=CLIENT_CORP)
        assert not await ensure_client_contact(session=session, project=project, user_id=huang.user_id,
                                               corp_id=CLIENT_CORP)
        gao = await learn_external(session=session, union_id="u-gao", corp_id=CLIENT_CORP, name="高翔")
        await exclude_member(session=session, project_id=project.id, user_id=gao.user_id)
        assert not await ensure_client_contact(session=session, project=project, user_id=gao.user_id,
                                               corp_id=CLIENT_CORP)
        await add_member(session=session, project_id=project.id, user_id="wangjianguo", role=MemberRole.PM)
    async with db.read() as session:
        assert await is_client_conversation(session=session, conversation_id="cid-client")
        assert await is_client_conversation(session=session, conversation_id="cid-mixed")
        assert not await is_client_conversation(session=session, conversation_id="cid-internal")
        assert await member_roles(session=session, project_id=project.id, user_id=huang.user_id) == {MemberRole.CLIENT}
        assert await member_roles(session=session, project_id=project.id, user_id=gao.user_id) == set()
        [card] = await person_cards(session=session, users=[huang])
        assert card.organization == "华东某制造集团"  # named after the project's customer
        assert isinstance(await session.get(Project, project.id), Project)


async def test_checkpoints_are_one_per_walk_and_follow_its_pages(db: Database) -> None:
    async with db.write() as session:
        assert await load_checkpoint(session=session, name="directory:2026-11-02") is None
        await save_checkpoint(session=session, name="directory:2026-11-02", state={"phase": "users", "index": 1})
        await save_checkpoint(session=session, name="directory:2026-11-02", state={"phase": "users", "index": 2})
    async with db.read() as session:
        assert await load_checkpoint(session=session, name="directory:2026-11-02") == {"phase": "users", "index": 2}
