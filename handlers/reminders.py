"""Overdue reminders and escalation: the daily job on Chinese working days at ``schedule.reminder_time``.

The ladder (texts from ``reports.reminders``), per 已立项/进行中 project (paused and closed projects are never nagged):

1. the working day before a deliverable falls due: a heads-up 1:1 to its owner;
2. once it is overdue (a working day has passed since its due date): one digest in the internal group and a 1:1 to
   each owner (the group robot cannot @ anyone, so a 1:1 is the only message that reaches the person); deliverables
   without an owner go to the PM;
3. ``schedule.escalate_to_pm_after_days`` working days overdue: a 1:1 to the PM;
4. ``schedule.escalate_to_leaders_after_days`` working days overdue: the leaders (``organization.leaders``) get one
   message a day listing every such project (not one per project: a busy company would send them dozens).

Each message is one outbox row whose key names the project, the recipient and the day
(``overdue:{project}:{owner}:{date}``, ``overdue-digest:{project}:{date}``, ``escalate-pm:{project}:{date}``,
``escalate-leaders:{date}``, ``duesoon:{project}:{owner}:{due}``), so every deliverable is mentioned at most once per
day to each recipient, and the heads-up once per due date, even if the job ran twice. Messages are grouped per
recipient and project rather than per deliverable: five overdue documents are one message, not five.

Rest days: the schedule only fires on working days (holidays skipped, 调休 Saturdays kept), and a catch-up that lands
on a rest day (the bot came back on a Saturday) sends nothing: the next working day's run covers it.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.feature import Feature
from bot.jobs import JobRegistry, JobRunContext, daily
from bot.outbox import Target, enqueue, group_target, users_target
from domain.replies import Markdown
from domain.report_data import (
    due_deliverable_info,
    due_project_summary,
    map_chunks_off_loop,
    overdue_working_days,
)
from reports.model import DeliverableInfo, ProjectSummary
from reports.reminders import (
    render_due_soon_reminder,
    render_leader_escalation,
    render_overdue_digest,
    render_owner_reminder,
    render_pm_escalation,
)
from storage.models import is_external_key
from storage.repo.report_queries import SCAN_CHUNK_ROWS, DeliverableDue, pending_deliverables_due_chunks

jobs = JobRegistry()

MESSAGES_PER_TRANSACTION = 200  # short write transactions: the relay starts sending while the rest is queued


@dataclass(frozen=True, slots=True)
class Reminder:
    """One message the job will queue."""

    key: str
    target: Target
    title: str
    text: str
    kind: str  # duesoon / overdue / digest / escalate-pm / escalate-leaders (for counting and tests)
    project: str  # the project's code; empty for the leaders' message, which lists several


@dataclass(frozen=True, slots=True)
class _ProjectsPlan:
    """What one chunk of whole projects plans: their own messages, and each project's overdue deliverables (the
    leaders' message picks, from every chunk, the projects late beyond their threshold)."""

    messages: list[Reminder]
    overdue: list[tuple[ProjectSummary, list[DeliverableInfo]]]


def plan_reminders(
    rows: Sequence[DeliverableDue],
    *,
    today: date,
    calendar: Any,
    pm_after_days: int,
    leaders_after_days: int,
    leaders: Sequence[str] = (),
) -> list[Reminder]:
    """Every message due today for the scanned deliverables (pure: no database, no clock)."""
    part = _plan_projects(rows, today=today, calendar=calendar, pm_after_days=pm_after_days)
    return _with_leader_escalation([part], today=today, leaders=leaders, leaders_after_days=leaders_after_days)


def _plan_projects(
    rows: Sequence[DeliverableDue],
    *,
    today: date,
    calendar: Any,
    pm_after_days: int,
) -> _ProjectsPlan:
    """The messages of each project of ``rows`` (whole projects, ordered by project), and its overdue deliverables."""
    day = today.isoformat()
    by_project: dict[int, list[DeliverableDue]] = defaultdict(list)
    for row in rows:
        by_project[row.project_id].append(row)
    # Tens of thousands of rows share a few hundred due dates and owners: lateness and targets once for each.
    lateness: dict[date, int] = {}
    targets: dict[str, Target] = {}

    def to_user(user_id: str, row: DeliverableDue) -> Target | None:
        # A client contact gets no 1:1 message from the platform: theirs goes to the project's client group.
        if is_external_key(user_id):
            return group_target(row.client_conversation_id) if row.client_conversation_id else None
        target = targets.get(user_id)
        if target is None:
            target = targets[user_id] = users_target(user_id)
        return target

    plan: list[Reminder] = []
    overdue_by_project: list[tuple[ProjectSummary, list[DeliverableInfo]]] = []
    for project_rows in by_project.values():
        first = project_rows[0]
        project = due_project_summary(first)
        code = first.project_code
        overdue: list[tuple[DeliverableDue, DeliverableInfo]] = []
        soon: list[tuple[DeliverableDue, DeliverableInfo]] = []
        for row in project_rows:
            late = lateness.get(row.due)
            if late is None:
                late = lateness[row.due] = overdue_working_days(calendar, row.due, today)
            if late:
                overdue.append((row, due_deliverable_info(row, late=late)))
            elif row.due > today:
                soon.append((row, due_deliverable_info(row, late=0)))

        # 1. heads-up, per owner and due date
        heads_up: dict[tuple[str, date], list[tuple[DeliverableDue, DeliverableInfo]]] = defaultdict(list)
        for row, info in soon:
            owner = row.owner_user_id or first.pm_user_id
            if owner:
                heads_up[(owner, row.due)].append((row, info))
        for (owner, due), items in heads_up.items():
            if (target := to_user(owner, first)) is None:
                continue
            title, text = render_due_soon_reminder(project, _owner_name(items, owner), [i for _, i in items], due=due)
            plan.append(Reminder(f"duesoon:{code}:{owner}:{due.isoformat()}", target, title, text, "duesoon", code))
        if not overdue:
            continue
        infos = [i for _, i in overdue]
        overdue_by_project.append((project, infos))

        # 2. the internal group's digest, and each owner's own list
        if first.internal_conversation_id:
            title, text = render_overdue_digest(project, infos, today=today)
            plan.append(Reminder(f"overdue-digest:{code}:{day}", group_target(first.internal_conversation_id),
                                 title, text, "digest", code))
        by_owner: dict[str, list[tuple[DeliverableDue, DeliverableInfo]]] = defaultdict(list)
        for row, info in overdue:
            owner = row.owner_user_id or first.pm_user_id
            if owner:
                by_owner[owner].append((row, info))
        for owner, items in by_owner.items():
            if (target := to_user(owner, first)) is None:
                continue
            title, text = render_owner_reminder(project, _owner_name(items, owner), [i for _, i in items], today=today)
            plan.append(Reminder(f"overdue:{code}:{owner}:{day}", target, title, text, "overdue", code))

        # 3. escalation to the PM (4., the leaders', is one message for all projects: _with_leader_escalation)
        to_pm = [i for i in infos if i.overdue_working_days >= pm_after_days]
        if to_pm and first.pm_user_id:
            title, text = render_pm_escalation(project, to_pm, today=today)
            plan.append(Reminder(f"escalate-pm:{code}:{day}", users_target(first.pm_user_id), title, text,
                                 "escalate-pm", code))
    return _ProjectsPlan(plan, overdue_by_project)


def _with_leader_escalation(
    parts: Sequence[_ProjectsPlan], *, today: date, leaders: Sequence[str], leaders_after_days: int
) -> list[Reminder]:
    """The projects' messages, then the leaders' one message listing every project late beyond their threshold (the
    renderer applies it)."""
    plan = [reminder for part in parts for reminder in part.messages]
    overdue = [entry for part in parts for entry in part.overdue]
    if leaders and any(d.overdue_working_days >= leaders_after_days for _, items in overdue for d in items):
        title, text = render_leader_escalation(overdue, today=today, threshold_working_days=leaders_after_days)
        plan.append(Reminder(f"escalate-leaders:{today.isoformat()}", users_target(leaders), title, text,
                             "escalate-leaders", ""))
    return plan


def _owner_name(items: Sequence[tuple[DeliverableDue, DeliverableInfo]], owner: str) -> str:
    row = items[0][0]
    if row.owner_user_id == owner:
        return row.owner_name or owner
    return row.pm_name or owner  # the PM stands in for deliverables without an owner


async def scan_reminders(
    session: AsyncSession, *, today: date, calendar: Any, config: Any, chunk_rows: int = SCAN_CHUNK_ROWS
) -> list[Reminder]:
    """One statement: the overdue deliverables and those due by the next working day, streamed in chunks of whole
    projects of about ``chunk_rows`` rows, so that only one chunk of rows is alive at a time; each chunk's messages
    are worded in a worker thread (tens of thousands of messages with 10,000 projects: not on the event loop), then
    the leaders' message from what every chunk found."""
    chunks = pending_deliverables_due_chunks(
        session=session, before=today, due_from=today + timedelta(days=1), due_until=calendar.next_workday(today),
        chunk_rows=chunk_rows,
    )
    schedule = config.schedule
    plan = functools.partial(_plan_projects, today=today, calendar=calendar,
                             pm_after_days=schedule.escalate_to_pm_after_days)
    parts = await map_chunks_off_loop(chunks, lambda chunk: [plan(chunk)])
    return await asyncio.to_thread(_with_leader_escalation, parts, today=today,
                                   leaders=tuple(config.organization.leaders),
                                   leaders_after_days=schedule.escalate_to_leaders_after_days)


@jobs.scheduled("overdue_reminders", daily(at=lambda cfg: cfg.schedule.reminder_time, workdays_only=True))
async def overdue_reminders_job(run: JobRunContext) -> None:
    services = run.services
    today = run.today
    if not services.calendar.is_workday(today):
        run.log.info("%s is a rest day: no reminders (the next working day's run covers it)", today)
        return
    async with services.database.read() as session:
        plan = await scan_reminders(session, today=today, calendar=services.calendar, config=run.config)
    queued = 0
    for start in range(0, len(plan), MESSAGES_PER_TRANSACTION):
        async with services.outbox.unit_of_work() as work:
            for reminder in plan[start:start + MESSAGES_PER_TRANSACTION]:
                queued += await enqueue(work.session, reminder.key, reminder.target,
                                        Markdown(reminder.title, reminder.text))
    run.log.info("%d reminders planned, %d queued", len(plan), queued)


feature = Feature("reminders", jobs=jobs)

__all__ = ["feature", "Reminder", "jobs", "overdue_reminders_job", "plan_reminders", "scan_reminders"]
