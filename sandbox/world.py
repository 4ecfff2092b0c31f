"""The emulated organization: corp, departments, users, apps (bots) and groups.

Loaded from a small TOML file (`sandbox/world/default.toml` by default). Derived
identifiers (encrypted user ids, union ids, 1:1 conversation ids) are computed from
the file's content, so a world file always yields the same ids across runs.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import SandboxError
from .ids import conversation_id, encrypted_id, stable_digest

DEFAULT_WORLD_PATH = Path(__file__).parent / "world" / "default.toml"


class WorldError(SandboxError, ValueError):
    """The world file is inconsistent, or a lookup names nobody."""


@dataclass(frozen=True)
class Department:
    dept_id: int
    name: str
    parent_id: int | None = None


@dataclass(frozen=True)
class User:
    user_id: str                # staffId / userId
    name: str
    corp_id: str
    title: str = ""
    department_ids: tuple[int, ...] = ()
    mobile: str = ""
    admin: bool = False
    external: bool = False      # belongs to another organization (a client contact)
    corp_name: str = ""

    @property
    def dingtalk_id(self) -> str:
        # The encrypted id used for senderId and atUsers[].dingtalkId.
        return encrypted_id("user", self.corp_id, self.user_id)

    @property
    def union_id(self) -> str:
        return stable_digest("union", self.user_id, length=12).hex() + "iE"


@dataclass(frozen=True)
class App:
    name: str
    client_id: str              # AppKey, also the robotCode of its bot
    client_secret: str
    corp_id: str
    agent_id: int = 0
    robot_name: str = ""
    events: tuple[str, ...] = ()
    default: bool = False
    homepage: str = ""          # H5 micro-app homepage (工作台), `$CORPID$` allowed (P2 §5.1)

    @property
    def robot_code(self) -> str:
        return self.client_id

    @property
    def unified_app_id(self) -> str:
        raw = stable_digest("app", self.client_id).hex()
        return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"

    @property
    def chatbot_user_id(self) -> str:
        return encrypted_id("bot", self.corp_id, self.client_id)


@dataclass(frozen=True)
class Group:
    conversation_id: str
    title: str
    owner_id: str
    member_ids: tuple[str, ...]
    bot_client_ids: tuple[str, ...]


@dataclass(frozen=True)
class FlowStep:
    action_type: str            # AND / OR / NONE
    user_ids: tuple[str, ...]


@dataclass(frozen=True)
class FormFlow:
    form_name: str
    steps: tuple[FlowStep, ...]


@dataclass
class World:
    corp_id: str
    corp_name: str
    departments: dict[int, Department]
    users: dict[str, User]
    apps: dict[str, App]
    groups: dict[str, Group]
    form_flows: dict[str, FormFlow] = field(default_factory=dict)

    # ---- loading ------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None) -> "World":
        path = Path(path) if path is not None else DEFAULT_WORLD_PATH
        with path.open("rb") as fh:
            return cls.from_dict(tomllib.load(fh))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "World":
        corp = raw.get("corp") or {}
        corp_id = corp.get("corp_id") or "dingsandboxcorp"
        departments = {
            int(d["id"]): Department(int(d["id"]), d["name"], d.get("parent"))
            for d in raw.get("departments", [])
        }
        if not departments:
            departments = {1: Department(1, corp.get("name", "示例公司"))}
        users: dict[str, User] = {}
        for u in raw.get("users", []):
            external = bool(u.get("external", False))
            user = User(
                user_id=u["user_id"], name=u["name"],
                corp_id=u.get("corp_id", corp_id) if external else corp_id,
                title=u.get("title", ""), department_ids=tuple(u.get("departments", ())),
                mobile=str(u.get("mobile", "")), admin=bool(u.get("admin", False)),
                external=external, corp_name=u.get("corp_name", ""),
            )
            if user.user_id in users:
                raise WorldError(f"duplicate user_id {user.user_id}")
            for dept in user.department_ids:
                if dept not in departments:
                    raise WorldError(f"user {user.user_id}: unknown department {dept}")
            users[user.user_id] = user
        apps: dict[str, App] = {}
        for a in raw.get("apps", []):
            app = App(
                name=a["name"], client_id=a["client_id"], client_secret=a["client_secret"],
                corp_id=corp_id, agent_id=int(a.get("agent_id", 0)),
                robot_name=a.get("robot_name", a["name"]), events=tuple(a.get("events", ())),
                default=bool(a.get("default", False)), homepage=a.get("homepage", ""),
            )
            apps[app.client_id] = app
        if not apps:
            raise WorldError("a world needs at least one app")
        groups: dict[str, Group] = {}
        for g in raw.get("groups", []):
            cid = g.get("conversation_id") or conversation_id("group", corp_id, g["title"])
            members = tuple(g.get("members", ()))
            for m in members:
                if m not in users:
                    raise WorldError(f"group {g['title']}: unknown member {m}")
            bots = tuple(g.get("bots", ()))
            for b in bots:
                if b not in apps:
                    raise WorldError(f"group {g['title']}: unknown bot app {b}")
            groups[cid] = Group(cid, g["title"], g.get("owner", members[0] if members else ""), members, bots)
        flows = {}
        for f in raw.get("form_flows", []):
            steps = tuple(FlowStep(s.get("action_type", "NONE").upper(), tuple(s["user_ids"])) for s in f["steps"])
            for step in steps:
                for uid in step.user_ids:
                    if uid not in users:
                        raise WorldError(f"form flow {f['form_name']}: unknown user {uid}")
            flows[f["form_name"]] = FormFlow(f["form_name"], steps)
        return cls(corp_id, corp.get("name", ""), departments, users, apps, groups, flows)

    # ---- lookups ------------------------------------------------------------------
    @property
    def default_app(self) -> App:
        for app in self.apps.values():
            if app.default:
                return app
        return next(iter(self.apps.values()))

    def app(self, key: str | App | None = None) -> App:
        if key is None:
            return self.default_app
        if isinstance(key, App):
            return key
        if key in self.apps:
            return self.apps[key]
        for app in self.apps.values():
            if app.name == key:
                return app
        raise WorldError(f"no app {key!r}")

    def user(self, key: str | User) -> User:
        """A user by userId or by (Chinese) name."""
        if isinstance(key, User):
            return key
        if key in self.users:
            return self.users[key]
        for user in self.users.values():
            if user.name == key:
                return user
        raise WorldError(f"no user {key!r}")

    def find_user(self, key: str) -> User | None:
        try:
            return self.user(key)
        except WorldError:
            return None

    def group(self, key: str | Group) -> Group:
        """A group by conversation id or title."""
        if isinstance(key, Group):
            return key
        if key in self.groups:
            return self.groups[key]
        for group in self.groups.values():
            if group.title == key:
                return group
        raise WorldError(f"no group {key!r}")

    def find_group(self, key: str) -> Group | None:
        try:
            return self.group(key)
        except WorldError:
            return None

    def internal_users(self) -> Iterable[User]:
        return (u for u in self.users.values() if not u.external)

    def private_conversation_id(self, user: User | str, app: App | str | None = None) -> str:
        """The 1:1 conversation between a user and an app's bot."""
        user = self.user(user)
        app = self.app(app)
        return conversation_id("single", app.client_id, user.user_id)

    def private_conversation_owner(self, cid: str) -> tuple[User, App] | None:
        for app in self.apps.values():
            for user in self.users.values():
                if self.private_conversation_id(user, app) == cid:
                    return user, app
        return None

    def department_name(self, dept_id: int) -> str:
        if dept_id == -1:
            dept_id = min(self.departments)
        dept = self.departments.get(dept_id)
        return dept.name if dept else ""

    def main_department(self, user: User) -> int:
        return user.department_ids[0] if user.department_ids else -1
