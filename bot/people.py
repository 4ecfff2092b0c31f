"""Who a message is from and whom it names, as the directory knows them.

``identify_people`` is a preparer (``Dispatcher(preparers=…)``): before the command's transaction it resolves the
sender and every @-mentioned person to their person key (``storage.models.people``), and learns from the message:
an employee's name and ids, an external contact (someone of another organization: no staffId, a foreign corpId)
on first sight, a group that has external members, and, in a project's bound client group, its external members as
the project's 客户联系人 (unless the PM removed them). What it learns commits on its own, before the command, so a
command that fails still leaves the sender known; it writes only when something is new (one read otherwise).

``find_person`` is the argument parser's finder (``Dispatcher(find_user=…)``): a name, ``名字(部门)``, a mobile
number or a userId typed in a command, looked up in the directory, with a specific Chinese answer when it names
nobody, several people, or someone who left. ``in_client_conversation`` is the dispatcher's audience check.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.args import User as ArgUser
from bot.args import mention_names
from bot.context import Services, current_unit_of_work
from bot.incoming import Incoming
from bot.outbox import enqueue, group_target
from domain.errors import UsageError
from domain.replies import Text
from reports.user_text import clip
from storage.models import Project, ProjectStatus, User, external_key
from storage.repo.directory import (
    PersonCard,
    ensure_client_contact,
    find_people,
    get_person,
    has_external_members,
    is_client_conversation,
    is_default_client_candidate,
    learn_employee,
    learn_external,
    match_external,
    normalize_mobile,
    note_external_members,
    organization_names,
    person_cards,
    store_organization,
    unbind_internal_group,
)

log = logging.getLogger("dingpm.people")

MAX_LISTED_CANDIDATES = 8


# ---- identifying the sender and the people mentioned -----------------------------------------------------------


def is_external_sender(incoming: Incoming, our_corp_id: str | None) -> bool:
    """Someone of another organization: no staffId (DingTalk leaves it empty for outsiders), or a corpId that is not
    ours. Never decided on the staffId alone being present or not when the corpIds say otherwise."""
    ours = our_corp_id or incoming.chatbot_corp_id
    if incoming.sender_corp_id and ours and incoming.sender_corp_id != ours:
        return True
    return not incoming.sender_id and bool(incoming.sender_union_id or incoming.sender_dingtalk_id)


@dataclass
class _Learning:
    """What one message teaches the directory; written in one short transaction when it is not empty."""

    employee: dict[str, Any] | None = None
    externals: list[dict[str, Any]] = field(default_factory=list)
    external_conversation: bool = False
    client_of: Project | None = None  # the project whose client group this is, for a new default 客户联系人
    organization: tuple[str, str] | None = None  # (corpId, name): the sender's organization, not named yet

    def __bool__(self) -> bool:
        return bool(self.employee or self.externals or self.external_conversation or self.client_of
                    or self.organization)


class KnownSenders:
    """Employees whose last message taught the directory nothing new, with what it said about them: their next
    messages saying the same skip the directory's read (the busiest path: colleagues chatting in their groups).
    Bounded in size; an entry expires after ``ttl`` seconds, so a change made elsewhere (another process, the
    contacts walk) is learned again soon. One per app."""

    def __init__(self, *, ttl: float = 600.0, size: int = 10_000, clock: Any = time.monotonic) -> None:
        self._ttl, self._size, self._clock = ttl, size, clock
        self._seen: dict[str, tuple[tuple[Any, ...], float]] = {}

    @staticmethod
    def _said(incoming: Incoming) -> tuple[Any, ...]:
        return (incoming.sender_nick, incoming.sender_union_id, incoming.sender_corp_id, incoming.sender_dingtalk_id)

    def knows(self, incoming: Incoming) -> bool:
        entry = self._seen.get(incoming.sender_id)
        return entry is not None and entry[0] == self._said(incoming) and self._clock() < entry[1]

    def remember(self, incoming: Incoming) -> None:
        if len(self._seen) >= self._size:
            self._seen.clear()  # rare and cheap to rebuild: one read per sender
        self._seen[incoming.sender_id] = (self._said(incoming), self._clock() + self._ttl)


def people_identifier(known: KnownSenders | None = None) -> Any:
    """The preparer the app registers: ``identify_people`` with the app's ``KnownSenders``."""
    known = known or KnownSenders()

    async def identify(incoming: Incoming, services: Services) -> Incoming:
        return await identify_people(incoming, services, known=known)

    return identify


async def identify_people(incoming: Incoming, services: Services, *, known: KnownSenders | None = None) -> Incoming:
    """``incoming`` with ``sender_key`` and the mentions' keys resolved (see the module docstring)."""
    our_corp = services.config.dingtalk.corp_id or incoming.chatbot_corp_id
    external_sender = is_external_sender(incoming, our_corp)
    mentioned = incoming.mentioned_people
    only_staff = not external_sender and all(m.staff_id for m in mentioned)
    if only_staff and (not incoming.sender_id or (known is not None and known.knows(incoming))):
        return incoming  # nobody new: the keys are the staffIds themselves
    learning = _Learning()
    keys: dict[int, str] = {}  # index in incoming.mentions -> key
    async with services.database.read(interactive=True) as session:  # a message's short reads: see storage.db
        sender_key = incoming.sender_id
        if external_sender:
            sender_key = await _external_key(session, learning, incoming.sender_union_id, incoming.sender_dingtalk_id,
                                             incoming.sender_corp_id, incoming.sender_nick)
        elif incoming.sender_id:
            await _note_employee(session, learning, incoming)
        external_mentions = False
        # How each @ was shown: an outsider @'d before anyone learned their dingtalkId is matched by name.
        names = mention_names(incoming.text)
        shown = dict(zip([id(m) for m in mentioned], names)) if len(names) == len(mentioned) else {}
        for index, mention in enumerate(incoming.mentions):
            if mention not in mentioned:
                continue
            if mention.staff_id:
                keys[index] = mention.staff_id
                continue
            external_mentions = True
            keys[index] = await _external_key(session, learning, mention.union_id, mention.dingtalk_id, None,
                                              shown.get(id(mention)), rename=False)
        if incoming.is_group and incoming.conversation_id and (external_sender or external_mentions):
            learning.external_conversation = not await has_external_members(
                session=session, conversation_id=incoming.conversation_id)
            project = await _client_project(session, incoming.conversation_id) if external_sender else None
            if project is not None and sender_key:
                if await is_default_client_candidate(session=session, project_id=project.id, user_id=sender_key):
                    learning.client_of = project
                corp = incoming.sender_corp_id
                if corp and project.customer and not await organization_names(session=session, corp_ids=[corp]):
                    # The platform never says an outsider's organization's name: the project's customer is it.
                    learning.organization = (corp, project.customer)
    if learning:
        sender_key = await _write(services, incoming, learning, sender_key, keys)
    if known is not None and only_staff:
        known.remember(incoming)
    mentions = tuple(dataclasses.replace(m, key=keys[i]) if i in keys else m for i, m in enumerate(incoming.mentions))
    return dataclasses.replace(incoming, sender_key=sender_key or "", mentions=mentions)


async def _note_employee(session: AsyncSession, learning: _Learning, incoming: Incoming) -> None:
    row = await get_person(session=session, user_id=incoming.sender_id)
    wanted = {"union_id": incoming.sender_union_id, "corp_id": incoming.sender_corp_id,
              "dingtalk_id": incoming.sender_dingtalk_id}
    if row is not None and row.synced_at is None:
        wanted["name"] = incoming.sender_nick or None
    if row is None or not row.active or any(v is not None and getattr(row, k) != v for k, v in wanted.items()):
        learning.employee = {"user_id": incoming.sender_id, "name": incoming.sender_nick or None,
                             **{k: v for k, v in wanted.items() if k != "name"}}


async def _external_key(session: AsyncSession, learning: _Learning, union_id: str | None, dingtalk_id: str | None,
                        corp_id: str | None, name: str | None, *, rename: bool = True) -> str:
    if not union_id and not dingtalk_id:
        return ""
    row = await match_external(session=session, union_id=union_id, dingtalk_id=dingtalk_id, name=name)
    wanted = {"union_id": union_id, "dingtalk_id": dingtalk_id, "corp_id": corp_id,
              "name": (name or None) if rename or row is None else None}
    if row is None or any(v is not None and getattr(row, k) != v for k, v in wanted.items()):
        learning.externals.append({**wanted, "name": name or None, "rename": rename})
    return row.user_id if row is not None else external_key(union_id=union_id, dingtalk_id=dingtalk_id)


async def _client_project(session: AsyncSession, conversation_id: str) -> Project | None:
    """The (not closed) project whose bound client group this is."""
    project = (await session.exec(select(Project).where(Project.client_conversation_id == conversation_id))).first()
    return project if project is not None and project.status != ProjectStatus.CLOSED else None


async def _write(services: Services, incoming: Incoming, learning: _Learning, sender_key: str,
                 keys: dict[int, str]) -> str:
    """Commit what the message taught; returns the sender's key as stored (a concurrent first sighting may have
    stored the same person a moment earlier)."""
    try:
        async with services.outbox.unit_of_work(interactive=True) as work:
            session = work.session
            if learning.employee is not None:
                await learn_employee(session=session, **learning.employee)
            stored: dict[str, str] = {}
            for values in learning.externals:
                row = await learn_external(session=session, **values)
                for id_ in (values["union_id"], values["dingtalk_id"]):
                    if id_:
                        stored[id_] = row.user_id
            sender_key = stored.get(incoming.sender_union_id or "") or stored.get(
                incoming.sender_dingtalk_id or "") or sender_key
            for index, mention in enumerate(incoming.mentions):
                if index in keys and not mention.staff_id:
                    keys[index] = stored.get(mention.union_id or "") or stored.get(mention.dingtalk_id) or keys[index]
            if learning.external_conversation:
                await note_external_members(session=session, conversation_id=incoming.conversation_id,
                                            title=incoming.conversation_title)
                await leave_internal_group(session, incoming.conversation_id)
            if learning.client_of is not None and sender_key:
                await ensure_client_contact(session=session, project=learning.client_of, user_id=sender_key,
                                            corp_id=incoming.sender_corp_id)
            if learning.organization is not None:
                corp, name = learning.organization
                await store_organization(session=session, corp_id=corp, name=name, replace=False)
    except Exception:  # noqa: BLE001 - the command still runs; the sender is learned from a later message
        log.exception("learning from message_id=%s failed", incoming.message_id)
    return sender_key


async def leave_internal_group(session: AsyncSession, conversation_id: str) -> None:
    """A group with outsiders is nobody's internal group: unbind it and say so there, in the caller's transaction."""
    for project in await unbind_internal_group(session=session, conversation_id=conversation_id):
        await enqueue(session, f"internal-group-left:{project.code}:{conversation_id}"[:255],
                      group_target(conversation_id),
                      Text(f"本群有其他单位的成员，已不再是项目 {project.code} 的内部群：内部事项不会再发到这里。"
                           f"项目经理可以在只有公司同事的群里发送「绑定 {project.code} 内部群」。"))


# ---- the audience of a conversation -------------------------------------------------------------------------------


async def in_client_conversation(incoming: Incoming) -> bool:
    """Whether the message comes from a client conversation: any project's bound client group, or a group with
    external members. Read in the command's own transaction, so a failure fails the command (never a leak)."""
    if not incoming.is_group or not incoming.conversation_id:
        return False
    return await is_client_conversation(session=_session(), conversation_id=incoming.conversation_id)


def _session() -> Any:
    work = current_unit_of_work()
    if work is None:
        raise RuntimeError("a directory lookup outside a unit of work")
    return work.session


# ---- finding a person typed in a command --------------------------------------------------------------------------


def describe_card(card: PersonCard) -> str:
    """``王建国（交付中心·项目经理）``; ``黄蕾（华东某制造集团·客户方信息部主任）``."""
    where = card.where
    return f"{card.name}（{where}）" if where else card.name


def _pick_hint(cards: list[PersonCard]) -> str:
    first = cards[0]
    hint = first.organization if first.external else (first.departments[0] if first.departments else first.title)
    unique = hint and sum(1 for c in cards if hint in (*c.departments, c.title, c.organization)) == 1
    example = f"{first.name}({hint})" if unique else f"{first.name} 的手机号"
    return f"请写 名字(部门)，例如 {example}；或写手机号；在群里也可以直接 @ 选择此人"


async def find_person(text: str) -> ArgUser | None:
    """The one person ``text`` names (the ``find_user`` hook), or None when the directory knows nobody by it.

    Raises ``UsageError`` with the candidates when it names several people, and for a mobile number of nobody."""
    session = _session()
    rows = await find_people(session=session, text=text)
    mobile = normalize_mobile(text)
    if not rows:
        if mobile is not None:
            raise UsageError(f"通讯录里没有手机号为 {mobile} 的人。请核对号码，或写姓名，或在群里 @ 选择此人")
        return None
    active = [r for r in rows if r.active]
    chosen = active or rows
    if len(chosen) > 1:
        cards = await person_cards(session=session, users=chosen[:MAX_LISTED_CANDIDATES])
        listed = "\n".join(f"{n}. {describe_card(c)}" for n, c in enumerate(cards, 1))
        more = f"\n……共 {len(chosen)} 人" if len(chosen) > len(cards) else ""
        raise UsageError(f"「{clip(text)}」对应 {len(chosen)} 个人，不知道你指的是哪一位：\n{listed}{more}\n"
                         f"{_pick_hint(cards)}。")
    person: User = chosen[0]
    return ArgUser(person.user_id, person.name, left=not person.active)


__all__ = ["KnownSenders", "describe_card", "find_person", "identify_people", "in_client_conversation",
           "is_external_sender", "leave_internal_group", "people_identifier"]
