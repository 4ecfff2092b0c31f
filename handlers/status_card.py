"""The live status card (项目状态卡) in every bound internal group: pinned at the top (吊顶) where the group allows it,
otherwise posted in the chat, updated in place, and re-posted after a quiet day so that it stays in sight.

It shows the phase, progress, overdue count, the next three due items with their owners and the approvals waiting,
with three buttons: 交付物, 周报预览 and 推进 (the same commands as typed; ``handlers.card_actions``).

Every change that shows on the card is audited in its command's own transaction (``record_change``), so the audit
trail is the card's dirty mark: ``refresh_status_cards`` (run by ``bot.card_refresher`` shortly after commits, and
for every card after the daily scan) reads which projects were audited since its checkpoint, renders each one's
card data once, and queues an update only when the data differ from what the card shows. A burst of changes
therefore makes one update, and a day's scan updates each changed card once, paced by the outbox under the card
APIs' QPS limit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.card_press import CardAction
from bot.context import Services
from bot.feature import Feature
from bot.jobs import JobRegistry, JobRunContext, daily
from bot.outbox import CardWrite, card_values, enqueue, group_target
from domain.labels import names_of, who
from domain.report_data import counts_toward_progress
from handlers._common import gate_progress_percent, overdue_days
from reports.user_text import text_literal
from storage.models import (
    Approval,
    ApprovalStatus,
    Deliverable,
    DeliverableStatus,
    Project,
    ProjectStatus,
    StatusCard,
    utcnow,
)
from storage.repo.cards import insert_status_card, status_cards, take_audited_projects

log = logging.getLogger("dingpm.cards")

TEMPLATE = "project_status"
CHECKPOINT = "status_cards:audit"
DUE_ITEMS_SHOWN = 3
WARN_WITHIN_DAYS = 3  # a due date this close makes the card 预警
UNCHANGING = ("updatedAt",)
PROJECTS_PER_TRANSACTION = 50  # the daily scan's write transactions  # shown on the card but not a reason to update it


def status_out_track_id(project: Project, serial: int) -> str:
    return f"dpm-status-{project.code}-{serial}"


async def status_card_data(session: AsyncSession, project: Project, *, today: date, calendar: Any, now_local: datetime
                           ) -> dict[str, str]:
    """The card's public data, every value a string (the template's variable contract, ``bot/cards``)."""
    deliverables = list((await session.exec(
        select(Deliverable).where(Deliverable.project_id == project.id).order_by(Deliverable.seq))).all())
    waiting = int((await session.exec(select(func.count()).select_from(Approval).where(
        Approval.project_id == project.id, Approval.status == ApprovalStatus.RUNNING))).one())
    running = project.status in (ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS)
    overdue = [d for d in deliverables if running and overdue_days(d, today, calendar) > 0]
    due = sorted((d for d in deliverables if d.status == DeliverableStatus.PENDING and d.due_date
                  and counts_toward_progress(d)), key=lambda d: (d.due_date, d.seq))[:DUE_ITEMS_SHOWN]
    names = await names_of(session, [d.owner_user_id for d in due])
    if project.status == ProjectStatus.PAUSED:
        health, colour = "已暂停", "grey"
    elif overdue:
        health, colour = "逾期", "red"
    elif any(d.due_date and d.due_date <= today + timedelta(days=WARN_WITHIN_DAYS) for d in due):
        health, colour = "预警", "orange"
    else:
        health, colour = "正常", "green"
    # Names and titles are users' text: shown literally (no address in them turns into a link).
    items = [{"name": text_literal(d.name), "owner": text_literal(who(names, d.owner_user_id)),
              "due": f"{d.due_date.month}月{d.due_date.day}日" + ("（已逾期）" if d in overdue else "")}
             for d in due]
    return card_values({
        "projectId": project.code,
        "project": text_literal(f"{project.name}（{project.code}）"),
        "phase": text_literal(project.current_phase or "—"),
        "progress": str(round(gate_progress_percent(deliverables))),
        "health": f"{health} · {project.status}",
        "healthColor": colour,
        "overdueCount": str(len(overdue)),
        "approvalsWaiting": str(waiting),
        "dueItems": items,
        "updatedAt": now_local.strftime("%m-%d %H:%M"),
    })


def _digest(data: dict[str, str]) -> str:
    shown = {k: v for k, v in data.items() if k not in UNCHANGING}
    return hashlib.sha256(json.dumps(shown, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def refresh_status_cards(session: AsyncSession, services: Services) -> int:
    """After commits: the cards of the projects audited since the last refresh, in this write transaction (the
    outbox rows go out after its commit). Returns the number of card writes queued."""
    if not (services.cards and services.cards.get(TEMPLATE)):
        return 0
    changed = await take_audited_projects(session=session, checkpoint=CHECKPOINT)
    if not changed:
        return 0
    return await refresh_projects(session, services, changed, daily=False)


async def refresh_projects(session: AsyncSession, services: Services, audited: dict[int, int] | list[int], *,
                           daily: bool) -> int:
    """Bring these projects' status cards up to date (``audited``: project id -> its newest audit row, or just the
    ids): each card rendered once, an update queued only when its data differ; ``daily``: also re-post the cards a
    group would not pin once they are a day old."""
    template = services.cards.get(TEMPLATE) if services.cards else None
    if template is None or not audited:
        return 0
    changed = audited if isinstance(audited, dict) else {}
    ids = sorted(audited)
    cards = {c.project_id: c for c in await status_cards(session=session, project_ids=ids, lock=True)}
    projects = (await session.exec(select(Project).where(col(Project.id).in_(ids)))).all()
    newest = max(changed.values(), default=0)
    today = services.clock.today()
    now_local = services.clock.now().astimezone(services.config.tz)
    queued = 0
    renew_after = services.config.cards.pin_days - 1
    for project in projects:
        card = cards.get(project.id)
        serial = card.serial + 1 if card is not None else 1  # a new instance is a new card: a new outTrackId
        group = project.internal_conversation_id if project.status != ProjectStatus.CLOSED else None
        if card is not None and card.conversation_id != group:
            queued += await _retire(session, card)
            await session.delete(card)
            await session.flush()
            card = None
        if not group:
            continue
        data = await status_card_data(session, project, today=today, calendar=services.calendar,
                                      now_local=now_local)
        digest = _digest(data)
        if card is None:
            queued += await _post(session, services, template.template_id, project, group, data, digest,
                                  serial=serial, audit_id=changed.get(project.id, newest))
        elif daily and ((card.pinned is False and card.posted_on < today)
                        or (card.pinned and (today - card.posted_on).days >= renew_after)):
            # Not pinned: yesterday's card has scrolled away, post today's at the bottom of the chat. Pinned: its
            # pin expires tomorrow, pin a fresh one (the old one expires by itself).
            await session.delete(card)
            await session.flush()
            queued += await _post(session, services, template.template_id, project, group, data, digest,
                                  serial=serial, audit_id=max(card.audit_id, changed.get(project.id, 0)))
        elif digest != card.data_hash:
            card.version += 1
            card.data_hash = digest
            card.audit_id = max(card.audit_id, changed.get(project.id, 0))
            session.add(card)
            await enqueue(session, f"card:{card.out_track_id}:v{card.version}", group_target(group),
                          CardWrite("update", card.out_track_id, data=data))
            queued += 1
    return queued


async def _post(session: AsyncSession, services: Services, template_id: str, project: Project, group: str,
                data: dict[str, str], digest: str, *, serial: int, audit_id: int) -> int:
    out_track_id = status_out_track_id(project, serial)
    card = StatusCard(project_id=project.id, conversation_id=group, out_track_id=out_track_id, serial=serial,
                      data_hash=digest, audit_id=audit_id, posted_on=services.clock.today(), updated_at=utcnow())
    if not await insert_status_card(session=session, card=card):
        return 0  # another process posted it meanwhile
    # DingTalk compares the expiry with its own (real) clock, whatever day the bot's business clock says it is.
    expires_ms = int((time.time() + services.config.cards.pin_days * 86400) * 1000)
    await enqueue(session, f"card:{out_track_id}:create", group_target(group), CardWrite(
        "create", out_track_id, template_id=template_id, data=data, group=group, pin=group,
        pin_expires_ms=expires_ms, preview=f"{project.code} 项目状态", status_card=True))
    return 1


async def _retire(session: AsyncSession, card: StatusCard) -> int:
    """The project left the group (rebound, or closed): take its pinned card down."""
    if not card.pinned:
        return 0
    await enqueue(session, f"card:{card.out_track_id}:close", group_target(card.conversation_id),
                  CardWrite("close_top", card.out_track_id, pin=card.conversation_id))
    return 1


__all__ = ["TEMPLATE", "refresh_status_cards", "status_card_data", "status_out_track_id"]


# ---- wiring -------------------------------------------------------------------------------------------------------

jobs = JobRegistry()


@jobs.scheduled("status_cards_daily", daily(at=lambda cfg: cfg.schedule.reminder_time))
async def status_cards_daily_job(run: JobRunContext) -> None:
    """The day's scan: every card rendered once (dates moved items into 逾期), changed ones updated, cards the group
    would not pin re-posted."""
    services = run.services
    if not (services.cards and services.cards.get(TEMPLATE)):
        return
    async with services.database.read() as session:
        # Every card, and every bound group still without one (cards switched on for projects bound before).
        ids = set((await session.exec(select(StatusCard.project_id))).all())
        ids |= set((await session.exec(select(Project.id).where(col(Project.internal_conversation_id).is_not(None),
                                                                Project.status != ProjectStatus.CLOSED))).all())
    queued = 0
    ordered = sorted(int(i) for i in ids)
    for start in range(0, len(ordered), PROJECTS_PER_TRANSACTION):
        # Short write transactions: commands go on meanwhile, and the relay sends while the rest is rendered.
        async with services.outbox.unit_of_work() as work:
            queued += await refresh_projects(work.session, services, ordered[start:start + PROJECTS_PER_TRANSACTION],
                                             daily=True)
    run.log.info("status cards: %d projects, %d card writes queued", len(ordered), queued)


# The card's buttons are the typed commands, pressed: 项目:编号 names the card's project wherever it is pressed.
feature = Feature("status_card", jobs=jobs, card_refreshes=(refresh_status_cards,), card_actions=(
    CardAction("deliverables", lambda press: f"交付物 项目:{press.params.get('projectId', '')}"),
    CardAction("report_preview", lambda press: f"周报 预览 项目:{press.params.get('projectId', '')}"),
    CardAction("advance", lambda press: f"推进 项目:{press.params.get('projectId', '')}"),
))

