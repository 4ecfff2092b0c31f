"""客户项目周报 at the job and dispatcher level: a real database, the real scheduler, a frozen clock.

Week under test: 2026-W48 (Monday 11-23 .. Sunday 11-29); the job fires Friday 11-27 17:00 Asia/Shanghai, the
pre-render an hour before.
"""

from __future__ import annotations

import asyncio
import io
import logging
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.jobs import JobRunContext
from bot.scheduler import RunOutcome, Scheduler
from domain import weekly_render
from domain.replies import Image, Markdown, Text
from domain.weekly_render import PRERENDER_FOLDER
from handlers import weekly_reports
from handlers.weekly_reports import weekly_report_job
from storage.models import (
    DeliverableStatus,
    OutboxMessageKind,
    ProjectStatus,
    RegisterKind,
    ReportVariant,
    WeeklyReportRender,
)
from storage.repo import add_register_entry, get_weekly_report
from tests.features.reports_world import (
    ChatHarness,
    DeliverableSpec,
    ProjectSpec,
    a_week_of_work,
    add_people,
    add_project,
    keys,
    make_config,
    make_services,
    outbox_rows,
    sh,
    utc,
)

MONDAY = date(2026, 11, 23)
FIRE = sh("2026-11-27T17:00:05")
PRERENDER_AT = sh("2026-11-27T16:00:05")  # an hour before, by default
EVENT_TIMEOUT = 10.0


def running_project(name: str = "智慧工厂MES项目", **overrides) -> ProjectSpec:
    spec = ProjectSpec(
        name=name,
        internal="cid-internal",
        client="cid-client",
        deliverables=[
            DeliverableSpec("需求调研报告", date(2026, 11, 25), status=DeliverableStatus.SUBMITTED,
                            submitted_at=utc("2026-11-25T15:00")),
            DeliverableSpec("需求规格说明书", date(2026, 12, 2), owner="zhaolei"),
            DeliverableSpec("项目实施计划", date(2026, 11, 20)),  # overdue: internal variant only
        ],
        entries=a_week_of_work(MONDAY),
    )
    for key, value in overrides.items():
        setattr(spec, key, value)
    return spec


@pytest.fixture
def config(tmp_path: Path):
    return make_config(tmp_path / "files")


async def seed(database, config, *specs: ProjectSpec):
    async with database.write() as session:
        await add_people(session)
        return [await add_project(session, spec, files_dir=Path(config.storage.files_dir)) for spec in specs]


async def test_the_weekly_job_sends_one_message_and_one_docx_per_running_client_group(sqlite_db, config) -> None:
    projects = await seed(
        sqlite_db, config,
        running_project(),
        running_project("已暂停项目", internal="cid-paused-in", client="cid-paused", status=ProjectStatus.PAUSED),
        running_project("已关闭项目", internal="cid-closed-in", client="cid-closed", status=ProjectStatus.CLOSED),
        running_project("刚立项项目", internal="cid-new-in", client="cid-new", status=ProjectStatus.APPROVED),
        running_project("没有客户群的项目", internal="cid-solo-in", client=None),
    )
    code = projects[0].code
    services = make_services(sqlite_db, config, FIRE)
    scheduler = Scheduler(services, [weekly_reports.jobs], owner="test")

    [result] = await scheduler.run_due(jobs=["weekly_report"])
    assert (result.outcome, result.period_key) == (RunOutcome.DONE, "2026-W48"), result.error

    rows = await outbox_rows(sqlite_db, "weekly:")
    by_group: dict[str, list[str]] = {}
    for row in rows:
        by_group.setdefault(row.target_ids[0], []).append(row.msg_kind)
    # Exactly one message and one file per running client group; nothing for the paused and the closed project.
    assert by_group == {"cid-client": [OutboxMessageKind.MARKDOWN, OutboxMessageKind.FILE],
                        "cid-new": [OutboxMessageKind.MARKDOWN, OutboxMessageKind.FILE]}
    assert f"weekly:{code}:2026-W48:msg" in keys(rows) and f"weekly:{code}:2026-W48:docx" in keys(rows)
    internal = await outbox_rows(sqlite_db, "weekly-internal:")
    assert sorted({r.target_ids[0] for r in internal}) == ["cid-internal", "cid-new-in", "cid-solo-in"]

    # The message says what the standard asks: phase and progress, this week's work, next week's plan.
    message = next(r for r in rows if r.idempotency_key == f"weekly:{code}:2026-W48:msg")
    text = message.params["msgParam"]["text"]
    for expected in ("客户项目周报", "2026年第48周", "规划", "本周完成的主要工作", "完成生产管理模块需求调研访谈",
                     "解决问题：车间网络不通", "提交《需求调研报告》", "下周工作计划", "完成需求规格说明书初稿",
                     "完成《需求规格说明书》", "客户需确认物料编码规则", "里程碑"):
        assert expected in text, expected
    assert "上周的日志不应出现" not in text
    assert "项目实施计划" not in text.split("三、")[0]  # the overdue item is not "done" work
    internal_text = next(r for r in internal if r.idempotency_key.endswith(f"{code}:2026-W48:msg")
                         ).params["msgParam"]["text"]
    assert "内部事项" in internal_text and "项目实施计划" in internal_text and "关键用户参与度不足" in internal_text

    # The .docx is written under storage.files_dir, sent by path, and kept (it is the archive's copy).
    docx_row = next(r for r in rows if r.idempotency_key == f"weekly:{code}:2026-W48:docx")
    path = Path(docx_row.attachment_path)
    assert path.is_file() and Path(config.storage.files_dir) in path.parents and not docx_row.params.get("spooled")
    assert docx_row.params["media"]["fileName"] == f"客户项目周报_{code}_2026-W48.docx"
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as docx:
        body = docx.read("word/document.xml").decode("utf-8")
    assert "本周完成的主要工作" in body and "完成生产管理模块需求调研访谈" in body and "<w:tbl>" in body
    assert any(name.startswith("word/media/") for name in zipfile.ZipFile(path).namelist())  # the charts

    async with sqlite_db.read() as session:
        stored = await get_weekly_report(session=session, project_id=projects[0].id, iso_year=2026, iso_week=48)
        internal_stored = await get_weekly_report(session=session, project_id=projects[0].id, iso_year=2026,
                                                  iso_week=48, variant=ReportVariant.INTERNAL)
    assert stored.sent_at == utc("2026-11-27T17:00:05") and stored.file_path.endswith(".docx")
    assert internal_stored.sent_at is not None and "内部事项" in internal_stored.content_md

    # Running it again writes nothing: the run key is taken ...
    before = len(await outbox_rows(sqlite_db))
    [again] = await scheduler.run_due(jobs=["weekly_report"])
    assert again.outcome == RunOutcome.ALREADY_CLAIMED
    # ... and even a forced second run of the same week finds every report already sent.
    run = JobRunContext(job="weekly_report", period_key="2026-W48", scheduled_at=sh("2026-11-27T17:00"),
                        now=sh("2026-11-27T18:00"), reason="manual", services=services,
                        log=__import__("logging").LoggerAdapter(__import__("logging").getLogger("t"), {}),
                        owner="test")
    await weekly_report_job(run)
    assert len(await outbox_rows(sqlite_db)) == before


async def test_a_project_without_an_internal_group_gets_only_the_client_report(sqlite_db, config) -> None:
    [project] = await seed(sqlite_db, config, running_project("只有客户群的项目", internal=None, client="cid-only-client"))
    scheduler = Scheduler(make_services(sqlite_db, config, FIRE), [weekly_reports.jobs], owner="test")
    [result] = await scheduler.run_due(jobs=["weekly_report"])
    assert result.outcome == RunOutcome.DONE, result.error
    assert {r.target_ids[0] for r in await outbox_rows(sqlite_db, "weekly:")} == {"cid-only-client"}
    assert await outbox_rows(sqlite_db, "weekly-internal:") == []
    async with sqlite_db.read() as session:
        client = await get_weekly_report(session=session, project_id=project.id, iso_year=2026, iso_week=48)
        internal = await get_weekly_report(session=session, project_id=project.id, iso_year=2026, iso_week=48,
                                           variant=ReportVariant.INTERNAL)
    # The internal variant (a third of the rendering) is not rendered or stored for nobody to read.
    assert client.sent_at is not None and internal is None


async def test_a_missed_weekly_run_goes_out_after_restart_once_and_not_days_later(sqlite_db, config) -> None:
    [project] = await seed(sqlite_db, config, running_project())
    # Down from Friday afternoon to Monday morning: the catch-up sends W48's report (not W49's).
    services = make_services(sqlite_db, config, sh("2026-11-30T08:10"))
    scheduler = Scheduler(services, [weekly_reports.jobs], owner="restarted")
    result = push_of(await scheduler.catch_up())
    assert (result.outcome, result.period_key) == (RunOutcome.DONE, "2026-W48")
    assert keys(await outbox_rows(sqlite_db, "weekly:")) == [f"weekly:{project.code}:2026-W48:msg",
                                                             f"weekly:{project.code}:2026-W48:docx"]
    twice = push_of(await Scheduler(services, [weekly_reports.jobs], owner="other").catch_up())
    assert twice.outcome == RunOutcome.ALREADY_CLAIMED

    # More than three days late, a report is not sent any more (next Friday's replaces it).
    late = make_services(sqlite_db, config, sh("2026-12-08T18:00"))
    stale = push_of(await Scheduler(late, [weekly_reports.jobs], owner="late").catch_up())
    assert stale.outcome == RunOutcome.NOT_DUE and stale.period_key is None


async def test_preview_answers_with_the_report_and_the_phase_timeline(sqlite_db, config) -> None:
    await seed(sqlite_db, config, running_project())
    services = make_services(sqlite_db, config, sh("2026-11-26T10:00"))
    chat = ChatHarness(services, weekly_reports.feature)

    markdown, image = await chat.say("周报 预览", sender="liming")
    assert isinstance(markdown, Markdown) and markdown.title.startswith("【预览】客户项目周报｜智慧工厂MES项目｜2026年第48周")
    assert "本周完成的主要工作" in markdown.text and "完成生产管理模块需求调研访谈" in markdown.text
    assert "内部事项" not in markdown.text
    assert isinstance(image, Image) and image.png.startswith(b"\x89PNG")
    assert await outbox_rows(sqlite_db, "weekly") == []  # a preview sends nothing to the client

    internal, _ = await chat.say("周报 预览 内部", sender="liming")
    assert "内部事项" in internal.text and "项目实施计划" in internal.text
    [refused] = await chat.say("周报 预览 内部", sender="liming", conversation="cid-client")
    assert isinstance(refused, Text) and "不能在客户群预览" in refused.text
    # Issue 12: client contacts see the client version (they used to be refused), never the internal one.
    client_markdown, _ = await chat.say("周报 预览", sender="huanglei", conversation="cid-client")
    assert "本周完成的主要工作" in client_markdown.text and "内部事项" not in client_markdown.text
    [client_internal] = await chat.say("周报 预览 内部", sender="huanglei", conversation="cid-client")
    assert "不能在客户群预览" in client_internal.text


async def test_send_now_is_for_the_pm_and_once_a_week(sqlite_db, config) -> None:
    [project] = await seed(sqlite_db, config, running_project())
    services = make_services(sqlite_db, config, sh("2026-11-26T10:00"))
    chat = ChatHarness(services, weekly_reports.feature, jobs=[weekly_reports.jobs])

    [denied] = await chat.say("周报 发送", sender="liming")
    assert "只有项目经理" in denied.text and await outbox_rows(sqlite_db, "weekly") == []

    [done] = await chat.say("周报 发送")
    # The PM is answered at once; the report is rendered and queued right after the command, outside its transaction.
    assert "正在生成本周（2026年第48周）周报，完成后发到客户群" in done.text
    assert [(r.job, r.outcome) for r in chat.followups] == [("weekly_report_send", RunOutcome.DONE)]
    assert keys(await outbox_rows(sqlite_db, "weekly:")) == [f"weekly:{project.code}:2026-W48:msg",
                                                             f"weekly:{project.code}:2026-W48:docx"]

    [again] = await chat.say("周报 发送")
    assert "已于 11-26 10:00 发送" in again.text and "每周只发送一次" in again.text

    # Friday's job finds it sent and adds nothing.
    before = len(await outbox_rows(sqlite_db))
    friday = make_services(sqlite_db, config, FIRE)
    result = push_of(await Scheduler(friday, [weekly_reports.jobs], owner="test").run_due())
    assert result.outcome == RunOutcome.DONE and len(await outbox_rows(sqlite_db)) == before


async def test_other_commands_are_answered_while_send_now_renders(sqlite_db, config, monkeypatch) -> None:
    [project] = await seed(sqlite_db, config, running_project())
    chat = ChatHarness(make_services(sqlite_db, config, sh("2026-11-26T10:00")), weekly_reports.feature,
                       jobs=[weekly_reports.jobs])
    loop = asyncio.get_running_loop()
    answered: list[list[Any]] = []
    real_render = weekly_reports.render_weekly_bundle

    def render_while_someone_else_asks(*args: Any) -> Any:
        # Another user's command in the middle of the render (this runs in the render thread): if the render ran in
        # 周报 发送's write transaction, that command would wait for it, and this render would wait for that command.
        answered.append(asyncio.run_coroutine_threadsafe(chat.say("周报 预览", sender="liming"), loop)
                        .result(timeout=EVENT_TIMEOUT))
        return real_render(*args)

    monkeypatch.setattr(weekly_reports, "render_weekly_bundle", render_while_someone_else_asks)
    [done] = await chat.say("周报 发送")
    assert "正在生成本周" in done.text
    assert [r.outcome for r in chat.followups] == [RunOutcome.DONE]
    [[preview, _]] = answered
    assert preview.title.startswith("【预览】客户项目周报")
    assert keys(await outbox_rows(sqlite_db, "weekly:")) == [f"weekly:{project.code}:2026-W48:msg",
                                                             f"weekly:{project.code}:2026-W48:docx"]


async def test_send_now_is_generated_once_even_if_asked_twice_or_the_process_dies(db, config) -> None:
    [project] = await seed(db, config, running_project())
    services = make_services(db, config, sh("2026-11-26T10:00"))
    # No job runner: the process dies right after 周报 发送 commits, before the report is rendered.
    dying = ChatHarness(services, weekly_reports.feature)
    [first] = await dying.say("周报 发送")
    [second] = await dying.say("周报 发送")
    assert "正在生成本周（2026年第48周）周报" in first.text
    assert "周报正在生成，完成后会发到客户群" in second.text and await outbox_rows(db, "weekly") == []

    # The leader's next sweep (or a restart's catch-up) finds the request and sends the report, once.
    sweep = Scheduler(make_services(db, config, sh("2026-11-26T10:05")), [weekly_reports.jobs], owner="leader")
    results = {(r.job, r.period_key): r.outcome for r in await sweep.catch_up()}
    assert results[("weekly_report_send", f"{project.code}:2026-W48")] == RunOutcome.DONE
    assert [r.outcome for r in await sweep.catch_up() if r.job == "weekly_report_send"] == []
    assert keys(await outbox_rows(db, "weekly:")) == [f"weekly:{project.code}:2026-W48:msg",
                                                      f"weekly:{project.code}:2026-W48:docx"]
    [sent] = await dying.say("周报 发送")
    assert "已于 11-26 10:05 发送" in sent.text


async def test_send_now_refuses_paused_projects_and_projects_without_a_client_group(sqlite_db, config) -> None:
    await seed(sqlite_db, config,
               running_project("暂停", internal="cid-p", client="cid-pc", status=ProjectStatus.PAUSED),
               running_project("无客户群", internal="cid-n", client=None))
    chat = ChatHarness(make_services(sqlite_db, config, sh("2026-11-26T10:00")), weekly_reports.feature)
    [paused] = await chat.say("周报 发送", conversation="cid-p")
    assert "已暂停" in paused.text
    [lonely] = await chat.say("周报 发送", conversation="cid-n")
    assert "还没有绑定客户群" in lonely.text
    assert await outbox_rows(sqlite_db, "weekly") == []


async def test_many_projects_render_in_one_low_priority_worker_ahead_and_the_push_starts_none(
        sqlite_db, config, monkeypatch) -> None:
    monkeypatch.setattr(weekly_render, "POOL_MIN_PROJECTS", 2)
    pools: list[Any] = []
    real_start = weekly_render._start_pool

    def spy(workers: int, niceness: int) -> Any:
        pool = real_start(workers, niceness)
        pools.append((workers, niceness, pool))
        return pool

    monkeypatch.setattr(weekly_render, "_start_pool", spy)
    specs = [running_project(f"项目{n}", internal=f"cid-in-{n}", client=f"cid-cl-{n}") for n in range(3)]
    await seed(sqlite_db, config, *specs)
    [ahead] = await prerender_at(sqlite_db, config, PRERENDER_AT)
    assert ahead.outcome == RunOutcome.DONE, ahead.error
    [(workers, niceness, pool)] = pools
    assert (workers, niceness) == (1, weekly_reports.PRERENDER_NICENESS)
    assert pool._shutdown_thread  # closed at the end of the run: no idle worker until next week
    assert len(await renders(sqlite_db)) == 3

    result = push_of(await Scheduler(make_services(sqlite_db, config, FIRE), [weekly_reports.jobs],
                                     owner="test").run_due())
    assert result.outcome == RunOutcome.DONE, result.error
    assert len(await outbox_rows(sqlite_db, "weekly:")) == 6
    assert len(pools) == 1  # every report was rendered ahead: the push started no worker process


async def test_without_a_pre_render_the_push_renders_many_projects_in_a_process_pool(
        sqlite_db, config, monkeypatch) -> None:
    monkeypatch.setattr(weekly_render, "POOL_MIN_PROJECTS", 2)
    pools: list[Any] = []
    real_start = weekly_render._start_pool
    monkeypatch.setattr(weekly_render, "_start_pool", lambda workers, niceness: pools.append(
        real_start(workers, niceness)) or pools[-1])
    await seed(sqlite_db, config, *[running_project(f"项目{n}", internal=f"cid-in-{n}", client=f"cid-cl-{n}")
                                    for n in range(3)])
    # The bot was down over the pre-render's hour: the push at 17:00 renders everything itself.
    results = await Scheduler(make_services(sqlite_db, config, FIRE), [weekly_reports.jobs], owner="test").run_due()
    assert {r.job: r.outcome for r in results} == {"weekly_report": RunOutcome.DONE,
                                                  "weekly_report_prerender": RunOutcome.NOT_DUE}
    assert len(await outbox_rows(sqlite_db, "weekly:")) == 6
    [pool] = pools
    assert pool._shutdown_thread


# ---- rendered ahead -------------------------------------------------------------------------------------------------


async def test_the_push_reuses_reports_rendered_ahead_and_renders_again_what_changed_since(
        sqlite_db, config, monkeypatch) -> None:
    quiet, busy = await seed(sqlite_db, config, running_project("安静项目", internal=None, client="cid-quiet"),
                             running_project("忙碌项目", internal="cid-busy-in", client="cid-busy"))
    rendered = spy_renders(monkeypatch)
    [ahead] = await prerender_at(sqlite_db, config, PRERENDER_AT)
    assert ahead.outcome == RunOutcome.DONE, ahead.error
    assert sorted(rendered) == sorted([quiet.code, busy.code])
    assert await outbox_rows(sqlite_db, "weekly") == []  # rendering ahead sends nothing
    kept = {r.project_id: r for r in await renders(sqlite_db)}
    kept_docx = (Path(config.storage.files_dir) / kept[quiet.id].file_path).read_bytes()
    assert kept[quiet.id].internal_file_path is None and kept[busy.id].internal_file_path is not None

    # After the pre-render, someone logs the afternoon's work on one project.
    async with sqlite_db.write() as session:
        await add_register_entry(session=session, project_id=busy.id, kind=RegisterKind.LOG,
                                 title="下午完成现场网络割接", created_by="liming", owner_user_id="liming",
                                 now=utc("2026-11-27T16:30"))
    rendered.clear()
    result = push_of(await Scheduler(make_services(sqlite_db, config, FIRE), [weekly_reports.jobs],
                                     owner="test").run_due())
    assert result.outcome == RunOutcome.DONE, result.error
    assert rendered == [busy.code]  # only the project whose data changed is rendered again

    rows = {r.idempotency_key: r for r in await outbox_rows(sqlite_db, "weekly")}
    busy_text = rows[f"weekly:{busy.code}:2026-W48:msg"].params["msgParam"]["text"]
    assert "下午完成现场网络割接" in busy_text  # what goes out is current
    assert "下午完成现场网络割接" in rows[f"weekly-internal:{busy.code}:2026-W48:msg"].params["msgParam"]["text"]
    quiet_docx = Path(rows[f"weekly:{quiet.code}:2026-W48:docx"].attachment_path)
    assert quiet_docx.read_bytes() == kept_docx  # the report rendered ahead, sent from the report's own place
    assert PRERENDER_FOLDER not in str(quiet_docx)
    with zipfile.ZipFile(rows[f"weekly:{busy.code}:2026-W48:docx"].attachment_path) as docx:
        assert "下午完成现场网络割接" in docx.read("word/document.xml").decode("utf-8")
    assert sorted(keys(rows.values())) == sorted(
        [f"weekly:{code}:2026-W48:{part}" for code in (quiet.code, busy.code) for part in ("msg", "docx")]
        + [f"weekly-internal:{busy.code}:2026-W48:{part}" for part in ("msg", "docx")])
    # The week's renders have served: rows and files are gone.
    assert await renders(sqlite_db) == []
    assert not (Path(config.storage.files_dir) / PRERENDER_FOLDER / "2026-W48").exists()


async def test_send_now_uses_the_report_rendered_ahead(sqlite_db, config, monkeypatch) -> None:
    [project] = await seed(sqlite_db, config, running_project())
    rendered = spy_renders(monkeypatch)
    await prerender_at(sqlite_db, config, PRERENDER_AT)
    rendered.clear()
    chat = ChatHarness(make_services(sqlite_db, config, sh("2026-11-27T16:40")), weekly_reports.feature,
                       jobs=[weekly_reports.jobs])
    [done] = await chat.say("周报 发送")
    assert "正在生成本周" in done.text and [r.outcome for r in chat.followups] == [RunOutcome.DONE]
    assert rendered == []
    assert keys(await outbox_rows(sqlite_db, "weekly:")) == [f"weekly:{project.code}:2026-W48:msg",
                                                             f"weekly:{project.code}:2026-W48:docx"]
    # Friday's push finds it sent.
    before = len(await outbox_rows(sqlite_db))
    await Scheduler(make_services(sqlite_db, config, FIRE), [weekly_reports.jobs], owner="test").run_due()
    assert len(await outbox_rows(sqlite_db)) == before


async def test_a_push_overlapping_the_pre_render_still_sends_each_report_once(db, config, monkeypatch) -> None:
    first, second = await seed(db, config, running_project("项目甲", internal="cid-a-in", client="cid-a"),
                               running_project("项目乙", internal="cid-b-in", client="cid-b"))
    loop = asyncio.get_running_loop()
    real_render = weekly_render.render_weekly_bundle
    pushed: list[Any] = []

    def render_while_the_push_runs(data: Any, internal: bool) -> Any:
        # The pre-render is slow this week: the push fires (another replica, say) in the middle of its first render.
        if not pushed:
            pushed.append(None)
            push = Scheduler(make_services(db, config, FIRE), [weekly_reports.jobs], owner="other")
            pushed[0] = asyncio.run_coroutine_threadsafe(push.run_due(jobs=["weekly_report"]), loop).result(
                timeout=EVENT_TIMEOUT)
        return real_render(data, internal)

    monkeypatch.setattr(weekly_render, "render_weekly_bundle", render_while_the_push_runs)
    [ahead] = await prerender_at(db, config, PRERENDER_AT)
    [[push]] = pushed
    assert (ahead.outcome, push.outcome) == (RunOutcome.DONE, RunOutcome.DONE), (ahead.error, push.error)
    expected = sorted(f"{prefix}:{p.code}:2026-W48:{part}" for p in (first, second)
                      for prefix in ("weekly", "weekly-internal") for part in ("msg", "docx"))
    assert sorted(keys(await outbox_rows(db, "weekly"))) == expected

    # The renders the pre-render kept after the push are never sent: a forced second push queues nothing.
    run = JobRunContext(job="weekly_report", period_key="2026-W48", scheduled_at=sh("2026-11-27T17:00"),
                        now=sh("2026-11-27T17:30"), reason="manual", services=make_services(db, config, FIRE),
                        log=logging.LoggerAdapter(logging.getLogger("t"), {}), owner="test")
    await weekly_report_job(run)
    assert sorted(keys(await outbox_rows(db, "weekly"))) == expected


async def test_the_pre_render_runs_at_its_lead_time_and_can_be_switched_off(sqlite_db, tmp_path) -> None:
    await seed(sqlite_db, make_config(tmp_path / "files"), running_project())
    early = make_config(tmp_path / "files", schedule={"weekly_report_prerender_minutes": 90})
    scheduler = Scheduler(make_services(sqlite_db, early, sh("2026-11-27T15:25")), [weekly_reports.jobs],
                          owner="test")
    assert scheduler.describe()["weekly_report_prerender"] == "weekly fri 15:30"
    assert push_of(await scheduler.run_due(), "weekly_report_prerender").outcome == RunOutcome.NOT_DUE
    [ahead] = await scheduler.run_due(sh("2026-11-27T15:30:02"), jobs=["weekly_report_prerender"])
    assert ahead.outcome == RunOutcome.DONE and len(await renders(sqlite_db)) == 1

    off = make_config(tmp_path / "off", schedule={"weekly_report_prerender_minutes": 0})
    [nothing] = await Scheduler(make_services(sqlite_db, off, sh("2026-12-04T17:00")), [weekly_reports.jobs],
                                owner="test").run_due(jobs=["weekly_report_prerender"])
    assert nothing.outcome == RunOutcome.DONE and not (tmp_path / "off").exists()


# ---- helpers -----------------------------------------------------------------------------------------------------


def push_of(results: list[Any], job: str = "weekly_report") -> Any:
    """The result of one job among a run_due's (the pre-render's is there too)."""
    [result] = [r for r in results if r.job == job]
    return result


async def prerender_at(database: Any, config: Any, when: Any) -> list[Any]:
    scheduler = Scheduler(make_services(database, config, when), [weekly_reports.jobs], owner="prerender")
    return await scheduler.run_due(jobs=["weekly_report_prerender"])


async def renders(database: Any) -> list[WeeklyReportRender]:
    async with database.read() as session:
        return list((await session.exec(select(WeeklyReportRender))).all())


def spy_renders(monkeypatch: Any) -> list[str]:
    """The codes of the projects rendered in a thread from now on (what a test with few projects does)."""
    rendered: list[str] = []
    real_render = weekly_render.render_weekly_bundle

    def spy(data: Any, internal: bool) -> Any:
        rendered.append(data.project.code)
        return real_render(data, internal)

    monkeypatch.setattr(weekly_render, "render_weekly_bundle", spy)
    return rendered
