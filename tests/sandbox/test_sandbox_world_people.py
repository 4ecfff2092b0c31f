"""The world's people (issue 12): unionIds, a shared name, a client organization, a personal user, the
external-contact book, and the directory changes (renames, departures) a bot's directory sync must notice."""

from __future__ import annotations

import textwrap

import pytest
from sandbox_helpers import CLIENT_GROUP, INTERNAL_GROUP

from sandbox.emulator import SandboxError
from sandbox.harness import Sandbox
from sandbox.world import AmbiguousName, World, WorldError

API = "/sandbox/api"


@pytest.fixture
async def web():
    async with Sandbox(seed=3, web=True) as sb:
        yield sb


async def post(http, sb, path, body):
    async with http.post(f"{sb.base_url}{API}{path}", json=body) as r:
        return r.status, await r.json()


def test_every_person_has_a_union_id_and_outsiders_their_organization():
    world = World.load()
    union_ids = [u.union_id for u in world.users.values()]
    assert all(union_ids) and len(set(union_ids)) == len(union_ids)
    assert world.user_by_union_id(world.user("李明").union_id).user_id == "liming"

    first, second = (world.users[uid] for uid in ("zhangwei", "zhangwei.sales"))
    assert first.name == second.name == "张伟"
    assert first.department_ids != second.department_ids and first.title != second.title
    assert [world.describe(first), world.describe(second)] == ["测试组·测试工程师", "销售部·售前顾问"]

    client = world.group(CLIENT_GROUP)
    outsiders = [world.users[m] for m in client.member_ids if world.users[m].external]
    assert [(u.name, u.corp_id, u.corp_name) for u in outsiders] == [
        ("黄蕾", "dingc1e2n7t0a9b8c3d4", "华东某制造集团"), ("高翔", "dingc1e2n7t0a9b8c3d4", "华东某制造集团"),
        ("许晴", "", "")]
    assert outsiders[2].personal and not outsiders[0].personal
    assert world.organizations() == {"dingc1e2n7t0a9b8c3d4": "华东某制造集团"}
    assert world.has_outsiders(client) and not world.has_outsiders(world.group(INTERNAL_GROUP))
    assert not any(u.admin for u in outsiders)

    # The external-contact book: its own userids; an entry may be a group member and share her unionId.
    book = world.ext_contacts
    assert set(book) == {"ext0001", "ext0002"}
    assert book["ext0001"].member == "huanglei" and book["ext0001"].union_id == world.user("黄蕾").union_id
    assert book["ext0002"].member == "" and book["ext0002"].union_id not in union_ids


def test_a_shared_name_is_refused_with_the_candidates():
    world = World.load()
    with pytest.raises(AmbiguousName) as caught:
        world.user("张伟")
    message = str(caught.value)
    assert "zhangwei (测试组·测试工程师)" in message and "zhangwei.sales (销售部·售前顾问)" in message
    with pytest.raises(AmbiguousName):
        world.find_user("张伟")        # ambiguity is not "nobody"
    assert world.find_user("没这个人") is None
    assert world.user("zhangwei.sales").title == "售前顾问"


async def test_harness_name_helpers_refuse_a_shared_name_and_take_the_id(sandbox):
    with pytest.raises(AmbiguousName):
        await sandbox.dm("张伟", "你好")
    with pytest.raises(AmbiguousName):
        sandbox.conversation_id("张伟")
    received = await sandbox.dm("zhangwei.sales", "你好")
    assert received.payload["senderStaffId"] == "zhangwei.sales" and received.payload["senderNick"] == "张伟"
    assert received.conversation_id == sandbox.conversation_id("zhangwei.sales")


async def test_rename_and_departure_through_the_harness(sandbox):
    union_id = sandbox.world.user("李明").union_id
    before = sandbox.now_ms()
    renamed = await sandbox.update_user("李明", name="李明远")
    assert (renamed.user_id, renamed.name, renamed.union_id) == ("liming", "李明远", union_id)
    assert before <= renamed.modified_at <= sandbox.now_ms()
    received = await sandbox.say("李明远", INTERNAL_GROUP, "改名了")
    assert received.payload["senderNick"] == "李明远" and received.payload["senderStaffId"] == "liming"
    with pytest.raises(WorldError):
        sandbox.world.user("李明")

    left = await sandbox.update_user("赵磊", active=False)
    assert left.active is False and sandbox.world.user("zhaolei").active is False
    with pytest.raises(SandboxError, match="left the organization"):
        await sandbox.say("zhaolei", INTERNAL_GROUP, "我还在吗")
    with pytest.raises(SandboxError, match="left the organization"):
        await sandbox.dm("zhaolei", "我还在吗")
    # Nobody @'s a person who left: the name stays plain text.
    received = await sandbox.say("王建国", INTERNAL_GROUP, "@赵磊 交接一下")
    assert [a.get("staffId") for a in received.payload["atUsers"]] == [None]
    back = await sandbox.update_user("zhaolei", active=True)
    assert back.active is True
    assert (await sandbox.dm("赵磊", "回来了")).payload["senderStaffId"] == "zhaolei"

    with pytest.raises(SandboxError, match="only employees"):
        await sandbox.update_user("黄蕾", active=False)
    with pytest.raises(AmbiguousName):
        await sandbox.update_user("张伟", name="张伟伟")


async def test_world_api_shows_union_ids_organizations_and_departures(web, http):
    async with http.get(f"{web.base_url}{API}/world") as r:
        world = await r.json()
    users = {u["id"]: u for u in world["users"]}
    assert users["liming"]["unionId"] == web.world.user("liming").union_id and users["liming"]["active"] is True
    assert (users["huanglei"]["org"], users["huanglei"]["corpId"], users["huanglei"]["role"]) == \
        ("华东某制造集团", "dingc1e2n7t0a9b8c3d4", "client")
    assert (users["xuqing"]["org"], users["xuqing"]["personal"], users["xuqing"]["corpId"]) == ("个人用户", True, "")
    assert users["zhangwei.sales"]["description"] == "销售部·售前顾问"
    assert world["organizations"] == [{"corpId": "dingc1e2n7t0a9b8c3d4", "name": "华东某制造集团",
                                       "userIds": ["huanglei", "gaoxiang"]}]

    # A client contact of the client's organization can be chosen, in the client group only.
    async with http.get(f"{web.base_url}{API}/conversations", params={"user": "gaoxiang"}) as r:
        assert [c["title"] for c in (await r.json())["conversations"]] == [CLIENT_GROUP]


async def test_users_update_page_api(web, http):
    status, body = await post(http, web, "/users/update", {"user": "liming", "name": " 李明远 "})
    assert status == 200 and (body["user"]["id"], body["user"]["name"]) == ("liming", "李明远")
    assert web.world.user("liming").name == "李明远"

    status, body = await post(http, web, "/users/update", {"user": "zhaolei", "active": False})
    assert status == 200 and body["user"]["active"] is False
    async with http.get(f"{web.base_url}{API}/conversations", params={"user": "zhaolei"}) as r:
        assert (await r.json())["conversations"] == []         # someone who left has none of our chats
    status, body = await post(http, web, "/messages", {"user": "zhaolei", "conversation": web.conversation_id(
        INTERNAL_GROUP), "text": "还在吗"})
    assert status == 400 and "赵磊已离职" in body["error"]

    before = web.world.user("wangjianguo")
    for bad, message in [({"user": "wangjianguo"}, "请给出 name 或 active"),
                         ({"user": "wangjianguo", "name": ""}, "name 必须是"),
                         ({"user": "wangjianguo", "name": "王" * 21}, "name 必须是"),
                         ({"user": "wangjianguo", "active": "no"}, "active 只能是"),
                         ({"user": "huanglei", "active": False}, "黄蕾不是本组织成员"),
                         ({"user": "张伟", "name": "张大伟"}, "有 2 人叫「张伟」，请用 userId 指明：zhangwei（测试组·测试工程师）"),
                         ({"user": "nobody", "name": "某人"}, "未知用户")]:
        status, body = await post(http, web, "/users/update", bad)
        assert status == 400 and message in body["error"], (bad, body)
    assert web.world.user("wangjianguo") == before       # bad input changes nothing


def test_world_file_checks_the_people(tmp_path):
    head = textwrap.dedent("""
        [corp]
        corp_id = "dingtestcorp"
        name = "测试公司"
        [[apps]]
        name = "机器人"
        client_id = "dingtestapp"
        client_secret = "s"
        [[users]]
        user_id = "u1"
        name = "甲"
    """)
    cases = {
        "personal": '[[users]]\nuser_id = "p"\nname = "个人"\npersonal = true\ncorp_id = "dingx"\ncorp_name = "X"\n',
        "contact of an insider": '[[ext_contacts]]\nuser_id = "e1"\nname = "甲"\nmember = "u1"\n',
        "unknown follower": '[[ext_contacts]]\nuser_id = "e1"\nname = "乙"\nfollower = "ghost"\n',
        "leader of nothing": '[[users]]\nuser_id = "l"\nname = "领导"\nleader_in = [9]\n',
        "given union id": '[[users]]\nuser_id = "g"\nname = "给定"\nunion_id = "fixedUnionIdiE"\nactive = false\n',
    }
    path = tmp_path / "world.toml"
    loaded = {}
    for case, extra in cases.items():
        path.write_text(head + extra, encoding="utf-8")
        try:
            loaded[case] = World.load(path)
        except WorldError as exc:
            loaded[case] = exc
    personal = loaded["personal"].users["p"]
    assert personal.personal and (personal.corp_id, personal.corp_name) == ("", "")   # a personal user has no corp
    assert "not an external member" in str(loaded["contact of an insider"])
    assert "unknown follower" in str(loaded["unknown follower"])
    assert "unknown department 9" in str(loaded["leader of nothing"])
    given = loaded["given union id"].users["g"]
    assert (given.union_id, given.active) == ("fixedUnionIdiE", False)
