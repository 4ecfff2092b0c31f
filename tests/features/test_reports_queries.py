"""The report queries and the jobs' write path on every configured backend (SQLite, PostgreSQL, MySQL/MariaDB)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from bot.scheduler import RunOutcome, Scheduler
from domain.report_data import gather_digest_data, gather_project_report, gather_project_reports, issue_window_start
from handlers import reminders, weekly_reports
from handlers.reminders import scan_reminders
from reports.model import WeeklyPeriod
from storage.models import DeliverableStatus, ProjectStatus, RegisterKind, RegisterStatus
from storage.repo.report_queries import (
    digest_scan,
    pending_deliverables_due,
    pending_deliverables_due_chunks,
    sent_weekly_reports,
)
from storage.workdays import WorkCalendar

from tests.features.reports_world import (
    DeliverableSpec,
    EntrySpec,
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


def spec(name: str, status: ProjectStatus = ProjectStatus.IN_PROGRESS, n: int = 0) -> ProjectSpec:
    return ProjectSpec(
        name=name, status=status, internal=f"cid-in-{n}", client=f"cid-cl-{n}", running_approvals=1,
        deliverables=[
            DeliverableSpec("需求调研报告", date(2026, 11, 20), status=DeliverableStatus.SUBMITTED,
                            submitted_at=utc("2026-11-24T09:00"), file=("调研报告-终稿.docx", b"PK report")),
            DeliverableSpec("需求规格说明书", date(2026, 11, 20)),  # overdue
            DeliverableSpec("接口说明文档", date(2026, 11, 30), owner="zhaolei"),  # due next Monday
            DeliverableSpec("测评报告", date(2026, 12, 10)),
            DeliverableSpec("没有日期的文档", None),
        ],
        entries=[
            *a_week_of_work(MONDAY),
            EntrySpec(RegisterKind.LOG, "很久以前的日志", utc("2026-06-01T10:00")),
            EntrySpec(RegisterKind.ISSUE, "很久以前关闭的问题", utc("2026-06-01T10:00"), status=RegisterStatus.CLOSED,
                      closed_at=utc("2026-06-02T10:00")),
        ],
    )


async def seed(database, files_dir: Path):
    async with database.write() as session:
        await add_people(session)
        return [
            await add_project(session, spec("进行中", n=0), files_dir=files_dir),
            await add_project(session, spec("已立项", ProjectStatus.APPROVED, n=1), files_dir=files_dir),
            await add_project(session, spec("已暂停", ProjectStatus.PAUSED, n=2), files_dir=files_dir),
        ]


async def test_scans_select_by_status_and_due_window(db, tmp_path: Path) -> None:
    running, approved, paused = await seed(db, tmp_path)
    async with db.read() as session:
        overdue = await pending_deliverables_due(session=session, before=date(2026, 11, 27))
        both = await pending_deliverables_due(session=session, before=date(2026, 11, 27),
                                              due_from=date(2026, 11, 28), due_until=date(2026, 11, 30))
        soon_only = await pending_deliverables_due(session=session, due_from=date(2026, 11, 28),
                                                   due_until=date(2026, 11, 30), project_ids=[running.id])
        digest = await digest_scan(session=session, today=date(2026, 11, 27),
                                   statuses=[ProjectStatus.IN_PROGRESS, ProjectStatus.APPROVED, ProjectStatus.PAUSED])
    assert [(r.project_code, r.name) for r in overdue] == [(running.code, "需求规格说明书"),
                                                          (approved.code, "需求规格说明书")]
    first = overdue[0]
    assert (first.owner_name, first.pm_name, first.phase, first.internal_conversation_id, first.due) == (
        "李明", "王建国", "执行", "cid-in-0", date(2026, 11, 20))
    assert [(r.project_code, r.name) for r in both] == [
        (running.code, "需求规格说明书"), (running.code, "接口说明文档"),
        (approved.code, "需求规格说明书"), (approved.code, "接口说明文档")]
    assert [(r.name, r.owner_name) for r in soon_only] == [("接口说明文档", "赵磊")]
    counts = {row.code: (row.overdue, row.oldest_due, row.oldest_required_due, row.high_risks, row.pending_approvals,
                         row.pm_name, str(row.status)) for row in digest}
    assert counts == {
        running.code: (1, date(2026, 11, 20), date(2026, 11, 20), 1, 1, "王建国", "进行中"),
        approved.code: (1, date(2026, 11, 20), date(2026, 11, 20), 1, 1, "王建国", "已立项"),
        paused.code: (0, None, None, 1, 1, "王建国", "已暂停"),  # deadlines stopped: no overdue count
    }


async def test_scans_streamed_in_small_chunks_plan_what_one_chunk_plans(db, tmp_path: Path) -> None:
    """The jobs read their scans as a stream of chunks of whole projects: what they send does not depend on it."""
    running, approved, _ = await seed(db, tmp_path)
    today, calendar, config = date(2026, 11, 27), WorkCalendar(), make_config(tmp_path / "files")
    window = {"before": today, "due_from": date(2026, 11, 28), "due_until": date(2026, 11, 30)}
    async with db.read() as session:
        whole = await pending_deliverables_due(session=session, **window)
        chunks = {n: [c async for c in pending_deliverables_due_chunks(session=session, **window, chunk_rows=n)]
                  for n in (1, 3, 1000)}
        plans = {n: await scan_reminders(session, today=today, calendar=calendar, config=config, chunk_rows=n)
                 for n in (1, 3, 1000)}
        digests = {n: await gather_digest_data(session=session, today=today, calendar=calendar, chunk_rows=n)
                   for n in (1, 2, 1000)}
    # Two rows in each of the two running projects: a project is never split, whatever the chunk size.
    for n in (1, 3, 1000):
        assert [r for c in chunks[n] for r in c] == whole
        assert [[r.project_code for r in c] for c in chunks[n]] == [[running.code] * 2, [approved.code] * 2]
    assert plans[1] == plans[3] == plans[1000]
    assert {(r.kind, r.project) for r in plans[1000]} == {
        (kind, code) for code in (running.code, approved.code)
        for kind in ("duesoon", "digest", "overdue", "escalate-pm")} | {("escalate-leaders", "")}
    [leaders] = [r for r in plans[1000] if r.kind == "escalate-leaders"]  # one list, from every chunk's projects
    assert f"（{running.code}）" in leaders.text and f"（{approved.code}）" in leaders.text
    assert digests[1] == digests[2] == digests[1000]
    assert [d.project.code for d in digests[1000]] == sorted(d.project.code for d in digests[1000])
    assert len(digests[1000]) == 3


async def test_report_data_maps_rows_in_batches(db, tmp_path: Path) -> None:
    running, approved, paused = await seed(db, tmp_path)
    period = WeeklyPeriod(2026, 48)
    async with db.read() as session:
        gathered = await gather_project_reports(
            session=session, projects=[running, approved, paused], today=date(2026, 11, 27), calendar=WorkCalendar(),
            period=period, registers_since=issue_window_start(period))
        full = await gather_project_report(session=session, project=running, today=date(2026, 11, 27),
                                           calendar=WorkCalendar(), include_audit=True)
    data = gathered[running.id]
    assert set(gathered) == {running.id, approved.id, paused.id}
    p = data.project
    assert (p.code, p.pm_name, p.phase, p.customer, p.customer_contact, p.status) == (
        running.code, "王建国", "规划", "华东某制造集团", "黄蕾", "进行中")
    assert p.progress == 20.0  # 1 of 5 required one-off deliverables submitted
    assert [ph.name for ph in data.phases] == ["启动", "规划", "执行"] and data.phases[0].gate_passed
    d = {x.name: x for x in data.deliverables}
    assert d["需求调研报告"].latest_file_name == "调研报告-终稿.docx" and d["需求调研报告"].submitted_on == date(2026, 11, 24)
    assert d["需求规格说明书"].is_overdue and d["需求规格说明书"].overdue_working_days == 5
    assert not d["接口说明文档"].is_overdue and d["接口说明文档"].owner_name == "赵磊"
    titles = {e.title for e in data.registers}
    assert "很久以前的日志" not in titles and "很久以前关闭的问题" not in titles  # outside the weekly window
    assert {"完成生产管理模块需求调研访谈", "关键用户参与度不足", "客户需确认物料编码规则"} <= titles
    risk = next(e for e in data.registers if e.kind == "风险")
    assert risk.is_high_risk and risk.response.endswith("请客户指定专人")
    assert next(e for e in data.registers if e.title == "客户需确认物料编码规则").needs_client
    assert len(data.issue_counts) == 8 and data.issue_counts[-1].closed == 1
    assert [a.status for a in data.approvals] == ["审批中"] and data.approvals[0].kind == "项目进度变更"
    assert {m.name: m.organization for m in data.members}["黄蕾"] == "华东某制造集团"
    # Without a window every entry is there (documents, the archive).
    assert {"很久以前的日志", "很久以前关闭的问题"} <= {e.title for e in full.registers}


async def test_jobs_write_their_rows_once_on_every_backend(db, tmp_path: Path) -> None:
    running, approved, paused = await seed(db, tmp_path)
    config = make_config(tmp_path / "files")
    services = make_services(db, config, sh("2026-11-27T17:00:05"))
    scheduler = Scheduler(services, [weekly_reports.jobs, reminders.jobs], owner="test")
    results = {r.job: r for r in await scheduler.run_due()}
    assert results["weekly_report"].outcome == RunOutcome.DONE, results["weekly_report"].error
    assert results["overdue_reminders"].outcome == RunOutcome.DONE, results["overdue_reminders"].error
    weekly = keys(await outbox_rows(db, "weekly:"))
    assert sorted(weekly) == sorted(f"weekly:{p.code}:2026-W48:{part}" for p in (running, approved)
                                    for part in ("msg", "docx"))
    overdue = keys(await outbox_rows(db, "overdue:"))
    assert sorted(overdue) == sorted(f"overdue:{p.code}:liming:2026-11-27" for p in (running, approved))
    async with db.read() as session:
        sent = await sent_weekly_reports(session=session, iso_year=2026, iso_week=48)
    assert set(sent) == {running.id, approved.id} and all(isinstance(v, datetime) for v in sent.values())
    total = len(await outbox_rows(db))
    # (The weekly pre-render's hour before 17:00 is over: it is not due.)
    assert {r.outcome for r in await scheduler.run_due() if r.job != "weekly_report_prerender"} == {
        RunOutcome.ALREADY_CLAIMED}
    assert len(await outbox_rows(db)) == total
