"""The client's acknowledgement of a weekly report, as the weekly report and the 周报确认 commands both use it: the
client group's weekly report card, the report it acknowledges, and the lines the internal weekly report lists."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.outbox import CardWrite, card_values
from reports.user_text import clip, md_literal, text_literal
from storage.models import Project, ReportVariant, WeeklyReport
from storage.repo.cards import report_acks

TEMPLATE = "weekly_report"
SUMMARY_MAX_BYTES = 900  # a card value is at most 1 KB (reference part 2 §1.11)
HINT = "如果按钮无法点按，请在本群回复「已阅」，或「有疑问 您的问题」。"
LABELS = {"acked": ("已确认", "green"), "question": ("有疑问", "red")}


def weekly_out_track_id(project_code: str, week: str) -> str:
    return f"dpm-weekly-{project_code}-{week}"


def _summary(markdown: str) -> str:
    """The report's opening lines, within a card value's size (whole lines; the .docx beside it has the rest)."""
    kept: list[str] = []
    size = 0
    for line in markdown.splitlines():
        size += len(line.encode()) + 1
        if size > SUMMARY_MAX_BYTES:
            kept.append("……（完整内容见周报文件）")
            break
        kept.append(line)
    return "\n".join(kept)


def weekly_report_card(cards: Any, project: Project, week: str, markdown: str, doc_name: str) -> CardWrite | None:
    """The client group's weekly report card, or None (cards off or no template): the markdown message then."""
    template = cards.get(TEMPLATE) if cards else None
    if template is None or not project.client_conversation_id:
        return None
    data = card_values({
        "reportId": f"{project.code}:{week}", "project": text_literal(project.name), "week": week,
        "summary": _summary(markdown),  # the client markdown, its users' text already made literal
        "docName": doc_name, "ackStatus": "", "ackLabel": "待确认", "ackColor": "orange", "ackBy": "",
        "question": "", "hint": HINT,
    })
    # userIdType 2: the client's people press it, and only a unionId names them across organizations.
    return CardWrite("create", weekly_out_track_id(project.code, week), template_id=template.template_id, data=data,
                     group=project.client_conversation_id, preview=f"{project.name} {week} 周报", user_id_type=2)


async def latest_client_report(session: AsyncSession, project_id: int) -> WeeklyReport | None:
    query = (select(WeeklyReport).where(WeeklyReport.project_id == project_id,
                                        WeeklyReport.variant == ReportVariant.CLIENT,
                                        col(WeeklyReport.sent_at).is_not(None))
             .order_by(col(WeeklyReport.iso_year).desc(), col(WeeklyReport.iso_week).desc()).limit(1))
    return (await session.exec(query)).first()


def week_key(report: WeeklyReport) -> str:
    return f"{report.iso_year}-W{report.iso_week:02d}"


async def acknowledgement_lines(session: AsyncSession, project_id: int, week: str) -> list[str]:
    """Who confirmed (or asked about) a week's report, for the internal weekly report; users' text literal."""
    return [f"- {md_literal(a.person_name)}：{LABELS[a.status][0]}" + (f"：{md_literal(clip(a.question or '', 200))}"
                                                                     if a.status == "question" else "")
            for a in await report_acks(session=session, project_id=project_id, week=week)]


__all__ = ["HINT", "LABELS", "TEMPLATE", "acknowledgement_lines", "latest_client_report", "week_key",
           "weekly_out_track_id", "weekly_report_card"]
