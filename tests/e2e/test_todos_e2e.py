"""DingTalk 待办 for deliverable owners, end to end: the real App (Stream client, inbox, outbox, the leader's todo
relay) against the emulator's todo APIs and events; the lists asserted are what each person's DingTalk shows.

Monday 2 November 2026: a new project's 启动 deliverables fall due within five working days, so the PM sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.scheduler import RunOutcome
from handlers import directory, todos
from handlers.todos import RECONCILE_JOB
from lifecycle_chat import ENGINEER, INTERNAL, LIFECYCLE_FEATURES, MONDAY, PM, LifecycleChat, create_project, \
    emulator_config, start_lifecycle_app
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.models import TodoItem

pytestmark = [pytest.mark.timeout(120)]
FEATURES = (*LIFECYCLE_FEATURES, directory.feature, todos.feature)


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    return emulator_config()


@pytest.fixture
async def chat(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[LifecycleChat]:
    app = await start_lifecycle_app(sandbox, tmp_path, FEATURES)
    try:
        await asyncio.wait_for(app.scheduler.wait_idle(), 60)  # the contacts walk: everyone's unionId
        yield LifecycleChat(sandbox, app, tmp_path / "files")
    finally:
        await asyncio.wait_for(app.stop(), 30)


async def open_todos(chat: LifecycleChat, person: str) -> dict[str, dict]:
    return {t["subject"]: t for t in await chat.sandbox.todos(person) if not t["done"]}


async def settled(chat: LifecycleChat, person: str, check, timeout: float = 20) -> dict[str, dict]:
    """The person's open 待办 once ``check(todos)`` holds (re-read as the relay sends)."""
    async with asyncio.timeout(timeout):
        while True:
            todos = await open_todos(chat, person)
            if check(todos):
                return todos
            await asyncio.sleep(0.1)  # polling the emulator's list: the relay gives no signal per call


async def test_the_pms_todos_follow_the_plan(chat: LifecycleChat) -> None:
    code = await create_project(chat, "软件", "智慧工厂MES")
    todos = await settled(chat, PM, lambda t: len(t) >= 1)
    assert all(s.endswith("· 智慧工厂MES") and s.startswith("《") for s in todos), todos
    assert (await chat.project(code)).current_phase == "启动"
    first = sorted(todos)[0]
    name = first[1:first.index("》")]

    await chat.ask(PM, INTERNAL, f"提交 {name} https://space.dingtalk.com/s/1")
    todos = await settled(chat, PM, lambda t: first not in t)
    everything = {t["subject"]: t for t in await chat.sandbox.todos(PM)}
    assert everything[first]["done"] is True

    second = sorted(todos)[0]
    name2 = second[1:second.index("》")]
    before = todos[second]["dueTime"]
    await chat.ask(PM, INTERNAL, f"计划 {name2} 截止:2026-11-04")
    todos = await settled(chat, PM, lambda t: second in t and t[second]["dueTime"] != before)

    await chat.ask(PM, INTERNAL, f"豁免 {name2} 原因:客户不需要")
    todos = await settled(chat, PM, lambda t: second not in t)
    count = len(todos)

    started = await chat.ask(PM, INTERNAL, "立项")
    assert "立项" in started.text, started.text
    todos = await settled(chat, PM, lambda t: len(t) >= 1)
    count = len(todos)
    paused = await chat.ask(PM, INTERNAL, "暂停 原因:客户机房改造")
    assert "暂停" in paused.text, paused.text
    await settled(chat, PM, lambda t: not t)
    await chat.ask(PM, INTERNAL, "恢复")
    todos = await settled(chat, PM, lambda t: len(t) == count)

    victim = sorted(todos)[0]
    await chat.sandbox.delete_todo(PM, todos[victim]["id"])
    back = await settled(chat, PM, lambda t: victim in t and t[victim]["id"] != todos[victim]["id"])
    assert len(back) == count
    subjects = [t["subject"] for t in await chat.sandbox.todos(PM) if not t["done"]]
    assert len(subjects) == len(set(subjects)), subjects


async def test_faults_during_a_burst_of_changes_end_with_the_right_lists_and_no_duplicates(
        chat: LifecycleChat) -> None:
    """Half the todo calls answer 5xx or throttling while the PM replans; once the faults stop, each person's list
    is what the plan says, each deliverable once."""
    code = await create_project(chat, "软件", "智慧工厂MES")
    await settled(chat, PM, lambda t: len(t) >= 1)
    for api in ("todo.taskCreate", "todo.taskUpdate", "todo.taskGet", "todo.taskGetBySource", "todo.taskDelete"):
        chat.sandbox.faults.set(api, error_rate=0.5, kinds=("5xx", "throttle"))
    pending = await chat.required_pending(code)
    for item in pending[:6]:  # a burst: move six deliverables into the window (and out of it again for two)
        await chat.ask(PM, INTERNAL, f"计划 #{item.seq} 截止:2026-11-05")
    for item in pending[4:6]:
        await chat.ask(PM, INTERNAL, f"计划 #{item.seq} 截止:2027-03-01")
    chat.sandbox.faults.clear()
    due = [d for d in pending[:4] if d.owner_user_id == "wangjianguo"]
    expected = {f"《{d.name}》· 智慧工厂MES" for d in due}
    todos = await settled(chat, PM, lambda t: expected <= set(t) and not any(
        f"《{d.name}》· 智慧工厂MES" in t for d in pending[4:6]), timeout=40)
    assert not any(f"《{d.name}》· 智慧工厂MES" in todos for d in pending[4:6])
    retried = chat.app.dingtalk.stats.retries_by_api  # the faults did hit todo calls (retried by client or outbox)
    assert sum(n for api, n in retried.items() if api.startswith("todo.")) + chat.app.todo_relay.stats.retried > 0
    live = [t["subject"] for t in await chat.sandbox.todo_tasks()]  # every person's, done or not
    assert len(live) == len(set(live)), sorted(live)


async def test_a_new_owner_gets_the_todo_and_a_reassignment_in_dingtalk_is_followed(chat: LifecycleChat) -> None:
    await create_project(chat, "软件", "智慧工厂MES")
    todos = await settled(chat, PM, lambda t: len(t) >= 2)
    first, second = sorted(todos)[:2]

    # 计划 with a new owner: the 待办 leaves the PM's list and appears in the engineer's.
    await chat.ask(PM, INTERNAL, f"计划 {first[1:first.index('》')]} 负责人:@{ENGINEER}")
    await settled(chat, PM, lambda t: first not in t)
    mine = await settled(chat, ENGINEER, lambda t: first in t)
    assert mine[first]["dueTime"] == todos[first]["dueTime"]

    # The PM hands their own 待办 to the engineer in DingTalk: the bot follows, it does not take it back.
    stats = chat.app.todo_relay.stats
    calls = stats.calls  # everything before is settled: the next call is the one the event asks for
    await chat.sandbox.edit_todo(PM, todos[second]["id"], executors=[ENGINEER])
    async with asyncio.timeout(20):
        while stats.followed < 1 or stats.calls <= calls:  # the event, through the inbox, then the relay's check
            await asyncio.sleep(0.05)
    assert second in await open_todos(chat, ENGINEER)
    assert second not in await open_todos(chat, PM)


async def test_the_daily_reconcile_brings_back_a_todo_whose_event_was_lost(chat: LifecycleChat) -> None:
    await create_project(chat, "软件", "智慧工厂MES")
    todos = await settled(chat, PM, lambda t: len(t) >= 1)
    victim = sorted(todos)[0]
    chat.sandbox.faults.skip_approval_events(1, event_type="todo_task_delete")  # DingTalk never tells the bot
    await chat.sandbox.delete_todo(PM, todos[victim]["id"])
    assert victim not in await open_todos(chat, PM)

    tuesday = MONDAY + timedelta(days=1)
    [run] = await chat.app.scheduler.run_due(tuesday, jobs=[RECONCILE_JOB])
    assert run.outcome == RunOutcome.DONE, run
    back = await settled(chat, PM, lambda t: victim in t)
    assert back.keys() == todos.keys()
    [again] = await chat.app.scheduler.run_due(tuesday, jobs=[RECONCILE_JOB])  # the day's run key is taken
    assert again.outcome == RunOutcome.ALREADY_CLAIMED


async def test_a_create_whose_answer_was_lost_is_found_by_its_source_id_not_made_twice(
        chat: LifecycleChat) -> None:
    """The relay crashed between DingTalk creating the task and the bot recording its id: the next attempt finds the
    task by its sourceId."""
    await create_project(chat, "软件", "智慧工厂MES")
    todos = await settled(chat, PM, lambda t: len(t) >= 1)
    async with chat.app.database.write() as session:
        row = (await session.exec(select(TodoItem).order_by(TodoItem.id))).first()
        task_id, row.task_id = row.task_id, None
        session.add(row)
    await chat.app.todo_relay.bring_in_line(row.id)
    async with chat.app.database.read() as session:
        assert (await session.exec(select(TodoItem).where(TodoItem.id == row.id))).one().task_id == task_id
    subjects = [t["subject"] for t in await chat.sandbox.todo_tasks()]
    assert sorted(subjects) == sorted(set(subjects)) and len(await open_todos(chat, PM)) == len(todos)
