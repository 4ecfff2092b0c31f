"""Throttling (§11.2, §13.1 item 11) and run-time fault injection."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import websockets
from sandbox_helpers import INTERNAL_GROUP, RawStreamClient, new_api, new_token


SEND = "/v1.0/robot/groupMessages/send"


def send_body(sb) -> dict:
    return {"msgKey": "sampleText", "msgParam": '{"content":"x"}', "robotCode": sb.robot_code,
            "openConversationId": sb.conversation_id(INTERNAL_GROUP)}


async def gettoken(http, sb) -> tuple[int, dict]:
    async with http.get(f"{sb.base_url}/gettoken", params={"appkey": sb.client_id, "appsecret": sb.client_secret}) as r:
        return r.status, await r.json(content_type=None)


# ---- throttling ------------------------------------------------------------------------

async def test_new_api_throttle_per_app_per_api_per_second(sandbox, http):
    token = await new_token(http, sandbox)
    await sandbox.freeze_clock()            # all calls below fall in the same 1-s window
    results = [await new_api(http, sandbox, "POST", SEND, token, json_body=send_body(sandbox)) for _ in range(21)]
    assert [s for s, _ in results[:20]] == [200] * 20
    status, body = results[20]
    assert (status, body["code"]) == (403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")
    assert set(body) == {"code", "message", "requestid"}
    # Another API of the same app, and the same API of another app, have their own budget.
    status, _ = await new_api(http, sandbox, "GET", "/v1.0/workflow/processInstances", token,
                              params={"processInstanceId": "x"})
    assert status == 400        # handled (not throttled)
    other = sandbox.world.app("考勤助手")
    assert await new_token(http, sandbox, other.client_id, other.client_secret)
    await sandbox.advance(1)
    status, _ = await new_api(http, sandbox, "POST", SEND, token, json_body=send_body(sandbox))
    assert status == 200
    assert sandbox.calls("robot.groupMessages.send") == 22
    assert len(sandbox.sent(INTERNAL_GROUP)) == 21


async def test_old_api_throttle(sandbox, http):
    await sandbox.freeze_clock()
    results = [await gettoken(http, sandbox) for _ in range(21)]
    assert all(body["errcode"] == 0 for _, body in results[:20])
    status, body = results[20]
    assert (status, body["errcode"]) == (200, 90018)


async def test_throttle_limit_is_configurable_at_run_time(sandbox, http):
    await sandbox.freeze_clock()
    sandbox.config.qps_limit = 3
    assert [(await gettoken(http, sandbox))[1]["errcode"] for _ in range(4)] == [0, 0, 0, 90018]
    sandbox.config.qps_limit = 0            # off
    assert [(await gettoken(http, sandbox))[1]["errcode"] for _ in range(30)] == [0] * 30


# ---- HTTP faults -----------------------------------------------------------------------

async def test_latency(sandbox, http):
    sandbox.faults.set("gettoken", latency=0.25)
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, body = await gettoken(http, sandbox)
    assert body["errcode"] == 0 and loop.time() - started >= 0.25
    sandbox.faults.clear("gettoken")
    started = loop.time()
    await gettoken(http, sandbox)
    assert loop.time() - started < 0.25


async def test_5xx_new_and_old(sandbox, http):
    token = await new_token(http, sandbox)
    sandbox.faults.set(SEND, error_rate=1.0, kinds=("5xx",), count=1)        # by path
    status, body = await new_api(http, sandbox, "POST", SEND, token, json_body=send_body(sandbox))
    assert (status, body["code"]) == (503, "ServiceUnavailable") and body["requestid"]
    status, _ = await new_api(http, sandbox, "POST", SEND, token, json_body=send_body(sandbox))
    assert status == 200                                                     # the rule retired after one error
    sandbox.faults.set("gettoken", error_rate=1.0, kinds="5xx")
    async with http.get(f"{sandbox.base_url}/gettoken") as r:
        assert r.status == 502 and "text/html" in r.headers["Content-Type"]
    assert sandbox.faults.stats.http["5xx"] == 2
    assert [c.status for c in sandbox.call_log("robot.groupMessages.send")] == [503, 200]


async def test_injected_throttle_errors(sandbox, http):
    token = await new_token(http, sandbox)
    sandbox.faults.set("*", error_rate=1.0, kinds=("throttle",))
    status, body = await new_api(http, sandbox, "POST", SEND, token, json_body=send_body(sandbox))
    assert (status, body["code"]) == (403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi")
    assert (await gettoken(http, sandbox))[1]["errcode"] == 90018


async def test_timeout_holds_until_the_client_gives_up(sandbox, http):
    sandbox.faults.set("workflow.*", error_rate=1.0, kinds=("timeout",))     # by glob
    token = await new_token(http, sandbox)
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(f"{sandbox.base_url}/v1.0/workflow/processInstances",
                            params={"processInstanceId": "x"}, headers={"x-acs-dingtalk-access-token": token},
                            timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    # The server notices the client leaving and releases the request.
    log = await sandbox.run(lambda em: em.wait_until(
        lambda: em.counters.log("workflow.processInstances.get"), 5))
    assert log[0].status == 0


async def test_timeout_is_bounded_by_max_hold(sandbox, http):
    sandbox.config.timeout_fault_max_hold = 0.2
    sandbox.faults.set("*", error_rate=1.0, kinds=("timeout",))
    token = "irrelevant"
    status, body = await new_api(http, sandbox, "POST", SEND, token, json_body=send_body(sandbox))
    assert (status, body["code"]) == (504, "GatewayTimeout")
    status, body = await gettoken(http, sandbox)
    assert (status, body["errcode"]) == (200, 15)


async def test_connection_reset(sandbox, http):
    # A POST: aiohttp's client would silently retry an idempotent GET on a fresh connection.
    sandbox.faults.set("oauth2.accessToken", error_rate=1.0, kinds=("reset",), count=1)
    with pytest.raises(aiohttp.ClientError):
        await new_token(http, sandbox)
    assert await new_token(http, sandbox)


async def test_error_rate_is_partial(sandbox, http):
    sandbox.config.qps_limit = 0
    sandbox.faults.set("gettoken", error_rate=0.3, kinds=("5xx",))
    statuses = []
    for _ in range(60):
        async with http.get(f"{sandbox.base_url}/gettoken",
                            params={"appkey": sandbox.client_id, "appsecret": sandbox.client_secret}) as r:
            statuses.append(r.status)
    failures = statuses.count(502)
    assert 5 <= failures <= 35 and statuses.count(200) == 60 - failures


def test_fault_arguments_are_checked(sandbox):
    with pytest.raises(ValueError):
        sandbox.faults.set("*", error_rate=2)
    with pytest.raises(ValueError):
        sandbox.faults.set("*", error_rate=0.5, kinds=("teapot",))


# ---- Stream faults ---------------------------------------------------------------------

async def test_duplicate_delivery_after_ack(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    sandbox.faults.duplicate_frames(1)
    msg = await sandbox.say("王建国", INTERNAL_GROUP, "项目列表")
    first = await client.next_of("CALLBACK")
    await client.ack(first)
    again = await client.next_of("CALLBACK")
    assert again["headers"]["messageId"] == msg.message_id and again["data"] == first["data"]
    await client.ack(again)
    other = await sandbox.say("王建国", INTERNAL_GROUP, "第二条")
    frame = await client.next_of("CALLBACK")
    await client.ack(frame)
    assert frame["headers"]["messageId"] == other.message_id
    with pytest.raises(asyncio.TimeoutError):                 # budget used up: no more duplicates
        await client.next_of("CALLBACK", timeout=0.2)
    await client.close()


async def test_lost_ack_leads_to_redelivery(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    sandbox.faults.ignore_acks(1)
    msg = await sandbox.say("王建国", INTERNAL_GROUP, "项目列表")
    await client.ack(await client.next_of("CALLBACK"))
    await sandbox.advance(61)
    again = await client.next_of("CALLBACK")
    assert again["headers"]["messageId"] == msg.message_id
    await client.ack(again)
    assert (await sandbox.wait_for_ack(msg.message_id)).redeliveries == 1
    await client.close()


async def test_abrupt_drop(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    conn_id = await sandbox.drop()
    await asyncio.wait_for(client.closed.wait(), 5)
    assert isinstance(client.close_exc, websockets.ConnectionClosedError)
    assert client.received_close is None
    info = await sandbox.wait_for_close(conn_id)
    assert info.closed_by == "drop"


async def test_silent_freeze(sandbox, http):
    client = await RawStreamClient(sandbox, http).connect()
    conn_id = await sandbox.freeze()
    msg = await sandbox.say("王建国", INTERNAL_GROUP, "冻结期间")
    pong = await client.ws.ping()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(pong), 0.5)        # no pong
    assert client.frames.empty()                                 # and no frame
    (conn,) = await sandbox.connections()
    assert conn.id == conn_id and conn.frozen and conn.state == "open"   # the server still thinks it is alive
    # The frame was "sent" into the dead link; after the timeout it goes to a healthy connection.
    healthy = await RawStreamClient(sandbox, http).connect()
    await sandbox.unfreeze(conn_id)
    await client.close()
    await sandbox.wait_for_close(conn_id)
    await sandbox.advance(61)
    frame = await healthy.next_of("CALLBACK")
    assert frame["headers"]["messageId"] == msg.message_id
    await healthy.close()


async def test_skipped_approval_event(sandbox, http):
    client = await RawStreamClient(sandbox, http, auto_ack=True).connect()
    token = await new_token(http, sandbox)
    _, form = await new_api(http, sandbox, "POST", "/v1.0/workflow/forms", token, json_body={
        "name": "跳过事件", "formComponents": [{"componentType": "TextField", "props": {"label": "事项"}}]})
    _, created = await new_api(http, sandbox, "POST", "/v1.0/workflow/processInstances", token, json_body={
        "processCode": form["result"]["processCode"], "originatorUserId": "wangjianguo",
        "approvers": [{"actionType": "NONE", "userIds": ["liuqiang"]}],
        "formComponentValues": [{"name": "事项", "value": "x"}]})
    for _ in range(2):
        await client.next_of("EVENT")
    sandbox.faults.skip_approval_events(1, event_type="bpms_instance_change")
    await sandbox.approve(created["instanceId"], "刘强")
    task_finish = json.loads((await client.next_of("EVENT"))["data"])
    assert task_finish["type"] == "finish"
    with pytest.raises(asyncio.TimeoutError):
        await client.next_of("EVENT", timeout=0.3)              # the instance finish never comes
    assert [e.skipped for e in sandbox.events("bpms_instance_change")] == [False, True]
    # A client that reconciles through the API still sees the truth.
    _, got = await new_api(http, sandbox, "GET", "/v1.0/workflow/processInstances", token,
                           params={"processInstanceId": created["instanceId"]})
    assert got["result"]["status"] == "COMPLETED"
    await client.close()
