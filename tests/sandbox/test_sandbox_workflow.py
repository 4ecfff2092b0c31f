"""Workflow APIs and the approval state machine with its EVENT frames (§8, §13.2)."""

from __future__ import annotations

import json

import pytest
from sandbox_helpers import RawStreamClient, new_api, new_token

FORMS = "/v1.0/workflow/forms"
INSTANCES = "/v1.0/workflow/processInstances"

COMPONENTS = [
    {"componentType": "TextField", "props": {"componentId": "TextField_1", "label": "项目名称", "required": True}},
    {"componentType": "DDSelectField", "props": {"componentId": "DDSelectField_1", "label": "阶段",
                                                 "options": [{"key": "a", "value": "需求"}, {"key": "b", "value": "验收"}]}},
    {"componentType": "NumberField", "props": {"componentId": "NumberField_1", "label": "金额"}},
    {"componentType": "DDDateField", "props": {"componentId": "DDDateField_1", "label": "日期"}},
    {"componentType": "TextNote", "props": {"componentId": "TextNote_1", "content": "说明文字"}},
]
VALUES = [{"name": "项目名称", "value": "智慧工厂MES"}, {"name": "阶段", "value": "验收"}]


@pytest.fixture
async def token(sandbox, http) -> str:
    return await new_token(http, sandbox)


@pytest.fixture
async def form(sandbox, http, token) -> str:
    status, body = await new_api(http, sandbox, "POST", FORMS, token, json_body={
        "name": "项目里程碑审批", "description": "阶段切换", "formComponents": COMPONENTS})
    assert status == 200, body
    return body["result"]["processCode"]


@pytest.fixture
async def events(sandbox, http):
    client = await RawStreamClient(sandbox, http, auto_ack=True).connect()
    yield client
    await client.close()


async def next_event(client) -> tuple[str, dict]:
    frame = await client.next_of("EVENT")
    return frame["headers"]["eventType"], json.loads(frame["data"])


async def create(sandbox, http, token, process_code, approvers, **extra) -> tuple[int, dict]:
    body = {"processCode": process_code, "originatorUserId": "wangjianguo", "formComponentValues": VALUES, **extra}
    if approvers is not None:
        body["approvers"] = approvers
    return await new_api(http, sandbox, "POST", INSTANCES, token, json_body=body)


async def test_form_create_update_lookup_and_schema(sandbox, http, token, form):
    assert form.startswith("PROC-")
    status, body = await new_api(http, sandbox, "POST", FORMS, token, json_body={
        "name": "项目里程碑审批", "formComponents": COMPONENTS})
    assert (status, body["code"]) == (400, "formName.error")
    status, body = await new_api(http, sandbox, "POST", FORMS, token, json_body={
        "processCode": form, "name": "项目里程碑审批", "formComponents": COMPONENTS[:2]})
    assert (status, body["result"]["processCode"]) == (200, form)
    status, body = await new_api(http, sandbox, "GET", "/v1.0/workflow/processCentres/schemaNames/processCodes",
                                 token, params={"name": "项目里程碑审批"})
    assert status == 200 and body["result"]["processCode"] == form and body["result"]["gmtModified"]
    status, body = await new_api(http, sandbox, "GET", "/v1.0/workflow/processCentres/schemaNames/processCodes",
                                 token, params={"name": "不存在的表单"})
    assert status == 400
    status, body = await new_api(http, sandbox, "GET", "/v1.0/workflow/forms/schemas/processCodes", token,
                                 params={"processCode": form})
    items = body["result"]["schemaContent"]["items"]
    assert [(i["componentName"], i["props"]["label"]) for i in items] == [("TextField", "项目名称"),
                                                                          ("DDSelectField", "阶段")]
    status, body = await new_api(http, sandbox, "POST", FORMS, token, json_body={
        "processCode": "PROC-NOPE", "name": "x", "formComponents": COMPONENTS})
    assert (status, body["code"]) == (400, "processcode.error")
    status, body = await new_api(http, sandbox, "POST", FORMS, token, json_body={
        "name": "坏表单", "formComponents": [{"componentType": "Nope", "props": {"label": "x"}}]})
    assert (status, body["code"]) == (400, "formschema.error")


async def test_single_approver_agree_with_events_in_order(sandbox, http, token, form, events):
    status, body = await create(sandbox, http, token, form, [{"actionType": "NONE", "userIds": ["liuqiang"]}])
    assert status == 200
    instance_id = body["instanceId"]
    kind, data = await next_event(events)
    assert (kind, data["type"], data["staffId"], data["processInstanceId"]) == \
        ("bpms_instance_change", "start", "wangjianguo", instance_id)
    assert "result" not in data and data["title"] == "王建国提交的项目里程碑审批" and data["processCode"] == form
    kind, task_start = await next_event(events)
    assert (kind, task_start["type"], task_start["staffId"]) == ("bpms_task_change", "start", "liuqiang")
    assert "finishTime" not in task_start

    status, body = await new_api(http, sandbox, "GET", INSTANCES, token, params={"processInstanceId": instance_id})
    result = body["result"]
    assert body["success"] == "true"
    assert (result["status"], result["result"]) == ("RUNNING", "")
    assert result["approverUserIds"] == ["liuqiang"] and result["originatorUserId"] == "wangjianguo"
    assert [t["status"] for t in result["tasks"]] == ["RUNNING"]
    assert [r["type"] for r in result["operationRecords"]] == ["START_PROCESS_INSTANCE"]
    assert result["formComponentValues"][0] == {"id": "TextField_1", "name": "项目名称", "value": "智慧工厂MES",
                                                "extValue": "", "componentType": "TextField", "bizAlias": ""}

    await sandbox.approve(instance_id, "刘强", "同意上线")
    kind, data = await next_event(events)
    assert (kind, data["type"], data["result"], data["remark"], data["taskId"]) == \
        ("bpms_task_change", "finish", "agree", "同意上线", task_start["taskId"])
    kind, data = await next_event(events)
    assert (kind, data["type"], data["result"]) == ("bpms_instance_change", "finish", "agree")
    assert data["finishTime"] >= data["createTime"]

    result = await sandbox.instance(instance_id)
    assert (result["status"], result["result"]) == ("COMPLETED", "agree") and result["finishTime"]
    assert result["operationRecords"][-1]["type"] == "EXECUTE_TASK_NORMAL"
    assert result["operationRecords"][-1]["result"] == "AGREE"


async def test_sequential_steps_and_refusal(sandbox, http, token, form, events):
    status, body = await create(sandbox, http, token, form, [
        {"actionType": "NONE", "userIds": ["liuqiang"]}, {"actionType": "NONE", "userIds": ["zhoumin"]}])
    instance_id = body["instanceId"]
    assert [(await next_event(events))[1]["type"] for _ in range(2)] == ["start", "start"]
    await sandbox.approve(instance_id, "liuqiang")
    kind, data = await next_event(events)
    assert (kind, data["type"], data["staffId"]) == ("bpms_task_change", "finish", "liuqiang")
    kind, data = await next_event(events)
    assert (kind, data["type"], data["staffId"]) == ("bpms_task_change", "start", "zhoumin")
    await sandbox.refuse(instance_id, "周敏", "预算不足")
    kind, data = await next_event(events)
    assert (data["type"], data["result"]) == ("finish", "refuse")
    kind, data = await next_event(events)
    assert (kind, data["type"], data["result"]) == ("bpms_instance_change", "finish", "refuse")
    result = await sandbox.instance(instance_id)
    assert (result["status"], result["result"]) == ("COMPLETED", "refuse")


async def test_or_sign_first_decision_cancels_the_others(sandbox, http, token, form, events):
    status, body = await create(sandbox, http, token, form, [{"actionType": "OR", "userIds": ["liuqiang", "zhoumin"]}])
    instance_id = body["instanceId"]
    for _ in range(3):
        await next_event(events)
    await sandbox.approve(instance_id, "周敏")
    seen = [(await next_event(events)) for _ in range(3)]
    assert [(k, d["type"], d["staffId"]) for k, d in seen] == [
        ("bpms_task_change", "finish", "zhoumin"), ("bpms_task_change", "cancel", "liuqiang"),
        ("bpms_instance_change", "finish", "wangjianguo")]
    result = await sandbox.instance(instance_id)
    assert sorted(t["status"] for t in result["tasks"]) == ["CANCELED", "COMPLETED"]


async def test_and_sign_needs_everyone(sandbox, http, token, form, events):
    status, body = await create(sandbox, http, token, form, [{"actionType": "AND", "userIds": ["liuqiang", "zhoumin"]}])
    instance_id = body["instanceId"]
    for _ in range(3):
        await next_event(events)
    await sandbox.approve(instance_id, "刘强")
    assert (await next_event(events))[1]["type"] == "finish"
    assert (await sandbox.instance(instance_id))["status"] == "RUNNING"
    await sandbox.approve(instance_id, "周敏")
    assert (await next_event(events))[1]["type"] == "finish"
    kind, data = await next_event(events)
    assert (kind, data["type"], data["result"]) == ("bpms_instance_change", "finish", "agree")


async def test_form_flow_configured_in_the_world_and_by_the_harness(sandbox, http, token, events):
    status, body = await new_api(http, sandbox, "POST", FORMS, token, json_body={
        "name": "项目阶段验收审批", "formComponents": COMPONENTS})
    code = body["result"]["processCode"]
    status, body = await create(sandbox, http, token, code, None, deptId=2)
    assert status == 200, body
    await next_event(events)
    assert (await next_event(events))[1]["staffId"] == "liuqiang"      # from default.toml's form_flows
    result = await sandbox.instance(body["instanceId"])
    assert result["approverUserIds"] == []      # only API-chosen approvers are listed
    await sandbox.set_approvers("项目阶段验收审批", [("NONE", ["孙丽"])])
    status, body = await create(sandbox, http, token, code, None, deptId=-1)
    await next_event(events)
    assert (await next_event(events))[1]["staffId"] == "sunli"


async def test_create_validation(sandbox, http, token, form):
    approvers = [{"actionType": "NONE", "userIds": ["liuqiang"]}]
    status, body = await create(sandbox, http, token, form, approvers,
                                formComponentValues=[{"name": "不存在的控件", "value": "x"}])
    assert (status, body["code"]) == (400, "formConverterError")
    assert body["message"] == "表单数据校验失败，失败控件：不存在的控件"
    status, body = await create(sandbox, http, token, form, approvers,
                                formComponentValues=[{"name": "阶段", "value": "验收"}])
    assert (status, body["message"]) == (400, "表单数据校验失败，失败控件：项目名称")
    status, body = await create(sandbox, http, token, form, approvers,
                                formComponentValues=VALUES + [{"name": "金额", "value": "很多"}])
    assert body["code"] == "formConverterError"
    status, body = await create(sandbox, http, token, form, approvers,
                                formComponentValues=[{"name": "项目名称", "value": "x"}, {"name": "阶段", "value": "上线"}])
    assert body["code"] == "formConverterError"
    status, body = await create(sandbox, http, token, "PROC-NOPE", approvers)
    assert (status, body["code"]) == (400, "processCodeError")
    status, body = await create(sandbox, http, token, form, None)
    assert (status, body["code"]) == (400, "invalidParameter")       # deptId needed without approvers
    status, body = await create(sandbox, http, token, form, None, deptId=2)
    assert (status, body["code"]) == (400, "targetSelectApproverMissing")
    status, body = await create(sandbox, http, token, form, [{"actionType": "NONE", "userIds": ["a", "b"]}])
    assert (status, body["code"]) == (400, "invalidParameter")
    status, body = await create(sandbox, http, token, form, approvers, originatorUserId="huanglei")
    assert (status, body["code"]) == (400, "invalidParameter")
    status, body = await new_api(http, sandbox, "GET", INSTANCES, token, params={"processInstanceId": "nope"})
    assert (status, body["code"]) == (400, "processInstanceNotExist")


async def test_terminate_rules_and_event(sandbox, http, token, form, events):
    status, body = await create(sandbox, http, token, form, [{"actionType": "NONE", "userIds": ["liuqiang"]}])
    instance_id = body["instanceId"]
    for _ in range(2):
        await next_event(events)
    terminate = {"processInstanceId": instance_id, "isSystem": False, "operatingUserId": "wangjianguo",
                 "remark": "需求变更"}
    status, body = await new_api(http, sandbox, "POST", f"{INSTANCES}/terminate", token, json_body=terminate)
    assert (status, body["code"]) == (400, "processInstanceInvalidParameter")     # within 15 s of the start
    await sandbox.advance(15)
    status, body = await new_api(http, sandbox, "POST", f"{INSTANCES}/terminate", token,
                                 json_body={**terminate, "operatingUserId": "liming"})
    assert (status, body["code"]) == (400, "invalidParameter")                    # not the originator
    status, body = await new_api(http, sandbox, "POST", f"{INSTANCES}/terminate", token, json_body=terminate)
    assert (status, body) == (200, {"result": True, "success": True})
    kind, data = await next_event(events)
    assert (kind, data["type"], data["remark"]) == ("bpms_instance_change", "terminate", "需求变更")
    assert "result" not in data
    result = await sandbox.instance(instance_id)
    assert result["status"] == "TERMINATED"
    assert result["tasks"][0]["status"] == "TERMINATED"
    assert result["operationRecords"][-1]["type"] == "TERMINATE_PROCESS_INSTANCE"
    status, body = await new_api(http, sandbox, "POST", f"{INSTANCES}/terminate", token, json_body=terminate)
    assert status == 400                                                          # already over


async def test_terminate_refused_when_revoking_is_disabled(sandbox, http, token):
    status, body = await new_api(http, sandbox, "POST", FORMS, token, json_body={
        "name": "不可撤销审批", "formComponents": COMPONENTS, "templateConfig": {"disableStopProcessButton": True}})
    status, body = await create(sandbox, http, token, body["result"]["processCode"],
                                [{"actionType": "NONE", "userIds": ["liuqiang"]}])
    await sandbox.advance(20)
    status, body = await new_api(http, sandbox, "POST", f"{INSTANCES}/terminate", token, json_body={
        "processInstanceId": body["instanceId"], "isSystem": True})
    assert (status, body["code"]) == (400, "820008")


async def test_harness_terminate(sandbox, http, token, form):
    status, body = await create(sandbox, http, token, form, [{"actionType": "NONE", "userIds": ["liuqiang"]}])
    await sandbox.advance(16)
    result = await sandbox.terminate(body["instanceId"], remark="撤回")
    assert result["status"] == "TERMINATED"
    assert [e.data["type"] for e in sandbox.events("bpms_instance_change")] == ["start", "terminate"]


async def test_execute_api(sandbox, http, token, form):
    status, body = await create(sandbox, http, token, form, [{"actionType": "NONE", "userIds": ["liuqiang"]}])
    instance_id = body["instanceId"]
    task_id = (await sandbox.instance(instance_id))["tasks"][0]["taskId"]
    assert isinstance(task_id, int)
    execute = {"processInstanceId": instance_id, "taskId": task_id, "actionerUserId": "zhoumin", "result": "agree"}
    status, body = await new_api(http, sandbox, "POST", f"{INSTANCES}/execute", token, json_body=execute)
    assert (status, body["code"]) == (400, "invalidParameter")
    status, body = await new_api(http, sandbox, "POST", f"{INSTANCES}/execute", token,
                                 json_body={**execute, "actionerUserId": "liuqiang", "result": "refuse"})
    assert (status, body) == (200, {"result": True, "success": True})
    assert (await sandbox.instance(instance_id))["result"] == "refuse"
    status, body = await new_api(http, sandbox, "POST", f"{INSTANCES}/execute", token,
                                 json_body={**execute, "actionerUserId": "liuqiang"})
    assert status == 400


async def test_instance_ids_query(sandbox, http, token, form):
    approvers = [{"actionType": "NONE", "userIds": ["liuqiang"]}]
    start = sandbox.now_ms() - 1000
    ids = [(await create(sandbox, http, token, form, approvers))[1]["instanceId"] for _ in range(3)]
    await sandbox.approve(ids[0], "刘强")
    query = {"processCode": form, "startTime": start, "maxResults": 2, "nextToken": 0}
    status, body = await new_api(http, sandbox, "POST", "/v1.0/workflow/processes/instanceIds/query", token,
                                 json_body=query)
    assert status == 200 and body["result"]["list"] == ids[:2] and body["result"]["nextToken"] == "2"
    status, body = await new_api(http, sandbox, "POST", "/v1.0/workflow/processes/instanceIds/query", token,
                                 json_body={**query, "nextToken": 2})
    assert body["result"]["list"] == ids[2:] and "nextToken" not in body["result"]
    status, body = await new_api(http, sandbox, "POST", "/v1.0/workflow/processes/instanceIds/query", token,
                                 json_body={**query, "statuses": ["RUNNING"], "maxResults": 20})
    assert body["result"]["list"] == ids[1:]
    status, body = await new_api(http, sandbox, "POST", "/v1.0/workflow/processes/instanceIds/query", token,
                                 json_body={**query, "maxResults": 21})
    assert status == 400
