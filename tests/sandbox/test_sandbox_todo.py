"""待办 APIs (P2 §2.2–2.3, §7.1 item 5): create, read, update, executor status, delete, lists, errors, limits."""

from __future__ import annotations

import pytest
from sandbox_helpers import new_api, new_token

from sandbox.config import EmulatorConfig

PM, ENGINEER, ENGINEER_2, LEADER = "王建国", "李明", "赵磊", "刘强"
DETAIL = {"appUrl": "http://127.0.0.1:9/m/deliverable/7", "pcUrl": "http://127.0.0.1:9/deliverable/7"}
DAY_MS = 86_400_000


def tasks_path(sb, owner: str = PM) -> str:
    return f"/v1.0/todo/users/{sb.union_id(owner)}/tasks"


def todo_body(sb, **fields) -> dict:
    body = {"subject": "《接口说明文档》· 智慧工厂MES", "executorIds": [sb.union_id(ENGINEER)],
            "dueTime": sb.now_ms() + 3 * DAY_MS, "detailUrl": DETAIL, "sourceId": "deliverable:7"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


async def create(http, sb, token, owner: str = PM, **fields) -> tuple[int, dict]:
    return await new_api(http, sb, "POST", tasks_path(sb, owner), token, json_body=todo_body(sb, **fields),
                         params={"operatorId": sb.union_id(owner)})


async def created(http, sb, token, owner: str = PM, **fields) -> dict:
    status, body = await create(http, sb, token, owner, **fields)
    assert status == 200, body
    return body


def refused(result: tuple[int, dict], code: str, message: str) -> bool:
    status, body = result
    assert (status, body.get("code")) == (400, code), body
    assert message in body["message"], body
    return True


@pytest.fixture
async def token(sandbox, http) -> str:
    return await new_token(http, sandbox)


@pytest.fixture
async def other_app_token(sandbox, http) -> str:
    other = sandbox.world.app("考勤助手")
    return await new_token(http, sandbox, other.client_id, other.client_secret)


# ---- create and read ------------------------------------------------------------------

async def test_create_answers_the_task_and_the_executor_sees_it(sandbox, http, token):
    due = sandbox.now_ms() + 3 * DAY_MS
    task = await created(http, sandbox, token, dueTime=due, participantIds=[sandbox.union_id(LEADER)], priority=30,
                         description="按模板编写")
    assert task["id"].startswith("task") and task["requestId"]
    assert task["subject"] == "《接口说明文档》· 智慧工厂MES" and task["dueTime"] == due and task["done"] is False
    assert task["creatorId"] == sandbox.union_id(PM) == task["modifierId"]
    assert task["executorIds"] == [sandbox.union_id(ENGINEER)]
    assert task["participantIds"] == [sandbox.union_id(LEADER)]
    assert task["detailUrl"] == DETAIL and task["sourceId"] == "deliverable:7" and task["priority"] == 30
    assert task["bizTag"] and task["source"] == "项目管家"

    status, got = await new_api(http, sandbox, "GET", f"{tasks_path(sandbox, ENGINEER)}/{task['id']}", token)
    assert status == 200 and got["id"] == task["id"] and got["tenantId"] == sandbox.world.corp_id
    status, by_source = await new_api(http, sandbox, "GET", f"{tasks_path(sandbox)}/sources/deliverable:7", token)
    assert status == 200 and by_source["id"] == task["id"]

    [mine] = await sandbox.todos(ENGINEER)
    assert {k: mine[k] for k in ("id", "subject", "dueTime", "done", "detailUrl", "sourceId")} == {
        "id": task["id"], "subject": task["subject"], "dueTime": due, "done": False, "detailUrl": DETAIL,
        "sourceId": "deliverable:7"}
    assert mine["roles"] == ["executor"] and mine["openUrl"] == DETAIL["pcUrl"]
    assert [t["roles"] for t in await sandbox.todos(PM)] == [["creator"]]
    assert [t["roles"] for t in await sandbox.todos(LEADER)] == [["participant"]]
    assert await sandbox.todos(ENGINEER_2) == []


async def test_only_show_executor_hides_it_from_creator_and_participants(sandbox, http, token):
    await created(http, sandbox, token, isOnlyShowExecutor=True, participantIds=[sandbox.union_id(LEADER)])
    assert len(await sandbox.todos(ENGINEER)) == 1
    assert await sandbox.todos(PM) == [] and await sandbox.todos(LEADER) == []


async def test_source_id_is_unique_per_app(sandbox, http, token, other_app_token):
    first = await created(http, sandbox, token)
    result = await create(http, sandbox, token, subject="另一个标题")
    assert refused(result, "todo.taskCreate.paramError", "task exist")
    assert first["id"] in result[1]["message"]
    # Another app has its own source ids.
    assert (await create(http, sandbox, other_app_token))[0] == 200
    assert len(await sandbox.todo_tasks()) == 2


async def test_a_deleted_todo_frees_its_source_id_unless_configured(sandbox, http, token):
    first = await created(http, sandbox, token)
    assert await sandbox.delete_todo(PM, first["id"]) == "deleted"
    again = await created(http, sandbox, token)
    assert again["id"] != first["id"]
    sandbox.config.todo_deleted_keeps_source_id = True
    await sandbox.delete_todo(PM, again["id"])
    assert refused(await create(http, sandbox, token), "todo.taskCreate.paramError", "task exist")


@pytest.mark.parametrize(("fields", "message"), [
    ({"subject": "字" * 1025}, "subject is oversize"),
    ({"subject": "  "}, "subject is empty"),
    ({"description": "x" * 4097}, "description is oversize"),
    ({"executorIds": ["u"] * 101}, "executors is oversize"),
    ({"participantIds": ["u"] * 101}, "participants is oversize"),
    ({"dueTime": "2024-06-01"}, "dueTime is invalid"),
    ({"dueTime": -5}, "dueTime is invalid"),
    ({"detailUrl": None}, "detailUrl is empty"),
    ({"detailUrl": {"appUrl": "", "pcUrl": ""}}, "detailUrl is empty"),
    ({"detailUrl": {"pcUrl": "http://x/" + "a" * 1020}}, "detailUrl is oversize"),
    ({"executorIds": ["nobody-iE"]}, "unionId is invalid"),
    ({"priority": 25}, "priority is invalid"),
])
async def test_create_refuses_bad_input_and_changes_nothing(sandbox, http, token, fields, message):
    assert refused(await create(http, sandbox, token, **fields), "todo.taskCreate.paramError", message)
    assert await sandbox.todo_tasks() == []


async def test_limits_hold_at_the_boundary(sandbox, http, token):
    people = [u.union_id for u in sandbox.world.internal_users()]
    task = await created(http, sandbox, token, subject="字" * 1024, description="x" * 4096,
                         detailUrl={"pcUrl": "http://x/" + "a" * 1015}, executorIds=people)
    assert len(task["subject"]) == 1024 and len(task["executorIds"]) == len(people)


async def test_outsiders_and_leavers_cannot_be_executors(sandbox, http, token):
    for outsider in ("黄蕾", "许晴"):       # another organization's member, a personal DingTalk user
        assert refused(await create(http, sandbox, token, executorIds=[sandbox.union_id(outsider)]),
                       "todo.taskCreate.paramError", "unionId is invalid")
    await sandbox.update_user(ENGINEER_2, active=False)
    assert refused(await create(http, sandbox, token, executorIds=[sandbox.union_id(ENGINEER_2)]),
                   "todo.taskCreate.paramError", "unionId is invalid")
    assert await sandbox.todo_tasks() == []


async def test_reading_a_missing_task(sandbox, http, token):
    status, body = await new_api(http, sandbox, "GET", f"{tasks_path(sandbox)}/tasknope", token)
    assert refused((status, body), "todo.taskGet.paramError", "task not exist")
    status, body = await new_api(http, sandbox, "GET", f"{tasks_path(sandbox)}/sources/nope", token)
    assert refused((status, body), "todo.taskGetBySource.paramError", "task not exist")


# ---- update, executor status, delete -------------------------------------------------------

async def test_update_changes_what_people_see(sandbox, http, token):
    task = await created(http, sandbox, token)
    new_due = sandbox.now_ms() + 5 * DAY_MS
    status, body = await new_api(http, sandbox, "PUT", f"{tasks_path(sandbox)}/{task['id']}", token, json_body={
        "subject": "《接口说明文档》v2", "dueTime": new_due, "executorIds": [sandbox.union_id(ENGINEER_2)]},
        params={"operatorId": sandbox.union_id(PM)})
    assert (status, body) == (200, {"result": True})
    assert await sandbox.todos(ENGINEER) == []
    [moved] = await sandbox.todos(ENGINEER_2)
    assert (moved["subject"], moved["dueTime"]) == ("《接口说明文档》v2", new_due)
    status, _ = await new_api(http, sandbox, "PUT", f"{tasks_path(sandbox)}/{task['id']}", token,
                              json_body={"done": True})
    assert status == 200
    got = await sandbox.todo(task["id"])
    assert got["done"] is True and got["finishTime"] is not None
    assert (await sandbox.todos(ENGINEER_2))[0]["done"] is True


async def test_update_errors(sandbox, http, token, other_app_token):
    task = await created(http, sandbox, token)
    path = f"{tasks_path(sandbox)}/{task['id']}"
    assert refused(await new_api(http, sandbox, "PUT", f"{tasks_path(sandbox)}/tasknope", token,
                                 json_body={"subject": "x"}), "todo.taskUpdate.paramError", "task not exist")
    assert refused(await new_api(http, sandbox, "PUT", path, other_app_token, json_body={"subject": "x"}),
                   "todo.taskUpdate.paramError", "task not belong to bizTag")
    assert refused(await new_api(http, sandbox, "PUT", path, token, json_body={"executorIds": ["u"] * 1001}),
                   "todo.taskUpdate.paramError", "executors is oversize")
    assert refused(await new_api(http, sandbox, "PUT", path, token, json_body={"subject": "字" * 1025}),
                   "todo.taskUpdate.paramError", "subject is oversize")
    # Another app may read the task, not change it; nothing changed.
    status, got = await new_api(http, sandbox, "GET", path, other_app_token)
    assert status == 200 and got["subject"] == task["subject"] and got["executorIds"] == task["executorIds"]


async def test_executor_status_completes_the_task_when_everyone_is_done(sandbox, http, token):
    engineers = [sandbox.union_id(ENGINEER), sandbox.union_id(ENGINEER_2)]
    task = await created(http, sandbox, token, executorIds=engineers)
    path = f"{tasks_path(sandbox)}/{task['id']}/executorStatus"
    status, body = await new_api(http, sandbox, "PUT", path, token,
                                 json_body={"executorStatusList": [{"id": engineers[0], "isDone": True}]})
    assert (status, body) == (200, {"result": True})
    assert (await sandbox.todos(ENGINEER))[0]["done"] is True
    assert (await sandbox.todos(ENGINEER_2))[0]["done"] is False
    assert (await sandbox.todo(task["id"]))["done"] is False
    await new_api(http, sandbox, "PUT", path, token, json_body={"executorStatusList": [{"id": engineers[1],
                                                                                        "isDone": True}]})
    assert (await sandbox.todo(task["id"]))["done"] is True
    assert refused(await new_api(http, sandbox, "PUT", path, token, json_body={
        "executorStatusList": [{"id": sandbox.union_id(LEADER), "isDone": True}]}),
        "todo.taskExecutorStatusUpdate.paramError", "is not an executor")
    assert refused(await new_api(http, sandbox, "PUT", path, token, json_body={"executorStatusList": []}),
                   "todo.taskExecutorStatusUpdate.paramError", "executorStatusList is empty")


async def test_delete(sandbox, http, token, other_app_token):
    task = await created(http, sandbox, token)
    path = f"{tasks_path(sandbox)}/{task['id']}"
    assert refused(await new_api(http, sandbox, "DELETE", path, other_app_token),
                   "todo.taskDelete.paramError", "task not belong to bizTag")
    status, body = await new_api(http, sandbox, "DELETE", path, token, params={"operatorId": sandbox.union_id(PM)})
    assert status == 200 and body["result"] is True and body["requestId"]
    assert await sandbox.todos(ENGINEER) == []
    assert refused(await new_api(http, sandbox, "GET", path, token), "todo.taskGet.paramError", "task not exist")
    assert refused(await new_api(http, sandbox, "DELETE", path, token), "todo.taskDelete.paramError",
                   "task not exist")


# ---- lists ------------------------------------------------------------------------------

async def org_query(http, sb, token, user: str, **body) -> tuple[int, dict]:
    return await new_api(http, sb, "POST", f"/v1.0/todo/users/{sb.union_id(user)}/org/tasks/query", token,
                         json_body=body)


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(todo_page_size=2)])
async def test_org_list_pages_by_next_token(sandbox, http, token, sandbox_config):
    ids = [(await created(http, sandbox, token, sourceId=f"d:{i}", subject=f"交付物{i}"))["id"] for i in range(5)]
    seen, next_token, pages = [], None, 0
    while True:
        status, body = await org_query(http, sandbox, token, ENGINEER, **({"nextToken": next_token} if next_token
                                                                          else {}))
        assert status == 200, body
        pages += 1
        seen += [card["taskId"] for card in body["todoCards"]]
        next_token = body["nextToken"]
        if next_token is None:
            break
        # A todo deleted between pages neither breaks the paging nor repeats anything.
        if pages == 1:
            await sandbox.delete_todo(PM, ids[2])
    assert pages == 2 and seen == [ids[0], ids[1], ids[3], ids[4]]
    card = body["todoCards"][0]
    assert set(card) >= {"taskId", "subject", "dueTime", "detailUrl", "priority", "createdTime", "modifiedTime",
                         "creatorId", "sourceId", "bizTag", "isDone", "todoType"}
    assert refused(await org_query(http, sandbox, token, ENGINEER, nextToken="!!not-ours"),
                   "todo.orgTaskQuery.paramError", "nextToken is invalid")


async def test_org_list_filters_by_role_and_done(sandbox, http, token):
    mine = await created(http, sandbox, token, sourceId="a")                                   # PM creates
    theirs = await created(http, sandbox, token, owner=ENGINEER, sourceId="b",
                           executorIds=[sandbox.union_id(PM)])                                   # PM executes
    both = await created(http, sandbox, token, sourceId="c", executorIds=[sandbox.union_id(PM)])

    async def ids(**body) -> list[str]:
        status, answer = await org_query(http, sandbox, await new_token(http, sandbox), PM, **body)
        assert status == 200, answer
        return [c["taskId"] for c in answer["todoCards"]]

    assert await ids() == [mine["id"], theirs["id"], both["id"]]
    assert await ids(roleTypes=[["executor"]]) == [theirs["id"], both["id"]]
    assert await ids(roleTypes=[["creator"]]) == [mine["id"], both["id"]]
    assert await ids(roleTypes=[["executor", "creator"]]) == [both["id"]]
    await new_api(http, sandbox, "PUT", f"{tasks_path(sandbox)}/{both['id']}", token, json_body={"done": True})
    assert await ids(isDone=True) == [both["id"]]
    assert await ids(isDone=False) == [mine["id"], theirs["id"]]
    assert refused(await org_query(http, sandbox, token, PM, roleTypes=[["boss"]]),
                   "todo.orgTaskQuery.paramError", "roleTypes is invalid")
    # Done todos drop out of the org list after 180 days.
    await sandbox.advance(181 * 86_400)
    assert await ids(isDone=True) == []


async def test_user_list_and_count(sandbox, http, token):
    now = sandbox.now_ms()
    late = await created(http, sandbox, token, sourceId="late", dueTime=now + 9 * DAY_MS)
    soon = await created(http, sandbox, token, sourceId="soon", dueTime=now + 1 * DAY_MS)
    gone = await created(http, sandbox, token, sourceId="gone", dueTime=now + 2 * DAY_MS)
    await sandbox.delete_todo(PM, gone["id"])
    path = f"/v1.0/todo/users/{sandbox.union_id(ENGINEER)}/tasks"
    status, body = await new_api(http, sandbox, "POST", f"{path}/list", token, json_body={})
    assert status == 200 and [c["taskId"] for c in body["todoCards"]] == [soon["id"], late["id"]]
    assert body["totalCount"] == 2 and body["nextToken"] is None
    assert body["todoCards"][0]["orgInfo"]["corpId"] == sandbox.world.corp_id
    _, body = await new_api(http, sandbox, "POST", f"{path}/list", token,
                            json_body={"orderBy": "dueTime", "orderDirection": "desc"})
    assert [c["taskId"] for c in body["todoCards"]] == [late["id"], soon["id"]]
    _, body = await new_api(http, sandbox, "POST", f"{path}/list", token, json_body={"isRecycled": True})
    assert [c["taskId"] for c in body["todoCards"]] == [gone["id"]]
    _, body = await new_api(http, sandbox, "POST", f"{path}/count", token,
                            json_body={"toDueTime": now + 5 * DAY_MS})
    assert body == {"result": 1}
    assert refused(await new_api(http, sandbox, "POST", f"{path}/list", token, json_body={"orderBy": "name"}),
                   "todo.taskList.paramError", "orderBy is invalid")


# ---- tokens, throttling, flow control, faults ------------------------------------------------

async def test_token_is_checked(sandbox, http):
    status, body = await new_api(http, sandbox, "POST", tasks_path(sandbox), None, json_body=todo_body(sandbox))
    assert (status, body["code"]) == (400, "AuthenticationFailed.MissingParameter")
    status, body = await new_api(http, sandbox, "POST", tasks_path(sandbox), "bogus", json_body=todo_body(sandbox))
    assert (status, body["code"]) == (400, "InvalidAuthentication")
    assert await sandbox.todo_tasks() == []


async def test_qps_limit_per_api(sandbox, http, token):
    await sandbox.freeze_clock()
    sandbox.config.qps_limit = 3
    results = [await create(http, sandbox, token, sourceId=f"s{i}") for i in range(4)]
    assert [s for s, _ in results] == [200, 200, 200, 403]
    assert results[3][1]["code"] == "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
    assert len(await sandbox.todo_tasks()) == 3
    # Another todo API has its own budget; the next second the create works again.
    assert (await org_query(http, sandbox, token, ENGINEER))[0] == 200
    await sandbox.advance(1)
    assert (await create(http, sandbox, token, sourceId="s3"))[0] == 200


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(todo_flow_limit_per_executor=2)])
async def test_flow_control_per_executor(sandbox, http, token, sandbox_config):
    for i in range(2):
        await created(http, sandbox, token, sourceId=f"f{i}")
    assert refused(await create(http, sandbox, token, sourceId="f2"), "todo.taskCreate.flowControlError",
                   "flowControl because of executorId or orgId")
    await created(http, sandbox, token, sourceId="other", executorIds=[sandbox.union_id(ENGINEER_2)])
    await sandbox.advance(60)
    await created(http, sandbox, token, sourceId="f2")


async def test_injected_system_error_and_5xx(sandbox, http, token):
    sandbox.faults.set("todo.taskCreate", error_rate=1.0, kinds="busy", count=1)
    status, body = await create(http, sandbox, token)
    assert (status, body["code"]) == (500, "todo.taskCreate.systemError")
    assert await sandbox.todo_tasks() == []
    sandbox.faults.set("todo.taskUpdate", error_rate=1.0, kinds="5xx", count=1)
    task = await created(http, sandbox, token)
    status, body = await new_api(http, sandbox, "PUT", f"{tasks_path(sandbox)}/{task['id']}", token,
                                 json_body={"subject": "改"})
    assert (status, body["code"]) == (503, "ServiceUnavailable")
    assert (await sandbox.todo(task["id"]))["subject"] == task["subject"]
