"""Access tokens on both hosts (§6, §13.1 item 8)."""

from __future__ import annotations

import aiohttp
from sandbox_helpers import INTERNAL_GROUP, new_api, new_token


SEND = "/v1.0/robot/groupMessages/send"


def _text_body(sb) -> dict:
    return {"msgKey": "sampleText", "msgParam": '{"content":"hi"}', "robotCode": sb.robot_code,
            "openConversationId": sb.conversation_id(INTERNAL_GROUP)}


async def test_new_token_api(sandbox, http):
    async with http.post(f"{sandbox.base_url}/v1.0/oauth2/accessToken",
                         json={"appKey": sandbox.client_id, "appSecret": sandbox.client_secret}) as r:
        assert r.status == 200
        body = await r.json()
    assert set(body) == {"accessToken", "expireIn"} and body["expireIn"] == 7200


async def test_new_token_api_bad_credentials(sandbox, http):
    async with http.post(f"{sandbox.base_url}/v1.0/oauth2/accessToken",
                         json={"appKey": sandbox.client_id, "appSecret": "nope"}) as r:
        assert r.status == 400
        body = await r.json()
    assert body["code"] == "invalidClientIdOrSecret" and body["message"] == "无效的clientId或者clientSecret"
    assert body["requestid"] and r.headers["x-acs-request-id"] == body["requestid"]
    async with http.post(f"{sandbox.base_url}/v1.0/oauth2/accessToken", json={"appKey": sandbox.client_id}) as r:
        assert r.status == 400
        assert (await r.json())["code"] == "MissingappSecret"


async def test_old_gettoken(sandbox, http):
    async with http.get(f"{sandbox.base_url}/gettoken",
                        params={"appkey": sandbox.client_id, "appsecret": sandbox.client_secret}) as r:
        assert r.status == 200
        body = await r.json()
    assert body["errcode"] == 0 and body["errmsg"] == "ok" and body["expires_in"] == 7200
    async with http.get(f"{sandbox.base_url}/gettoken", params={"appkey": sandbox.client_id, "appsecret": "x"}) as r:
        assert r.status == 200
        assert await r.json() == {"errcode": 40096, "errmsg": "不合法的appKey或appSecret"}


async def test_same_token_while_valid_and_interchangeable(sandbox, http):
    new = await new_token(http, sandbox)
    async with http.get(f"{sandbox.base_url}/gettoken",
                        params={"appkey": sandbox.client_id, "appsecret": sandbox.client_secret}) as r:
        old = (await r.json())["access_token"]
    assert old == new
    # A token from the old API works on the new host, and vice versa.
    status, _ = await new_api(http, sandbox, "POST", SEND, old, json_body=_text_body(sandbox))
    assert status == 200
    other_app = sandbox.world.app("考勤助手")
    assert await new_token(http, sandbox, other_app.client_id, other_app.client_secret) != new


async def test_token_expires_and_is_extended_by_refetching(sandbox, http):
    token = await new_token(http, sandbox)
    await sandbox.advance(7000)
    assert await new_token(http, sandbox) == token        # extended to 7200 s from now
    await sandbox.advance(7000)
    status, _ = await new_api(http, sandbox, "POST", SEND, token, json_body=_text_body(sandbox))
    assert status == 200
    await sandbox.advance(201)
    status, body = await new_api(http, sandbox, "POST", SEND, token, json_body=_text_body(sandbox))
    assert (status, body["code"], body["message"]) == (400, "InvalidAuthentication", "不合法的access_token")
    fresh = await new_token(http, sandbox)
    assert fresh != token


async def test_new_api_auth_errors(sandbox, http):
    token = await new_token(http, sandbox)
    status, body = await new_api(http, sandbox, "POST", SEND, None, json_body=_text_body(sandbox))
    assert (status, body["code"]) == (400, "AuthenticationFailed.MissingParameter")
    assert body["message"] == "缺少参数：x-acs-dingtalk-access-token"
    # A token in the query string or as a bearer token is not read by the new gateway.
    async with http.post(f"{sandbox.base_url}{SEND}", params={"access_token": token},
                         headers={"Authorization": f"Bearer {token}"}, json=_text_body(sandbox)) as r:
        assert r.status == 400
        assert (await r.json())["code"] == "AuthenticationFailed.MissingParameter"
    status, body = await new_api(http, sandbox, "POST", SEND, "not-a-token", json_body=_text_body(sandbox))
    assert (status, body["code"]) == (400, "InvalidAuthentication")


async def test_old_api_bad_token(sandbox, http):
    form = aiohttp.FormData()
    form.add_field("media", b"x", filename="a.pdf")
    async with http.post(f"{sandbox.base_url}/media/upload", params={"access_token": "bad", "type": "file"},
                         data=form) as r:
        assert r.status == 200
        body = await r.json()
    assert body["errcode"] == 88 and body["sub_code"] == "40014" and body["sub_msg"] == "不合法的access_token"


async def test_unknown_new_api_route(sandbox, http):
    async with http.get(f"{sandbox.base_url}/v1.0/no/such/api") as r:
        assert r.status == 404
        assert (await r.json())["code"] == "InvalidAction.NotFound"
