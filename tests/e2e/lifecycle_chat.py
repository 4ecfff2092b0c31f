"""Driving a whole project through the sandbox: people of the default world type commands in the project's groups
and send files; the real App (Stream client, inbox, unit of work, outbox relay) answers through the emulator.

``LifecycleChat.ask`` sends one message and waits for its answers in that conversation (each command answers there:
text through the session webhook, files through the OpenAPI), then for the relay to go idle, so that announcements
a command queued for the internal group are out before the next message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.app import App
from bot.context import FrozenClock
from e2e_support import FAST, kernel_config, wait_emulator
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.models import Deliverable, DeliverableStatus, Phase, Project, Recurrence

INTERNAL = "【智慧工厂MES项目】内部群"
CLIENT = "【智慧工厂MES项目】客户沟通群"
PM, ENGINEER, ENGINEER_2, SALES = "王建国", "李明", "赵磊", "陈静"
LEADER, AFTER_SALES, ADMIN = "刘强", "吴涛", "孙丽"
LIFECYCLE_MODULES = ("handlers.projects", "handlers.members", "handlers.deliverables", "handlers.phases",
                     "handlers.registers", "handlers.closing", "handlers.help")
# Monday 2 November 2026, 10:00 in Shanghai: no scheduled job is due, so only our commands speak.
MONDAY = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
_CODE = re.compile(r"已新建项目 (XM-\d{4}-\d{3})")


def emulator_config() -> EmulatorConfig:
    # DingTalk delivers files sent in groups only to some bots; the lifecycle sends signed forms in the project group.
    return EmulatorConfig.for_tests(timeout_fault_max_hold=1.0, allow_group_files=True)


async def start_lifecycle_app(sandbox: Sandbox, tmp_path: Path, modules: Sequence[str] = LIFECYCLE_MODULES) -> App:
    config = kernel_config(
        sandbox, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", tmp_path / "files",
        approvals={"mode": "off"},
        organization={"leaders": ["liuqiang"], "project_admins": ["sunli"]},
    )
    app = App(config, options=FAST, clock=FrozenClock(MONDAY, tz=config.tz), handler_modules=modules)
    await app.start()
    if app.stream is not None:
        await app.stream.wait_for_status(lambda s: s.connected, timeout=10)
    return app


@dataclass
class Answer:
    messages: list[Any]

    @property
    def text(self) -> str:
        return "\n".join(m.text or m.title or "" for m in self.messages)

    @property
    def files(self) -> list[Any]:
        return [m for m in self.messages if m.msgtype == "file"]


@dataclass
class LifecycleChat:
    sandbox: Sandbox
    app: App
    files_dir: Path
    sent_files: dict[str, bytes] = field(default_factory=dict)

    async def ask(self, user: str, conversation: str | None, text: str, *, replies: int = 1,
                  mentions: Sequence[str] = ()) -> Answer:
        where = conversation if conversation is not None else user
        after = self.last_seq(where)
        await self.sandbox.say(user, conversation, text, mentions=mentions)
        return await self.answers(where, after, replies, text)

    async def upload(self, user: str, conversation: str | None, name: str, data: bytes) -> Answer:
        where = conversation if conversation is not None else user
        after = self.last_seq(where)
        await self.sandbox.send_file(user, conversation, data, name)
        return await self.answers(where, after, 1, name)

    def last_seq(self, where: str) -> int:
        sent = self.sandbox.sent(where)
        return sent[-1].seq if sent else 0

    def since(self, where: str, after: int) -> list[Any]:
        return [m for m in self.sandbox.sent(where) if m.seq > after]

    async def answers(self, where: str, after: int, count: int, what: str) -> Answer:
        cid = self.sandbox.conversation_id(where)
        await wait_emulator(self.sandbox, lambda em: len([m for m in em.recorder.sent(cid) if m.seq > after]) >= count,
                            timeout=15)
        await self.app.relay.wait_idle(15)  # announcements for other chats, and any reply too many, are out now
        messages = self.since(where, after)
        assert len(messages) == count, f"{what!r}: expected {count} answers, got {[m.text for m in messages]}"
        return Answer(messages)

    # ---- the database, read directly --------------------------------------------------------------------------

    async def project(self, code: str) -> Project:
        async with self.app.database.read() as session:
            return (await session.exec(select(Project).where(Project.code == code))).one()

    async def gate_items(self, code: str) -> list[Deliverable]:
        """The required one-off deliverables of the current phase (and a phase beside it) still pending."""
        project = await self.project(code)
        async with self.app.database.read() as session:
            phases = (await session.exec(select(Phase).where(Phase.project_id == project.id))).all()
            gate = {p.id for p in phases if project.current_phase in (p.name, p.parallel_with)}
            rows = (await session.exec(
                select(Deliverable).where(Deliverable.project_id == project.id).order_by(Deliverable.seq))).all()
        return [d for d in rows if d.phase_id in gate and d.required and d.status == DeliverableStatus.PENDING
                and d.recurrence in (Recurrence.NONE, Recurrence.CONTINUOUS)]


async def create_project(chat: LifecycleChat, kind: str, name: str) -> str:
    answer = await chat.ask(PM, INTERNAL, f"新建项目 {name} 客户:华东某制造集团 类型:{kind} 经理:@{PM}")
    found = _CODE.search(answer.text)
    assert found, answer.text
    code = found.group(1)
    assert "本群已是" not in (await chat.ask(PM, INTERNAL, f"绑定 {code} 内部群")).text
    assert "客户群" in (await chat.ask(PM, CLIENT, f"绑定 {code} 客户群")).text
    team = await chat.ask(PM, INTERNAL, f"成员 添加 @{ENGINEER} @{ENGINEER_2} 实施工程师")
    assert f"已把 {ENGINEER}、{ENGINEER_2} 加入项目 {code}" in team.text
    assert "拓展/业务负责人" in (await chat.ask(PM, INTERNAL, f"成员 添加 @{SALES} 拓展")).text
    return code


async def work_through_phases(chat: LifecycleChat, code: str) -> list[str]:
    """Each phase but the last: the first pending document as a file sent in the group (then 「提交」), the others
    as links, then 「推进」. Returns the names of the files sent."""
    sent: list[str] = []
    while True:
        project = await chat.project(code)
        async with chat.app.database.read() as session:
            sequential = [p.name for p in (await session.exec(
                select(Phase).where(Phase.project_id == project.id, Phase.parallel_with.is_(None))  # type: ignore
                .order_by(Phase.seq))).all()]
        if project.current_phase == sequential[-1]:
            return sent
        items = await chat.gate_items(code)
        blocked = await chat.ask(PM, INTERNAL, "推进") if items else None
        if blocked is not None:
            assert "暂不能推进" in blocked.text and items[0].name in blocked.text
        for index, item in enumerate(items):
            submitter = ENGINEER if item.owner_role == "实施工程师" else PM
            if index == 0:
                file_name = f"{item.name}-终版.docx"
                asked = await chat.upload(submitter, INTERNAL, file_name, f"PK\x03\x04 {item.name}".encode())
                assert f"1. 提交 {item.name}" in asked.text, asked.text  # the best guess comes first
                done = await chat.ask(submitter, INTERNAL, f"提交 {item.name}")
                assert f"已提交《{item.name}》第 1 版（文件《{file_name}》" in done.text, done.text
                sent.append(file_name)
            else:
                done = await chat.ask(submitter, INTERNAL, f"提交 #{item.seq} https://space.dingtalk.com/s/{item.seq}")
                assert f"已提交《{item.name}》第 1 版（链接" in done.text, done.text
        moved = await chat.ask(PM, INTERNAL, "推进")
        assert "阶段完成，已进入" in moved.text, moved.text


async def close_project(chat: LifecycleChat, code: str, *, form_first: bool) -> Path:
    """验收 (with the signed form, sent before or after the command), 复盘, 交接, 归档; returns the archive path."""
    signed = b"%PDF-1.7 signed and stamped by the client"
    if form_first:
        await chat.upload(PM, INTERNAL, "验收确认单-客户签字盖章.pdf", signed)
        accepted = await chat.ask(PM, INTERNAL, "验收")
    else:
        waiting = await chat.ask(PM, INTERNAL, "验收 客户已签字")
        assert "请在 30 分钟内在这里发送客户签字盖章的" in waiting.text
        accepted = await chat.upload(PM, INTERNAL, "验收确认单-客户签字盖章.pdf", signed)
    assert "已验收" in accepted.text, accepted.text
    reviewed = await chat.ask(PM, INTERNAL, "复盘 进度总体受控；经验：设备到货要提前两周确认")
    assert "已记录项目复盘" in reviewed.text
    handed = await chat.ask(PM, INTERNAL, f"交接 @{AFTER_SALES}", replies=2)
    checklist, document = handed.messages
    assert f"接收人：{AFTER_SALES}（售后）" in (checklist.text or "") and document.msgtype == "file"
    assert document.file_name == f"项目交接清单_{code}.docx" and document.file_bytes.startswith(b"PK")
    admin_chat = chat.last_seq(ADMIN)
    # Answered at once; the archive is built after the command and follows in the same chat.
    archived = await chat.ask(ADMIN, INTERNAL, "归档", replies=3)
    ack, summary, bundle = archived.messages
    assert "正在生成归档包" in (ack.text or "")
    assert f"项目 {code} 已归档并关闭" in (summary.text or "") and bundle.msgtype == "file"
    assert bundle.file_name.endswith(".zip")
    # The archive also goes to the project administrator's 1:1 chat.
    [to_admin] = chat.since(ADMIN, admin_chat)
    assert to_admin.msgtype == "file" and to_admin.file_bytes == bundle.file_bytes
    closed = await chat.project(code)
    assert closed.status == "已关闭"
    zips = list((chat.files_dir / "archives").rglob("*.zip"))
    assert len(zips) == 1
    return zips[0]
