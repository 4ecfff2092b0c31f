"""How services and features name things in Chinese replies: days, projects, people, the calendar caveat."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Project
from storage.repo import user_names
from storage.workdays import WorkCalendar

WEEKDAYS = "一二三四五六日"
NOBODY = "未指定"


def fmt_day(day: date | None, today: date | None = None) -> str:
    """``10月9日(周五)``; the year only when it is not this year's; ``按需`` for a per-event document."""
    if day is None:
        return "按需"
    text = f"{day.month}月{day.day}日" if today is None or day.year == today.year else f"{day.year}年{day.month}月{day.day}日"
    return f"{text}(周{WEEKDAYS[day.weekday()]})"


def calendar_caveat(calendar: WorkCalendar, first: date | None, last: date | None) -> str:
    """The one sentence a plan or reply adds when its dates reach into a year whose official holiday schedule is not
    known yet (storage/workdays.py, rule 4): those dates count the statutory holidays, but no 调休 workday."""
    if first is None or last is None:
        return ""
    years = calendar.estimated_years(first, last)
    if not years:
        return ""
    listed = "、".join(f"{year} 年" for year in years)
    return (f"注意：{listed}的官方放假安排尚未导入，其中的日期按法定节日推算、未计调休上班日；"
            "安排公布后请管理员用 dingpm calendar import 导入，再核对计划。")


def project_label(project: Project) -> str:
    return f"{project.code}「{project.name}」"


async def names_of(session: AsyncSession, user_ids: Iterable[str | None]) -> dict[str, str]:
    """Display names by user id; an id never seen shows as itself."""
    ids = {uid for uid in user_ids if uid}
    known = await user_names(session=session, user_ids=ids)
    return {uid: known.get(uid, uid) for uid in ids}


def who(names: dict[str, str], user_id: str | None) -> str:
    return names.get(user_id or "", user_id or NOBODY) if user_id else NOBODY
