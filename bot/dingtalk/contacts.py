"""Contacts, departments and group members (reference part 2 §3): what the directory is filled from.

All reads, on the app's ``DingTalkClient`` (its one HTTP session, its per-API pacing below DingTalk's per-app limit,
its retries of throttling and server errors). A department deleted while the walk goes answers a typed
``UnknownDepartment`` (60003 from ``listsub``, 60019 from ``user/list``) the walk steps over; other errors are the
client's typed errors (``Throttled``, ``ServerError``, ``InvalidRequest`` …).

There is no "all users" API: the walk lists departments from the root (``listsub``, direct children only) and then
each department's users a page at a time (``user/list``, cursor paging, at most 100 a page). Group members come from
``sceneGroups/members/batchQuery``, the one API that also lists members of other organizations (their unionIds and
nicknames); a group it does not serve answers an ``InvalidRequest`` the caller treats as "members unknown".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.dingtalk.errors import InvalidRequest
from storage.repo.directory import EmployeeRecord

PAGE_SIZE = 100  # user/list: the documented maximum is not stated; 100 is listsimple's and the emulator's
GROUP_PAGE_SIZE = 1000  # batchQuery: groups up to 1000 members come back in one page


class UnknownDepartment(InvalidRequest):
    """No such department (60003; 60019 from ``user/list``): deleted meanwhile."""


_NOT_FOUND = {"60003": UnknownDepartment, "60019": UnknownDepartment}


@dataclass(frozen=True, slots=True)
class Department:
    dept_id: int
    name: str
    parent_id: int | None


@dataclass(frozen=True, slots=True)
class EmployeePage:
    employees: tuple[EmployeeRecord, ...]  # as the directory stores them
    next_cursor: int | None  # None: the department's last page


@dataclass(frozen=True, slots=True)
class GroupMembers:
    """One page of a group's members of other organizations (by unionId, with their nicknames); the employees in it
    the directory knows from the contacts walk already."""

    outsider_union_ids: tuple[str, ...]
    names: dict[str, str]  # unionId -> nickname
    next_token: str | None


def _employee(raw: dict[str, Any]) -> EmployeeRecord:
    # ``active`` is not read: it says whether the person activated DingTalk, not whether they still work here
    # (people who left are simply no longer listed).
    return EmployeeRecord(
        user_id=str(raw.get("userid") or ""), name=str(raw.get("name") or raw.get("userid") or ""),
        union_id=raw.get("unionid") or None, title=raw.get("title") or None, mobile=raw.get("mobile") or None,
        dept_ids=tuple(int(d) for d in raw.get("dept_id_list") or ()),
    )


async def oapi_result(client: Any, api: str, path: str, body: dict[str, Any],
                      refusals: Mapping[str, type[InvalidRequest]]) -> Any:
    """The ``result`` of an old-API read on ``client``; an errcode listed in ``refusals`` raises its typed error."""
    try:
        payload = await client.call_oapi(api, path, body)
    except InvalidRequest as exc:
        kind = refusals.get(exc.code)
        if kind is None:
            raise
        raise kind(exc.code, exc.message, api=api, http_status=exc.http_status, request_id=exc.request_id) from None
    return payload.get("result")


class Contacts:
    """The contacts APIs on one ``DingTalkClient``."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def _oapi(self, api: str, path: str, body: dict[str, Any]) -> Any:
        return await oapi_result(self._client, api, path, body, _NOT_FOUND)

    async def sub_departments(self, dept_id: int) -> list[Department]:
        """The direct children of a department (1 = the root)."""
        result = await self._oapi("department/listsub", "/topapi/v2/department/listsub", {"dept_id": dept_id})
        return [Department(int(d["dept_id"]), str(d.get("name") or d["dept_id"]),
                           int(d["parent_id"]) if d.get("parent_id") is not None else None)
                for d in result or () if isinstance(d, dict) and d.get("dept_id") is not None]

    async def department_users(self, dept_id: int, cursor: int = 0, size: int = PAGE_SIZE) -> EmployeePage:
        """One page of a department's direct members."""
        result = await self._oapi("user/list", "/topapi/v2/user/list",
                                  {"dept_id": dept_id, "cursor": cursor, "size": size})
        result = result or {}
        employees = tuple(_employee(u) for u in result.get("list") or () if isinstance(u, dict) and u.get("userid"))
        more = bool(result.get("has_more"))
        return EmployeePage(employees, int(result.get("next_cursor") or 0) if more else None)

    async def group_members(self, conversation_id: str, next_token: str | None = None) -> GroupMembers:
        """One page of a group's members (``sceneGroups/members/batchQuery``)."""
        body: dict[str, Any] = {"openConversationId": conversation_id, "maxResults": GROUP_PAGE_SIZE}
        if next_token:
            body["nextToken"] = next_token
        payload = await self._client.call_api("im/sceneGroups/members/batchQuery",
                                              "/v1.0/im/sceneGroups/members/batchQuery", body)
        names = {str(k): str(v) for k, v in (payload.get("unionIdNickMap") or {}).items()}
        token = payload.get("nextToken") if payload.get("hasMore") else None
        return GroupMembers(tuple(str(u) for u in payload.get("unionIdList") or ()), names,
                            str(token) if token else None)


__all__ = ["Contacts", "Department", "EmployeePage", "GroupMembers", "PAGE_SIZE", "UnknownDepartment", "oapi_result"]
