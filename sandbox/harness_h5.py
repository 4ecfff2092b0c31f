"""The harness's 工作台 / 免登 helpers (mixed into `Sandbox`).

    sb.jsapi_url                                   # the JSAPI stand-in for the bot's page
    await sb.set_homepage("项目管家", "http://127.0.0.1:8090/?corpid=$CORPID$")
    await sb.launch_url("李明")                      # what the workbench opens: …?corpid=ding…&as=liming
    code = await sb.auth_code("李明")               # what dd.requestAuthCode hands the page
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .h5 import JSAPI_PATH

if TYPE_CHECKING:
    from .emulator import Emulator
    from .world import App


class H5Helpers:
    emulator: "Emulator"
    base_url: str
    call: Callable[..., Awaitable[Any]]
    app: "App"

    @property
    def jsapi_url(self) -> str:
        """Where the bot's page loads `dingtalk-jsapi` from in the sandbox (a classic <script src>)."""
        return f"{self.base_url}{JSAPI_PATH}"

    async def set_homepage(self, app: str | None, url: str) -> None:
        """Register an app's homepage (None: the default app); "" removes it."""
        await self.call(self.emulator.h5.set_homepage, self.emulator.world.app(app), url)

    async def launch_url(self, user: str, app: str | None = None) -> str | None:
        """What the 工作台 opens for the person (None: no homepage, or an external contact)."""
        world = self.emulator.world
        return await self.call(self.emulator.h5.launch_url, world.app(app), world.user(user))

    async def auth_code(self, user: str, *, client_id: str | None = None, corp_id: str | None = None) -> str:
        """A 免登 code for the person, as `dd.requestAuthCode({corpId, clientId})` would get it in the page
        (default: this org and the default app). Raises `AuthCodeError` when the stand-in would call onFail."""
        world = self.emulator.world
        user_id = world.user(user).user_id
        code = await self.call(self.emulator.h5.mint, user_id, corp_id or world.corp_id,
                               client_id or self.app.client_id)
        return code.code
