"""Who is opening the 看板 (reference part 2 §5.1, §3.3): the 免登 exchange and the employee check.

Inside DingTalk the page asks the JSAPI for a temporary auth code; the server exchanges it here with
``/topapi/v2/user/getuserinfo`` (single use, valid 5 minutes). Both calls go through the app's ``DingTalkClient``: its
one HTTP session, its token, its pacing and retries. The platform's refusals become typed errors the web layer turns
into a Chinese answer: ``AuthCodeRejected`` (40078: an unknown, used or expired code), ``NotAnEmployee`` (33012, or no
userId at all: not a current member of our organization: an outsider, someone who left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.dingtalk.contacts import oapi_result
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


async def _employee(client: Any, api: str, path: str, body: dict[str, Any]) -> Employee:
    result = await oapi_result(client, api, path, body, _REFUSALS)
    user_id = str(result.get("userid") or "") if isinstance(result, dict) else ""
    if not user_id:  # only members of the organization have a userId; nobody else may use its apps
        raise NotAnEmployee("userid.missing", "no userid in the answer", api=api)
    return Employee(user_id=user_id, name=str(result.get("name") or user_id))


async def employee_by_auth_code(client: Any, code: str) -> Employee:
    """The employee a 免登 code was issued to (``getuserinfo``); the code is used up by this call."""
    return await _employee(client, "user/getuserinfo", "/topapi/v2/user/getuserinfo", {"code": code})


async def employee_by_user_id(client: Any, user_id: str) -> Employee:
    """A current employee by userId (``user/get``); ``NotAnEmployee`` for outsiders and people who left."""
    return await _employee(client, "user/get", "/topapi/v2/user/get", {"userid": user_id})


__all__ = ["AuthCodeRejected", "Employee", "NotAnEmployee", "employee_by_auth_code", "employee_by_user_id"]
