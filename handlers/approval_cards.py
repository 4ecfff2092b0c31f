"""Approval status cards (立项, 暂停, 变更): one card per approval in the project's internal group, updated in place as
each approver acts, with every approver's name, result and remark.

The card is written from the approval row, whatever moved it: an approval event (after ``handlers.approvals`` applied
it, in the same unit of work) or a command that submitted it (seen through the audit trail by the card refresher).
Each write's business key carries a digest of the data it shows, so the same state is never written twice and a
new state is written once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.context import EventContext, Services
from bot.feature import Feature
from bot.incoming import ApprovalEvent
from bot.outbox import CardWrite, card_values, enqueue, group_target
from domain.approval_flow import approver_chain
from domain.labels import names_of
from reports.user_text import text_literal
from storage.models import Approval, ApprovalResult, ApprovalStatus, Project, utcnow
from storage.repo import get_project
from storage.repo.cards import take_audited_projects
from storage.repo.outbox import get_outbox_by_key

TEMPLATE = "approval_status"
KIND_NAMES = {"立项": "立项", "进度变更": "暂停 / 进度变更", "变更申请": "变更"}
WAITING = "待审批"
CHECKPOINT = "approval_cards:audit"
IN_MOTION = timedelta(days=30)  # approvals older than this were decided long ago: their cards are left alone


def approval_out_track_id(approval: Approval) -> str:
    return f"dpm-approval-{approval.id}"


def _state(approval: Approval) -> tuple[str, str]:
    if approval.status == ApprovalStatus.RUNNING:
        return "审批中", "blue"
    if approval.status == ApprovalStatus.TERMINATED:
        return "已撤销", "grey"
    return ("已通过", "green") if approval.result == ApprovalResult.AGREE else ("已拒绝", "red")


async def approval_card_data(session: AsyncSession, services: Services, project: Project, approval: Approval
                             ) -> dict[str, str]:
    steps = [s for s in approval.steps or () if s.get("action") in ("同意", "拒绝", "撤销")]
    chain = approver_chain(services.config)  # the configured chain: who is still to decide
    acted = {s.get("user") for s in steps}
    waiting = [u for u in chain if u not in acted] if approval.status == ApprovalStatus.RUNNING else []
    names = await names_of(session, [*(s.get("user") for s in steps), *waiting, approval.requester_user_id])
    rows = [{"name": text_literal(names.get(s.get("user") or "", s.get("user") or "审批人")),
             "result": s.get("action") or "", "remark": text_literal(s.get("remark") or "")} for s in steps]
    rows += [{"name": text_literal(names.get(u, u)), "result": WAITING, "remark": ""} for u in waiting]
    state, colour = _state(approval)
    subject = (approval.form_values or {}).get("事由") or (approval.form_values or {}).get("原因") or ""
    return card_values({
        "project": text_literal(f"{project.name}（{project.code}）"),
        "kind": KIND_NAMES.get(str(approval.kind), str(approval.kind)),
        "subject": text_literal(str(subject)[:300] or f"{names.get(approval.requester_user_id, '')} 发起"),
        "state": state, "stateColor": colour, "steps": rows,
    })


async def write_approval_card(session: AsyncSession, services: Services, approval: Approval) -> bool:
    """Queue the card's creation or its update to the approval's current state; False when nothing changed (or
    cards are off, or the project has no internal group)."""
    template = services.cards.get(TEMPLATE) if services.cards else None
    if template is None or approval.project_id is None or approval.id is None:
        return False
    project = await get_project(session=session, project_id=approval.project_id)
    if project is None or not project.internal_conversation_id:
        return False
    data = await approval_card_data(session, services, project, approval)
    out_track_id = approval_out_track_id(approval)
    target = group_target(project.internal_conversation_id)
    create_key = f"card:{out_track_id}:create"
    if await get_outbox_by_key(session=session, key=create_key) is None:
        return await enqueue(session, create_key, target, CardWrite(
            "create", out_track_id, template_id=template.template_id, data=data,
            group=project.internal_conversation_id, preview=f"{project.code} {data['kind']}审批"))
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]
    return await enqueue(session, f"card:{out_track_id}:{digest}", target, CardWrite("update", out_track_id, data=data))


async def refresh_approval_cards(session: AsyncSession, services: Services) -> int:
    """The approvals of the projects audited since the last refresh (a 立项 submitted, a decision applied): their
    cards brought to the approvals' state. Returns the card writes queued."""
    if not (services.cards and services.cards.get(TEMPLATE)):
        return 0
    changed = await take_audited_projects(session=session, checkpoint=CHECKPOINT)
    if not changed:
        return 0
    approvals = (await session.exec(select(Approval).where(col(Approval.project_id).in_(sorted(changed)))
                                    .where(col(Approval.created_at) >= utcnow() - IN_MOTION))).all()
    return sum([await write_approval_card(session, services, a) for a in approvals])



async def on_approval_event(event: ApprovalEvent, ctx: EventContext) -> None:
    """After ``handlers.approvals`` applied the event (registered after it): the card shows the new state."""
    approval = (await ctx.session.exec(select(Approval).where(
        Approval.process_instance_id == event.process_instance_id))).first()
    if approval is not None:
        await write_approval_card(ctx.session, ctx.services, approval)


feature = Feature("approval_cards", on_event=(on_approval_event,), card_refreshes=(refresh_approval_cards,))


__all__ = ["approval_card_data", "approval_out_track_id", "refresh_approval_cards", "write_approval_card"]
