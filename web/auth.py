"""Signing in to the 看板: 免登 inside DingTalk, the session cookie, CSRF on every POST, and the sandbox's ``?user=``.

1. A page requested without a valid session answers the sign-in page (at the same URL). It loads DingTalk's JSAPI
   from ``dashboard.jsapi_url``, asks ``dd.requestAuthCode({corpId, clientId})`` and posts the code to ``/auth/code``
   with the page's CSRF token, then reloads: the same URL now has a session.
2. ``/auth/code`` exchanges the code with ``getuserinfo`` (``bot.dingtalk.identity``): only a current employee gets a
   userId, so people of other organizations and personal DingTalk users cannot sign in. It sets the signed session
   cookie (``web.sessions``).
3. Only when ``dashboard.sandbox_identity`` is set (``dingpm sandbox`` sets it, nothing else does) ``?user=<userId>``
   signs in as that employee after ``user/get`` confirms they are one, and the workbench's ``as=<userId>`` replaces a
   session of someone else: the sandbox's page switches people in one browser, DingTalk never does.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.dingtalk.errors import DingTalkError
from bot.dingtalk.identity import AuthCodeRejected, NotAnEmployee, employee_by_auth_code, employee_by_user_id
from web.board import Board
from web.errors import Forbidden
from web.sessions import CSRF_FIELD, CSRF_HEADER, LOGIN_COOKIE, LOGIN_TTL, SESSION_COOKIE, Session

log = logging.getLogger("dingpm.dashboard")

SANDBOX_USER_PARAM = "user"
WORKBENCH_AS_PARAM = "as"  # the sandbox workbench's launch parameter (read by the emulator's JSAPI stand-in)
_CORP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NOT_AN_EMPLOYEE = "只有本组织的成员可以使用项目看板（外部联系人和已离职人员不能打开）。"


def _now() -> float:
    return time.time()


def session_of(board: Board, request: web.Request) -> Session | None:
    """The request's valid session, if any. In the sandbox a workbench launch for someone else ends it."""
    session = board.signer.read_session(request.cookies.get(SESSION_COOKIE), now=_now())
    if session is None:
        return None
    launched_as = request.query.get(WORKBENCH_AS_PARAM) if board.config.dashboard.sandbox_identity else None
    if launched_as and launched_as != session.user_id:
        return None
    return session


def _cookie_options(board: Board, max_age: int) -> dict[str, Any]:
    return {"max_age": max_age, "path": board.base or "/", "httponly": True, "samesite": "Lax",
            "secure": board.config.dashboard.cookie_secure}


def start_session(board: Board, response: web.StreamResponse, user_id: str, name: str) -> Session:
    token, session = board.signer.issue_session(user_id, name, now=_now(), ttl=board.session_ttl)
    response.set_cookie(SESSION_COOKIE, token, **_cookie_options(board, int(board.session_ttl.total_seconds())))
    response.del_cookie(LOGIN_COOKIE, path=board.base or "/")
    log.info("dashboard session started for %s", user_id)
    return session


# ---- the sign-in page and the code exchange ---------------------------------------------------------------------


async def sign_in_page(board: Board, request: web.Request) -> web.Response:
    """The page that signs in through 免登 and reloads itself."""
    token, nonce = board.signer.issue_login_nonce(now=_now())
    corp_id = board.config.dingtalk.corp_id or request.query.get("corpid", "")
    response = await board.page(
        "sign_in.html", request, title="登录", viewer=None, csrf=board.signer.csrf_token(nonce),
        corp_id=corp_id if _CORP_ID.match(corp_id) else "", client_id=board.config.dingtalk.client_id,
        jsapi_url=board.config.dashboard.jsapi_url)
    response.set_cookie(LOGIN_COOKIE, token, **_cookie_options(board, int(LOGIN_TTL.total_seconds())))
    return response


def _json_error(status: int, message: str, *, retry: bool = False) -> web.Response:
    return web.json_response({"error": message, "retry": retry}, status=status)


async def exchange_code(board: Board, request: web.Request) -> web.Response:
    """``POST /auth/code {code}``: the 免登 exchange (the CSRF check ran before)."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not 0 < len(code) <= 256:
        return _json_error(400, "缺少免登授权码，请在钉钉工作台中重新打开项目看板。")
    try:
        employee = await employee_by_auth_code(board.dingtalk, code)
    except AuthCodeRejected:
        return _json_error(401, "免登授权码已失效，正在重新获取……", retry=True)
    except NotAnEmployee:
        return _json_error(403, NOT_AN_EMPLOYEE)
    except DingTalkError as exc:
        log.warning("dashboard sign-in: getuserinfo failed: %s", exc)
        return _json_error(502, "暂时无法连接钉钉完成登录，请稍后再试。", retry=True)
    response = web.json_response({"name": employee.name})
    start_session(board, response, employee.user_id, employee.name)
    return response


async def sign_out(board: Board, request: web.Request) -> web.Response:
    response = await board.page("signed_out.html", request, title="已退出", viewer=None)
    response.del_cookie(SESSION_COOKIE, path=board.base or "/")
    return response


async def sandbox_sign_in(board: Board, request: web.Request) -> web.Response:
    """``?user=<userId>`` in the sandbox: sign in as that employee and come back to the URL without it."""
    user_id = request.query[SANDBOX_USER_PARAM].strip()
    try:
        employee = await employee_by_user_id(board.dingtalk, user_id)
    except NotAnEmployee:
        raise Forbidden(NOT_AN_EMPLOYEE) from None
    rest = [(k, v) for k, v in request.query.items() if k != SANDBOX_USER_PARAM]
    target = request.path + (f"?{urlencode(rest)}" if rest else "")
    response = web.HTTPSeeOther(target)
    start_session(board, response, employee.user_id, employee.name)
    raise response


# ---- CSRF -----------------------------------------------------------------------------------------------------


async def csrf_ok(board: Board, request: web.Request, session: Session | None) -> bool:
    """A POST carries the token of its session (or, signing in, of the sign-in page) and comes from our pages."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin != _own_origin(board, request):
        return False
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.content_type == "application/x-www-form-urlencoded":
        token = str((await request.post()).get(CSRF_FIELD) or "")
    nonce = session.nonce if session is not None else board.signer.read_login_nonce(
        request.cookies.get(LOGIN_COOKIE), now=_now())
    return board.signer.csrf_ok(nonce, token)


def _own_origin(board: Board, request: web.Request) -> str:
    if board.config.dashboard.public_base_url:
        parts = board.config.dashboard.public_base_url.split("/")
        return "/".join(parts[:3])
    return f"{request.scheme}://{request.host}"


__all__ = ["NOT_AN_EMPLOYEE", "SANDBOX_USER_PARAM", "csrf_ok", "exchange_code", "sandbox_sign_in", "session_of",
           "sign_in_page", "sign_out", "start_session"]
