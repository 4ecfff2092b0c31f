"""Moving a project's remaining dates by working days: a change's 工期 (``变更 申请 … 工期:+10 从:执行``) once it is
approved, and the days a paused project stood still when it resumes.

What moves: from an anchor day on, every pending deliverable due that day or later, every unfinished phase's planned
start and end on or after it, and the planned end. Submitted and waived deliverables and finished phases keep their
dates. The answer lists what moved (``接口说明文档：4月10日 → 4月24日``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.errors import NotFound, UsageError
from domain.labels import fmt_day
from domain.matching import match_deliverable
from reports.user_text import clip
from storage.models import (
    Deliverable,
    DeliverableStatus,
    Phase,
    Project,
    RegisterEntry,
    utcnow,
)
from storage.repo import list_deliverables, list_phases, write_audit
from storage.workdays import WorkCalendar

MAX_DAYS = 250  # a year of working days: more is a typo
MAX_LISTED = 12
DAYS_EXAMPLE = "变更 申请 增加移动端审核功能 目的:领导要在手机上审批 工期:+10 从:执行"
_DAYS = re.compile(r"^([+-]?)\s*(\d{1,3})\s*(?:个?工作日)?$")
# What people already write in 影响: "工期延后10个工作日". Only this unambiguous form is read as a 工期.
_IMPACT_DAYS = re.compile(r"工期(?:延后|延长|推迟|顺延|增加)\s*(\d{1,3})\s*个?工作日")
# RegisterEntry.extra keys of a change's 工期.
DAYS_KEY, FROM_PHASE_KEY, FROM_DELIVERABLE_KEY = "工期", "工期自阶段", "工期自交付物"


def parse_days(text: str) -> int:
    """``+10`` / ``10`` / ``-3`` / ``10个工作日`` -> working days (later is positive)."""
    found = _DAYS.match(text.strip())
    if found is None or int(found.group(2)) == 0:
        raise UsageError(f"工期应为工作日数，如 工期:+10（延后 10 个工作日）或 工期:-3，收到「{clip(text)}」。"
                         f"例如：{DAYS_EXAMPLE}")
    days = int(found.group(2)) * (-1 if found.group(1) == "-" else 1)
    if abs(days) > MAX_DAYS:
        raise UsageError(f"工期最多调整 {MAX_DAYS} 个工作日，收到 {days}。例如：{DAYS_EXAMPLE}")
    return days


def days_in_impact(impact: str | None) -> int | None:
    """The working days an 影响 like ``工期延后10个工作日`` states, when it states exactly one."""
    found = _IMPACT_DAYS.findall(impact or "")
    return int(found[0]) if len(found) == 1 and 0 < int(found[0]) <= MAX_DAYS else None


def days_text(days: int) -> str:
    return f"工期{'延后' if days > 0 else '提前'} {abs(days)} 个工作日"


async def resolve_from(session: AsyncSession, project: Project, typed: str) -> dict[str, Any]:
    """The ``从`` of a change: a phase by name, else a deliverable (name or #编号), as ``extra`` keys."""
    phases = await list_phases(session=session, project_id=project.id)
    wanted = typed.strip().removesuffix("阶段")
    phase = next((p for p in phases if p.name == wanted), None)
    if phase is not None:
        return {FROM_PHASE_KEY: phase.name}
    deliverables = await list_deliverables(session=session, project_id=project.id)
    try:
        deliverable = match_deliverable(deliverables, typed, example=DAYS_EXAMPLE)
    except NotFound:
        raise NotFound(f"「从」应为阶段（{'、'.join(p.name for p in phases)}）或交付物，没有找到「{clip(typed)}」。"
                       f"例如：{DAYS_EXAMPLE}") from None
    return {FROM_DELIVERABLE_KEY: deliverable.seq}


def from_text(extra: dict[str, Any]) -> str:
    if extra.get(FROM_PHASE_KEY):
        return f"自「{extra[FROM_PHASE_KEY]}」阶段起"
    if extra.get(FROM_DELIVERABLE_KEY):
        return f"自交付物 #{extra[FROM_DELIVERABLE_KEY]} 起"
    return "自批准之日起"


@dataclass(frozen=True, slots=True)
class Moved:
    what: str  # 《接口说明文档》 or 「执行」阶段
    before: date
    after: date
    is_phase: bool = False

    def line(self, today: date) -> str:
        return f"- {self.what}：{fmt_day(self.before, today)} → {fmt_day(self.after, today)}"


def moved_lines(moved: list[Moved], today: date) -> list[str]:
    lines = [m.line(today) for m in moved[:MAX_LISTED]]
    if len(moved) > MAX_LISTED:
        lines.append(f"……另有 {len(moved) - MAX_LISTED} 项，发送「交付物 全部」查看。")
    return lines


async def anchor_of(session: AsyncSession, project: Project, extra: dict[str, Any], today: date) -> date:
    """The first day a change's 工期 moves: its 从 phase's planned start or 从 deliverable's due date, else today."""
    if extra.get(FROM_PHASE_KEY):
        phase = next((p for p in await list_phases(session=session, project_id=project.id)
                      if p.name == extra[FROM_PHASE_KEY]), None)
        if phase is not None and phase.planned_start is not None:
            return phase.planned_start
    if extra.get(FROM_DELIVERABLE_KEY):
        deliverable = next((d for d in await list_deliverables(session=session, project_id=project.id)
                            if d.seq == extra[FROM_DELIVERABLE_KEY]), None)
        if deliverable is not None and deliverable.due_date is not None:
            return deliverable.due_date
    return today


async def move_remaining(session: AsyncSession, calendar: WorkCalendar, project: Project, *, days: int, since: date) -> list[Moved]:
    """Move every open date on or after ``since`` by ``days`` working days (see the module); returns the
    deliverables and phases moved, phases first."""
    if days == 0:
        return []

    def move(day: date | None) -> date | None:
        if day is None or day < since:
            return day
        return calendar.shift(day, days)

    moved: list[Moved] = []
    phases: list[Phase] = await list_phases(session=session, project_id=project.id)
    for phase in phases:
        if phase.actual_end is not None or phase.gate_passed_at is not None:
            continue
        start, end = move(phase.planned_start), move(phase.planned_end)
        if (start, end) != (phase.planned_start, phase.planned_end):
            if end != phase.planned_end and phase.planned_end is not None and end is not None:
                moved.append(Moved(f"「{phase.name}」阶段（计划完成）", phase.planned_end, end, is_phase=True))
            phase.planned_start, phase.planned_end = start, end
            session.add(phase)
    deliverables: list[Deliverable] = await list_deliverables(session=session, project_id=project.id)
    for deliverable in deliverables:
        if deliverable.status != DeliverableStatus.PENDING or deliverable.due_date is None:
            continue
        due = move(deliverable.due_date)
        if due != deliverable.due_date and due is not None:
            moved.append(Moved(f"《{deliverable.name}》", deliverable.due_date, due))
            deliverable.due_date = due
            session.add(deliverable)
    planned_end = move(project.planned_end)
    if planned_end != project.planned_end:
        project.planned_end = planned_end
        session.add(project)
    return moved


async def apply_change_schedule(session: AsyncSession, calendar: WorkCalendar, project: Project, entry: RegisterEntry, *,
                                today: date, actor: str | None) -> list[Moved]:
    """An approved change's 工期: the remaining dates move (audited); returns what moved."""
    extra = entry.extra or {}
    days = extra.get(DAYS_KEY)
    if not isinstance(days, int) or not days:
        return []
    since = await anchor_of(session, project, extra, today)
    moved = await move_remaining(session, calendar, project, days=days, since=since)
    await write_audit(session=session, action="change.schedule_moved", actor_user_id=actor, project_id=project.id,
                      entity="register", entity_id=entry.id, at=utcnow(),
                      after={"change": entry.seq, "days": days, "since": since.isoformat(), "moved": len(moved),
                             "planned_end": str(project.planned_end)})
    return moved


def change_schedule_text(entry: RegisterEntry, moved: list[Moved], today: date) -> str:
    """What an approved change's 工期 did, for the answer or the announcement."""
    extra = entry.extra or {}
    if not extra.get(DAYS_KEY):
        return ""
    if not moved:
        return f"\n\n{days_text(extra[DAYS_KEY])}：没有需要调整的未完成截止日期。"
    head = f"\n\n{days_text(extra[DAYS_KEY])}（{from_text(extra)}），已调整 {len(moved)} 项："
    return "\n".join([head, *moved_lines(moved, today)])


__all__ = [
    "DAYS_EXAMPLE",
    "DAYS_KEY",
    "FROM_DELIVERABLE_KEY",
    "FROM_PHASE_KEY",
    "Moved",
    "anchor_of",
    "apply_change_schedule",
    "change_schedule_text",
    "days_in_impact",
    "days_text",
    "from_text",
    "move_remaining",
    "moved_lines",
    "parse_days",
    "resolve_from",
]
