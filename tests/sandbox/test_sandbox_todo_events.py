"""todo_task_* events (P2 §2.4, §7.2) to the real dingtalk-stream SDK when people change todos in DingTalk."""

from __future__ import annotations

import asyncio
import json

import pytest
from sandbox_helpers import RawStreamClient, new_api, new_token
from test_sandbox_sdk import sdk_bot  # noqa: F401  (the SDK-in-a-subprocess fixture)
from test_sandbox_todo import DETAIL, ENGINEER, ENGINEER_2, LEADER, PM, created, tasks_path

from sandbox.config import EmulatorConfig
from sandbox.todo import TodoError


@pytest.fixture
async def token(sandbox, http) -> str:
    return await new_token(http, sandbox)


async def test_sdk_hears_a_todo_deleted_in_dingtalk(sandbox, http, token, sdk_bot):  # noqa: F811
    task = await created(http, sandbox, token, participantIds=[sandbox.union_id(LEADER)])
    assert await sandbox.delete_todo(PM, task["id"]) == "deleted"
    line = await sdk_bot.next("event")
    assert line["eventType"] == "todo_task_delete"
    assert line["data"] == {"unionIdList": [sandbox.union_id(PM), sandbox.union_id(ENGINEER),
                                            sandbox.union_id(LEADER)],
                            "bizTag": task["bizTag"], "taskId": task["id"]}
    [event] = sandbox.events("todo_task_delete")
    frame = await sandbox.wait_for_ack(event.message_ids[0])
    assert frame.type == "EVENT" and frame.event_type == "todo_task_delete"
    # The event carries no state: the bot GETs the task and learns it is gone.
    status, body = await new_api(http, sandbox, "GET", f"{tasks_path(sandbox)}/{task['id']}", token)
    assert (status, body["message"]) == (400, "task not exist")


async def test_leaving_reassigning_and_completing_are_updates(sandbox, http, token, sdk_bot):  # noqa: F811
    engineer, engineer_2, pm = (sandbox.union_id(u) for u in (ENGINEER, ENGINEER_2, PM))
    task = await created(http, sandbox, token, executorIds=[engineer])
    # An executor deletes it from their list: they leave it, the task goes on.
    assert await sandbox.delete_todo(ENGINEER, task["id"]) == "left"
    line = await sdk_bot.next("event")
    assert (line["eventType"], line["data"]["unionIdList"]) == ("todo_task_update", [pm, engineer])
    assert (await sandbox.todo(task["id"]))["executorIds"] == []
    assert await sandbox.todos(ENGINEER) == []
    # The creator gives it to someone else in the client.
    await sandbox.edit_todo(PM, task["id"], executors=[ENGINEER_2])
    line = await sdk_bot.next("event")
    assert (line["eventType"], line["data"]["unionIdList"]) == ("todo_task_update", [pm, engineer_2])
    # The new executor's part is done (tests only: the page cannot tick work todos).
    await sandbox.set_todo_done(ENGINEER_2, task["id"])
    line = await sdk_bot.next("event")
    assert line["eventType"] == "todo_task_update" and line["data"]["taskId"] == task["id"]
    assert (await sandbox.todo(task["id"]))["done"] is True
    assert [e.event_type for e in sandbox.events()] == ["todo_task_update"] * 3


async def test_only_the_owning_app_hears_and_not_of_its_own_calls(sandbox, http, token, sdk_bot):  # noqa: F811
    other = sandbox.world.app("考勤助手")
    other_token = await new_token(http, sandbox, other.client_id, other.client_secret)
    theirs = await created(http, sandbox, other_token, sourceId="hr:1")
    ours = await created(http, sandbox, token, sourceId="pm:1")
    # The app's own API calls make no events (default of §7.2's UNCONFIRMED point).
    await new_api(http, sandbox, "PUT", f"{tasks_path(sandbox)}/{ours['id']}", token, json_body={"subject": "改"})
    await sandbox.delete_todo(PM, theirs["id"])
    await sandbox.delete_todo(PM, ours["id"])
    line = await sdk_bot.next("event")
    assert line["data"]["taskId"] == ours["id"]          # the other app's todo never reached this bot
    assert [e.data["taskId"] for e in sandbox.events()] == [theirs["id"], ours["id"]]
    assert sandbox.events()[0].message_ids == []         # 考勤助手 subscribed to nothing


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(todo_events_on_api_changes=True)])
async def test_api_changes_emit_events_when_configured(sandbox, http, token, sandbox_config):
    client = await RawStreamClient(sandbox, http, auto_ack=True).connect()
    task = await created(http, sandbox, token)
    frame = await client.next_of("EVENT")
    assert frame["headers"]["eventType"] == "todo_task_create"
    assert json.loads(frame["data"]) == {"unionIdList": [sandbox.union_id(PM), sandbox.union_id(ENGINEER)],
                                         "bizTag": task["bizTag"], "taskId": task["id"]}
    await new_api(http, sandbox, "DELETE", f"{tasks_path(sandbox)}/{task['id']}", token)
    assert (await client.next_of("EVENT"))["headers"]["eventType"] == "todo_task_delete"
    await client.close()


async def test_events_go_to_event_subscribers_and_can_be_lost(sandbox, http, token):
    callbacks_only = await RawStreamClient(sandbox, http, auto_ack=True, subscriptions=[
        {"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}]).connect()
    events = await RawStreamClient(sandbox, http, auto_ack=True, subscriptions=[
        {"type": "EVENT", "topic": "*"}]).connect()
    first = await created(http, sandbox, token, sourceId="1")
    second = await created(http, sandbox, token, sourceId="2", detailUrl=DETAIL)
    sandbox.faults.skip_approval_events(1, event_type="todo_task_delete")     # works for any event type
    await sandbox.delete_todo(PM, first["id"])
    await sandbox.delete_todo(PM, second["id"])
    frame = await events.next_of("EVENT")
    assert json.loads(frame["data"])["taskId"] == second["id"]               # the first one was lost
    with pytest.raises(asyncio.TimeoutError):
        await callbacks_only.next_of("EVENT", timeout=0.3)
    assert [e.skipped for e in sandbox.events("todo_task_delete")] == [True, False]
    await callbacks_only.close()
    await events.close()


async def test_a_refused_edit_in_dingtalk_changes_nothing_and_tells_nobody(sandbox, http, token):
    task = await created(http, sandbox, token)
    with pytest.raises(TodoError, match="unionId is invalid"):
        await sandbox.edit_todo(PM, task["id"], executors=[ENGINEER_2], participants=["黄蕾"])
    with pytest.raises(TodoError, match="only the creator"):
        await sandbox.edit_todo(ENGINEER, task["id"], executors=[ENGINEER_2])
    assert (await sandbox.todo(task["id"]))["executorIds"] == [sandbox.union_id(ENGINEER)]
    assert sandbox.events() == []
