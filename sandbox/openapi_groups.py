"""Who is in a group (P2 §3.5): the scene-group member query and the internal-group member APIs.

`POST /v1.0/im/sceneGroups/members/batchQuery` is documented for scene and cool-app
groups; whether it answers for an ordinary group is UNCONFIRMED. Default
(`EmulatorConfig.scene_group_members_any_group`): it answers for every group the
robot is in, insiders in `memberUserIds` (+ `staffIdNickMap`), outsiders in
`unionIdList` (+ `unionIdNickMap`). The `innerGroups` APIs (SDK only, no doc page)
answer for every group the robot is in too, and list internal members only.

People who left the organization are no longer members. Paging: `maxResults`
(1 … `group_members_max_results`), an opaque `nextToken` (an int for
`memberLists/query`); `hasMore` says whether to ask again.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from .openapi_common import ApiContext, NewApiError, api, require
from .world import Group, User


def _illegal(message: str) -> NewApiError:
    return NewApiError(400, "paramIllegal", message)


def _max_results(ctx: ApiContext, raw: Any) -> int:
    limit = ctx.emulator.config.group_members_max_results
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= limit:
        raise _illegal(f"maxResults 必须是 1–{limit} 的整数")
    return raw


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(raw: Any) -> int:
    if raw in (None, ""):
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(str(raw).encode()).decode().partition(":")
        if kind == "offset" and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise _illegal("nextToken 无效")


def _robot_group(ctx: ApiContext, raw_cid: Any, code: str = "invalid.openConversationId") -> Group:
    """The group, if this app's robot is in it (a robot sees only its own groups)."""
    emulator = ctx.emulator
    group = emulator.world.groups.get(str(raw_cid))
    if group is None or not emulator.robot_in_group(ctx.app, group):
        raise NewApiError(400, code, "openConversationId不合法或机器人不在该群中")
    return group


def _page(members: list[User], offset: int, size: int) -> tuple[list[User], bool]:
    return members[offset:offset + size], offset + size < len(members)


def _paged(ctx: ApiContext, answer: dict[str, Any], has_more: bool, next_offset: int) -> web.Response:
    if has_more:
        answer["nextToken"] = _token(next_offset)
    return ctx.ok(answer)


def _insiders(ctx: ApiContext, group: Group) -> list[User]:
    return [u for u in ctx.emulator.world.present_members(group) if not u.external]


def _operator(ctx: ApiContext, group: Group, user_id: Any) -> None:
    if not any(u.user_id == str(user_id) for u in _insiders(ctx, group)):
        raise NewApiError(400, "invalidParameter.userId", "userId不是该群的群成员")


@api("im.sceneGroups.members.batchQuery", "new")
async def scene_group_members(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    require(body, "openConversationId", "maxResults")
    size = _max_results(ctx, body["maxResults"])
    if not str(body["openConversationId"]).startswith("cid"):
        raise NewApiError(400, "cidEncryptError", "openConversationId解密失败")
    group = _robot_group(ctx, body["openConversationId"], code="groupPermissionDenied")
    if not ctx.emulator.config.scene_group_members_any_group:
        raise NewApiError(400, "groupPermissionDenied", "该群不是场景群（未安装群模板），无权查询群成员")
    offset = _offset(body.get("nextToken"))
    page, has_more = _page(ctx.emulator.world.present_members(group), offset, size)
    insiders = [u for u in page if not u.external]
    outsiders = [u for u in page if u.external]
    return _paged(ctx, {
        "success": True, "memberUserIds": [u.user_id for u in insiders], "hasMore": has_more,
        "unionIdList": [u.union_id for u in outsiders],
        "staffIdNickMap": {u.user_id: u.name for u in insiders},
        "unionIdNickMap": {u.union_id: u.name for u in outsiders},
    }, has_more, offset + size)


@api("im.innerGroups.members.query", "new")
async def inner_group_members(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    require(body, "openConversationId", "userId", "maxResults")
    size = _max_results(ctx, body["maxResults"])
    group = _robot_group(ctx, body["openConversationId"])
    _operator(ctx, group, body["userId"])
    offset = _offset(body.get("nextToken"))
    page, has_more = _page(_insiders(ctx, group), offset, size)
    return _paged(ctx, {"userIds": [u.user_id for u in page], "hasMore": has_more}, has_more, offset + size)


@api("im.innerGroups.members.check", "new")
async def inner_group_member_check(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    require(body, "openConversationId", "userId")
    group = _robot_group(ctx, body["openConversationId"])
    return ctx.ok({"result": any(u.user_id == str(body["userId"]) for u in _insiders(ctx, group))})


@api("im.innerGroups.memberLists.query", "new")
async def inner_group_member_list(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    require(body, "openConversationId", "userId", "maxResults", "nextToken")
    size = _max_results(ctx, body["maxResults"])
    offset = body["nextToken"]
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise _illegal("nextToken 必须是非负整数")
    group = _robot_group(ctx, body["openConversationId"])
    _operator(ctx, group, body["userId"])
    page, has_more = _page(_insiders(ctx, group), offset, size)
    return ctx.ok({"list": [{"userId": u.user_id, "name": u.name, "nickName": u.name, "icon": ""} for u in page],
                   "hasMore": has_more, "nextToken": offset + size if has_more else offset + len(page)})
