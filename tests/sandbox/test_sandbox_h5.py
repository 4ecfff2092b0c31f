"""H5 免登 (P2 §5.3, §7.1 item 8): codes from the JSAPI stand-in's endpoint, exchanged by getuserinfo."""

from __future__ import annotations

import pytest

from sandbox.h5 import AUTHCODE_PATH, JSAPI_PATH, AuthCodeError

GETUSERINFO = "/topapi/v2/user/getuserinfo"


async def old_token(http, sb, app=None) -> str:
    app = sb.world.app(app)
    async with http.get(f"{sb.base_url}/gettoken", params={"appkey": app.client_id,
                                                           "appsecret": app.client_secret}) as r:
        return (await r.json())["access_token"]


async def request_code(http, sb, **body) -> tuple[int, dict]:
    """What the stand-in script posts (from the bot's page, another origin)."""
    async with http.post(f"{sb.base_url}{AUTHCODE_PATH}", json=body,
                         headers={"Origin": "http://127.0.0.1:8090"}) as r:
        assert r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8090"
        return r.status, await r.json()


async def exchange(http, sb, token: str, code: str, *, form: bool = False) -> dict:
    kwargs = {"data": {"code": code}} if form else {"json": {"code": code}}
    async with http.post(f"{sb.base_url}{GETUSERINFO}", params={"access_token": token}, **kwargs) as r:
        assert r.status == 200
        return await r.json()


async def test_a_code_names_the_person_once(sandbox, http):
    status, body = await request_code(http, sandbox, userId="liuqiang", corpId=sandbox.world.corp_id,
                                      clientId=sandbox.client_id)
    assert status == 200 and body["code"]
    token = await old_token(http, sandbox)
    answer = await exchange(http, sandbox, token, body["code"])
    assert answer["errcode"] == 0 and answer["errmsg"] == "ok" and answer["request_id"]
    result = answer["result"]
    assert {k: result[k] for k in ("userid", "unionid", "name", "sys", "sys_level")} == {
        "userid": "liuqiang", "unionid": sandbox.union_id("刘强"), "name": "刘强", "sys": True, "sys_level": 2}
    assert result["device_id"]
    again = await exchange(http, sandbox, token, body["code"])
    assert (again["errcode"], again["errmsg"]) == (40078, "不存在的临时授权码")
    assert "result" not in again


async def test_codes_expire_after_five_minutes_of_the_emulator_clock(sandbox, http):
    fresh, stale = await sandbox.auth_code("李明"), await sandbox.auth_code("李明")
    await sandbox.advance(299)
    token = await old_token(http, sandbox)
    assert (await exchange(http, sandbox, token, fresh, form=True))["result"]["userid"] == "liming"
    await sandbox.advance(2)
    assert (await exchange(http, sandbox, token, stale))["errcode"] == 40078


async def test_a_code_for_one_app_is_refused_by_another(sandbox, http):
    code = await sandbox.auth_code("李明")                      # asked with the default app's clientId
    assert (await exchange(http, sandbox, await old_token(http, sandbox, "考勤助手"), code))["errcode"] == 40078
    # The older dd.runtime.permission.requestAuthCode sends no clientId: any app of the corp may exchange it.
    status, body = await request_code(http, sandbox, userId="liming", corpId=sandbox.world.corp_id)
    assert status == 200
    answer = await exchange(http, sandbox, await old_token(http, sandbox, "考勤助手"), body["code"])
    assert answer["result"]["userid"] == "liming"


@pytest.mark.parametrize(("body", "error_code", "text"), [
    ({"corpId": "CORP", "clientId": "CLIENT"}, 10001, "还没有选择身份"),
    ({"userId": "liming", "corpId": "dingothercorp", "clientId": "CLIENT"}, 10002, "corpId"),
    ({"userId": "liming", "corpId": "CORP", "clientId": "dingnotours"}, 10003, "clientId"),
    ({"userId": "huanglei", "corpId": "CORP", "clientId": "CLIENT"}, 10004, "不是本组织成员"),
    ({"userId": "nobody", "corpId": "CORP", "clientId": "CLIENT"}, 10004, "不是本组织成员"),
])
async def test_the_stand_in_fails_like_the_client(sandbox, http, body, error_code, text):
    body = {k: {"CORP": sandbox.world.corp_id, "CLIENT": sandbox.client_id}.get(v, v) for k, v in body.items()}
    status, answer = await request_code(http, sandbox, **body)
    assert status == 400 and answer["errorCode"] == error_code and text in answer["errorMessage"]
    assert sandbox.emulator.h5.codes == {}


async def test_exchange_errors(sandbox, http):
    token = await old_token(http, sandbox)
    async with http.post(f"{sandbox.base_url}{GETUSERINFO}", params={"access_token": token}, json={}) as r:
        assert (await r.json())["errcode"] == 40035
    code = await sandbox.auth_code("李明")
    async with http.post(f"{sandbox.base_url}{GETUSERINFO}", params={"access_token": "bogus"},
                         json={"code": code}) as r:
        body = await r.json()
        assert (body["errcode"], body["sub_code"]) == (88, "40014")
    # The refused call did not use the code up.
    assert (await exchange(http, sandbox, token, code))["result"]["userid"] == "liming"
    sandbox.faults.set("user.getuserinfo", error_rate=1.0, kinds="busy", count=1)
    assert (await exchange(http, sandbox, token, await sandbox.auth_code("李明")))["errcode"] == -1


async def test_outsiders_and_leavers_get_no_code(sandbox, http):
    for outsider in ("黄蕾", "许晴"):
        with pytest.raises(AuthCodeError) as caught:
            await sandbox.auth_code(outsider)
        assert caught.value.error_code == 10004
    code = await sandbox.auth_code("赵磊")
    await sandbox.update_user("赵磊", active=False)
    assert (await exchange(http, sandbox, await old_token(http, sandbox), code))["errcode"] == 40078
    with pytest.raises(AuthCodeError):
        await sandbox.auth_code("赵磊")


async def test_stand_in_script_and_cors_preflight(sandbox, http):
    assert sandbox.jsapi_url == f"{sandbox.base_url}{JSAPI_PATH}"
    async with http.get(sandbox.jsapi_url) as r:
        assert r.status == 200 and "javascript" in r.content_type
        script = await r.text()
    for name in ("requestAuthCode", "runtime", "permission", "getAuthCode", "notInDingTalk", "/__emulator/authcode"):
        assert name in script
    async with http.options(f"{sandbox.base_url}{AUTHCODE_PATH}", headers={
            "Origin": "http://127.0.0.1:8090", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"}) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8090"
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in r.headers["Access-Control-Allow-Headers"]


async def test_homepages_and_launch_urls(sandbox):
    assert await sandbox.launch_url("李明") is None                       # nothing registered yet
    await sandbox.set_homepage(None, "http://127.0.0.1:8090/board?corpid=$CORPID$#top")
    assert await sandbox.launch_url("李明") == (
        f"http://127.0.0.1:8090/board?corpid={sandbox.world.corp_id}&as=liming#top")
    assert await sandbox.launch_url("黄蕾") is None                        # external contacts have no workbench
    with pytest.raises(ValueError):
        await sandbox.set_homepage(None, "javascript:alert(1)")
