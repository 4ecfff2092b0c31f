"""Contacts, departments and the external-contact book (P2 §3.2–3.4, §4): answers, error codes, paging, limits,
the contact scope, and the existing token check, QPS throttle and fault injection applied to them."""

from __future__ import annotations

import pytest
from sandbox_helpers import new_api, new_token

from sandbox.config import EmulatorConfig

INTERNAL_PEOPLE = ["wangjianguo", "liming", "zhaolei", "chenjing", "liuqiang", "zhoumin", "wutao", "sunli",
                   "zhangwei", "zhangwei.sales"]


@pytest.fixture
async def token(sandbox, http):
    return await new_token(http, sandbox)


async def oapi(http, sb, path, token, body=None, *, form=None):
    """A topapi call: JSON body (or a form), token in the query; returns the body (always HTTP 200)."""
    kwargs = {"data": form} if form is not None else {"json": body or {}}
    async with http.post(f"{sb.base_url}/topapi/{path}", params={"access_token": token}, **kwargs) as r:
        assert r.status == 200
        return await r.json()


def errcode(answer) -> int:
    return answer["errcode"]


# ---- users ----------------------------------------------------------------------------------

async def test_user_get(sandbox, http, token):
    answer = await oapi(http, sandbox, "v2/user/get", token, {"userid": "liuqiang", "language": "zh_CN"})
    assert (answer["errcode"], answer["errmsg"]) == (0, "ok") and answer["request_id"]
    user = answer["result"]
    assert (user["userid"], user["name"], user["title"], user["mobile"]) == ("liuqiang", "刘强", "交付中心总监", "13800010005")
    assert user["unionid"] == sandbox.world.user("刘强").union_id
    assert (user["dept_id_list"], user["admin"], user["active"]) == ([2, 5], True, True)
    assert user["leader_in_dept"] == [{"dept_id": 2, "leader": True}, {"dept_id": 5, "leader": False}]
    assert "avatar" not in user      # a default avatar is absent
    # A form-encoded body works too (the doc's curl samples).
    answer = await oapi(http, sandbox, "v2/user/get", token, form={"userid": "liming"})
    assert answer["result"]["name"] == "李明"


@pytest.mark.parametrize("body, code", [
    ({"userid": "nobody"}, 33012),
    ({"userid": "huanglei"}, 33012),          # an outsider has no userid in this organization
    ({}, 40035),
])
async def test_user_get_errors(sandbox, http, token, body, code):
    answer = await oapi(http, sandbox, "v2/user/get", token, body)
    assert errcode(answer) == code and answer["request_id"] and "result" not in answer


async def test_someone_who_left_is_unknown_to_the_directory(sandbox, http, token):
    mobile, union_id = sandbox.world.user("赵磊").mobile, sandbox.world.user("赵磊").union_id
    await sandbox.update_user("zhaolei", active=False)
    assert (await oapi(http, sandbox, "v2/user/get", token, {"userid": "zhaolei"}))["errmsg"] == "无效的USERID"
    assert errcode(await oapi(http, sandbox, "user/getbyunionid", token, {"unionid": union_id})) == 60121
    assert errcode(await oapi(http, sandbox, "v2/user/getbymobile", token, {"mobile": mobile})) == 60121
    listed = await oapi(http, sandbox, "user/listid", token, {"dept_id": 2})
    assert "zhaolei" not in listed["result"]["userid_list"]
    # Renamed people show their new name at once.
    await sandbox.update_user("liming", name="李明远")
    assert (await oapi(http, sandbox, "v2/user/get", token, {"userid": "liming"}))["result"]["name"] == "李明远"


async def test_get_by_union_id(sandbox, http, token):
    world = sandbox.world

    async def by_union(user_or_union):
        return await oapi(http, sandbox, "user/getbyunionid", token, {"unionid": user_or_union})

    assert (await by_union(world.user("李明").union_id))["result"] == {"contact_type": 0, "userid": "liming"}
    # 黄蕾 is in the external-contact book: her unionId maps to the book's userid.
    assert (await by_union(world.user("黄蕾").union_id))["result"] == {"contact_type": 1, "userid": "ext0001"}
    answer = await by_union(world.ext_contacts["ext0002"].union_id)
    assert answer["result"] == {"contact_type": 1, "userid": "ext0002"}
    for unknown in (world.user("高翔").union_id, world.user("许晴").union_id, "nobodyiE"):
        answer = await by_union(unknown)
        assert (answer["errcode"], answer["errmsg"]) == (60121, "找不到该用户")
    assert errcode(await by_union("")) == 40035


async def test_get_by_mobile(sandbox, http, token):
    answer = await oapi(http, sandbox, "v2/user/getbymobile", token, {"mobile": "13800010002"})
    assert answer["result"] == {"userid": "liming"}
    for mobile, code in [("12345", 40104), ("138000100021", 40104), ("13899999999", 60121),
                         ("13900020001", 60121)]:        # the last is 黄蕾's: not an employee
        assert errcode(await oapi(http, sandbox, "v2/user/getbymobile", token, {"mobile": mobile})) == code


async def test_user_list_pages_with_a_cursor(sandbox, http, token):
    seen, cursor, pages = [], 0, 0
    while True:
        answer = await oapi(http, sandbox, "v2/user/list", token, {"dept_id": 2, "cursor": cursor, "size": 2})
        result = answer["result"]
        seen += [u["userid"] for u in result["list"]]
        pages += 1
        if not result["has_more"]:
            assert "next_cursor" not in result
            break
        cursor = result["next_cursor"]
    # Direct members only: 张伟 of 测试组 (a sub-department) is not listed under 交付中心.
    assert seen == ["wangjianguo", "liming", "zhaolei", "liuqiang", "sunli"] and pages == 3
    first = (await oapi(http, sandbox, "v2/user/list", token, {"dept_id": 2, "cursor": 0, "size": 100}))["result"]
    item = first["list"][3]
    assert (item["userid"], item["leader"], item["unionid"], item["dept_id_list"]) == \
        ("liuqiang", True, sandbox.world.user("刘强").union_id, [2, 5])
    orders = [u["dept_order"] for u in first["list"]]
    assert orders == sorted(orders)

    desc = (await oapi(http, sandbox, "v2/user/list", token,
                       {"dept_id": 2, "cursor": 0, "size": 100, "order_field": "entry_desc"}))["result"]
    assert [u["userid"] for u in desc["list"]] == seen[::-1]
    await sandbox.update_user("zhaolei", name="赵磊磊")
    modified = (await oapi(http, sandbox, "v2/user/list", token,
                           {"dept_id": 2, "cursor": 0, "size": 100, "order_field": "modify_desc"}))["result"]
    assert modified["list"][0]["userid"] == "zhaolei"


@pytest.mark.parametrize("body, code", [
    ({"dept_id": 2, "cursor": 0, "size": 101}, 40035),
    ({"dept_id": 2, "cursor": 0, "size": 0}, 40035),
    ({"dept_id": 2, "cursor": -1, "size": 10}, 40035),
    ({"dept_id": 2, "cursor": "x", "size": 10}, 40035),
    ({"dept_id": 2, "cursor": 0, "size": 10, "order_field": "name"}, 40035),
    ({"cursor": 0, "size": 10}, 40035),
    ({"dept_id": 99, "cursor": 0, "size": 10}, 60019),
])
async def test_user_list_errors(sandbox, http, token, body, code):
    assert errcode(await oapi(http, sandbox, "v2/user/list", token, body)) == code


async def test_user_listid(sandbox, http, token):
    answer = await oapi(http, sandbox, "user/listid", token, {"dept_id": 3})
    assert answer["result"] == {"userid_list": ["chenjing", "zhangwei.sales"]}
    answer = await oapi(http, sandbox, "user/listid", token, {"dept_id": 42})
    assert (answer["errcode"], answer["errmsg"]) == (60003, "未找到对应部门")


# ---- departments ----------------------------------------------------------------------------

async def test_walking_the_department_tree_finds_every_employee(sandbox, http, token):
    root = await oapi(http, sandbox, "v2/department/listsub", token, {})
    assert [(d["dept_id"], d["name"], d["parent_id"]) for d in root["result"]] == [
        (2, "交付中心", 1), (3, "销售部", 1), (4, "售后服务部", 1), (5, "公司管理层", 1)]
    found: set[str] = set()
    pending = [1]
    while pending:
        dept = pending.pop()
        children = (await oapi(http, sandbox, "v2/department/listsub", token, {"dept_id": dept}))["result"]
        pending += [d["dept_id"] for d in children]
        found |= set((await oapi(http, sandbox, "user/listid", token, {"dept_id": dept}))["result"]["userid_list"])
    assert found == set(INTERNAL_PEOPLE)
    assert errcode(await oapi(http, sandbox, "v2/department/listsub", token, {"dept_id": 77})) == 60003


async def test_department_get(sandbox, http, token):
    dept = (await oapi(http, sandbox, "v2/department/get", token, {"dept_id": 2}))["result"]
    assert (dept["dept_id"], dept["name"], dept["parent_id"]) == (2, "交付中心", 1)
    assert dept["dept_manager_userid_list"] == ["liuqiang"]
    assert dept["member_count"] == 6          # five direct members and 张伟 of 测试组
    root = (await oapi(http, sandbox, "v2/department/get", token, {"dept_id": 1}))["result"]
    assert "parent_id" not in root and root["member_count"] == len(INTERNAL_PEOPLE)
    assert errcode(await oapi(http, sandbox, "v2/department/get", token, {"dept_id": 404})) == 60003
    assert errcode(await oapi(http, sandbox, "v2/department/get", token, {})) == 40035


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(contact_scope=(3,))])
async def test_contact_scope_limits_what_the_app_may_read(sandbox, http, token):
    for path, body in [("v2/user/list", {"dept_id": 2, "cursor": 0, "size": 10}), ("user/listid", {"dept_id": 2}),
                       ("v2/department/listsub", {}), ("v2/department/get", {"dept_id": 1}),
                       ("v2/user/get", {"userid": "liming"})]:
        answer = await oapi(http, sandbox, path, token, body)
        assert (answer["errcode"], answer["errmsg"]) == (50004, "企业部门不在授权范围"), path
    assert (await oapi(http, sandbox, "user/listid", token, {"dept_id": 3}))["result"]["userid_list"] == [
        "chenjing", "zhangwei.sales"]
    assert (await oapi(http, sandbox, "v2/user/get", token, {"userid": "chenjing"}))["errcode"] == 0
    status, body = await new_api(http, sandbox, "POST", "/v1.0/contact/users/search", token,
                                 json_body={"queryWord": "张伟", "offset": 0, "size": 10})
    assert status == 200 and body["list"] == ["zhangwei.sales"]


# ---- search (new API) -------------------------------------------------------------------------

async def search(http, sb, token, **body):
    return await new_api(http, sb, "POST", "/v1.0/contact/users/search", token, json_body=body)


async def test_users_search(sandbox, http, token):
    status, body = await search(http, sandbox, token, queryWord="张伟", offset=0, size=10)
    assert status == 200 and body == {"hasMore": False, "totalCount": 2, "list": ["zhangwei", "zhangwei.sales"]}
    status, body = await search(http, sandbox, token, queryWord="张伟", offset=0, size=1)
    assert body == {"hasMore": True, "totalCount": 2, "list": ["zhangwei"]}
    status, body = await search(http, sandbox, token, queryWord="张伟", offset=1, size=1)
    assert body["list"] == ["zhangwei.sales"] and body["hasMore"] is False
    status, body = await search(http, sandbox, token, queryWord="李", offset=0, size=10, fullMatchField=1)
    assert body["list"] == []                  # exact name only
    status, body = await search(http, sandbox, token, queryWord="李", offset=0, size=10)
    assert body["list"] == ["liming"]
    status, body = await search(http, sandbox, token, queryWord="黄蕾", offset=0, size=10)
    assert body["totalCount"] == 0             # outsiders are not in the directory


@pytest.mark.parametrize("body, code", [
    ({"queryWord": "张", "offset": 0, "size": 51}, "invalidParameter"),
    ({"queryWord": "张", "offset": -1, "size": 5}, "invalidParameter"),
    ({"offset": 0, "size": 5}, "MissingqueryWord"),
    ({"queryWord": "张", "size": 5}, "Missingoffset"),
])
async def test_users_search_errors(sandbox, http, token, body, code):
    status, answer = await search(http, sandbox, token, **body)
    assert (status, answer["code"]) == (400, code) and answer["requestid"]


# ---- the external-contact book ----------------------------------------------------------------

async def test_ext_contacts(sandbox, http, token):
    answer = await oapi(http, sandbox, "extcontact/list", token, {"size": 1, "offset": 0})
    assert answer["errcode"] == 0 and "result" not in answer
    [first] = answer["results"]
    assert (first["userid"], first["name"], first["company_name"], first["follower_user_id"]) == \
        ("ext0001", "黄蕾", "华东某制造集团", "chenjing")
    assert first["label_ids"] == [1001] and first["state_code"] == "86"
    rest = await oapi(http, sandbox, "extcontact/list", token, {"size": 100, "offset": 1})
    assert [c["userid"] for c in rest["results"]] == ["ext0002"]
    assert (await oapi(http, sandbox, "extcontact/list", token, {"size": 10, "offset": 2}))["results"] == []
    assert errcode(await oapi(http, sandbox, "extcontact/list", token, {"size": 101, "offset": 0})) == 40035

    answer = await oapi(http, sandbox, "extcontact/get", token, {"user_id": "ext0002"})
    assert (answer["result"]["name"], answer["result"]["share_dept_ids"]) == ("钱峰", [3])
    assert errcode(await oapi(http, sandbox, "extcontact/get", token, {"user_id": "nope"})) == 60121
    assert errcode(await oapi(http, sandbox, "extcontact/get", token, {})) == 40035


# ---- tokens, throttling, faults ---------------------------------------------------------------

async def test_token_throttle_and_faults_apply(sandbox, http, token):
    answer = await oapi(http, sandbox, "v2/user/get", "bad-token", {"userid": "liming"})
    assert (answer["errcode"], answer["sub_code"]) == (88, "40014")
    status, body = await search(http, sandbox, None, queryWord="张", offset=0, size=5)
    assert (status, body["code"]) == (400, "AuthenticationFailed.MissingParameter")

    # -1 系统繁忙 once, then the call works again (a sync must retry, not give up).
    sandbox.faults.set("user.*", error_rate=1.0, kinds="busy", count=1)
    busy = await oapi(http, sandbox, "v2/user/list", token, {"dept_id": 2, "cursor": 0, "size": 10})
    assert (busy["errcode"], busy["errmsg"]) == (-1, "系统繁忙")
    assert errcode(await oapi(http, sandbox, "v2/user/list", token, {"dept_id": 2, "cursor": 0, "size": 10})) == 0
    sandbox.faults.set("contact.users.search", error_rate=1.0, kinds="busy", count=1)
    status, body = await search(http, sandbox, token, queryWord="张", offset=0, size=5)
    assert (status, body["code"]) == (500, "systemError")

    await sandbox.freeze_clock()
    sandbox.config.qps_limit = 2
    codes = [errcode(await oapi(http, sandbox, "v2/user/get", token, {"userid": "liming"})) for _ in range(3)]
    assert codes == [0, 0, 90018]
    # Per API: another contact API still has its own budget in the same second.
    assert errcode(await oapi(http, sandbox, "user/listid", token, {"dept_id": 2})) == 0
    await sandbox.advance(1)
    assert errcode(await oapi(http, sandbox, "v2/user/get", token, {"userid": "liming"})) == 0
    assert [c.error for c in sandbox.call_log("user.get")] == ["88", None, None, "90018", None]
