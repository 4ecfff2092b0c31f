"""客户项目周报: markdown for DingTalk and the Word document, client and internal variants."""

from __future__ import annotations

import dataclasses
import io
from datetime import date, datetime

import docx
import pytest
import sample_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sample_data import docx_text

from reports import weekly
from reports.model import RegisterEntry, WeeklyPeriod
from tests.docx_text import docx_text as document_text

CLIENT_SECTIONS = weekly.weekly_sections()
INTERNAL_SECTIONS = weekly.weekly_sections(internal=True)


@pytest.fixture(scope="module")
def software():
    return sample_data.software_project()


def test_content_of_the_week_is_chosen_from_logs_issues_and_deliverables(software):
    c = weekly.weekly_content(software)
    assert c.period == WeeklyPeriod(2025, 11) and c.next_period == WeeklyPeriod(2025, 12)
    done = [w.text for w in c.done]
    # this week's logs, not last week's
    assert "完成门诊结算接口联调约 80%" in done
    assert "与信息科确认门诊结算接口字段映射" not in done
    # issues closed this week, deliverables submitted this week, the upgrade of this week
    assert "解决问题：审核规则引擎对中药饮片单复方判断错误" in done
    assert "提交《服务器档案》" in done and "提交《系统审核业务流程方案》" in done
    assert any(t.startswith("系统升级 v2.3.1") for t in done)
    assert not any("需求规格说明书" in t for t in done)  # submitted in January
    plans = [w.text for w in c.plans]
    assert "提交上线规则清单给医保办签字确认" in plans
    assert "完成《系统使用文档》" in plans  # due next week
    assert "完成《数据质量报告》" in plans  # overdue, carried over
    assert "完成《实施部署记录文档》" not in plans  # due in two weeks
    client = [(e.kind, e.seq) for e in c.client_items]
    assert client[:3] == [("问题", 1), ("问题", 5), ("风险", 1)]  # waiting on the client first
    assert ("问题", 2) not in client  # closed
    assert ("风险", 2) not in client  # internal risk, not the client's business
    assert [d.name for d in c.overdue] == ["上线规则清单", "数据质量报告"]
    assert [a.title for a in c.pending_approvals] == ["执行阶段里程碑调整申请"]
    workload = {w.name: w for w in c.workload}
    assert workload["刘洋"].logs == 2 and workload["刘洋"].open_issues == 2 and workload["刘洋"].overdue_deliverables == 1


@pytest.mark.parametrize("template", sample_data.TEMPLATES)
def test_client_markdown_has_the_sections_and_stays_client_safe(template):
    data = sample_data.sample(template)
    title, md = weekly.render_weekly_markdown(data)
    assert title == f"客户项目周报｜{data.project.name}｜2025年第11周"
    assert md.startswith("### 客户项目周报")
    positions = [md.index(f"#### {s}") for s in CLIENT_SECTIONS]
    assert positions == sorted(positions)
    assert data.project.name in md and data.project.pm_name in md
    assert weekly.SECTION_INTERNAL not in md and "逾期" not in md.split(weekly.SECTION_DONE)[1]
    assert len(md) <= weekly.MAX_MARKDOWN_CHARS
    assert "|" not in md  # DingTalk markdown has no tables


def test_markdown_mentions_the_weeks_work_and_client_items(software):
    _, md = weekly.render_weekly_markdown(software)
    done = md.split(f"#### {weekly.SECTION_DONE}")[1].split("####")[0]
    assert "提交《服务器档案》（刘洋，03-10）" in done
    assert "…等 11 项" in done  # 11 items this week, 8 shown
    plan = md.split(f"#### {weekly.SECTION_PLAN}")[1].split("####")[0]
    assert "完成《数据质量报告》（刘洋，原定 03-07）" in plan
    assert "提交上线规则清单给医保办签字确认（陈静，计划 03-18）" in plan
    client = md.split(f"#### {weekly.SECTION_CLIENT}")[1].split("####")[0]
    assert "问题#1 HIS接口返回的门诊结算数据缺少医保目录编码" in client and "**需贵方协助**" in client
    assert "- **执行**：进行中" in md
    assert "总体进度：■■■■■□□□□□ 46%" in md


def test_markdown_can_show_uploaded_charts(software):
    _, md = weekly.render_weekly_markdown(software, chart_urls={"phase_timeline": "@lADPmedia1"})
    progress = md.split(f"#### {weekly.SECTION_PROGRESS}")[1].split("####")[0]
    assert "![阶段进度](@lADPmedia1)" in progress and "交付物完成情况](" not in md


def test_internal_markdown_adds_the_audit_material(software):
    title, md = weekly.render_weekly_markdown(software, internal=True)
    assert title.startswith("项目内部周报｜")
    internal = md.split(f"#### {weekly.SECTION_INTERNAL}")[1]
    assert "《上线规则清单》规划，陈静，逾期 4 个工作日" in internal
    assert "风险#1 HIS厂商接口改造排期不确定" in internal and "减轻" in internal
    assert "执行阶段里程碑调整申请" in internal and "当前审批人 何军" in internal
    assert "刘洋：日志 2 条，在办问题 2 个" in internal


def test_markdown_handles_an_empty_week():
    data = dataclasses.replace(sample_data.renovation_project(), period=WeeklyPeriod(2024, 40), registers=())
    _, md = weekly.render_weekly_markdown(data, internal=True)
    assert "本周暂无记录" in md and "目前没有需要协调的问题" in md


def _flood(data, n: int, text_len: int):
    extra = tuple(
        RegisterEntry("实施日志", 100 + i, "很长的实施日志内容" * (text_len // 9 + 1), "刘洋", created_at=datetime(2025, 3, 11))
        for i in range(n)
    ) + tuple(
        RegisterEntry("问题", 100 + i, "问题标题" * (text_len // 4 + 1), "赵磊", "处理中", datetime(2025, 3, 1), needs_client=True)
        for i in range(n)
    )
    return dataclasses.replace(data, registers=data.registers + extra)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 300), text_len=st.integers(1, 400), limit=st.integers(600, 5000), internal=st.booleans())
def test_markdown_never_exceeds_the_limit(n, text_len, limit, internal):
    data = _flood(sample_data.software_project(), n, text_len)
    _, md = weekly.render_weekly_markdown(data, internal=internal, max_chars=limit)
    assert len(md) <= limit
    assert md.startswith("### ")


def test_long_lists_are_cut_with_a_count():
    data = _flood(sample_data.software_project(), 200, 30)
    _, md = weekly.render_weekly_markdown(data)
    assert len(md) <= weekly.MAX_MARKDOWN_CHARS
    assert "…等 211 项" in md  # 200 flood logs + 11 of the sample week
    for section in CLIENT_SECTIONS:
        assert section in md  # cutting lists keeps every section


@pytest.mark.parametrize("template", sample_data.TEMPLATES)
def test_docx_has_sections_tables_and_charts(template, samples):
    data = samples[template]
    payload = weekly.render_weekly_docx(data)
    headings, text = docx_text(payload)
    assert headings[0] == "客户项目周报"
    assert headings[1:] == list(CLIENT_SECTIONS)
    assert data.project.name in text and data.project.customer in text
    for d in data.deliverables:
        if d.status == "已提交" and data.week.contains(d.submitted_on):
            assert f"提交《{d.name}》" in text
    for e in data.registers:
        if e.kind == "问题" and e.is_open:
            # Section 四 lists only what waits on the client, once.
            in_order = document_text(payload)
            client_section = in_order.split(weekly.SECTION_CLIENT)[1].split(weekly.SECTION_MILESTONES)[0]
            assert (e.title in client_section) == e.needs_client, e.title
            assert client_section.count(e.title) <= 1
    doc = docx.Document(io.BytesIO(payload))
    assert len(doc.inline_shapes) == 3  # timeline, deliverables, issues
    assert len(doc.tables) >= 6


def test_internal_docx_adds_the_internal_section(software):
    headings, text = docx_text(weekly.render_weekly_docx(software, charts={}, internal=True))
    assert headings[0] == "项目内部周报"
    assert weekly.SECTION_INTERNAL in headings
    for sub in (weekly.SUB_OVERDUE, weekly.SUB_RISKS, weekly.SUB_APPROVALS, weekly.SUB_WORKLOAD):
        assert sub in headings
    assert "上线规则清单" in text and "执行阶段里程碑调整申请" in text
    assert "调整规则 R-032 判断条件" in text  # the resolution appears in the document's table


def test_docx_without_charts_has_no_pictures(software):
    payload = weekly.render_weekly_docx(software, charts={})
    doc = docx.Document(io.BytesIO(payload))
    assert len(doc.inline_shapes) == 0


def test_docx_sets_east_asian_fonts(software):
    """Word and WPS pick the Chinese font from w:eastAsia; theme fonts would override it."""

    from docx.oxml.ns import qn

    doc = docx.Document(io.BytesIO(weekly.render_weekly_docx(software, charts={})))
    styles = doc.styles.element
    default = styles.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr")).find(qn("w:rFonts"))
    assert default.get(qn("w:eastAsia")) == "宋体"
    assert default.get(qn("w:eastAsiaTheme")) is None
    for name, font in (("Normal", "宋体"), ("Heading 1", "微软雅黑"), ("Title", "微软雅黑"), ("Table Text", "宋体")):
        rfonts = doc.styles[name].element.rPr.find(qn("w:rFonts"))
        assert rfonts.get(qn("w:eastAsia")) == font, name
        assert rfonts.get(qn("w:asciiTheme")) is None and rfonts.get(qn("w:eastAsiaTheme")) is None
    lang = styles.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr")).find(qn("w:lang"))
    assert lang.get(qn("w:eastAsia")) == "zh-CN"
    section = doc.sections[0]
    assert abs(section.page_width.cm - 21.0) < 0.01 and abs(section.page_height.cm - 29.7) < 0.01


def test_week_period_helpers():
    p = WeeklyPeriod.containing(date(2025, 1, 1))
    assert (p.iso_year, p.iso_week) == (2025, 1)
    assert p.monday == date(2024, 12, 30) and p.sunday == date(2025, 1, 5)
    assert WeeklyPeriod(2020, 53).next() == WeeklyPeriod(2021, 1)
    assert p.key == "2025-W01" and p.label == "2025年第1周"
    assert p.contains(datetime(2025, 1, 5, 23, 59)) and not p.contains(date(2025, 1, 6)) and not p.contains(None)
