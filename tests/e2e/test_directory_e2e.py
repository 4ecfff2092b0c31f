"""The contacts walk against the emulator's contacts, department and group-member APIs, on SQLite, PostgreSQL and
MariaDB: paced below the per-API limit, resumed (not restarted) after faults that outlive the client's retries,
and noticing renames, departures and the outsiders of a bound client group on the next day's walk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_support import FAST, kernel_config
from sqlmodel import select

from bot.app import App, KernelOptions
from bot.context import FrozenClock
from bot.scheduler import RunOutcome, Scheduler
from handlers import directory
from sandbox.harness import Sandbox
from storage.db import Database
from storage.models import Department, MemberRole, Project, User
from storage.repo import create_project, member_roles
from storage.repo.directory import is_client_conversation

CLIENT_GROUP = "【智慧工厂MES项目】客户沟通群"
# Monday 2 November 2026, 03:10 in Shanghai: ten minutes after the day's walk was due.
WALK_TIME = datetime(2026, 11, 1, 19, 10, tzinfo=UTC)
RATE = 3  # calls a second per API: low, so that pacing shows within a few calls


@pytest.fixture
async def services_app(sandbox: Sandbox, db: Database, tmp_path: Path) -> AsyncIterator[App]:
    """An App against the emulator on the backend under test, running no job of its own: the test drives the walk
    through a scheduler of its own, one run at a time."""
    config = kernel_config(sandbox, db.url, tmp_path / "files", dingtalk={"corp_id": sandbox.world.corp_id},
                           pacing={"calls_per_second": RATE, "http_timeout_seconds": 2, "max_concurrent_messages": 4})
    options = KernelOptions(**{**FAST.__dict__, "connect_stream": False, "serve_health": False})
    app = App(config, options=options, clock=FrozenClock(WALK_TIME, tz=config.tz), features=())
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def most_in_one_second(sandbox: Sandbox, api: str) -> int:
    times = sorted(record.at for record in sandbox.call_log(api))
    return max((sum(1 for t in times if start <= t < start + 1000) for start in times), default=0)


async def test_the_walk_is_paced_resumes_after_faults_and_notices_changes(
    sandbox: Sandbox, db: Database, services_app: App
) -> None:
    app = services_app
    client_cid = sandbox.conversation_id(CLIENT_GROUP)
    async with db.write() as session:
        project = await create_project(session=session, name="智慧工厂MES", template="软件系统实施", year=2026,
                                       customer="华东某制造集团", client_conversation_id=client_cid)
    # Faults that outlive the client's three tries: the first run dies in the users phase, the second in the groups.
    sandbox.faults.set("user.list", error_rate=1.0, kinds="busy", count=3)
    sandbox.faults.set("im.sceneGroups.members.batchQuery", error_rate=1.0, kinds="5xx", count=3)
    scheduler = Scheduler(app.services, [directory.jobs], owner="test", sweep_interval=None)

    [first] = await scheduler.run_due(WALK_TIME)
    assert first.outcome == RunOutcome.FAILED
    listsub_calls = sandbox.calls("department.listsub")
    assert listsub_calls == len(sandbox.world.departments)  # the whole tree, then the fault
    assert sandbox.calls("user.list") == 3

    [second] = await scheduler.run_due(WALK_TIME)
    assert second.outcome == RunOutcome.FAILED
    assert sandbox.calls("department.listsub") == listsub_calls  # resumed at the users: the tree is not walked again
    user_list_calls = sandbox.calls("user.list")
    assert user_list_calls == 3 + len(sandbox.world.departments)  # one page per department (< 100 people each)
    async with db.read() as session:
        walked = {u.user_id: u for u in (await session.exec(select(User))).all()}
    assert walked["wangjianguo"].name == "王建国" and walked["wangjianguo"].dept_ids == [2]

    [third] = await scheduler.run_due(WALK_TIME)
    assert third.outcome == RunOutcome.DONE
    assert (sandbox.calls("department.listsub"), sandbox.calls("user.list")) == (listsub_calls, user_list_calls)
    assert sandbox.calls("im.sceneGroups.members.batchQuery") == 4

    # Paced: never more calls of one API in a second than the pacer lets through (its rate, and a call landing on a
    # window's closing edge), and DingTalk never had to throttle us.
    for api in ("department.listsub", "user.list"):
        assert most_in_one_second(sandbox, api) <= RATE + 1, api
        assert all(r.error != "90018" for r in sandbox.call_log(api))

    employees = [u for u in sandbox.world.users.values() if not u.external and not u.personal]
    async with db.read() as session:
        people = {u.user_id: u for u in (await session.exec(select(User))).all()}
        departments = {d.dept_id: d.name for d in (await session.exec(select(Department))).all()}
        assert {u.user_id for u in employees} <= set(people)
        for user in employees:
            row = people[user.user_id]
            assert (row.name, row.union_id, row.mobile, row.active) == (user.name, user.union_id, user.mobile, True)
        assert departments[2] == "交付中心"
        outsiders = {u.name for u in people.values() if u.external}
        assert outsiders == {"黄蕾", "高翔", "许晴"}
        for person in (u for u in people.values() if u.external):
            assert person.user_id.startswith("ext:")
            assert await member_roles(session=session, project_id=project.id,
                                      user_id=person.user_id) == {MemberRole.CLIENT}
        assert await is_client_conversation(session=session, conversation_id=client_cid)
        assert await session.get(Project, project.id) is not None

    # The next day: 李明 renamed, 赵磊 left. The walk of the new day starts afresh and notices both.
    await sandbox.update_user("liming", name="李明远")
    await sandbox.update_user("zhaolei", active=False)
    [next_day] = await scheduler.run_due(WALK_TIME + timedelta(days=1))
    assert next_day.outcome == RunOutcome.DONE
    async with db.read() as session:
        liming = (await session.exec(select(User).where(User.user_id == "liming"))).one()
        zhaolei = (await session.exec(select(User).where(User.user_id == "zhaolei"))).one()
    assert liming.name == "李明远" and liming.active
    assert not zhaolei.active and zhaolei.left_at is not None and zhaolei.name == "赵磊"  # kept, with the name
