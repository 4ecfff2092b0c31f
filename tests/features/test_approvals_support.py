"""Support for the approvals tests (no tests here): the sandbox's approval state machine behind the real DingTalk
client, a real database, messages run as the kernel runs them (one unit of work each), and the emulator's approval
events fed one by one through the event handler, each in its own unit of work, as the inbox does.

``WIRING`` stands in for the lifecycle commands 立项 / 暂停 / 变更 申请 with the exact calls the approvals report asks
their owner to add; once ``handlers.phases`` and ``handlers.registers`` call these services themselves, the tests can
include those routers instead.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlmodel import select

from bot.app import build_dispatcher
from bot.args import Param
from bot.config import Config, parse_config
from bot.context import Context, FrozenClock, Services, UnitOfWork, bind_unit_of_work
from bot.dingtalk import DingTalkClient, RetryPolicy
from bot.dispatcher import Dispatcher, Handled
from bot.feature import Feature
from bot.incoming import Incoming, parse_approval_event
from bot.roles import MEMBERS, PROJECT_MANAGER, only
from bot.router import Router
from bot.testing import RecordingUnits, make_incoming, run_text
from domain.approval_flow import request_approval, submit_initiation
from domain.changes import lock_project
from domain.errors import Conflict
from domain.planner import plan_project
from domain.replies import ActionCard, File, Markdown, Reply, Text
from handlers import approvals
from sandbox.harness import Sandbox
from storage.db import Database
from storage.models import (
    Approval,
    AuditLog,
    MemberRole,
    OutboxMessage,
    Project,
    ProjectStatus,
    RegisterKind,
    RegisterStatus,
)
from storage.repo import (
    add_member,
    add_register_entry,
    create_project_from_plan,
    upsert_user,
)
from storage.templates import load_templates
from storage.workdays import WorkCalendar

TEMPLATES = load_templates()
CALENDAR = WorkCalendar()
GROUP_TITLE = "【智慧工厂MES项目】内部群"
# The sandbox world's people (sandbox/world/default.toml), by the role they play here.
PEOPLE = {"pm": ("wangjianguo", "王建国"), "engineer": ("liming", "李明"), "leader": ("liuqiang", "刘强"),
          "vp": ("zhoumin", "周敏")}
# Planned long ago, so an approval today always moves the plan later.
PLANNED_START = date(2024, 6, 3)


# ---- the lifecycle commands, wired as the report says -------------------------------------------------------------

WIRING = Router("approval-wiring", title="接线（测试）")


@WIRING.command("立项", summary="立项（测试接线）", examples=("立项",),
                params=(Param.text("说明", max_length=500),), roles=only(PROJECT_MANAGER), needs_project=True)
async def initiate(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    # handlers.phases.initiate keeps its guards; in its TODO(approvals) place:
    return await submit_initiation(ctx, project, note=ctx.args.text("说明"))


@WIRING.command("暂停", summary="暂停（测试接线）", examples=("暂停 客户机房改造",),
                params=(Param.text("原因", required=True, max_length=500),), roles=only(PROJECT_MANAGER),
                needs_project=True)
async def pause(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    reason = ctx.args.text("原因") or ""
    entry = await add_register_entry(
        session=ctx.session, project_id=project.id, kind=RegisterKind.CHANGE, title=f"项目暂停：{reason}",
        content=reason, created_by=incoming.sender_id, status=RegisterStatus.AWAITING_APPROVAL,
        extra={"类型": "暂停", "影响": "暂停期间提醒与周报停止"}, now=ctx.clock.now())
    request = await request_approval(ctx, project, kind="进度变更", entry=entry,
                                     form_values={"原因": reason, "影响": entry.extra["影响"]})
    if request is None:
        raise Conflict("approvals are off in this test")
    return request.reply(f"已提交暂停申请（变更#{entry.seq}，项目进度变更单）", "审批通过后项目暂停。")


@WIRING.command("变更 申请", summary="变更申请（测试接线）", examples=("变更 申请 增加移动端 影响:延后10天",),
                params=(Param.text("描述", required=True), Param.word("影响", required=True, max_length=500)),
                roles=MEMBERS, needs_project=True)
async def request_change(incoming: Incoming, ctx: Context) -> Reply:
    project = ctx.project
    description, impact = ctx.args.text("描述") or "", ctx.args.text("影响") or ""
    entry = await add_register_entry(
        session=ctx.session, project_id=project.id, kind=RegisterKind.CHANGE, title=description[:255],
        content=description, created_by=incoming.sender_id, status=RegisterStatus.AWAITING_APPROVAL,
        extra={"影响": impact}, now=ctx.clock.now())
    request = await request_approval(ctx, project, kind="变更申请", entry=entry,
                                     form_values={"变更事项": description[:100], "目的": description, "影响": impact})
    if request is None:
        raise Conflict("approvals are off in this test")
    return request.reply(f"已提交变更申请：变更#{entry.seq}", "只有审批通过的变更才能执行。")


# ---- configuration ------------------------------------------------------------------------------------------------


def approvals_config(sb: Sandbox, *, mode: str = "auto", approvers: Sequence[str] = ("liuqiang",),
                     leaders: Sequence[str] = ("liuqiang", "zhoumin"), codes: dict[str, str] | None = None,
                     corp_id: bool = True, **sections: dict[str, Any]) -> Config:
    raw: dict[str, Any] = {
        "dingtalk": {"client_id": sb.client_id, "client_secret": sb.client_secret, "robot_code": sb.robot_code,
                     "api_base_url": sb.base_url, "oapi_base_url": sb.base_url,
                     "corp_id": sb.world.corp_id if corp_id else ""},
        "approvals": {"mode": mode, "approvers": list(approvers), "process_codes": codes or {},
                      "reconcile_after_minutes": 30},
        "organization": {"leaders": list(leaders), "project_admins": ["sunli"]},
        "pacing": {"calls_per_second": 50, "http_timeout_seconds": 2},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return parse_config(raw, environ={}, require_real_secret=False)


# ---- the harness --------------------------------------------------------------------------------------------------


def reply_text(reply: Reply) -> str:
    if isinstance(reply, (Text, Markdown, ActionCard)):
        return reply.text
    if isinstance(reply, File):
        return f"[文件 {reply.name}]"
    return repr(reply)


@dataclass
class Said:
    replies: list[Reply]
    handled: Handled

    @property
    def text(self) -> str:
        return "\n".join(reply_text(r) for r in self.replies)

    @property
    def outcome(self) -> str:
        return self.handled.outcome

    @property
    def files(self) -> list[File]:
        return [r for r in self.replies if isinstance(r, File)]


@dataclass
class ApprovalWorld:
    sandbox: Sandbox
    db: Database
    services: Services
    dispatcher: Dispatcher
    clock: FrozenClock
    spool_dir: Path
    group: str  # the internal group's conversation id in the sandbox
    fed: int = 0  # emulator events already fed to the bot
    outcomes: list[str] = field(default_factory=list)

    @property
    def config(self) -> Config:
        return self.services.config

    @contextlib.asynccontextmanager
    async def work(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work like the kernel's (its outbox rows are left in the table for the assertions)."""
        unit = UnitOfWork(session=None, spool_dir=self.spool_dir)
        async with self.db.write() as session:
            unit.session = session
            with bind_unit_of_work(unit):
                yield unit

    async def say(self, who: str, text: str, *, group: bool = True) -> Said:
        user_id, nick = PEOPLE[who]
        incoming = make_incoming(text, sender_id=user_id, sender_nick=nick,
                                 conversation_id=self.group if group else f"cid-single-{user_id}", group=group)

        units = RecordingUnits(self.db, self.spool_dir)
        handled = await run_text(self.dispatcher, incoming, units)  # the kernel's door, as the inbox runs it
        assert handled.outcome != "error", f"{text!r} failed: {handled.error}"
        return Said(list(units.replies), handled)

    async def feed(self, *, duplicate: bool = False) -> list[str]:
        """Hand every approval event the emulator pushed since the last call to the bot's handler (skipped ones
        were never pushed); ``duplicate`` feeds each one twice, the second time under a new event id."""
        events = self.sandbox.events()
        fresh, self.fed = events[self.fed:], len(events)
        outcomes = []
        for number, emitted in enumerate(fresh, start=self.fed - len(fresh)):
            if emitted.skipped:
                continue
            for copy in range(2 if duplicate else 1):
                headers = {"eventType": emitted.event_type, "eventId": f"evt-{number}-{copy}",
                           "messageId": f"msg-{number}-{copy}"}
                event = parse_approval_event(headers, json.dumps(emitted.data))
                async with self.work() as unit:
                    outcomes.append(await approvals.apply_approval_event(self.services, unit.session, event))
        self.outcomes += outcomes
        return outcomes

    async def reconcile(self, *, after_minutes: float = 0) -> approvals.ReconcileResult:
        return await approvals.reconcile_approvals(
            self.services, now=self.clock.now() + timedelta(minutes=after_minutes), unit_of_work=self.work)

    # ---- looking at the database ---------------------------------------------------------------------------------

    async def rows(self, model: Any, *where: Any) -> list[Any]:
        async with self.db.read() as session:
            query = select(model)
            for condition in where:
                query = query.where(condition)
            return list((await session.exec(query.order_by(model.id))).all())

    async def project(self) -> Project:
        return (await self.rows(Project))[0]

    async def approvals(self) -> list[Approval]:
        return await self.rows(Approval)

    async def messages(self) -> list[OutboxMessage]:
        return await self.rows(OutboxMessage)

    async def message_texts(self) -> list[str]:
        return [str((m.params.get("msgParam") or {}).get("text") or (m.params.get("msgParam") or {}).get("content"))
                for m in await self.messages()]

    async def audit(self, action: str) -> list[AuditLog]:
        return await self.rows(AuditLog, AuditLog.action == action)


async def add_project(world: ApprovalWorld, *, status: ProjectStatus = ProjectStatus.DRAFT,
                      group: str | None = None) -> Project:
    """The MES project of the sandbox world, planned from ``PLANNED_START``, bound to the internal group."""
    plan = plan_project(TEMPLATES.get("软件"), PLANNED_START, CALENDAR)
    async with world.work() as unit:
        for user_id, name in PEOPLE.values():
            await upsert_user(session=unit.session, user_id=user_id, name=name)
        await upsert_user(session=unit.session, user_id="zhoumin", name="周敏")
        project = await create_project_from_plan(session=unit.session, plan=plan, name="智慧工厂MES", customer="华东某制造集团",
                                                 pm_user_id="wangjianguo", year=2026, status=status)
        project.internal_conversation_id = group or world.group
        await add_member(session=unit.session, project_id=project.id, user_id="liming", role=MemberRole.ENGINEER)
        unit.session.add(project)
    return project


async def make_world(sb: Sandbox, db: Database, http: aiohttp.ClientSession, tmp_path: Path,
                     config: Config | None = None, routers: Sequence[Router] = ()) -> ApprovalWorld:
    config = config or approvals_config(sb)
    # Documents the approvals file (the approved 立项申请表) go under the test's directory.
    config = config.model_copy(update={"storage": config.storage.model_copy(update={"files_dir": tmp_path / "files"})})
    clock = FrozenClock(datetime.now(UTC), tz=config.tz)
    client = DingTalkClient(config, session=http, retry_policy=RetryPolicy(max_attempts=2, base_delay=0.01,
                                                                           max_delay=0.05))
    services = Services(config=config, clock=clock, database=db, dingtalk=client, templates=TEMPLATES,
                        calendar=CALENDAR)
    features = [approvals.feature, Feature("approval-wiring", router=WIRING),
                *(Feature(router.name, router=router) for router in routers)]
    dispatcher = build_dispatcher(services, features, identify_people=False)
    return ApprovalWorld(sb, db, services, dispatcher, clock, tmp_path / "spool", sb.conversation_id(GROUP_TITLE))


def only_instance(instances: list[str]) -> str:
    assert len(instances) == 1, instances
    return instances[0]
