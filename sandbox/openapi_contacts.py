"""Contacts: users, departments and the external-contact book (P2 §3.2–3.4, §4).

The old host's `topapi` calls (`POST /topapi/...?access_token=`) take a JSON or a
form-encoded body and answer HTTP 200 `{"errcode": 0, "errmsg": "ok", "result": …,
"request_id": …}`, or a non-zero errcode with HTTP 200 (§3.2): 33012 unknown userid,
60121 nobody with that unionId / mobile, 40104 malformed mobile, 60003 unknown
department (60019 on `user/list`), 50004 department outside the app's contact scope
(`EmulatorConfig.contact_scope`), 40035 bad parameter. The new host's user search
answers in the new style (HTTP 400 `{code, message, requestid}`).

Only people still in the organization are returned: someone who left (`active =
False` in the world) is unknown to every call here, as in DingTalk, where a departed
employee is removed from the directory. DingTalk's own `active` field means "has
activated DingTalk", so it is true for everyone returned. Outsiders have no userid
in this organization: `user/get` does not know them; `getbyunionid` maps a unionId
that belongs to an external-contact book entry to that entry (`contact_type` 1).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .openapi_common import ApiContext, NewApiError, OldApiError, api, require
from .world import Department, ExtContact, User, World

USER_LIST_MAX_SIZE = 100
EXTCONTACT_MAX_SIZE = 100
ORDER_FIELDS = ("custom", "entry_asc", "entry_desc", "modify_asc", "modify_desc")
MAINLAND_MOBILE = re.compile(r"^1\d{10}$")


# ---- request and response helpers ---------------------------------------------------------

def _fail(ctx: ApiContext, errcode: int, errmsg: str) -> OldApiError:
    return OldApiError(errcode, errmsg, request_id=ctx.request_id)


def _bad_param(ctx: ApiContext, name: str) -> OldApiError:
    return _fail(ctx, 40035, f"不合法的参数：{name}")


async def _params(ctx: ApiContext) -> dict[str, Any]:
    # The doc samples post JSON; their curl lines post a form. Both reach the same handler.
    if ctx.request.content_type == "application/x-www-form-urlencoded":
        return dict(await ctx.request.post())
    return await ctx.json_body()


def _int(ctx: ApiContext, params: dict[str, Any], name: str, *, default: int | None = None,
         low: int | None = None, high: int | None = None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        if default is None:
            raise _fail(ctx, 40035, f"缺少参数 {name}")
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise _bad_param(ctx, name) from None
    if isinstance(raw, bool) or (low is not None and value < low) or (high is not None and value > high):
        raise _bad_param(ctx, name)
    return value


def _text(ctx: ApiContext, params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or str(value).strip() == "":
        raise _fail(ctx, 40035, f"缺少参数 {name}")
    return str(value).strip()


def _ok(ctx: ApiContext, result: Any) -> web.Response:
    return ctx.ok({"errcode": 0, "errmsg": "ok", "result": result, "request_id": ctx.request_id})


def _scope(ctx: ApiContext) -> tuple[int, ...]:
    return ctx.emulator.config.contact_scope or (1,)


def _department(ctx: ApiContext, dept_id: int, unknown_code: int = 60003) -> Department:
    world = ctx.emulator.world
    dept = world.departments.get(dept_id)
    if dept is None:
        raise _fail(ctx, unknown_code, "未找到对应部门" if unknown_code == 60003 else "未能从部门中获取用户")
    if not world.within(dept_id, _scope(ctx)):
        raise _fail(ctx, 50004, "企业部门不在授权范围")
    return dept


def _employee(world: World, key: str) -> User | None:
    """Someone of this organization, still in it."""
    user = world.users.get(key)
    return user if user is not None and user.active and not user.external else None


def _dept_order(world: World, user: User, dept_id: int) -> int:
    # Opaque, stable, ascending in world order, like the large ints DingTalk returns.
    return (list(world.users).index(user.user_id) + 1) * 1000 + dept_id


# ---- views ---------------------------------------------------------------------------------

def _user_common(world: World, user: User) -> dict[str, Any]:
    return {
        "userid": user.user_id, "unionid": user.union_id, "name": user.name, "state_code": "86",
        "mobile": user.mobile, "hide_mobile": False, "telephone": "", "job_number": user.job_number,
        "title": user.title, "email": user.email, "org_email": "", "work_place": "", "remark": "",
        "dept_id_list": list(user.department_ids), "extension": "{}", "active": True,
        "admin": user.admin, "boss": user.boss,
    }


def user_detail(world: World, user: User) -> dict[str, Any]:
    """`topapi/v2/user/get` result (the fields a default avatar leaves out are absent)."""
    return {
        **_user_common(world, user),
        "dept_order_list": [{"dept_id": d, "order": _dept_order(world, user, d)} for d in user.department_ids],
        "leader_in_dept": [{"dept_id": d, "leader": d in user.leader_in} for d in user.department_ids],
        "real_authed": True, "senior": False, "exclusive_account": False, "role_list": [],
        "manager_userid": "",
    }


def user_list_item(world: World, user: User, dept_id: int) -> dict[str, Any]:
    return {**_user_common(world, user), "dept_order": _dept_order(world, user, dept_id),
            "leader": dept_id in user.leader_in}


def department_summary(dept: Department) -> dict[str, Any]:
    summary: dict[str, Any] = {"dept_id": dept.dept_id, "name": dept.name, "create_dept_group": False,
                               "auto_add_user": False}
    if dept.parent_id is not None:
        summary["parent_id"] = dept.parent_id
    return summary


def department_detail(world: World, dept: Department) -> dict[str, Any]:
    subtree = [d.dept_id for d in world.departments.values() if world.within(d.dept_id, (dept.dept_id,))]
    members = {u.user_id for d in subtree for u in world.department_members(d)}
    return {
        **department_summary(dept), "order": dept.dept_id, "dept_group_chat_id": "", "group_contain_sub_dept": False,
        "org_dept_owner": "", "dept_manager_userid_list": [u.user_id for u in world.department_members(dept.dept_id)
                                                           if dept.dept_id in u.leader_in],
        "outer_dept": False, "hide_dept": False, "from_union_org": False, "brief": "",
        "member_count": len(members),
    }


def ext_contact_view(contact: ExtContact) -> dict[str, Any]:
    return {
        "userid": contact.user_id, "name": contact.name, "mobile": contact.mobile, "email": contact.email,
        "title": contact.title, "company_name": contact.company_name, "label_ids": list(contact.label_ids),
        "follower_user_id": contact.follower_user_id, "share_dept_ids": list(contact.share_dept_ids),
        "share_user_ids": list(contact.share_user_ids), "remark": contact.remark, "address": contact.address,
        "state_code": contact.state_code,
    }


def _ordered(users: list[User], order_field: str) -> list[User]:
    if order_field in ("custom", "entry_asc"):
        return users
    if order_field == "entry_desc":
        return users[::-1]
    by_modification = sorted(users, key=lambda u: u.modified_at)   # stable: ties keep world order
    return by_modification if order_field == "modify_asc" else by_modification[::-1]


# ---- users ---------------------------------------------------------------------------------

@api("user.get", "old")
async def user_get(request: web.Request, ctx: ApiContext) -> web.Response:
    params = await _params(ctx)
    world = ctx.emulator.world
    user = _employee(world, _text(ctx, params, "userid"))
    if user is None:
        raise _fail(ctx, 33012, "无效的USERID")
    if not any(world.within(d, _scope(ctx)) for d in user.department_ids or (1,)):
        raise _fail(ctx, 50004, "企业部门不在授权范围")
    return _ok(ctx, user_detail(world, user))


@api("user.getbyunionid", "old")
async def user_get_by_union_id(request: web.Request, ctx: ApiContext) -> web.Response:
    params = await _params(ctx)
    world = ctx.emulator.world
    union_id = _text(ctx, params, "unionid")
    user = world.user_by_union_id(union_id)
    if user is not None and _employee(world, user.user_id):
        return _ok(ctx, {"contact_type": 0, "userid": user.user_id})
    contact = next((c for c in world.ext_contacts.values() if c.union_id == union_id), None)
    if contact is not None:
        return _ok(ctx, {"contact_type": 1, "userid": contact.user_id})
    raise _fail(ctx, 60121, "找不到该用户")


@api("user.getbymobile", "old")
async def user_get_by_mobile(request: web.Request, ctx: ApiContext) -> web.Response:
    params = await _params(ctx)
    mobile = _text(ctx, params, "mobile")
    if not MAINLAND_MOBILE.match(mobile):
        raise _fail(ctx, 40104, "无效手机号")
    world = ctx.emulator.world
    user = next((u for u in world.users.values() if u.mobile == mobile and _employee(world, u.user_id)), None)
    if user is None:
        raise _fail(ctx, 60121, "找不到该用户")
    return _ok(ctx, {"userid": user.user_id})


@api("user.list", "old")
async def user_list(request: web.Request, ctx: ApiContext) -> web.Response:
    """Direct members of one department, a page at a time: `cursor` is where the page starts."""
    params = await _params(ctx)
    dept_id = _int(ctx, params, "dept_id", low=1)
    cursor = _int(ctx, params, "cursor", low=0)
    size = _int(ctx, params, "size", low=1, high=USER_LIST_MAX_SIZE)
    order_field = str(params.get("order_field") or "custom")
    if order_field not in ORDER_FIELDS:
        raise _bad_param(ctx, "order_field")
    _department(ctx, dept_id, unknown_code=60019)
    world = ctx.emulator.world
    members = _ordered(world.department_members(dept_id), order_field)
    page = members[cursor:cursor + size]
    result: dict[str, Any] = {"has_more": cursor + size < len(members),
                              "list": [user_list_item(world, u, dept_id) for u in page]}
    if result["has_more"]:
        result["next_cursor"] = cursor + size
    return _ok(ctx, result)


@api("user.listid", "old")
async def user_list_id(request: web.Request, ctx: ApiContext) -> web.Response:
    params = await _params(ctx)
    dept_id = _int(ctx, params, "dept_id", low=1)
    _department(ctx, dept_id)
    return _ok(ctx, {"userid_list": [u.user_id for u in ctx.emulator.world.department_members(dept_id)]})


# ---- departments ---------------------------------------------------------------------------

@api("department.listsub", "old")
async def department_list_sub(request: web.Request, ctx: ApiContext) -> web.Response:
    """Direct children only (walk it from 1 for the whole tree)."""
    params = await _params(ctx)
    dept_id = _int(ctx, params, "dept_id", default=1, low=1)
    _department(ctx, dept_id)
    return _ok(ctx, [department_summary(d) for d in ctx.emulator.world.sub_departments(dept_id)])


@api("department.get", "old")
async def department_get(request: web.Request, ctx: ApiContext) -> web.Response:
    params = await _params(ctx)
    dept = _department(ctx, _int(ctx, params, "dept_id", low=1))
    return _ok(ctx, department_detail(ctx.emulator.world, dept))


# ---- the external-contact book -------------------------------------------------------------

@api("extcontact.list", "old")
async def ext_contact_list(request: web.Request, ctx: ApiContext) -> web.Response:
    params = await _params(ctx)
    size = _int(ctx, params, "size", default=20, low=1, high=EXTCONTACT_MAX_SIZE)
    offset = _int(ctx, params, "offset", default=0, low=0)
    contacts = list(ctx.emulator.world.ext_contacts.values())[offset:offset + size]
    # This call answers `results` at the top level, not `result` (P2 §4).
    return ctx.ok({"errcode": 0, "errmsg": "ok", "results": [ext_contact_view(c) for c in contacts],
                   "request_id": ctx.request_id})


@api("extcontact.get", "old")
async def ext_contact_get(request: web.Request, ctx: ApiContext) -> web.Response:
    params = await _params(ctx)
    contact = ctx.emulator.world.ext_contacts.get(_text(ctx, params, "user_id"))
    if contact is None:
        raise _fail(ctx, 60121, "找不到该用户")
    return _ok(ctx, ext_contact_view(contact))


# ---- the new host's search -----------------------------------------------------------------

SEARCH_MAX_SIZE = 50


def _invalid(name: str, message: str) -> NewApiError:
    return NewApiError(400, "invalidParameter", f"{name}：{message}")


def _new_int(body: dict[str, Any], name: str, low: int, high: int | None = None) -> int:
    raw = body[name]
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low or (high is not None and raw > high):
        bounds = f"{low}–{high}" if high is not None else f"≥ {low}"
        raise _invalid(name, f"必须是整数（{bounds}）")
    return raw


@api("contact.users.search", "new")
async def users_search(request: web.Request, ctx: ApiContext) -> web.Response:
    """Employees whose name contains `queryWord` (`fullMatchField` 1: equals it), as userIds."""
    body = await ctx.json_body()
    require(body, "queryWord", "offset", "size")
    offset = _new_int(body, "offset", 0)
    size = _new_int(body, "size", 1, SEARCH_MAX_SIZE)
    word = str(body["queryWord"]).strip()
    exact = body.get("fullMatchField") in (1, "1")
    world = ctx.emulator.world
    found = [u.user_id for u in world.users.values()
             if _employee(world, u.user_id) and (u.name == word if exact else word in u.name)
             and any(world.within(d, _scope(ctx)) for d in u.department_ids or (1,))]
    return ctx.ok({"hasMore": offset + size < len(found), "totalCount": len(found),
                   "list": found[offset:offset + size]})
