"""审批: a project's OA approvals, the approval events, and the reconciliation that heals missed ones.

Events (``bpms_task_change`` / ``bpms_instance_change``) come through the inbox, one unit of work each:

* an approver agreed (task ``finish``/``agree``): the step is shown in the internal group, with who is next;
* a refusal (task ``finish``/``refuse``) decides the instance at once (DingTalk ends it on any refusal); the instance
  ``finish`` that follows finds it applied;
* instance ``finish`` (agree/refuse) and ``terminate``/``delete`` (withdrawn) are final states.

Events of instances we did not start (other forms, hand-started ones) are ignored. A final state is applied once,
whichever of the event, a duplicate of it, the reconciler or ``审批 <编号>`` brings it first
(``domain.approval_flow.apply_decision``).

The reconciler (every 10 minutes, on the scheduler's leader) polls the instances nobody has heard of for
``approvals.reconcile_after_minutes`` and applies their final state if the event was missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.args import Param
from bot.context import Context, EventContext
from bot.dingtalk.errors import DingTalkError
from bot.feature import Feature
from bot.incoming import APPROVAL_EVENT_TYPES, ApprovalEvent, Incoming
from bot.jobs import JobRegistry, JobRunContext, every
from bot.roles import MEMBERS
from bot.router import Router
from domain.approval_flow import (
    Decision,
    Step,
    announce,
    apply_decision,
    approval_link,
    approver_chain,
    link_text,
    note_step,
)
from domain.approval_forms import FORMS, approvals_enabled, provision_forms
from domain.errors import NotFound
from domain.labels import names_of, project_label
from domain.replies import Markdown, Reply
from handlers._project import project_middleware
from reports.user_text import clip, md_literal
from storage.models import (
    Approval,
    ApprovalKind,
    ApprovalResult,
    ApprovalStatus,
    Project,
)
from storage.repo import get_approval_by_instance, get_outbox_by_key, get_project
from storage.repo.approval_trail import (
    approvals_to_reconcile,
    project_approvals,
    touch_approval,
)

log = logging.getLogger("dingpm.approvals")

router = Router("approvals", title="审批")
jobs = JobRegistry()

TASK_EVENT, INSTANCE_EVENT = "bpms_task_change", "bpms_instance_change"
RECONCILE_EVERY = timedelta(minutes=10)
RECONCILE_BATCH = 50  # instances polled per run; the rest wait for the next run (DingTalk's QPS is shared)
FORMS_EVERY = timedelta(hours=12)
OPERATION_NAMES = {
    "START_PROCESS_INSTANCE": "发起审批",
    "TERMINATE_PROCESS_INSTANCE": "撤销审批",
    "FINISH_PROCESS_INSTANCE": "审批结束",
    "ADD_REMARK": "评论",
    "REDIRECT_TASK": "转交",
    "REDIRECT_PROCESS": "转交",
}


# ---- reading DingTalk's instance detail ---------------------------------------------------------------------------


def api_time(value: Any) -> datetime | None:
    """``"2022-08-31T11:52Z"`` (the detail's UTC minute) -> naive UTC; None when absent or unreadable."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(value.strip(), "%Y-%m-%dT%H:%MZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return None
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


def _steps(records: list[dict[str, Any]]) -> tuple[Step, ...]:
    steps = []
    for record in records:
        if record.get("type") == "EXECUTE_TASK_NORMAL" and record.get("result") in ("AGREE", "REFUSE"):
            verdict = "同意" if record["result"] == "AGREE" else "拒绝"
            steps.append(Step(str(record.get("userId") or ""), verdict, str(record.get("remark") or ""),
                              api_time(record.get("date"))))
    return tuple(s for s in steps if s.user)


def decision_from_detail(detail: dict[str, Any]) -> Decision | None:
    """The final state an instance detail (§8.2) shows; None while it is still running (or unreadable)."""
    status = str(detail.get("status") or "").upper()
    records = [r for r in detail.get("operationRecords") or () if isinstance(r, dict)]
    steps = _steps(records)
    finished = api_time(detail.get("finishTime"))
    agreed = tuple(s.user for s in steps if s.verdict == "同意")
    if status == "COMPLETED":
        if str(detail.get("result") or "").lower() == "refuse":
            refusal = next((s for s in reversed(steps) if s.verdict == "拒绝"), None)
            return Decision(ApprovalStatus.COMPLETED, ApprovalResult.REFUSE, finished,
                            refusal.user if refusal else None, (refusal.remark or None) if refusal else None, agreed,
                            steps)
        return Decision(ApprovalStatus.COMPLETED, ApprovalResult.AGREE, finished, agreed[-1] if agreed else None,
                        None, agreed, steps)
    if status in ("TERMINATED", "CANCELED"):
        revoke = next((r for r in reversed(records) if r.get("type") == "TERMINATE_PROCESS_INSTANCE"), {})
        return Decision(ApprovalStatus.TERMINATED, None, finished,
                        str(revoke.get("userId") or detail.get("originatorUserId") or "") or None,
                        str(revoke.get("remark") or "") or None, agreed, steps)
    return None


async def _detail(services: Any, instance_id: str) -> dict[str, Any] | None:
    try:
        return await services.dingtalk.get_process_instance(instance_id)
    except DingTalkError as exc:
        log.info("instance detail of %s unavailable: %s", instance_id, exc)
        return None


# ---- events -------------------------------------------------------------------------------------------------------


async def apply_approval_event(services: Any, session: AsyncSession, event: ApprovalEvent) -> str:
    """Apply one approval event in the caller's unit of work; returns what happened (for the log and the tests):
    ``ignored`` (not ours, or nothing to do), ``step``, ``applied``, ``duplicate``, ``late`` (a step that arrives
    after the decision)."""
    if event.event_type not in APPROVAL_EVENT_TYPES or not event.process_instance_id:
        return "ignored"
    approval = await get_approval_by_instance(session=session, process_instance_id=event.process_instance_id)
    if approval is None or (event.process_code and event.process_code != approval.process_code):
        return "ignored"
    result = (event.result or "").lower()
    if event.event_type == TASK_EVENT:
        if event.change == "finish" and result == "agree":
            return await _step_agreed(services, session, approval, event)
        if event.change != "finish" or result != "refuse":
            return "ignored"  # start, cancel, comment, redirect: the steps that matter are shown on finish
        decision = Decision(ApprovalStatus.COMPLETED, ApprovalResult.REFUSE, event.occurred_at, event.staff_id,
                            event.remark)
    elif event.change == "finish" and result in ("agree", "refuse"):
        decision = Decision(ApprovalStatus.COMPLETED,
                            ApprovalResult.AGREE if result == "agree" else ApprovalResult.REFUSE, event.occurred_at)
        # The instance event names neither the approvers nor a refusal's remark, and a task event may still be on
        # its way (or lost): the detail has them all. One read per decided instance, only when it is applied here.
        if approval.status == ApprovalStatus.RUNNING:
            detail = await _detail(services, approval.process_instance_id)
            polled = decision_from_detail(detail) if detail else None
            if polled is not None and polled.key == decision.key:
                decision = Decision(decision.status, decision.result, decision.decided_at or polled.decided_at,
                                    polled.decider, polled.remark, polled.agreed, polled.steps)
    elif event.change in ("terminate", "delete"):
        decision = Decision(ApprovalStatus.TERMINATED, None, event.occurred_at, event.staff_id, event.remark)
    else:
        return "ignored"
    applied = await apply_decision(services, session, approval, decision, source=f"event:{event.event_type}")
    return "applied" if applied else "duplicate"


async def _next_approvers(services: Any, approval: Approval, approver: str | None) -> tuple[str, ...]:
    """Who decides next: the following person of the configured chain (the steps the bot asked for); for a form's
    own flow (no chain, or an approver outside it) the running tasks of the instance detail."""
    chain = approver_chain(services.config)
    if approver in chain:
        index = chain.index(approver)
        return chain[index + 1:index + 2]
    detail = await _detail(services, approval.process_instance_id)
    if detail is None or str(detail.get("status") or "").upper() != "RUNNING":
        return ()
    return tuple(dict.fromkeys(str(t.get("userId")) for t in detail.get("tasks") or ()
                               if isinstance(t, dict) and t.get("status") in ("NEW", "RUNNING")
                               and t.get("userId") and t.get("userId") != approver))


async def _step_agreed(services: Any, session: AsyncSession, approval: Approval, event: ApprovalEvent) -> str:
    key = f"approval:{approval.process_instance_id}:task:{event.task_id or event.event_id}:agree"
    if await get_outbox_by_key(session=session, key=key) is not None:
        return "duplicate"
    if approval.status != ApprovalStatus.RUNNING:
        # Overtaken by the decision (events run concurrently, or the poll was first): its message named everyone.
        name = (await names_of(session, [event.staff_id])).get(event.staff_id or "", "审批人")
        if note_step(approval, name, _agreement(services, event)):
            session.add(approval)
        return "late"
    next_ids = await _next_approvers(services, approval, event.staff_id)
    names = await names_of(session, [event.staff_id, *next_ids])
    name = names.get(event.staff_id or "", "审批人")
    note_step(approval, name, _agreement(services, event))
    approval.updated_at = services.clock.now()
    session.add(approval)
    project = await get_project(session=session, project_id=approval.project_id) if approval.project_id else None
    form = FORMS[ApprovalKind(approval.kind)].name
    body = f"✅ {md_literal(name)} 已同意「{form}」" + (f"，意见：{md_literal(event.remark)}" if event.remark else "") + "。"
    if next_ids:
        body += f"\n\n下一位审批人：{'、'.join(md_literal(names[u]) for u in next_ids)}"
    await announce(session, project, approval, key, f"{form}：{name}已同意", body)
    return "step"


def _agreement(services: Any, event: ApprovalEvent) -> Step:
    return Step(event.staff_id or "", "同意", event.remark or "", event.occurred_at or services.clock.now())


async def on_approval_event(event: ApprovalEvent, ctx: EventContext) -> None:
    """The inbox's hook: each event in its own unit of work."""
    outcome = await apply_approval_event(ctx.services, ctx.session, event)
    log.info("approval event %s %s/%s instance=%s -> %s trace_id=%s", event.event_type, event.change, event.result,
             event.process_instance_id, outcome, ctx.trace_id)


# ---- reconciliation -----------------------------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    polled: int = 0
    applied: int = 0
    still_running: int = 0
    failed: int = 0


async def reconcile_approvals(
    services: Any, *, now: datetime | None = None,
    unit_of_work: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
) -> ReconcileResult:
    """Poll the running approvals quiet for ``approvals.reconcile_after_minutes`` and apply the final state of those
    DingTalk has decided. Each instance is polled outside any transaction, then applied in a unit of work of its own.

    ``unit_of_work``: what opens a unit of work (default ``services.outbox.unit_of_work``: its rows are sent at once).
    """
    now = now or services.clock.now()
    quiet = timedelta(minutes=services.config.approvals.reconcile_after_minutes)
    open_work = unit_of_work or services.outbox.unit_of_work
    async with services.database.read() as session:
        due = [(a.id, a.process_instance_id)
               for a in await approvals_to_reconcile(session=session, quiet_since=now - quiet, limit=RECONCILE_BATCH)]
    result = ReconcileResult()
    for approval_id, instance_id in due:
        result.polled += 1
        try:
            detail = await services.dingtalk.get_process_instance(instance_id)
        except DingTalkError as exc:
            # Unknown instance or DingTalk away: look again after another quiet period rather than every run.
            log.warning("reconcile: instance %s could not be read: %s", instance_id, exc)
            result.failed += 1
            detail = None
        decision = decision_from_detail(detail) if detail is not None else None
        async with open_work() as work:
            approval = await work.session.get(Approval, approval_id, populate_existing=True)
            if approval is None or approval.status != ApprovalStatus.RUNNING:
                continue
            if decision is None:
                result.still_running += detail is not None
                await touch_approval(session=work.session, approval_id=approval_id, now=now)
                continue
            if await apply_decision(services, work.session, approval, decision, source="reconcile"):
                result.applied += 1
    return result


@jobs.scheduled("approval_reconcile", every(RECONCILE_EVERY), timeout=300)
async def approval_reconcile_job(run: JobRunContext) -> None:
    if not approvals_enabled(run.config):
        return
    result = await reconcile_approvals(run.services, now=run.now_utc)
    if result.polled:
        run.log.info("polled %d running approvals: %d decided and applied, %d still running, %d unreadable",
                     result.polled, result.applied, result.still_running, result.failed)


@jobs.scheduled("approval_forms", every(FORMS_EVERY), timeout=120)
async def approval_forms_job(run: JobRunContext) -> None:
    """At start (the leader's catch-up) and twice a day: the forms exist, or the log says what to configure."""
    if not approvals_enabled(run.config) or run.services.dingtalk is None:
        return
    for status in await provision_forms(run.config, run.services.dingtalk):
        (run.log.info if status.process_code else run.log.warning)("approval form %s", status.line())


# ---- 审批 --------------------------------------------------------------------------------------------------------


def approval_state(approval: Approval) -> str:
    if approval.status == ApprovalStatus.RUNNING:
        return "审批中"
    if approval.status == ApprovalStatus.TERMINATED:
        return "已撤销"
    return "已驳回" if approval.result == ApprovalResult.REFUSE else "已通过"


def _local(value: datetime | None, tz: Any, fmt: str = "%m-%d %H:%M") -> str:
    if value is None:
        return ""
    return value.replace(tzinfo=timezone.utc).astimezone(tz).strftime(fmt)


def _last_remark(approval: Approval) -> str:
    lines = (approval.remarks or "").splitlines()
    return f" · {md_literal(clip(lines[-1], 40))}" if lines and approval.status != ApprovalStatus.RUNNING else ""


@router.command(
    "审批",
    aliases=("审批记录", "approvals"),
    summary="查看本项目的钉钉审批（立项、进度变更、变更申请）；加序号查看进度与处理记录",
    examples=("审批", "审批 2"),
    params=(Param.word("编号", positional=True, max_length=64, example="2",
                       help="审批列表里的序号，或钉钉审批编号"),),
    roles=MEMBERS,
    needs_project=True,
    action="查看审批",
    # Not reads_only: 「审批 2」 asks DingTalk for the instance and applies a decision the events missed.
)
async def show_approvals(incoming: Incoming, ctx: Context) -> Reply:
    project: Project = ctx.project
    approvals = await project_approvals(session=ctx.session, project_id=project.id)
    wanted = (ctx.args.text("编号") or "").lstrip("#＃")
    if wanted:
        return await _approval_detail(ctx, project, approvals, wanted)
    if not approvals:
        hint = "项目经理发送「立项」提交立项申请。" if approvals_enabled(ctx.config) else \
            "当前未启用钉钉审批（approvals.mode = \"off\"），立项、暂停和变更直接生效。"
        return f"项目 {project_label(project)}还没有钉钉审批。{hint}"
    names = await names_of(ctx.session, [a.requester_user_id for a in approvals])
    tz = ctx.config.tz
    lines = [f"#### 项目 {project.code} 的审批", ""]
    for number, approval in enumerate(approvals, start=1):
        lines.append(f"{number}. {approval.kind} · **{approval_state(approval)}** · {md_literal(names[approval.requester_user_id])}"
                     f" {_local(approval.created_at, tz)} 提交{_last_remark(approval)}")
    lines += ["", f"发送「审批 {len(approvals)}」查看进度与处理记录。"]
    return Markdown(f"项目 {project.code} 的审批", "\n".join(lines))


async def _approval_detail(ctx: Context, project: Project, approvals: list[Approval], wanted: str) -> Reply:
    if wanted.isdigit() and len(wanted) <= 4:
        number = int(wanted)
        if not 1 <= number <= len(approvals):
            raise NotFound(f"项目 {project.code} 没有审批 {number}（共 {len(approvals)} 个）。发送「审批」查看列表，例如：审批 1")
        approval = approvals[number - 1]
    else:
        approval = next((a for a in approvals if a.process_instance_id == wanted), None)
        if approval is None:
            raise NotFound(f"项目 {project.code} 没有编号为「{clip(wanted)}」的审批。发送「审批」查看列表，例如：审批 1")
        number = approvals.index(approval) + 1
    services = ctx.services
    detail = await _detail(services, approval.process_instance_id)
    synced = False
    if detail is not None and approval.status == ApprovalStatus.RUNNING:
        decision = decision_from_detail(detail)
        if decision is not None:
            # The event has not arrived (or was lost): the detail is authoritative, apply it now.
            synced = await apply_decision(services, ctx.session, approval, decision, source="query")
    records = [r for r in (detail or {}).get("operationRecords") or () if isinstance(r, dict)]
    running = [t for t in (detail or {}).get("tasks") or ()
               if isinstance(t, dict) and t.get("status") in ("NEW", "RUNNING")]
    ids = [approval.requester_user_id, *(str(r.get("userId") or "") for r in records),
           *(str(t.get("userId") or "") for t in running)]
    names = await names_of(ctx.session, ids)
    tz = ctx.config.tz
    form = FORMS[ApprovalKind(approval.kind)].name
    lines = [f"#### 审批 {number} · {form}", "",
             f"- 状态：**{approval_state(approval)}**" + ("（已同步钉钉中的审批结果）" if synced else ""),
             f"- 发起：{md_literal(names[approval.requester_user_id])}，{_local(approval.created_at, tz, '%Y-%m-%d %H:%M')}"]
    if running and approval.status == ApprovalStatus.RUNNING:
        lines.append(f"- 当前审批人：{'、'.join(dict.fromkeys(md_literal(names[str(t['userId'])]) for t in running))}")
    if approval.decided_at:
        lines.append(f"- 结束：{_local(approval.decided_at, tz, '%Y-%m-%d %H:%M')}")
    lines += [f"- 钉钉编号：{approval.process_instance_id}",
              f"- {link_text(approval_link(ctx.config, approval.process_instance_id))}", ""]
    if detail is None:
        lines.append("暂时无法从钉钉获取处理记录，以下为机器人记录的审批意见：")
        lines += [f"- {md_literal(line)}" for line in (approval.remarks or "（暂无）").splitlines()]
    else:
        lines.append("**处理记录**")
        for record in records:
            user = names.get(str(record.get("userId") or ""), "")
            kind = str(record.get("type") or "")
            if kind == "EXECUTE_TASK_NORMAL":
                what = {"AGREE": "同意", "REFUSE": "拒绝"}.get(str(record.get("result")), "处理")
            else:
                what = OPERATION_NAMES.get(kind, kind)
            remark = f"：{record['remark']}" if record.get("remark") else ""
            lines.append(f"- {_local(api_time(record.get('date')), tz)} {md_literal(user)} {what}{md_literal(remark)}")
        if not records:
            lines.append("- （暂无）")
    return Markdown(f"审批 {number} · {form}", "\n".join(lines))


feature = Feature("approvals", router=router, middleware=(project_middleware,), jobs=jobs,
                  on_event=(on_approval_event,))

__all__ = [
    "ReconcileResult",
    "feature",
    "apply_approval_event",
    "approval_forms_job",
    "approval_reconcile_job",
    "approval_state",
    "decision_from_detail",
    "jobs",
    "on_approval_event",
    "reconcile_approvals",
    "router",
    "show_approvals",
]
