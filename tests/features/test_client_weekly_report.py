"""The client weekly report: the same figures as 「项目」, labelled (required vs all); charts from the project's
start; the company and the PM's contact in the header; the leaders' digest's status colour, by the same rule."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import replace
from datetime import timedelta

from sqlmodel import select

from domain.report_data import counts_toward_progress, gather_project_report
from reports.digest import health_of
from reports.model import WeeklyPeriod
from reports.weekly import render_weekly_docx
from storage.models import Deliverable, User
from tests.docx_text import docx_text

from .conftest import Chat, build_chat, complete_current_phase, new_project

COMPANY = "示例数智科技有限公司"


def _figures(text: str) -> tuple[str, str]:
    required = re.search(r"必交交付物 (\d+/\d+)", text)
    everything = re.search(r"全部交付物 已提交 (\d+/\d+)", text)
    assert required and everything, text
    return required.group(1), everything.group(1)


async def test_the_report_and_the_overview_agree(sqlite_db, tmp_path) -> None:
    chat: Chat = build_chat(sqlite_db, tmp_path, company_name=COMPANY)
    await new_project(chat)
    await chat.say("pm", "立项")
    await complete_current_phase(chat)
    await chat.say("pm", "提交 客户项目周报 https://docs.example.com/weekly")  # submitted, but not counted
    rows = await chat.rows(Deliverable)
    counted = [d for d in rows if counts_toward_progress(d)]
    required = f"{sum(d.status != '待提交' for d in counted)}/{len(counted)}"
    everything = f"{sum(d.status == '已提交' for d in rows)}/{len(rows)}"
    assert (required, everything) == ("6/34", "7/42")
    overview = (await chat.say("pm", "项目")).text
    preview = (await chat.say("pm", "周报 预览")).text
    assert _figures(preview) == _figures(overview) == (required, everything)
    assert "- 进度：18%（必交交付物 6/34）　全部交付物 已提交 7/42" in overview
    assert "18%（必交交付物 6/34）" in preview.split("总体进度：")[1].splitlines()[0]
    # The header: who delivers, whom to call, how the project stands (🟢 on track here).
    assert f"- 实施方：{COMPANY}" in preview and "- 项目经理：张经理" in preview
    assert "- 项目状态：🟢 正常" in preview
    assert f"> {COMPANY} · XM-2026-001" in preview


async def test_the_pm_mobile_from_the_directory_is_the_contact(chat: Chat) -> None:
    await new_project(chat)
    without = (await chat.say("pm", "周报 预览")).text
    assert "- 项目经理：张经理\n" in without  # no mobile known: no empty brackets
    project = await chat.project()
    async with chat.db.write() as session:
        pm = (await session.exec(select(User).where(User.user_id == project.pm_user_id))).one()
        pm.mobile = "13800010001"
        session.add(pm)
    preview = (await chat.say("pm", "周报 预览")).text
    assert "- 项目经理：张经理（电话 13800010001）" in preview


async def test_status_colour_follows_the_digest_rule(chat: Chat) -> None:
    await new_project(chat)
    await chat.say("pm", "立项")
    chat.clock.advance(timedelta(days=9))  # 商务合同 and others are overdue now
    preview = (await chat.say("pm", "周报 预览")).text
    project = await chat.project()
    async with chat.db.read() as session:
        data = await gather_project_report(session=session, project=project, today=chat.clock.today(),
                                           calendar=chat.services.calendar, weekly=True)
    health = health_of(data)
    assert health.label.startswith(("🟡", "🔴")) and f"- 项目状态：{health.label}（" in preview
    assert all(reason in preview for reason in health.reasons)


async def test_the_issue_chart_starts_with_the_project(chat: Chat) -> None:
    await new_project(chat)  # created Monday 2 March 2026 (2026-W10)
    await chat.say("engineer", "问题 新增 报表导出乱码")
    project = await chat.project()
    for weeks_later, expected in ((0, 1), (3, 4), (12, 8)):
        today = chat.clock.today() + timedelta(weeks=weeks_later)
        async with chat.db.read() as session:
            data = await gather_project_report(session=session, project=project, today=today,
                                               calendar=chat.services.calendar, weekly=True)
        weeks = [(c.iso_year, c.iso_week) for c in data.issue_counts]
        assert len(weeks) == expected, weeks
        assert weeks[-1] == (WeeklyPeriod.containing(today).iso_year, WeeklyPeriod.containing(today).iso_week)
        if weeks_later < 12:
            assert weeks[0] == (2026, 10) and data.issue_counts[0].opened == 1


async def test_the_docx_header_has_company_contact_and_status(sqlite_db, tmp_path) -> None:
    chat: Chat = build_chat(sqlite_db, tmp_path, company_name=COMPANY)
    await new_project(chat)
    await chat.say("pm", "立项")
    project = await chat.project()
    async with chat.db.read() as session:
        data = await gather_project_report(session=session, project=project, today=chat.clock.today(),
                                           calendar=chat.services.calendar, weekly=True, company_name=COMPANY)
    document = render_weekly_docx(data, charts={})
    text = docx_text(document)
    assert f"实施方\n{COMPANY}" in text and "项目经理\n张经理" in text and "健康状况\n● 正常" in text
    # The digest's green, as the text's colour (an office suite may lack the emoji).
    with zipfile.ZipFile(io.BytesIO(document)) as docx:
        xml = docx.read("word/document.xml").decode("utf-8")
    assert re.search(r'<w:color w:val="2E7D32"/>(?:(?!</w:r>).)*<w:t[^>]*>● 正常</w:t>', xml)
    assert "必交交付物 0/34" in text and "全部交付物 已提交 0/42" in text
    with_phone = replace(data, project=replace(data.project, pm_phone="13800000000"))
    phone = docx_text(render_weekly_docx(with_phone, charts={}))
    assert "张经理（电话 13800000000）" in phone
