"""Group members (P2 §3.5): the scene-group member query (insiders by userId, outsiders by unionId), the internal
group member APIs, and the robot's own groups; paging, limits, error codes and the UNCONFIRMED-default switch."""

from __future__ import annotations

import pytest
from sandbox_helpers import CLIENT_GROUP, INTERNAL_GROUP, new_api, new_token

from sandbox.config import EmulatorConfig

BATCH = "/v1.0/im/sceneGroups/members/batchQuery"
INNER = "/v1.0/im/innerGroups/members/query"
CHECK = "/v1.0/im/innerGroups/members/check"
LISTS = "/v1.0/im/innerGroups/memberLists/query"
GROUPS = "/v1.0/robot/groups/query"


@pytest.fixture
async def token(sandbox, http):
    return await new_token(http, sandbox)


async def test_scene_group_members_split_insiders_and_outsiders(sandbox, http, token):
    world = sandbox.world
    status, body = await new_api(http, sandbox, "POST", BATCH, token, json_body={
        "openConversationId": sandbox.conversation_id(CLIENT_GROUP), "maxResults": 1000})
    assert status == 200 and body["success"] is True and body["hasMore"] is False and "nextToken" not in body
    assert body["memberUserIds"] == ["wangjianguo", "liming", "chenjing", "wutao"]
    outsiders = [world.user(n) for n in ("黄蕾", "高翔", "许晴")]
    assert body["unionIdList"] == [u.union_id for u in outsiders]
    assert body["unionIdNickMap"] == {u.union_id: u.name for u in outsiders}
    assert body["staffIdNickMap"] == {"wangjianguo": "王建国", "liming": "李明", "chenjing": "陈静", "wutao": "吴涛"}


async def test_scene_group_members_page_with_next_token(sandbox, http, token):
    cid = sandbox.conversation_id(CLIENT_GROUP)
    insiders, outsiders, token_value, pages = [], [], None, 0
    while True:
        request = {"openConversationId": cid, "maxResults": 3}
        if token_value:
            request["nextToken"] = token_value
        status, body = await new_api(http, sandbox, "POST", BATCH, token, json_body=request)
        assert status == 200, body
        insiders += body["memberUserIds"]
        outsiders += body["unionIdList"]
        pages += 1
        if not body["hasMore"]:
            break
        token_value = body["nextToken"]
    assert pages == 3 and len(insiders) == 4 and len(outsiders) == 3

    # Someone who left is no longer a member.
    await sandbox.update_user("wutao", active=False)
    status, body = await new_api(http, sandbox, "POST", BATCH, token, json_body={"openConversationId": cid,
                                                                                   "maxResults": 100})
    assert "wutao" not in body["memberUserIds"] and len(body["memberUserIds"]) == 3


@pytest.mark.parametrize("request_body, code", [
    ({"maxResults": 10}, "MissingopenConversationId"),
    ({"openConversationId": "CLIENT"}, "MissingmaxResults"),
    ({"openConversationId": "CLIENT", "maxResults": 0}, "paramIllegal"),
    ({"openConversationId": "CLIENT", "maxResults": 1001}, "paramIllegal"),
    ({"openConversationId": "CLIENT", "maxResults": 10, "nextToken": "garbage!"}, "paramIllegal"),
    ({"openConversationId": "not-a-cid", "maxResults": 10}, "cidEncryptError"),
    ({"openConversationId": "cidUnknownGroup==", "maxResults": 10}, "groupPermissionDenied"),
])
async def test_scene_group_members_errors(sandbox, http, token, request_body, code):
    if request_body.get("openConversationId") == "CLIENT":
        request_body = {**request_body, "openConversationId": sandbox.conversation_id(CLIENT_GROUP)}
    status, body = await new_api(http, sandbox, "POST", BATCH, token, json_body=request_body)
    assert (status, body["code"]) == (400, code) and body["requestid"]


async def test_a_robot_sees_only_its_own_groups(sandbox, http):
    other = sandbox.world.app("考勤助手")        # its robot is in no group
    token = await new_token(http, sandbox, other.client_id, other.client_secret)
    cid = sandbox.conversation_id(INTERNAL_GROUP)
    status, body = await new_api(http, sandbox, "POST", BATCH, token, json_body={"openConversationId": cid,
                                                                                   "maxResults": 10})
    assert (status, body["code"]) == (400, "groupPermissionDenied")
    status, body = await new_api(http, sandbox, "POST", CHECK, token, json_body={"openConversationId": cid,
                                                                                   "userId": "liming"})
    assert (status, body["code"]) == (400, "invalid.openConversationId")
    status, body = await new_api(http, sandbox, "POST", GROUPS, token, json_body={
        "robotCode": other.robot_code, "pageNumber": 1, "pageSize": 10})
    assert status == 200 and body == {"openConversationIds": [], "hasMore": False}


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(scene_group_members_any_group=False)])
async def test_scene_group_query_can_be_limited_to_scene_groups(sandbox, http, token):
    status, body = await new_api(http, sandbox, "POST", BATCH, token, json_body={
        "openConversationId": sandbox.conversation_id(CLIENT_GROUP), "maxResults": 10})
    assert (status, body["code"]) == (400, "groupPermissionDenied") and "场景群" in body["message"]
    # The internal-group APIs still answer.
    status, body = await new_api(http, sandbox, "POST", CHECK, token, json_body={
        "openConversationId": sandbox.conversation_id(CLIENT_GROUP), "userId": "liming"})
    assert status == 200 and body == {"result": True}


async def test_inner_group_members_list_insiders_only(sandbox, http, token):
    cid = sandbox.conversation_id(CLIENT_GROUP)
    status, body = await new_api(http, sandbox, "POST", INNER, token, json_body={
        "openConversationId": cid, "userId": "wangjianguo", "maxResults": 3})
    assert status == 200 and body["userIds"] == ["wangjianguo", "liming", "chenjing"] and body["hasMore"] is True
    status, body = await new_api(http, sandbox, "POST", INNER, token, json_body={
        "openConversationId": cid, "userId": "wangjianguo", "maxResults": 3, "nextToken": body["nextToken"]})
    assert body == {"userIds": ["wutao"], "hasMore": False}

    for operator in ("zhaolei", "huanglei", "nobody"):     # not a member / an outsider / nobody
        status, body = await new_api(http, sandbox, "POST", INNER, token, json_body={
            "openConversationId": cid, "userId": operator, "maxResults": 3})
        assert (status, body["code"]) == (400, "invalidParameter.userId"), operator
    status, body = await new_api(http, sandbox, "POST", INNER, token, json_body={"openConversationId": cid,
                                                                                   "maxResults": 3})
    assert (status, body["code"]) == (400, "MissinguserId")


async def test_inner_group_member_check(sandbox, http, token):
    cid = sandbox.conversation_id(CLIENT_GROUP)
    answers = {}
    for user in ("liming", "zhaolei", "huanglei"):
        status, body = await new_api(http, sandbox, "POST", CHECK, token,
                                     json_body={"openConversationId": cid, "userId": user})
        assert status == 200
        answers[user] = body["result"]
    assert answers == {"liming": True, "zhaolei": False, "huanglei": False}


async def test_inner_group_member_lists_page_with_an_int_token(sandbox, http, token):
    cid = sandbox.conversation_id(INTERNAL_GROUP)
    status, body = await new_api(http, sandbox, "POST", LISTS, token, json_body={
        "openConversationId": cid, "userId": "liming", "maxResults": 5, "nextToken": 0})
    assert status == 200 and body["hasMore"] is True and body["nextToken"] == 5
    assert body["list"][0] == {"userId": "wangjianguo", "name": "王建国", "nickName": "王建国", "icon": ""}
    status, body = await new_api(http, sandbox, "POST", LISTS, token, json_body={
        "openConversationId": cid, "userId": "liming", "maxResults": 5, "nextToken": 5})
    assert [m["name"] for m in body["list"]] == ["周敏", "吴涛", "孙丽"] and body["hasMore"] is False
    status, body = await new_api(http, sandbox, "POST", LISTS, token, json_body={
        "openConversationId": cid, "userId": "liming", "maxResults": 5, "nextToken": "five"})
    assert (status, body["code"]) == (400, "paramIllegal")


async def test_robot_groups_query(sandbox, http, token):
    status, body = await new_api(http, sandbox, "POST", GROUPS, token, json_body={
        "robotCode": sandbox.robot_code, "pageNumber": 1, "pageSize": 1})
    assert status == 200 and body == {"openConversationIds": [sandbox.conversation_id(INTERNAL_GROUP)],
                                      "hasMore": True}
    status, body = await new_api(http, sandbox, "POST", GROUPS, token, json_body={
        "robotCode": sandbox.robot_code, "pageNumber": 2, "pageSize": 1})
    assert body == {"openConversationIds": [sandbox.conversation_id(CLIENT_GROUP)], "hasMore": False}
    for bad, code in [({"robotCode": "dingother"}, "invalidParameter.robotCode.auth"),
                      ({"pageSize": 101}, "invalidParameter.pageSize"),
                      ({"pageNumber": 0}, "invalidParameter.pageNumber")]:
        status, body = await new_api(http, sandbox, "POST", GROUPS, token, json_body={
            "robotCode": sandbox.robot_code, "pageNumber": 1, "pageSize": 10, **bad})
        assert (status, body["code"]) == (400, code)


async def test_group_apis_are_throttled_and_take_faults(sandbox, http, token):
    cid = sandbox.conversation_id(CLIENT_GROUP)
    body = {"openConversationId": cid, "maxResults": 10}
    sandbox.faults.set("im.sceneGroups.members.batchQuery", error_rate=1.0, kinds="5xx", count=1)
    status, answer = await new_api(http, sandbox, "POST", BATCH, token, json_body=body)
    assert (status, answer["code"]) == (503, "ServiceUnavailable")
    await sandbox.freeze_clock()
    sandbox.config.qps_limit = 1
    statuses = [(await new_api(http, sandbox, "POST", BATCH, token, json_body=body))[0] for _ in range(2)]
    assert statuses == [200, 403]
