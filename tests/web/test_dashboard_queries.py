"""The 看板's reads on every database: who sees which project, and the portfolio's figures against the reports'.

Each viewer's scope is part of every statement: a project outside it is not found, nor are its files and reports.
The colour, the overdue count and the progress of a project are the ones the leaders' digest and the report data
give for it, computed from the same rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.report_data import gather_digest_data, gather_project_report
from reports.digest import HealthStatus, health_of
from storage.models import DeliverableVersion, RegisterKind, WeeklyReport
from storage.repo.dashboard import (
    RegisterFilter,
    Scope,
    audit_page,
    register_counts,
    register_entries_page,
    visible_project,
    visible_version,
    visible_weekly_report,
)
from storage.workdays import WorkCalendar
from tests.web.world import ERP, FORMULA, LEGACY, MES, SCRIPT, TODAY, WAREHOUSE, seed
from web.portfolio import complete, gather_portfolio

CALENDAR = WorkCalendar()
EVERYONE = Scope("liuqiang", every_project=True)


@pytest.fixture
async def world(db, tmp_path: Path):
    return await seed(db, tmp_path / "files")


async def portfolio(db, scope: Scope):
    async with db.read() as session:
        entries = await gather_portfolio(session=session, scope=scope, today=TODAY, calendar=CALENDAR)
        return {e.code: e for e in await complete(session=session, entries=entries)}


@pytest.mark.parametrize(("scope", "codes"), [
    (EVERYONE, {MES, ERP, WAREHOUSE, LEGACY}),                      # a leader or 项目管理员
    (Scope("wangjianguo"), {MES, WAREHOUSE, LEGACY}),               # the PM of three
    (Scope("liming"), {MES, WAREHOUSE}),                            # an engineer: where he is a member
    (Scope("chenjing"), {ERP}),
    (Scope("huanglei"), set()),                                     # a client contact sees nothing, even her own
    (Scope("wutao"), set()),                                        # someone in none
])
async def test_each_viewer_sees_the_projects_they_belong_to(db, world, scope, codes):
    assert set(await portfolio(db, scope)) == codes
    async with db.read() as session:
        for code in (MES, ERP, WAREHOUSE, LEGACY):
            found = await visible_project(session=session, scope=scope, code=code)
            assert (found is not None) == (code in codes), code


async def test_files_and_reports_are_found_only_through_a_visible_project(db, world):
    async with db.read() as session:
        [version] = (await session.exec(DeliverableVersion.__table__.select())).all()
        [report, _] = (await session.exec(WeeklyReport.__table__.select().order_by(WeeklyReport.id))).all()
        for scope, allowed in ((Scope("liming"), True), (Scope("chenjing"), False), (EVERYONE, True)):
            assert (await visible_version(session=session, scope=scope, code=MES, version_id=version.id)
                    is not None) == allowed
            assert (await visible_weekly_report(session=session, scope=scope, code=MES, report_id=report.id)
                    is not None) == allowed
        # The right id under another project's code is not found either, even for someone who sees that project.
        assert await visible_version(session=session, scope=EVERYONE, code=ERP, version_id=version.id) is None
        assert await visible_weekly_report(session=session, scope=EVERYONE, code=ERP, report_id=report.id) is None


async def test_colours_and_counts_are_the_digests(db, world):
    entries = await portfolio(db, EVERYONE)
    async with db.read() as session:
        digest = {d.project.code: d for d in await gather_digest_data(session=session, today=TODAY,
                                                                       calendar=CALENDAR)}
    assert set(digest) == {MES, ERP, WAREHOUSE}  # the digest lists running and paused projects
    for code, data in digest.items():
        assert entries[code].health == health_of(data), code
        assert entries[code].overdue == sum(1 for d in data.deliverables if d.is_overdue), code
        assert entries[code].pending_approvals == sum(1 for a in data.approvals if a.is_pending), code
    mes = entries[MES]
    assert mes.health.status == HealthStatus.LATE and "交付物最长逾期 16 个工作日" in mes.health.reasons
    assert (mes.overdue, mes.worst_overdue_days, mes.high_risks, mes.pending_approvals) == (2, 16, 1, 1)
    assert entries[WAREHOUSE].overdue == 0                      # paused: its deadlines are stopped
    assert entries[LEGACY].health.status == HealthStatus.ON_TRACK  # closed: always 正常
    assert entries[ERP].health.status == HealthStatus.ON_TRACK


async def test_progress_is_the_report_datas(db, world):
    entries = await portfolio(db, EVERYONE)
    async with db.read() as session:
        for code, project in world.items():
            data = await gather_project_report(session=session, project=project, today=TODAY, calendar=CALENDAR)
            assert entries[code].progress == data.project.progress, code
    assert entries[MES].progress == 25.0


async def test_registers_filter_by_state_and_text(db, world):
    mes = world[MES]

    async def titles(**wanted) -> tuple[list[str], int]:
        async with db.read() as session:
            rows, total = await register_entries_page(session=session, project_id=mes.id, limit=10,
                                                      wanted=RegisterFilter(kind=RegisterKind.ISSUE, **wanted))
        return [r.title for r in rows], total

    assert await titles() == (["打印机驱动不兼容", FORMULA, f"报表导出乱码 {SCRIPT}"], 3)  # the last numbered first
    assert await titles(state="open") == ([FORMULA, f"报表导出乱码 {SCRIPT}"], 2)
    assert await titles(state="closed") == (["打印机驱动不兼容"], 1)
    assert await titles(text="hyperlink") == ([FORMULA], 1)     # any case
    assert await titles(text="%") == ([], 0)                     # LIKE's wildcards are literal
    assert await titles(text="_") == ([], 0)
    async with db.read() as session:
        counts = await register_counts(session=session, project_id=mes.id)
    assert counts[RegisterKind.ISSUE] == (3, 2) and counts[RegisterKind.RISK] == (1, 1)
    assert counts[RegisterKind.LOG] == (1, 0)


async def test_audit_trail_pages_newest_first(db, world):
    async with db.read() as session:
        first, total = await audit_page(session=session, project_id=world[MES].id, limit=2)
        rest, _ = await audit_page(session=session, project_id=world[MES].id, limit=2, offset=2)
    assert total == 3
    assert [r.entity_id for r in first] == ["3", "2"] and [r.entity_id for r in rest] == ["1"]


@pytest.mark.parametrize(("search", "codes"), [
    ("erp", {ERP}),                      # a name, in any case
    ("xm-2026-00", {MES, ERP, WAREHOUSE, LEGACY}),
    ("某某物流", {ERP}),                  # the customer
    ("陈静", {ERP}),                      # the PM's name
    ("%", set()), ("_", set()),          # LIKE's wildcards are characters here
])
async def test_a_search_finds_projects_and_narrows_every_read(db, world, search, codes):
    async with db.read() as session:
        entries = await gather_portfolio(session=session, scope=EVERYONE, today=TODAY, calendar=CALENDAR,
                                         search=search)
        mine = await gather_portfolio(session=session, scope=Scope("liming"), today=TODAY, calendar=CALENDAR,
                                      search=search)
    assert {e.code for e in entries} == codes
    assert {e.code for e in mine} == codes & {MES, WAREHOUSE}  # never past the viewer's scope
    if MES in codes:  # the counts are the search's projects' own
        [mes] = [e for e in entries if e.code == MES]
        assert (mes.overdue, mes.high_risks, mes.pending_approvals) == (2, 1, 1)
