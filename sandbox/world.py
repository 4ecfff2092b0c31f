"""The emulated organization: corp, departments, users, apps (bots), groups, 外部联系人.

Loaded from a small TOML file (`sandbox/world/default.toml` by default). Derived
identifiers (encrypted user ids, union ids, 1:1 conversation ids) are computed from
the file's content, so a world file always yields the same ids across runs.

People outside the organization are users too (`external`): members of another
organization (their own `corp_id` and `corp_name`) or personal DingTalk users
(`personal`, no corp at all). They sit in groups as external members and have no
staffId here; their `user_id` is only the world file's handle for them. The
organization's external-contact book (`ext_contacts`) is a separate list with its
own userids; an entry may name the external member it describes (`member`), and
then shares that person's unionId.

The directory changes at run time: `update_user` renames a person or marks them as
having left (`active = False`); lookups by name then see the new name, and a person
who left disappears from the contact APIs.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from .errors import SandboxError
from .ids import conversation_id, encrypted_id, stable_digest

DEFAULT_WORLD_PATH = Path(__file__).parent / "world" / "default.toml"


class WorldError(SandboxError, ValueError):
    """The world file is inconsistent, or a lookup names nobody."""


class AmbiguousName(WorldError):
    """A name that several people share: say which one by userId."""

    def __init__(self, name: str, candidates: list["User"], descriptions: list[str]):
        listed = ", ".join(f"{u.user_id} ({d})" for u, d in zip(candidates, descriptions))
        super().__init__(f"{len(candidates)} people are called {name!r}: {listed}; name one by user id")
        self.name, self.candidates, self.descriptions = name, candidates, descriptions


@dataclass(frozen=True)
class Department:
    dept_id: int
    name: str
    parent_id: int | None = None


def derived_union_id(*parts: str) -> str:
    # Shaped like the reference's sample unionIds ("QWRGux2l4MuiSa0vxxxEiE"): opaque, ends in "iE".
    return stable_digest("union", *parts, length=12).hex() + "iE"


@dataclass(frozen=True)
class User:
    user_id: str                # staffId / userId (for outsiders: the world file's handle, not an id they have here)
    name: str
    corp_id: str                # "" for a personal DingTalk user
    title: str = ""
    department_ids: tuple[int, ...] = ()
    mobile: str = ""
    admin: bool = False
    external: bool = False      # not in this organization: another org's member or a personal user
    corp_name: str = ""
    union_id: str = ""          # derived from user_id when the world file gives none
    active: bool = True         # False: left the organization (离职); kept for history
    email: str = ""
    job_number: str = ""
    leader_in: tuple[int, ...] = ()     # departments this user leads
    boss: bool = False
    modified_at: int = 0        # ms; bumped by renames and departures (user/list's modify_* order)

    def __post_init__(self):
        if not self.union_id:
            object.__setattr__(self, "union_id", derived_union_id(self.user_id))

    @property
    def dingtalk_id(self) -> str:
        # The encrypted id used for senderId and atUsers[].dingtalkId.
        return encrypted_id("user", self.corp_id, self.user_id)

    @property
    def personal(self) -> bool:
        """A personal DingTalk account: no organization at all."""
        return self.external and not self.corp_id


@dataclass(frozen=True)
class ExtContact:
    """An entry of the organization's external-contact book (外部联系人, P2 §4)."""

    user_id: str                # the book's own userid
    name: str
    company_name: str = ""
    title: str = ""
    mobile: str = ""
    email: str = ""
    follower_user_id: str = ""  # the employee who owns the contact
    label_ids: tuple[int, ...] = ()
    share_dept_ids: tuple[int, ...] = ()
    share_user_ids: tuple[str, ...] = ()
    remark: str = ""
    address: str = ""
    state_code: str = "86"
    member: str = ""            # user_id of the external member this contact is, if any
    union_id: str = ""

    def __post_init__(self):
        if not self.union_id:
            object.__setattr__(self, "union_id", derived_union_id("extcontact", self.user_id))


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
    ext_contacts: dict[str, ExtContact] = field(default_factory=dict)

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
            user = _load_user(u, corp_id)
            if user.user_id in users:
                raise WorldError(f"duplicate user_id {user.user_id}")
            for dept in user.department_ids + user.leader_in:
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
        ext_contacts: dict[str, ExtContact] = {}
        for c in raw.get("ext_contacts", []):
            contact = _load_ext_contact(c, users)
            if contact.user_id in ext_contacts:
                raise WorldError(f"duplicate external contact {contact.user_id}")
            ext_contacts[contact.user_id] = contact
        return cls(corp_id, corp.get("name", ""), departments, users, apps, groups, flows, ext_contacts)

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
        """A user by userId or by (Chinese) name; a name that several people share raises `AmbiguousName`."""
        if isinstance(key, User):
            return self.users.get(key.user_id, key)
        if key in self.users:
            return self.users[key]
        named = [user for user in self.users.values() if user.name == key]
        if len(named) > 1:
            raise AmbiguousName(key, named, [self.describe(u) for u in named])
        if named:
            return named[0]
        raise WorldError(f"no user {key!r}")

    def find_user(self, key: str) -> User | None:
        """Like `user`, but None when nobody has that id or name (an ambiguous name still raises)."""
        try:
            return self.user(key)
        except AmbiguousName:
            raise
        except WorldError:
            return None

    def describe(self, user: User) -> str:
        """Where someone belongs and what they do: "测试组·测试工程师", "华东某制造集团·客户方项目经理"."""
        if user.external:
            where = user.corp_name or ("个人用户" if user.personal else "")
        else:
            where = self.department_name(user.department_ids[0]) if user.department_ids else ""
        return "·".join(part for part in (where, user.title) if part) or user.user_id

    def user_by_union_id(self, union_id: str) -> User | None:
        return next((u for u in self.users.values() if u.union_id == union_id), None)

    def update_user(self, key: str | User, *, name: str | None = None, active: bool | None = None,
                    now_ms: int = 0) -> User:
        """Rename someone, or mark them as having left (active=False) or come back; returns the new entry."""
        user = self.user(key)
        changes: dict[str, Any] = {}
        if name is not None and name != user.name:
            if not name.strip():
                raise WorldError("a name cannot be empty")
            changes["name"] = name.strip()
        if active is not None and active != user.active:
            changes["active"] = active
        if not changes:
            return user
        updated = replace(user, **changes, modified_at=now_ms)
        self.users[user.user_id] = updated
        return updated

    def organizations(self) -> dict[str, str]:
        """corpId -> name of every organization with external members here (not our own)."""
        return {u.corp_id: u.corp_name for u in self.users.values() if u.external and u.corp_id}

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

    def has_outsiders(self, group: Group) -> bool:
        """An external group (外部群): someone in it does not belong to the organization."""
        return any(self.users[m].external for m in group.member_ids)

    def present_members(self, group: Group) -> list[User]:
        """Who is in the group now: people who left the organization are no longer members."""
        return [self.users[m] for m in group.member_ids if self.users[m].active]

    def sub_departments(self, dept_id: int) -> list[Department]:
        return [d for d in self.departments.values() if d.parent_id == dept_id]

    def department_members(self, dept_id: int) -> list[User]:
        """Direct members (not sub-departments) still in the organization, in world order."""
        return [u for u in self.users.values() if dept_id in u.department_ids and u.active and not u.external]

    def within(self, dept_id: int, roots: Iterable[int]) -> bool:
        """Whether the department is one of `roots` or below one of them."""
        roots = set(roots)
        seen: set[int] = set()
        current: int | None = dept_id
        while current is not None and current not in seen:
            if current in roots:
                return True
            seen.add(current)
            dept = self.departments.get(current)
            current = dept.parent_id if dept else None
        return False

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


def _load_user(raw: dict[str, Any], corp_id: str) -> User:
    personal = bool(raw.get("personal", False))
    external = personal or bool(raw.get("external", False))
    if personal:
        own_corp = ""
    elif external:
        own_corp = raw.get("corp_id", corp_id)
    else:
        own_corp = corp_id
    return User(
        user_id=raw["user_id"], name=raw["name"], corp_id=own_corp,
        title=raw.get("title", ""), department_ids=tuple(raw.get("departments", ())),
        mobile=str(raw.get("mobile", "")), admin=bool(raw.get("admin", False)) and not external,
        external=external, corp_name="" if personal else raw.get("corp_name", ""),
        union_id=raw.get("union_id", ""), active=bool(raw.get("active", True)), email=raw.get("email", ""),
        job_number=str(raw.get("job_number", "")), leader_in=tuple(raw.get("leader_in", ())),
        boss=bool(raw.get("boss", False)),
    )


def _load_ext_contact(raw: dict[str, Any], users: dict[str, User]) -> ExtContact:
    member = raw.get("member", "")
    if member and (member not in users or not users[member].external):
        raise WorldError(f"external contact {raw['user_id']}: {member!r} is not an external member")
    follower = raw.get("follower", "")
    if follower and (follower not in users or users[follower].external):
        raise WorldError(f"external contact {raw['user_id']}: unknown follower {follower!r}")
    return ExtContact(
        user_id=raw["user_id"], name=raw["name"], company_name=raw.get("company_name", ""),
        title=raw.get("title", ""), mobile=str(raw.get("mobile", "")), email=raw.get("email", ""),
        follower_user_id=follower, label_ids=tuple(raw.get("label_ids", ())),
        share_dept_ids=tuple(raw.get("share_dept_ids", ())), share_user_ids=tuple(raw.get("share_user_ids", ())),
        remark=raw.get("remark", ""), address=raw.get("address", ""), state_code=str(raw.get("state_code", "86")),
        member=member, union_id=users[member].union_id if member else "",
    )
