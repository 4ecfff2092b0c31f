"""Dispatcher-level fixtures for the lifecycle commands: every feature registered, a real database, and each
message run through the kernel's own door (``bot.kernel.answer``: one unit of work; a user mistake or an error
rolls everything back and keeps only the answer). Users are the people of a project, by their role, so tests read like a chat."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.app import build_dispatcher
from bot.config import Config, parse_config
from bot.context import FrozenClock, Services
from bot.dingtalk.errors import FileTooLarge, InvalidRequest
from bot.dispatcher import Dispatcher, Handled
from bot.incoming import Mention, ReceivedFile
from bot.outbox import OutboxRelay
from bot.scheduler import JobRunResult, Scheduler
from bot.testing import RecordingUnits, make_incoming, run_text
from bot.transactions import Transactions
from domain.replies import ActionCard, File, Markdown, Reply, Text
from handlers.features import FEATURES
from storage.db import Database
from storage.models import AuditLog, OutboxMessage, Project
from storage.templates import load_templates
from storage.workdays import WorkCalendar

TEMPLATES = load_templates()
CALENDAR = WorkCalendar()
INTERNAL = "cid-internal-group"
CLIENT_GROUP = "cid-client-group"
OTHER_GROUP = "cid-other-group"
# Monday 2 March 2026, 10:00 in Shanghai: a working day.
START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Person:
    user_id: str
    nick: str
    union_id: str | None = None  # people of another organization: no userId, a unionId, their own corp
    corp_id: str | None = None

    @property
    def dingtalk_id(self) -> str:
        return f"$:LWCP_v1:${self.union_id or self.user_id}"


PEOPLE = {
    "pm": Person("pm01", "张经理"),
    "engineer": Person("eng01", "王工"),
    "sales": Person("sales01", "李拓展"),
    "leader": Person("boss01", "赵总"),
    "client": Person("client01", "陈客户"),
    "after_sales": Person("after01", "孙售后"),
    "admin": Person("admin01", "周管理员"),
    "qa": Person("qa01", "吴质控"),
    "stranger": Person("stranger01", "路人甲"),
}
OUR_CORP = "ding-our-corp"
CLIENT_CORP = "ding-client-corp"
# The client's own people: members of another organization, in the client group (not in PEOPLE: other tests
# iterate over the staff).
OUTSIDERS = {
    "huang": Person("", "黄蕾", union_id="union-huang", corp_id=CLIENT_CORP),
    "gao": Person("", "高翔", union_id="union-gao", corp_id=CLIENT_CORP),
}


def person(key: str) -> Person:
    return PEOPLE.get(key) or OUTSIDERS[key]


class FakeDingTalk:
    """The one DingTalk call the lifecycle commands make: downloading a file a user sent."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.downloads = 0

    def offer(self, data: bytes) -> str:
        code = f"dl-{uuid.uuid4().hex[:10]}"
        self.files[code] = data
        return code

    async def call_api(self, api: str, path: str, body: Any) -> Any:
        # The group-member API a client-group binding asks for: this fake DingTalk serves no such group.
        raise InvalidRequest("groupPermissionDenied", "not a scene group", api=api)

    async def save_file(self, download_code: str, path: Any, *, max_bytes: int) -> int:
        self.downloads += 1
        data = self.files[download_code]
        if len(data) > max_bytes:
            raise FileTooLarge("file.tooLarge", f"{len(data)} bytes exceeds {max_bytes}", api="file download")
        await asyncio.to_thread(_write_creating_folder, Path(path), data)  # as the real client does
        return len(data)


def _write_creating_folder(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def reply_text(reply: Reply) -> str:
    if isinstance(reply, Text):
        return reply.text
    if isinstance(reply, (Markdown, ActionCard)):
        return reply.text
    if isinstance(reply, File):
        return f"[文件 {reply.name}]"
    return repr(reply)


@dataclass
class Said:
    """What one message got: its replies, how the dispatcher classified it, and the on-demand jobs it requested
    (run right after it, as the app does)."""

    replies: list[Reply]
    handled: Handled
    followups: list[JobRunResult] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(reply_text(r) for r in self.replies)

    @property
    def files(self) -> list[File]:
        return [r for r in self.replies if isinstance(r, File)]

    @property
    def outcome(self) -> str:
        return self.handled.outcome


@dataclass
class Chat:
    db: Database
    services: Services
    dispatcher: Dispatcher
    dingtalk: FakeDingTalk
    clock: FrozenClock
    files_dir: Path
    spool_dir: Path
    scheduler: Scheduler
    history: list[Said] = field(default_factory=list)

    async def say(
        self,
        who: str,
        text: str,
        *,
        group: str | None = INTERNAL,
        mentions: Sequence[str] = (),
        files: Sequence[tuple[str, bytes]] = (),
        allow_error: bool = False,
    ) -> Said:
        """``who`` (a key of PEOPLE) sends ``text`` in ``group`` (None: a 1:1 chat); ``mentions`` are keys of PEOPLE
        @-mentioned in that order (the text carries their ``@nick``)."""
        sender = person(who)
        incoming = make_incoming(
            text,
            sender_id=sender.user_id,
            sender_nick=sender.nick,
            conversation_id=group or f"cid-single-{sender.user_id}",
            group=group is not None,
            mentions=[PEOPLE[m].user_id for m in mentions if m in PEOPLE],
        )
        # As DingTalk sends them: every sender's corpId and ids; an outsider @'d has only a dingtalkId (P2 §4).
        outsiders = tuple(Mention(OUTSIDERS[m].dingtalk_id) for m in mentions if m in OUTSIDERS)
        incoming = dataclasses.replace(
            incoming, mentions=incoming.mentions + outsiders, chatbot_user_id="$:bot", chatbot_corp_id=OUR_CORP,
            sender_corp_id=sender.corp_id or OUR_CORP, sender_union_id=sender.union_id,
            sender_dingtalk_id=sender.dingtalk_id)
        if files:
            received = tuple(ReceivedFile(self.dingtalk.offer(data), name) for name, data in files)
            incoming = dataclasses.replace(incoming, msgtype="file", files=received)
        units = RecordingUnits(self.db, self.spool_dir)
        handled = await run_text(self.dispatcher, incoming, units)  # the kernel's door, as the inbox runs it
        if handled.outcome == "error" and not allow_error:
            raise AssertionError(f"{text!r} failed unexpectedly: {handled.error}; replies: {units.replies}")
        # The on-demand jobs a committed command requested, run right after it as the app does.
        requested = [run for work in units.settled for run in work.requested_runs]
        followups = [await self.scheduler.run_requested(job, key) for job, key in requested]
        said = Said(list(units.replies), handled, followups)
        self.history.append(said)
        return said

    async def send_file(self, who: str, name: str, data: bytes, *, group: str | None = INTERNAL) -> Said:
        return await self.say(who, "", group=group, files=[(name, data)])

    # ---- looking at the database ---------------------------------------------------------------------------------

    async def project(self, code: str = "XM-2026-001") -> Project:
        async with self.db.read() as session:
            return (await session.exec(select(Project).where(Project.code == code))).one()

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        async with self.db.read() as session:
            query = select(model)
            for condition in where:
                query = query.where(condition)
            return list((await session.exec(query.order_by(model.id))).all())

    async def audit_actions(self) -> list[str]:
        return [row.action for row in await self.rows(AuditLog)]

    async def outbox(self) -> list[OutboxMessage]:
        return await self.rows(OutboxMessage)


def make_config(files_dir: Path, *, approvals: str = "off", company_name: str = "") -> Config:
    raw = {
        "dingtalk": {"client_id": "ding-test", "client_secret": "test-secret-value"},
        "approvals": {"mode": approvals},
        "organization": {"leaders": [PEOPLE["leader"].user_id], "project_admins": [PEOPLE["admin"].user_id],
                         "company_name": company_name},
        "storage": {"files_dir": str(files_dir)},
    }
    return parse_config(raw, environ={}, require_real_secret=False)


def build_chat(database: Database, tmp_path: Path, *, approvals: str = "off", company_name: str = "") -> Chat:
    files_dir = tmp_path / "files"
    config = make_config(files_dir, approvals=approvals, company_name=company_name)
    clock = FrozenClock(START, tz=config.tz)
    dingtalk = FakeDingTalk()
    # The relay is never started and has no worker name: messages the jobs queue stay in the outbox for the test.
    relay = OutboxRelay(transactions=Transactions(database), client=None, config=config, worker="",
                        spool_dir=tmp_path / "spool")
    services = Services(config=config, clock=clock, database=database, dingtalk=dingtalk, templates=TEMPLATES,
                        calendar=CALENDAR, outbox=relay)
    dispatcher = build_dispatcher(services, FEATURES)
    scheduler = Scheduler(services, [f.jobs for f in FEATURES if f.jobs is not None], owner="test")
    return Chat(database, services, dispatcher, dingtalk, clock, files_dir, tmp_path / "spool", scheduler)


@pytest.fixture
def chat(sqlite_db: Database, tmp_path: Path) -> Chat:
    return build_chat(sqlite_db, tmp_path)


@pytest.fixture
def chat_on_every_db(db: Database, tmp_path: Path) -> Chat:
    return build_chat(db, tmp_path)


NEW_PROJECT = "新建项目 智慧工厂MES 客户:某某制造 类型:{kind} 经理:@张经理"


async def new_project(chat: Chat, kind: str = "软件", *, who: str = "pm", group: str | None = INTERNAL,
                      bind: bool = True, team: bool = True) -> str:
    """Create a project (PM 张经理), bind the internal and client groups, add the team; returns its code."""
    said = await chat.say(who, NEW_PROJECT.format(kind=kind), group=group, mentions=["pm"])
    assert said.outcome == "ok", said.text
    code = said.text.split("已新建项目 ")[1].split()[0].strip()
    if bind:
        assert (await chat.say("pm", f"绑定 {code} 内部群", group=INTERNAL)).outcome == "ok"
        assert (await chat.say("pm", f"绑定 {code} 客户群", group=CLIENT_GROUP)).outcome == "ok"
    if team:
        for key, role in (("engineer", "实施工程师"), ("sales", "拓展"), ("client", "客户"), ("qa", "质控")):
            said = await chat.say("pm", f"成员 添加 @{PEOPLE[key].nick} {role}", mentions=[key])
            assert said.outcome == "ok", said.text
    return code


async def complete_current_phase(chat: Chat, code: str = "XM-2026-001", *, who: str = "pm") -> int:
    """Submit (as links) every required one-off deliverable of the current phase and of a phase beside it."""
    from storage.models import Deliverable, DeliverableStatus, Phase, Recurrence

    project = await chat.project(code)
    phases = await chat.rows(Phase, Phase.project_id == project.id)
    gate = {p.id for p in phases if p.name == project.current_phase or p.parallel_with == project.current_phase}
    items = await chat.rows(Deliverable, Deliverable.project_id == project.id)
    todo = [d for d in items if d.phase_id in gate and d.required and d.status == DeliverableStatus.PENDING
            and d.recurrence in (Recurrence.NONE, Recurrence.CONTINUOUS)]
    for item in todo:
        said = await chat.say(who, f"提交 #{item.seq} https://docs.example.com/{item.seq} 项目:{code}")
        assert said.outcome == "ok", said.text
    return len(todo)
