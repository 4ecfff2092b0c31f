"""The page's 工作台 (sandbox-only JSON API under `/sandbox/api/`): the org's H5 apps and their homepages.

    GET  apps?user=              {"corpId", "canUse", "apps": [{id, name, agentId, homepage, launchUrl, initials}]}
    POST apps/homepage {app, url}   {"app": {…}}   (app: client id or name; url "" removes it)

`launchUrl` is what the workbench opens for that person in a new tab: the homepage with `$CORPID$` replaced and
`as=<userId>` added (null without a homepage, and for external contacts, who cannot use the org's apps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .web_api import WebError, _body as read_body, _user as user_param, endpoint
from .web_views import initials
from .world import App, User, WorldError

if TYPE_CHECKING:
    from .emulator import Emulator


def app_view(emulator: "Emulator", app: App, user: User | None) -> dict[str, Any]:
    h5 = emulator.h5
    return {"id": app.client_id, "name": app.name, "agentId": app.agent_id, "homepage": h5.homepage(app) or None,
            "launchUrl": h5.launch_url(app, user) if user is not None else None, "initials": initials(app.name)}


@endpoint
async def get_apps(request: web.Request, emulator: "Emulator") -> Any:
    user = user_param(emulator, request.query["user"]) if request.query.get("user") else None
    return {"corpId": emulator.world.corp_id, "canUse": user is None or emulator.h5.can_use(user),
            "apps": [app_view(emulator, app, user) for app in emulator.world.apps.values()]}


@endpoint
async def set_homepage(request: web.Request, emulator: "Emulator") -> Any:
    body = await read_body(request)
    url = body.get("url")
    if not body.get("app"):
        raise WebError("请指定应用（app：client id 或名称）")
    if not isinstance(url, str):
        raise WebError("请给出首页地址（url），例如 http://127.0.0.1:8090/?corpid=$CORPID$；空字符串表示移除")
    try:
        app = emulator.world.app(str(body["app"]))
    except WorldError:
        raise WebError(f"未知应用：{body['app']}") from None
    try:
        emulator.h5.set_homepage(app, url.strip())
    except ValueError as exc:
        raise WebError(str(exc)) from None
    return {"app": app_view(emulator, app, None)}


ROUTES = (
    ("GET", "/apps", get_apps),
    ("POST", "/apps/homepage", set_homepage),
)
