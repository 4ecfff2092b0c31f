"""Who is opening the 看板 (reference part 2 §5.1, §3.3): the 免登 exchange and the employee check.

Inside DingTalk the page asks the JSAPI for a temporary auth code; the server exchanges it here with
``/topapi/v2/user/getuserinfo`` (single use, valid 5 minutes). Both calls go through the app's ``DingTalkClient``: its
one HTTP session, its token, its pacing and retries. The platform's refusals become typed errors the web layer turns
into a Chinese page: ``AuthCodeRejected`` (40078: unknown, used or expired code), ``NotAnEmployee`` (33012: the
userId is not a current member of the organization: an outsider, someone who left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.dingtalk.errors import InvalidRequest


class AuthCodeRejected(InvalidRequest):
    """errcode 40078 不存在的临时授权码: the code is unknown, was used already or has expired."""


class NotAnEmployee(InvalidRequest):
    """errcode 33012 无效的USERID (or no userid at all): not a current member of our organization."""


_REFUSALS: dict[str, type[InvalidRequest]] = {"40078": AuthCodeRejected, "33012": NotAnEmployee}


@dataclass(frozen=True, slots=True)
class Employee:
    user_id: str
    name: str
    union_id: str = ""


async def _oapi(client: Any, api: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        payload = await client.call_oapi(api, path, body)
    except InvalidRequest as exc:
        refusal = _REFUSALS.get(exc.code)
        if refusal is None:
            raise
        raise refusal(exc.code, exc.message, api=api, http_status=exc.http_status,
                      request_id=exc.request_id) from None
    result = payload.get("result")
    return result if isinstance(result, dict) else {}


def _employee(result: dict[str, Any], api: str) -> Employee:
    user_id = str(result.get("userid") or "")
    if not user_id:  # only members of the organization have a userId; anyone else cannot use its apps
        raise NotAnEmployee("userid.missing", "no userid in the answer", api=api)
    return Employee(user_id=user_id, name=str(result.get("name") or user_id), union_id=str(result.get("unionid") or ""))


async def employee_by_auth_code(client: Any, code: str) -> Employee:
    """The employee a 免登 code was issued to (``getuserinfo``); the code is used up by this call."""
    api = "user/getuserinfo"
    return _employee(await _oapi(client, api, "/topapi/v2/user/getuserinfo", {"code": code}), api)


async def employee_by_user_id(client: Any, user_id: str) -> Employee:
    """A current employee by userId (``user/get``); ``NotAnEmployee`` for outsiders and people who left."""
    api = "user/get"
    return _employee(await _oapi(client, api, "/topapi/v2/user/get", {"userid": user_id}), api)


__all__ = ["AuthCodeRejected", "Employee", "NotAnEmployee", "employee_by_auth_code", "employee_by_user_id"]
