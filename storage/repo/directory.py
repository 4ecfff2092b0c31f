"""The directory: who people are (employees and external contacts), found by key, name, mobile or DingTalk id,
learned from messages and filled by the contacts walk; plus the conversations with external members, the
client-contact exclusions, the walk's checkpoints and the client groups' custom robots.

``display_names`` is the one way a person becomes text anywhere (replies, approval messages, documents, xlsx, the
audit CSV): by key, the directory's current name, so a renamed person shows the new name everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    ClientRobot,
    MemberRole,
    ProjectMember,
    Conversation,
    Department,
    Organization,
    Project,
    ProjectMemberExclusion,
    SyncCheckpoint,
    User,
    external_key,
    utcnow,
)
from storage.repo._sql import core_table, insert_ignoring_duplicates
from storage.repo.audit import write_audit
from storage.repo.message_scope import taken_client_conversation

MAX_IDS_PER_QUERY = 500  # bound parameters per IN (…): well below every backend's limit
MAX_CANDIDATES = 20
EXTERNAL_PLACEHOLDER_NAME = "外部联系人"  # an external first seen in an @-mention, before their name is known

_MOBILE = re.compile(r"^(?:\+?86[-\s]?)?(1\d{2})[-\s]?(\d{4})[-\s]?(\d{4})$", re.ASCII)
_NAME_WITH_DEPARTMENT = re.compile(r"^(?P<name>[^()（）]+)[(（](?P<hint>[^()（）]+)[)）]$")


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), MAX_IDS_PER_QUERY):
        yield values[start:start + MAX_IDS_PER_QUERY]


def normalize_mobile(text: str) -> str | None:
    """``138 0001 0001`` / ``+86-13800010001`` -> ``13800010001``; None when it is no mainland mobile number."""
    match = _MOBILE.match(text.strip())
    return "".join(match.groups()) if match else None


# ---- reading people -----------------------------------------------------------------------------------------------


async def display_names(*, session: AsyncSession, user_ids: Iterable[str | None]) -> dict[str, str]:
    """Current display names by person key; keys the directory has never seen are missing from the result."""
    ids = sorted({u for u in user_ids if u})
    names: dict[str, str] = {}
    for chunk in _chunks(ids):
        rows = (await session.exec(_NAMES, params={"b_ids": list(chunk)})).all()  # type: ignore[call-overload]
        names.update({user_id: name for user_id, name in rows})
    return names


# Built once: every list and overview names people.
_NAMES = select(User.user_id, User.name).where(User.user_id.in_(bindparam("b_ids", expanding=True)))  # type: ignore[attr-defined]


async def display_mobiles(*, session: AsyncSession, user_ids: Iterable[str | None]) -> dict[str, str]:
    """Mobile numbers by person key, for the people the directory knows one of (documents print them as contacts)."""
    ids = sorted({u for u in user_ids if u})
    mobiles: dict[str, str] = {}
    for chunk in _chunks(ids):
        query = select(User.user_id, User.mobile).where(
            User.user_id.in_(chunk), User.mobile.is_not(None))  # type: ignore[attr-defined,union-attr]
        mobiles.update({user_id: mobile for user_id, mobile in (await session.exec(query)).all() if mobile})
    return mobiles


async def people_by_key(*, session: AsyncSession, user_ids: Iterable[str | None]) -> dict[str, User]:
    ids = sorted({u for u in user_ids if u})
    found: dict[str, User] = {}
    for chunk in _chunks(ids):
        rows = (await session.exec(select(User).where(User.user_id.in_(chunk)))).all()  # type: ignore[attr-defined]
        found.update({row.user_id: row for row in rows})
    return found


async def get_person(*, session: AsyncSession, user_id: str) -> User | None:
    return (await session.exec(select(User).where(User.user_id == user_id))).first()


async def department_names(*, session: AsyncSession, dept_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(dept_ids))
    names: dict[int, str] = {}
    for chunk in _chunks(ids):
        query = select(Department.dept_id, Department.name).where(Department.dept_id.in_(chunk))  # type: ignore
        names.update({int(dept): name for dept, name in (await session.exec(query)).all()})
    return names


async def organization_names(*, session: AsyncSession, corp_ids: Iterable[str | None]) -> dict[str, str]:
    ids = sorted({c for c in corp_ids if c})
    if not ids:
        return {}
    query = select(Organization.corp_id, Organization.name).where(Organization.corp_id.in_(ids))  # type: ignore
    return dict((await session.exec(query)).all())


@dataclass(frozen=True, slots=True)
class PersonCard:
    """A person as a candidate list shows them: name, where they work, what they do."""

    user_id: str
    name: str
    departments: tuple[str, ...]
    title: str
    organization: str  # an external contact's organization; empty for employees
    mobile: str
    active: bool
    external: bool

    @property
    def where(self) -> str:
        """``交付中心·项目经理``; ``华东某制造集团·客户方信息部主任`` for an external contact."""
        parts = [self.organization] if self.external else list(self.departments)
        return "·".join(p for p in (*parts, self.title) if p)


async def person_cards(*, session: AsyncSession, users: Sequence[User]) -> list[PersonCard]:
    departments = await department_names(session=session, dept_ids=[d for u in users for d in u.dept_ids or ()])
    organizations = await organization_names(session=session, corp_ids=[u.corp_id for u in users if u.external])
    return [
        PersonCard(
            user_id=u.user_id, name=u.name,
            departments=tuple(departments[d] for d in u.dept_ids or () if d in departments),
            title=u.title or "", organization=organizations.get(u.corp_id or "", "") if u.external else "",
            mobile=u.mobile or "", active=u.active, external=u.external,
        )
        for u in users
    ]


async def find_people(*, session: AsyncSession, text: str) -> list[User]:
    """Everyone ``text`` may mean: a mobile number, a userId, a name, or ``名字(部门)`` (the hint matches a department,
    a title or an external contact's organization). Active people first; at most ``MAX_CANDIDATES``."""
    text = text.strip()
    if not text:
        return []
    mobile = normalize_mobile(text)
    if mobile is not None:
        query = select(User).where(User.mobile == mobile)
    else:
        hint = None
        match = _NAME_WITH_DEPARTMENT.match(text)
        if match is not None:
            text, hint = match.group("name").strip(), match.group("hint").strip()
        query = select(User).where(or_(User.name == text, User.user_id == text))
        if hint is not None:
            rows = list((await session.exec(query.order_by(User.id))).all())
            return await _matching_hint(session, rows, hint)
    rows = (await session.exec(query.order_by(User.active.desc(), User.id).limit(MAX_CANDIDATES))).all()  # type: ignore
    return list(rows)


async def _matching_hint(session: AsyncSession, rows: Sequence[User], hint: str) -> list[User]:
    cards = await person_cards(session=session, users=rows)
    folded = hint.casefold()
    return [row for row, card in zip(rows, cards)
            if any(folded in part.casefold() for part in (*card.departments, card.title, card.organization) if part)]


# ---- learning people ----------------------------------------------------------------------------------------------


def _changes(row: User, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and getattr(row, k) != v}


async def _insert_person(session: AsyncSession, person: User) -> User:
    """Insert ``person`` unless someone created the key meanwhile; return the stored row."""
    await insert_ignoring_duplicates(session, person)
    query = select(User).where(User.user_id == person.user_id).execution_options(populate_existing=True)
    return (await session.exec(query)).one()


async def _update_person(session: AsyncSession, user_id: str, values: dict[str, Any], now: datetime) -> None:
    if values:
        await session.exec(update(core_table(User)).where(core_table(User).c.user_id == user_id)
                           .values(**values, updated_at=now))


async def learn_employee(
    *, session: AsyncSession, user_id: str, name: str | None = None, union_id: str | None = None,
    corp_id: str | None = None, dingtalk_id: str | None = None, now: datetime | None = None,
) -> User:
    """Note what a message says about an employee (its sender). One read when nothing is new.

    The contacts walk is authoritative for the names of employees it has seen; a message's nick renames only people
    it has not. Someone writing to the bot has not left, whatever an earlier walk concluded."""
    now = now or utcnow()
    row = await get_person(session=session, user_id=user_id)
    if row is None:
        return await _insert_person(session, User(
            user_id=user_id, name=name or user_id, union_id=union_id, corp_id=corp_id, dingtalk_id=dingtalk_id,
            created_at=now, updated_at=now))
    changes = _changes(row, {"union_id": union_id, "corp_id": corp_id, "dingtalk_id": dingtalk_id,
                             "name": name if row.synced_at is None else None})
    if not row.active:
        changes.update(active=True, left_at=None)
    await _update_person(session, user_id, changes, now)
    return row


async def find_external(*, session: AsyncSession, union_id: str | None = None,
                        dingtalk_id: str | None = None) -> User | None:
    """An external contact by unionId (preferred: it never changes) or by the encrypted id last seen."""
    if union_id:
        row = (await session.exec(select(User).where(User.union_id == union_id).order_by(User.id))).first()
        if row is not None:
            return row
    if dingtalk_id:
        query = select(User).where(User.dingtalk_id == dingtalk_id, User.external == True).order_by(User.id)  # noqa: E712
        return (await session.exec(query)).first()
    return None


async def match_external(*, session: AsyncSession, union_id: str | None = None, dingtalk_id: str | None = None,
                         name: str | None = None) -> User | None:
    """The external contact these ids (or, failing them, this name) stand for.

    An outsider is often known by one id only: by unionId from a group's member list, by dingtalkId from an @ (no
    API accepts it). When the ids find nobody, the one outsider of that name still missing that kind of id is taken
    to be them, so the two sightings make one person, not two."""
    row = await find_external(session=session, union_id=union_id, dingtalk_id=dingtalk_id)
    if row is not None or not name or name == EXTERNAL_PLACEHOLDER_NAME:
        return row
    query = select(User).where(User.external == True, User.name == name)  # noqa: E712
    if union_id:
        query = query.where(User.union_id.is_(None))  # type: ignore[union-attr]
    if dingtalk_id:
        query = query.where(User.dingtalk_id.is_(None))  # type: ignore[union-attr]
    candidates = (await session.exec(query.limit(2))).all()
    return candidates[0] if len(candidates) == 1 else None


async def learn_external(
    *, session: AsyncSession, union_id: str | None = None, dingtalk_id: str | None = None,
    corp_id: str | None = None, name: str | None = None, rename: bool = True, now: datetime | None = None,
) -> User:
    """The external contact these ids stand for, created on first sight (key ``ext:…``), ids and name filled in.
    ``rename=False``: ``name`` is only a hint (how an @ showed them) and replaces no name already known."""
    now = now or utcnow()
    row = await match_external(session=session, union_id=union_id, dingtalk_id=dingtalk_id, name=name)
    if row is None:
        return await _insert_person(session, User(
            user_id=external_key(union_id=union_id, dingtalk_id=dingtalk_id),
            name=name or EXTERNAL_PLACEHOLDER_NAME, external=True, union_id=union_id, dingtalk_id=dingtalk_id,
            corp_id=corp_id, created_at=now, updated_at=now))
    renamed = name if rename or row.name == EXTERNAL_PLACEHOLDER_NAME else None
    await _update_person(session, row.user_id, _changes(row, {
        "union_id": union_id, "dingtalk_id": dingtalk_id, "corp_id": corp_id, "name": renamed,
    }), now)
    return row


# ---- the contacts walk --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmployeeRecord:
    """One employee as ``user/list`` describes them."""

    user_id: str
    name: str
    union_id: str | None = None
    title: str | None = None
    mobile: str | None = None
    dept_ids: tuple[int, ...] = ()


async def store_employees(*, session: AsyncSession, records: Sequence[EmployeeRecord], corp_id: str | None,
                          synced_at: datetime) -> int:
    """Store one page of the walk: new people inserted, changed ones (a new name, title, department) updated, all
    stamped as seen by this walk. Returns how many rows were inserted or changed."""
    by_id = {r.user_id: r for r in records}
    if not by_id:
        return 0
    existing = await people_by_key(session=session, user_ids=by_id)
    changed = 0
    unchanged: list[str] = []
    for record in by_id.values():
        values = {"name": record.name, "union_id": record.union_id, "title": record.title or None,
                  "mobile": record.mobile or None, "dept_ids": sorted(set(record.dept_ids)) or None,
                  "corp_id": corp_id}
        row = existing.get(record.user_id)
        if row is None:
            await insert_ignoring_duplicates(session, User(user_id=record.user_id, synced_at=synced_at,
                                                           created_at=synced_at, updated_at=synced_at, **values))
            changed += 1
            continue
        delta = _changes(row, values)
        if not row.active or row.external:
            delta.update(active=True, left_at=None, external=False)
        if not delta:
            unchanged.append(record.user_id)
            continue
        changed += 1
        await session.exec(update(core_table(User)).where(core_table(User).c.user_id == record.user_id)
                           .values(**delta, synced_at=synced_at, updated_at=synced_at))
    if unchanged:  # most of a daily walk: only the stamp, in one statement for the page
        T = core_table(User).c
        await session.exec(update(core_table(User)).where(T.user_id.in_(unchanged))
                           .values(synced_at=synced_at, updated_at=T.updated_at))
    return changed


async def store_departments(*, session: AsyncSession, departments: Sequence[tuple[int, str, int | None]],
                            synced_at: datetime) -> None:
    """``(dept_id, name, parent_id)`` of one ``listsub`` answer."""
    for dept_id, name, parent_id in departments:
        row = (await session.exec(select(Department).where(Department.dept_id == dept_id))).first()
        if row is None:
            await insert_ignoring_duplicates(session, Department(dept_id=dept_id, name=name, parent_id=parent_id,
                                                                 synced_at=synced_at, updated_at=synced_at))
        else:
            await session.exec(update(core_table(Department)).where(core_table(Department).c.dept_id == dept_id)
                               .values(name=name, parent_id=parent_id, synced_at=synced_at, updated_at=synced_at))


async def mark_departed(*, session: AsyncSession, walk_started: datetime, now: datetime | None = None) -> list[str]:
    """After a complete walk: employees it did not see have left. They stay (history), marked inactive."""
    T = core_table(User).c
    condition = (T.external == False, T.active == True, T.synced_at.is_not(None),  # noqa: E712
                 T.synced_at < walk_started)
    gone = list((await session.exec(select(User.user_id).where(*condition))).all())
    if gone:
        await session.exec(update(core_table(User)).where(*condition)
                           .values(active=False, left_at=now or utcnow(), updated_at=now or utcnow()))
    return gone


async def store_organization(*, session: AsyncSession, corp_id: str, name: str, replace: bool = True) -> None:
    """Name an organization; ``replace=False`` only names one not named yet (a guess such as the project's
    customer must not overwrite what the platform said)."""
    row = (await session.exec(select(Organization).where(Organization.corp_id == corp_id))).first()
    if row is None:
        await insert_ignoring_duplicates(session, Organization(corp_id=corp_id, name=name))
    elif replace and row.name != name:
        await session.exec(update(core_table(Organization)).where(core_table(Organization).c.corp_id == corp_id)
                           .values(name=name, updated_at=utcnow()))


# ---- conversations ------------------------------------------------------------------------------------------------


async def note_external_members(*, session: AsyncSession, conversation_id: str, title: str | None = None,
                                synced: bool = False, now: datetime | None = None) -> None:
    """Remember that a group has members of another organization (once: later calls read only)."""
    now = now or utcnow()
    row = (await session.exec(select(Conversation).where(Conversation.conversation_id == conversation_id))).first()
    if row is None:
        await insert_ignoring_duplicates(session, Conversation(
            conversation_id=conversation_id, title=(title or None) and title[:255], external_members=True,
            members_synced_at=now if synced else None, updated_at=now))
        return
    values: dict[str, Any] = {}
    if not row.external_members:
        values["external_members"] = True
    if synced:
        values["members_synced_at"] = now
    if values:
        await session.exec(update(core_table(Conversation))
                           .where(core_table(Conversation).c.conversation_id == conversation_id)
                           .values(**values, updated_at=now))


async def has_external_members(*, session: AsyncSession, conversation_id: str) -> bool:
    query = select(Conversation.id).where(Conversation.conversation_id == conversation_id,
                                          Conversation.external_members == True)  # noqa: E712
    return (await session.exec(query)).first() is not None


async def unbind_internal_group(*, session: AsyncSession, conversation_id: str) -> list[Project]:
    """A group bound as a project's internal group turned out to hold people of other organizations: it stops being
    the internal group (nothing internal is pushed there any more). Returns the projects it served, audited."""
    projects = list((await session.exec(select(Project).where(
        Project.internal_conversation_id == conversation_id).with_for_update())).all())
    for project in projects:
        project.internal_conversation_id = None
        session.add(project)
        await write_audit(session=session, action="project.unbind", project_id=project.id, entity="project",
                          entity_id=project.id, before={"internal_conversation_id": conversation_id},
                          after={"internal_conversation_id": None, "reason": "external members"})
    return projects


async def is_client_conversation(*, session: AsyncSession, conversation_id: str) -> bool:
    """A group that is the client group of any project, or that has external members: it never gets internal
    content, whichever project a command names."""
    if not conversation_id:
        return False
    known, client = taken_client_conversation(session, conversation_id)
    if known:
        return bool(client)
    bound = select(Project.id).where(Project.client_conversation_id == conversation_id)
    external = select(Conversation.id).where(Conversation.conversation_id == conversation_id,
                                             Conversation.external_members == True)  # noqa: E712 (as above)
    # One statement on every group command: two indexed lookups under one EXISTS each.
    return bool((await session.exec(select(or_(bound.exists(), external.exists())))).one())


# ---- client contacts of a project ---------------------------------------------------------------------------------


async def is_excluded(*, session: AsyncSession, project_id: int, user_id: str) -> bool:
    query = select(ProjectMemberExclusion.id).where(ProjectMemberExclusion.project_id == project_id,
                                                    ProjectMemberExclusion.user_id == user_id)
    return (await session.exec(query)).first() is not None


async def exclude_member(*, session: AsyncSession, project_id: int, user_id: str) -> None:
    await insert_ignoring_duplicates(session, ProjectMemberExclusion(project_id=project_id, user_id=user_id))


async def clear_exclusion(*, session: AsyncSession, project_id: int, user_id: str) -> None:
    await session.exec(delete(ProjectMemberExclusion).where(
        ProjectMemberExclusion.project_id == project_id, ProjectMemberExclusion.user_id == user_id,
    ).execution_options(synchronize_session=False))


async def is_default_client_candidate(*, session: AsyncSession, project_id: int, user_id: str) -> bool:
    """Someone of another organization in the project's client group who is not yet its 客户联系人 (nor anything
    else in it) and whom the PM did not remove."""
    held = select(ProjectMember.id).where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
    if (await session.exec(held)).first() is not None:
        return False
    return not await is_excluded(session=session, project_id=project_id, user_id=user_id)


async def ensure_client_contact(*, session: AsyncSession, project: Project, user_id: str,
                                corp_id: str | None) -> bool:
    """Make an external member of the project's client group its 客户联系人 (the default), unless they already
    have a role or the PM removed them; name their organization after the project's customer when the platform has
    not named it (it never says an outsider's organization's name). True when they were added."""
    if not await is_default_client_candidate(session=session, project_id=project.id, user_id=user_id):
        return False
    await insert_ignoring_duplicates(session, ProjectMember(project_id=project.id, user_id=user_id,
                                                            role=MemberRole.CLIENT))
    if corp_id and project.customer:
        await store_organization(session=session, corp_id=corp_id, name=project.customer, replace=False)
    return True


# ---- walk checkpoints ---------------------------------------------------------------------------------------------


async def load_checkpoint(*, session: AsyncSession, name: str) -> dict[str, Any] | None:
    return (await session.exec(select(SyncCheckpoint.state).where(SyncCheckpoint.name == name))).first()


async def save_checkpoint(*, session: AsyncSession, name: str, state: dict[str, Any]) -> None:
    """Write the walk's position; in the transaction that stores the page it follows, so the two agree."""
    result = await session.exec(update(core_table(SyncCheckpoint)).where(core_table(SyncCheckpoint).c.name == name)
                                .values(state=state, updated_at=utcnow()))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await insert_ignoring_duplicates(session, SyncCheckpoint(name=name, state=state))


async def delete_checkpoints_except(*, session: AsyncSession, prefix: str, keep: str) -> None:
    await session.exec(delete(SyncCheckpoint).where(SyncCheckpoint.name.startswith(prefix),  # type: ignore
                                                    SyncCheckpoint.name != keep)
                       .execution_options(synchronize_session=False))


# ---- custom robots of client groups ---------------------------------------------------------------------------------


async def get_client_robot(*, session: AsyncSession, project_id: int) -> ClientRobot | None:
    return (await session.exec(select(ClientRobot).where(ClientRobot.project_id == project_id))).first()


async def client_robot_projects(*, session: AsyncSession, project_ids: Sequence[int]) -> set[int]:
    """Which of the projects have a custom robot for their client group."""
    found: set[int] = set()
    for chunk in _chunks(list(project_ids)):
        query = select(ClientRobot.project_id).where(ClientRobot.project_id.in_(chunk))  # type: ignore[attr-defined]
        found.update((await session.exec(query)).all())
    return found


async def set_client_robot(*, session: AsyncSession, project_id: int, webhook: str, secret: str) -> bool:
    """Create or replace the project's custom robot; True when it is new."""
    now = utcnow()
    result = await session.exec(update(core_table(ClientRobot)).where(core_table(ClientRobot).c.project_id == project_id)
                                .values(webhook=webhook, secret=secret, updated_at=now))
    if result.rowcount:  # type: ignore[attr-defined]
        return False
    await insert_ignoring_duplicates(session, ClientRobot(project_id=project_id, webhook=webhook, secret=secret,
                                                          created_at=now, updated_at=now))
    return True


async def delete_client_robot(*, session: AsyncSession, project_id: int) -> bool:
    result = await session.exec(delete(ClientRobot).where(ClientRobot.project_id == project_id)
                                .execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


__all__ = [
    "EXTERNAL_PLACEHOLDER_NAME",
    "EmployeeRecord",
    "ensure_client_contact",
    "is_default_client_candidate",
    "PersonCard",
    "clear_exclusion",
    "client_robot_projects",
    "delete_checkpoints_except",
    "delete_client_robot",
    "department_names",
    "display_mobiles",
    "display_names",
    "exclude_member",
    "find_external",
    "find_people",
    "get_client_robot",
    "get_person",
    "has_external_members",
    "is_client_conversation",
    "is_excluded",
    "learn_employee",
    "learn_external",
    "load_checkpoint",
    "match_external",
    "mark_departed",
    "normalize_mobile",
    "note_external_members",
    "organization_names",
    "people_by_key",
    "person_cards",
    "save_checkpoint",
    "set_client_robot",
    "store_departments",
    "store_employees",
    "store_organization",
    "unbind_internal_group",
]
