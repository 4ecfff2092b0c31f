"""H5 micro-apps (工作台应用) and their login-free auth (免登), P2 §5.

In DingTalk the workbench opens an app's homepage (`$CORPID$` replaced by the corp id) inside the client; the page
asks the JSAPI for a temporary auth code and its backend exchanges the code for the user with
`/topapi/v2/user/getuserinfo`. Here:

* homepages come from the world file (`homepage` of an app), `EmulatorConfig.h5_homepages` (by client id or
  name), or are set at run time (`set_homepage`, the page API `POST /sandbox/api/apps/homepage`: the bot
  registers its 看板 there when it starts); the last one set wins;
* the workbench launches a homepage for a chosen person as `…?as=<userId>` (a browser cannot give a new tab the
  DingTalk user agent); the JSAPI stand-in (`static/jsapi.js`, served at `JSAPI_PATH`) reads `as`, remembers it
  for the tab and mints codes through `AUTHCODE_PATH`;
* codes are single use and live `config.auth_code_ttl` seconds of the emulator clock (5 minutes, §5.1); a code
  asked for with a clientId can only be exchanged with that app's token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from .clock import Clock
from .config import EmulatorConfig
from .ids import IdFactory
from .world import App, User, World

JSAPI_PATH = "/__emulator/dingtalk-jsapi.js"
AUTHCODE_PATH = "/__emulator/authcode"
DINGTALK_UA_MARKER = " DingTalk/7.6.0"      # §7.2: appended to the browser's UA
HOMEPAGE_MAX = 1024
AS_PARAM = "as"

# onFail({errorCode, errorMessage}) of the stand-in; the numbers are the emulator's own (DingTalk's are not
# documented for these cases).
NO_IDENTITY, WRONG_CORP, WRONG_CLIENT, NOT_A_MEMBER = 10001, 10002, 10003, 10004


class AuthCodeError(Exception):
    def __init__(self, error_code: int, message: str):
        super().__init__(message)
        self.error_code, self.message = error_code, message

    def to_json(self) -> dict[str, Any]:
        return {"errorCode": self.error_code, "errorMessage": self.message}


@dataclass
class AuthCode:
    code: str
    user_id: str
    corp_id: str
    client_id: str | None       # None: asked without clientId (the older requestAuthCode): any app of the corp
    expires_at: float           # emulator-clock seconds
    device_id: str
    used: bool = False


class H5Apps:
    def __init__(self, *, world: World, clock: Clock, ids: IdFactory, config: EmulatorConfig):
        self.world, self.clock, self.ids, self.config = world, clock, ids, config
        self.codes: dict[str, AuthCode] = {}
        self._homepages: dict[str, str] = {}        # set at run time, by client id

    # ---- homepages ------------------------------------------------------------------
    def homepage(self, app: App) -> str:
        configured = self.config.h5_homepages
        return (self._homepages.get(app.client_id) or configured.get(app.client_id) or configured.get(app.name)
                or app.homepage)

    def set_homepage(self, app: App | str, url: str) -> App:
        """Register (or, with "", remove) an app's homepage URL, like its admin in the developer console."""
        app = self.world.app(app)
        if url:
            check_homepage(url)
        self._homepages[app.client_id] = url
        return app

    def launch_url(self, app: App, user: User) -> str | None:
        """What the workbench opens for `user`: the homepage with `$CORPID$` replaced, plus `as=<userId>`."""
        homepage = self.homepage(app)
        if not homepage or not self.can_use(user):
            return None
        parts = urlsplit(homepage.replace("$CORPID$", self.world.corp_id))
        query = "&".join(q for q in (parts.query, urlencode({AS_PARAM: user.user_id})) if q)
        return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))

    def can_use(self, user: User) -> bool:
        """Only current members of the org see its workbench apps (outsiders and leavers get no code either)."""
        return not user.external and user.active and user.corp_id == self.world.corp_id

    # ---- codes ----------------------------------------------------------------------
    def mint(self, user_id: Any, corp_id: Any, client_id: Any = None) -> AuthCode:
        """A code for the person chosen in the sandbox, as `dd.requestAuthCode` would get it."""
        if not user_id:
            raise AuthCodeError(NO_IDENTITY, "沙箱里还没有选择身份：请从聊天页的「工作台」打开应用，或在地址后加 ?as=<userId>")
        if corp_id != self.world.corp_id:
            raise AuthCodeError(WRONG_CORP, f"corpId 与当前组织不符：{corp_id}")
        if client_id not in (None, "") and client_id not in self.world.apps:
            raise AuthCodeError(WRONG_CLIENT, f"clientId 不是本组织的应用：{client_id}")
        user = self.world.users.get(str(user_id))     # the stand-in sends a userId, never a name
        if user is None or not self.can_use(user):
            raise AuthCodeError(NOT_A_MEMBER, f"{user.name if user else user_id} 不是本组织成员，无法免登")
        code = AuthCode(self.ids.auth_code(), user.user_id, corp_id, client_id or None,
                        self.clock.now() + self.config.auth_code_ttl, self.ids.device_id())
        self.codes[code.code] = code
        return code

    def redeem(self, code: Any, app: App) -> tuple[User, AuthCode] | None:
        """The person behind a code, once; None for an unknown, used, expired or other app's code (40078)."""
        issued = self.codes.get(code) if isinstance(code, str) else None
        if (issued is None or issued.used or issued.expires_at <= self.clock.now()
                or issued.client_id not in (None, app.client_id) or issued.corp_id != app.corp_id):
            return None
        user = self.world.users[issued.user_id]
        if not self.can_use(user):      # left the organization since the code was minted
            return None
        issued.used = True
        return user, issued


def check_homepage(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("首页地址必须是 http:// 或 https:// 开头的完整网址")
    if len(url) > HOMEPAGE_MAX:
        raise ValueError(f"首页地址不能超过 {HOMEPAGE_MAX} 个字符")
