"""Reports end to end: the real App (scheduler, outbox relay, DingTalk client) against the sandbox emulator, with a
clock the test moves. Scheduled runs are triggered with ``app.scheduler.run_due()`` at chosen instants (what
APScheduler does at the fire time) and, after a restart, by the app's own catch-up.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import UTC, date, datetime

from bot.app import App
from bot.context import FrozenClock
from handlers import digest, help, reminders, weekly_reports
from storage.db import Database
from storage.migrations import ensure_schema
from tests.features.reports_world import (
    SHANGHAI,
    DeliverableSpec,
    ProjectSpec,
    a_week_of_work,
    add_people,
    add_project,
    sh,
)

INTERNAL = "【智慧工厂MES项目】内部群"
CLIENT = "【智慧工厂MES项目】客户沟通群"
REPORT_FEATURES = (weekly_reports.feature, reminders.feature, digest.feature, help.feature)
LEADERS = ["liuqiang", "zhoumin"]


class MovableClock(FrozenClock):
    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC).replace(tzinfo=None)


async def seed(database_file, sandbox, spec: ProjectSpec) -> str:
    url = f"sqlite+aiosqlite:///{database_file}"
    await ensure_schema(url)
    spec.internal = sandbox.conversation_id(INTERNAL)
    spec.client = sandbox.conversation_id(CLIENT) if spec.client else None
    database = Database(url)
    try:
        async with database.write() as session:
            await add_people(session)
            project = await add_project(session, spec)
            return project.code
    finally:
        await database.close()


async def settled(app: App) -> None:
    """The app leads, its start-up catch-up has run, and everything queued has been sent."""
    await asyncio.wait_for(app.leader.leading.wait(), 10)
    async with asyncio.timeout(10):
        while not app.scheduler.running:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(app.scheduler.wait_idle(), 60)
    await app.relay.wait_idle(20)


async def run_at(app: App, clock: MovableClock, when: datetime) -> list:
    clock.set(when)
    results = await app.scheduler.run_due()
    await app.relay.wait_idle(20)
    return results


def weekly_spec() -> ProjectSpec:
    return ProjectSpec("智慧工厂MES项目", client="yes", entries=a_week_of_work(date(2026, 11, 23)),
                       deliverables=[DeliverableSpec("需求规格说明书", date(2026, 12, 2))])


async def start(start_app, clock: MovableClock, **kwargs) -> App:
    app = await start_app(clock=clock, features=REPORT_FEATURES,
                          organization={"leaders": LEADERS}, **kwargs)
    await settled(app)
    return app


async def test_one_week_yields_exactly_one_weekly_report_with_its_file(sandbox, start_app, database_file,
                                                                       loop_watch) -> None:
    code = await seed(database_file, sandbox, weekly_spec())
    clock = MovableClock(sh("2026-11-27T16:00"), SHANGHAI)
    app = await start(start_app, clock)
    assert sandbox.sent(CLIENT) == []  # nothing is due before Friday 17:00

    await run_at(app, clock, sh("2026-11-27T17:00:03"))
    message, document = sandbox.sent(CLIENT)
    assert message.msgtype == "markdown" and message.title == "客户项目周报｜智慧工厂MES项目｜2026年第48周"
    assert "本周完成的主要工作" in message.text and "完成生产管理模块需求调研访谈" in message.text
    assert "内部事项" not in message.text
    assert document.msgtype == "file" and document.file_name == f"客户项目周报_{code}_2026-W48.docx"
    with zipfile.ZipFile(io.BytesIO(document.file_bytes)) as docx:
        assert "下周工作计划" in docx.read("word/document.xml").decode("utf-8")
    internal = [m for m in sandbox.sent(INTERNAL) if (m.title or "").startswith("项目内部周报")
                or (m.file_name or "").startswith("项目内部周报")]
    assert len(internal) == 2

    # The rest of the week, and the triggers that fire meanwhile, send the client nothing more.
    for when in ("2026-11-27T17:00:30", "2026-11-28T10:00", "2026-11-30T09:30:05", "2026-12-03T17:00"):
        await run_at(app, clock, sh(when))
    assert len(sandbox.sent(CLIENT)) == 2
    assert sandbox.calls("media.upload") == 2  # the client's and the internal .docx, each uploaded once


async def test_reminders_and_escalations_arrive_on_working_days_only_once_each(sandbox, start_app, database_file,
                                                                                loop_watch) -> None:
    spec = ProjectSpec("智慧工厂MES项目", client=None, created_at=datetime(2026, 9, 26),
                       deliverables=[DeliverableSpec("项目实施计划", date(2026, 9, 29), owner="liming")])
    await seed(database_file, sandbox, spec)
    clock = MovableClock(sh("2026-09-28T08:00"), SHANGHAI)
    app = await start(start_app, clock)

    def reminders_to(who: str) -> list[str]:
        # Not the leaders' digest, nor the internal weekly report the Friday job posts in the internal group.
        return [m.title for m in sandbox.sent(who)
                if m.title and not m.title.startswith(("项目周览", "项目内部周报", "客户项目周报"))]

    arrived: dict[date, dict[str, int]] = {}
    seen = {who: 0 for who in (INTERNAL, "李明", "王建国", "刘强", "周敏")}
    day = date(2026, 9, 28)
    while day <= date(2026, 10, 12):
        await run_at(app, clock, datetime.combine(day, datetime.min.time()).replace(hour=9, minute=30, second=5,
                                                                                   tzinfo=SHANGHAI))
        await run_at(app, clock, datetime.combine(day, datetime.min.time()).replace(hour=15, tzinfo=SHANGHAI))
        counts = {}
        for who in seen:
            total = len(reminders_to(who))
            counts[who] = total - seen[who]
            seen[who] = total
        arrived[day] = {who: n for who, n in counts.items() if n}
        day = date.fromordinal(day.toordinal() + 1)

    assert arrived[date(2026, 9, 28)] == {"李明": 1}  # due tomorrow
    assert arrived[date(2026, 9, 29)] == {}
    assert arrived[date(2026, 9, 30)] == {INTERNAL: 1, "李明": 1}
    for holiday in range(1, 8):
        assert arrived[date(2026, 10, holiday)] == {}, holiday
    assert arrived[date(2026, 10, 8)] == {INTERNAL: 1, "李明": 1, "王建国": 1}  # 2 working days: the PM
    assert arrived[date(2026, 10, 9)] == {INTERNAL: 1, "李明": 1, "王建国": 1}
    assert arrived[date(2026, 10, 10)] == {INTERNAL: 1, "李明": 1, "王建国": 1}  # make-up Saturday
    assert arrived[date(2026, 10, 11)] == {}
    assert arrived[date(2026, 10, 12)] == {INTERNAL: 1, "李明": 1, "王建国": 1, "刘强": 1, "周敏": 1}  # 5 days
    assert [m.msgtype for m in sandbox.sent("李明")] == ["markdown"] * 6
    leader = [m for m in sandbox.sent("刘强") if "项目逾期上报" in (m.title or "")]
    assert len(leader) == 1 and "《项目实施计划》" in leader[0].text and "逾期 5 个工作日" in leader[0].text
    # The leaders' digest came on the working Mondays, not on the 国庆 Monday 10-05.
    assert [m.title for m in sandbox.sent("周敏") if "项目周览" in (m.title or "")] == [
        "项目周览｜2026-09-28", "项目周览｜2026-10-12"]


async def test_a_weekly_run_missed_while_stopped_goes_out_after_restart_once(sandbox, start_app, database_file,
                                                                             loop_watch) -> None:
    await seed(database_file, sandbox, weekly_spec())
    first = await start(start_app, MovableClock(sh("2026-11-27T16:00"), SHANGHAI))
    await asyncio.wait_for(first.stop(), 30)  # down over Friday 17:00

    second = await start(start_app, MovableClock(sh("2026-11-28T10:00"), SHANGHAI))
    message, document = sandbox.sent(CLIENT)
    assert message.title.endswith("2026年第48周") and document.file_name.endswith("2026-W48.docx")
    await asyncio.wait_for(second.stop(), 30)

    third = await start(start_app, MovableClock(sh("2026-11-29T20:00"), SHANGHAI))
    assert len(sandbox.sent(CLIENT)) == 2
    await asyncio.wait_for(third.stop(), 30)
