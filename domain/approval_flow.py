"""Approvals as services: starting an OA approval for a project, and applying its final decision once.

Starting (``request_approval``; ``submit_initiation`` for 立项): resolve the form's processCode, fill its values
(strings, dates ``yyyy-MM-dd``, ``name`` = the form's label), start the instance with the requester as originator and
the configured approvers as sequential single-user steps, and record it as an ``Approval`` row in the caller's
transaction. ``None`` means approvals are off: the caller applies the change directly.

Deciding (``apply_decision``): a final state (agreed, refused, withdrawn) arrives by event and may arrive again by the
reconciler's poll. ``mark_approval_applied`` (a compare-and-set on the row, in the same transaction as the effects)
lets exactly one of them apply it; each announcement is an outbox row whose key names the instance and the state.

What 立项 and 暂停 mean for a project (``apply_initiation_decision``, ``apply_pause``) is ``domain.lifecycle``'s;
this module decides when they happen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.outbox import enqueue, group_target, users_target
from domain.approval_forms import (
    FORMS,
    ApprovalServiceUnavailable,
    ApprovalsNotConfigured,
    approvals_enabled,
    fit_values,
    form_codes,
    form_labels,
    not_configured_text,
    resolve_process_code,
    unavailable_text,
)
from domain.approval_forms import (
    form_values as clean_values,
)
from domain.changes import lock_project, record_change
from domain.errors import Conflict, RemoteError, RemoteRefusal, UserError
from domain.labels import calendar_caveat, names_of, project_label
from domain.lifecycle import apply_initiation_decision, apply_pause
from domain.ports import CommandScope, ServiceSet, Settings, WorkflowClient
from domain.project_facts import missing_facts, set_example
from domain.replies import File, Markdown, Reply
from domain.report_data import gather_project_report
from domain.schedule_moves import apply_change_schedule, change_schedule_text
from domain.submissions import file_generated, flagged_deliverable
from reports.documents import find_document
from reports.model import RegisterKind as ReportRegisterKind
from reports.pool import render_off_loop
from reports.user_text import clip, md_literal
from storage.models import (
    ACTIVE_PROJECT_STATUSES,
    Approval,
    ApprovalKind,
    ApprovalResult,
    ApprovalStatus,
    DeliverableStatus,
    Project,
    ProjectStatus,
    RegisterEntry,
    RegisterStatus,
)
from storage.repo import (
    list_deliverables,
    list_phases,
    mark_approval_applied,
    write_audit,
)
from storage.repo.approval_trail import (
    ENTRY_APPROVAL_KEY,
    approval_entry,
    project_approvals,
    running_approval,
)
from storage.templates import DeliverableFlag
from storage.workdays import WorkCalendar

log = logging.getLogger("dingpm.approvals")

VERDICTS = {"agree": "同意", "refuse": "拒绝"}


# ---- who approves, where to look ------------------------------------------------------------------------------------


def approver_chain(config: Settings) -> tuple[str, ...]:
    """``[approvals] approvers``, else ``[organization] leaders``, each a step of its own, in order. Empty: the form's
    own flow as an administrator set it up in DingTalk."""
    people = config.approvals.approvers or config.organization.leaders
    return tuple(dict.fromkeys(p for p in people if p))


def approval_link(config: Settings, instance_id: str) -> str | None:
    """The approval's page in DingTalk (needs ``dingtalk.corp_id``, as config.example.toml says)."""
    corp_id = config.dingtalk.corp_id
    if not corp_id:
        return None
    return ("https://aflow.dingtalk.com/dingtalk/mobile/homepage.htm"
            f"?corpid={corp_id}&dd_share=false&showmenu=true&back=native&procInstId={instance_id}"
            "&swfrom=isv&dinghash=approval")


def link_text(link: str | None) -> str:
    return f"[在钉钉中查看审批]({link})" if link else "可在钉钉「工作台 → OA审批 → 我发起的」中查看"


# ---- starting an approval -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """An approval just started (the row is in the caller's transaction)."""

    approval_id: int
    number: int  # the project's approval number: ``审批 2``
    kind: ApprovalKind
    form_name: str
    instance_id: str
    link: str | None
    approver_names: tuple[str, ...]  # empty: the form's own flow

    @property
    def approvers_text(self) -> str:
        return " → ".join(map(md_literal, self.approver_names)) if self.approver_names else "按钉钉中该表单设置的审批流程"

    def lines(self) -> list[str]:
        """Markdown list lines for the caller's answer."""
        return [
            f"- 审批单：{self.form_name}（审批 {self.number}，钉钉编号 {self.instance_id}）",
            f"- 审批人：{self.approvers_text}",
            f"- {link_text(self.link)}",
        ]

    def reply(self, headline: str, *extra: str) -> Markdown:
        text = "\n".join([f"#### {headline}", "", *self.lines(), *(("", *extra) if extra else ())])
        return Markdown(headline, text)


async def request_approval(
    ctx: CommandScope,
    project: Project,
    *,
    kind: ApprovalKind | str,
    form_values: Mapping[str, Any],
    requester: str | None = None,
    entry: RegisterEntry | None = None,
) -> ApprovalRequest | None:
    """Start the OA approval of ``kind`` for ``project`` in the command's transaction (``ctx``: the handler's
    ``Context``); ``None`` when approvals are off (``mode = "off"``), so the caller applies the change directly.

    ``form_values``: ``{label: value}`` of the form (``domain.approval_forms.FORMS[kind]``); 项目名称 and 项目编号
    are added; dates may be ``date`` objects; empty values are left out. ``entry``: the 变更 register entry the
    approval decides (the 项目进度变更单 of 暂停, or a 变更申请); it becomes 待审批 and is decided with the approval.

    Raises a ``UserError`` (shown as is) when one of the kind is already running, when no form is configured
    (saying what to configure), or when DingTalk refuses the request.
    """
    kind = ApprovalKind(kind)
    services, session = ctx.services, ctx.session
    config = services.config
    if not approvals_enabled(config):
        return None
    requester = requester or ctx.incoming.sender_id
    if not requester:
        raise UserError("无法识别你的钉钉身份（外部联系人不能发起公司内部审批）。请由项目经理发起。")
    spec = FORMS[kind]
    per_entry = kind == ApprovalKind.CHANGE_REQUEST
    if not per_entry or entry is not None:
        running = await running_approval(session=session, project_id=project.id, kind=kind,
                                          entry_id=entry.id if per_entry and entry is not None else None)
        if running is not None:
            number = await approval_number(session, running)
            raise Conflict(f"项目 {project_label(project)}已有审批中的「{spec.name}」（审批 {number}），请等待审批结果；"
                           f"如需修改，请先在钉钉中撤销该审批。发送「审批 {number}」查看进度。")
    client = services.dingtalk
    code = await resolve_process_code(config, client, kind)
    values = form_values_of(project, form_values)
    sent = fit_values(values, await form_labels(client, code))
    chain = approver_chain(config)
    instance_id = await _start_instance(client, config, kind, code, requester, sent, chain)
    now = services.clock.now()
    approval = Approval(project_id=project.id, kind=kind, process_instance_id=instance_id, process_code=code,
                        requester_user_id=requester, form_values=sent, created_at=now, updated_at=now,
                        steps=[Step(requester, "发起", at=now).stored()])
    session.add(approval)
    await session.flush()
    if entry is not None:
        # Reassigned, not mutated: the JSON column only notices a new value.
        entry.extra = {**(entry.extra or {}), ENTRY_APPROVAL_KEY: instance_id}
        entry.status = RegisterStatus.AWAITING_APPROVAL
        session.add(entry)
    await write_audit(session=session, action="approval.submit", actor_user_id=requester, project_id=project.id,
                      entity="approval", entity_id=approval.id, at=now,
                      after={"kind": kind.value, "instance": instance_id, "approvers": list(chain)})
    names = await names_of(session, chain)
    return ApprovalRequest(
        approval_id=approval.id, number=await approval_number(session, approval), kind=kind, form_name=spec.name,
        instance_id=instance_id, link=approval_link(config, instance_id),
        approver_names=tuple(names[u] for u in chain),
    )


def form_values_of(project: Project, values: Mapping[str, Any]) -> dict[str, str]:
    return clean_values({"项目名称": project.name, "项目编号": project.code, **values})


async def approval_number(session: AsyncSession, approval: Approval) -> int:
    if approval.project_id is None:
        return 0
    ids = [a.id for a in await project_approvals(session=session, project_id=approval.project_id)]
    return ids.index(approval.id) + 1 if approval.id in ids else len(ids)


async def _start_instance(client: WorkflowClient, config: Settings, kind: ApprovalKind, code: str, requester: str,
                          values: Mapping[str, str], chain: Sequence[str]) -> str:
    spec = FORMS[kind]
    agent_id = config.dingtalk.agent_id or None
    try:
        return await client.create_process_instance(code, requester, dict(values), approvers=list(chain) or None,
                                                    microapp_agent_id=agent_id)
    except RemoteRefusal as exc:
        log.warning("approval %s not started: %s", kind.value, exc)
        if exc.code in ("processCodeError", "processcode.error"):
            form_codes(client).forget(code)
            raise ApprovalsNotConfigured(
                f"{kind.value}审批表单的 processCode（{code}）在钉钉中不存在。请检查 config.toml 的 [approvals] "
                "process_codes，或删除该项并设置 mode = \"auto\" 让机器人按名称查找或创建表单。") from None
        if exc.code == "targetSelectApproverMissing":
            raise UserError(
                f"审批单「{spec.name}」没有审批人：请在 config.toml 的 [approvals] approvers 或 [organization] leaders "
                "中填写审批人的 userId（按顺序逐级审批），或在钉钉 OA 审批后台为该表单设置审批流程。") from None
        if exc.code == "formConverterError":
            raise UserError(
                f"钉钉拒绝了审批单内容（{exc.message}）。请检查审批表单「{spec.name}」的控件名称与必填项是否为："
                f"{'、'.join(spec.labels)}。") from None
        raise UserError(f"钉钉拒绝了审批申请（{exc.code}：{exc.message}）。请检查发起人与审批人（config.toml 的 "
                        "[approvals] approvers / [organization] leaders）都是本企业成员。") from None
    except RemoteError as exc:
        raise ApprovalServiceUnavailable(unavailable_text(exc)) from None


# ---- 立项 --------------------------------------------------------------------------------------------------------


INITIATION_DOCUMENT = "项目立项申请表"


async def submit_initiation(ctx: CommandScope, project: Project, *, note: str | None = None) -> Reply:
    """立项 with approvals on: render the 项目立项申请表, start the 项目立项申请 approval filled from the project,
    record it, and set the project to 待立项审批. Answers the state and the approval's link (``ctx.reply``) and
    returns the .docx as the command's last answer.

    ``project`` should be locked by the caller (``lock_project``); its state was checked (草稿 or 已驳回).
    """
    services, session = ctx.services, ctx.session
    if not approvals_enabled(services.config):
        raise ApprovalsNotConfigured(not_configured_text(ApprovalKind.INITIATION, services.config))
    if project.status == ProjectStatus.PENDING_APPROVAL:
        raise Conflict(f"项目 {project_label(project)}的立项正在审批中，请等待审批结果；如需修改，请先在钉钉中撤销该审批。")
    if project.status not in (ProjectStatus.DRAFT, ProjectStatus.REJECTED):
        raise Conflict(f"项目 {project_label(project)}已经立项（当前状态：{project.status}），无需再次提交。")
    if project.planned_start is None or project.planned_end is None:
        raise UserError(f"项目 {project_label(project)}还没有计划开始和结束日期，立项申请表需要它们。"
                        "请先制定项目计划后再发送「立项」。")
    today = services.clock.today()
    data = await gather_project_report(session=session, project=project, today=today, calendar=services.calendar,
                                       tz=services.config.tz, company_name=services.config.organization.company_name)
    if note and not data.project.objectives:
        data = replace(data, project=replace(data.project, objectives=note))  # the note says what it is for
    spec = find_document(INITIATION_DOCUMENT)
    assert spec is not None
    # Rendered before the approval starts: a rendering failure must not leave an instance in DingTalk behind.
    document = File(spec.file_name(data), data=await render_off_loop(spec.render, data))
    risks = [e for e in data.entries(ReportRegisterKind.RISK) if e.is_open]
    values = {
        "客户": project.customer,
        "项目类型": project.template,
        "项目经理": data.project.pm_name or project.pm_user_id,
        "合同编号": project.contract_no,
        "合同金额": project.contract_amount,
        "计划开始": project.planned_start,
        "计划结束": project.planned_end,
        "项目背景": project.background,
        "项目目标": data.project.objectives,
        "项目范围": project.scope,
        "立项说明": note,
        "主要风险": "；".join(f"风险#{e.seq} {e.title}（概率{e.probability or '未评估'}，影响{e.impact or '未评估'}）"
                          for e in risks[:10]) or "暂未识别",
    }
    request = await request_approval(ctx, project, kind=ApprovalKind.INITIATION, form_values=values)
    assert request is not None
    before = {"status": str(project.status)}
    project.status = ProjectStatus.PENDING_APPROVAL
    session.add(project)
    await record_change(
        session, project, action="project.initiation_requested", summary="提交立项审批",
        key=f"approval:{request.instance_id}:submitted", entity="approval", entity_id=request.approval_id,
        before=before, after={"status": str(project.status), "instance": request.instance_id, "note": note},
        actor=ctx.incoming.sender_id or None, actor_name=ctx.incoming.sender_nick or None,
        origin_conversation=ctx.incoming.conversation_id,
    )
    missing = missing_facts(project)
    blank = (f"立项申请表中尚未填写：{'、'.join(missing)}。可用「项目 设置」补充（例如 {set_example(missing)}），"
             "审批通过后生成的立项申请表会用上。") if missing else ""
    answer = request.reply(
        f"已提交立项申请：{project.code}",
        f"项目状态：{ProjectStatus.PENDING_APPROVAL}。审批结果会在项目内部群通知。",
        f"已生成《{INITIATION_DOCUMENT}》并随后发到本会话（钉钉审批单的附件只能是钉盘文件，所以没有附在审批单上）。",
        *((blank,) if blank else ()),
    )
    await ctx.reply(answer)
    return document


# ---- final decisions ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One person's action on an instance: 发起, 同意, 拒绝 or 撤销, with their remark and when (naive UTC)."""

    user: str
    verdict: str
    remark: str = ""
    at: datetime | None = None

    def stored(self) -> dict[str, str]:
        return {"user": self.user, "action": self.verdict, "remark": self.remark.strip(),
                "at": self.at.isoformat() if self.at is not None else ""}


@dataclass(frozen=True, slots=True)
class Decision:
    """A final state of an instance, from an event or from the instance detail."""

    status: ApprovalStatus  # COMPLETED or TERMINATED
    result: ApprovalResult | None = None  # None when withdrawn
    decided_at: datetime | None = None  # naive UTC
    decider: str | None = None  # who refused, or who withdrew
    remark: str | None = None
    agreed: tuple[str, ...] = ()  # who agreed, in order, when known
    steps: tuple[Step, ...] = ()  # 同意/拒绝 steps from the detail, to fill the trail

    @property
    def key(self) -> str:
        """``mark_approval_applied``'s key: the same final state from any source gives the same key."""
        if self.status == ApprovalStatus.TERMINATED:
            return "TERMINATED"
        return f"COMPLETED:{'refuse' if self.result == ApprovalResult.REFUSE else 'agree'}"

    @property
    def agreed_by_all(self) -> bool:
        return self.status == ApprovalStatus.COMPLETED and self.result == ApprovalResult.AGREE


def add_step(approval: Approval, step: Step) -> bool:
    """Record ``step`` in the approval's steps (the 审批记录 and the approved 立项申请表 print them); False when that
    person's same action is there already (an event and the instance detail both bring it)."""
    steps = list(approval.steps or ())
    if any(s.get("user") == step.user and s.get("action") == step.verdict for s in steps):
        return False
    approval.steps = [*steps, step.stored()]  # reassigned, not mutated: the JSON column only notices a new value
    return True


def note_step(approval: Approval, name: str, step: Step) -> bool:
    """Record ``step`` and add ``刘强（同意）：意见`` to the approval's remarks; False if already there."""
    add_step(approval, step)
    line = f"{name}（{step.verdict}）" + (f"：{step.remark.strip()}" if step.remark and step.remark.strip() else "")
    lines = (approval.remarks or "").splitlines()
    if line in lines:
        return False
    approval.remarks = "\n".join([*lines, line])
    return True


def announcement_target(project: Project | None, approval: Approval):  # -> bot.outbox.Target
    """The project's internal group; without one, the requester's 1:1 chat."""
    if project is not None and project.internal_conversation_id:
        return group_target(project.internal_conversation_id)
    return users_target(approval.requester_user_id)


async def announce(session: AsyncSession, project: Project | None, approval: Approval, key: str, title: str,
                   body: str) -> bool:
    head = f"#### 【{project.code}】{md_literal(clip(project.name, 40))}\n\n" if project is not None else ""
    label = f"【{project.code}】{title}" if project is not None else title
    return await enqueue(session, key[:255], announcement_target(project, approval), Markdown(label, head + body))


def local_day(value: datetime | None, tz: Any) -> date | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc).astimezone(tz).date()


async def apply_decision(services: ServiceSet, session: AsyncSession, approval: Approval, decision: Decision, *,
                         source: str = "event") -> bool:
    """Apply ``decision`` to ``approval`` and its project, once: False if this final state was applied before
    (a duplicate event, or the event and the reconciler's poll both delivering it)."""
    if approval.status != ApprovalStatus.RUNNING:
        return False
    if not await mark_approval_applied(session=session, approval_id=approval.id, event_key=decision.key):
        return False
    now = services.clock.now()
    ids = [approval.requester_user_id, decision.decider, *decision.agreed, *(s.user for s in decision.steps)]
    names = await names_of(session, ids)
    for step in decision.steps:
        note_step(approval, names[step.user], step)
    decided_at = decision.decided_at or now
    if decision.result == ApprovalResult.REFUSE and decision.decider:
        note_step(approval, names[decision.decider], Step(decision.decider, "拒绝", decision.remark or "", decided_at))
    if decision.status == ApprovalStatus.TERMINATED and decision.decider:
        add_step(approval, Step(decision.decider, "撤销", decision.remark or "", decided_at))
    approval.status = decision.status
    approval.result = decision.result
    approval.decided_at = decided_at
    approval.updated_at = now
    session.add(approval)
    project = await lock_project(session, approval.project_id) if approval.project_id is not None else None
    effect = _EFFECTS[ApprovalKind(approval.kind)]
    await effect(services, session, approval, project, decision, names)
    await write_audit(session=session, action="approval.decided", actor_user_id=decision.decider,
                      project_id=approval.project_id, entity="approval", entity_id=approval.id, at=now,
                      after={"instance": approval.process_instance_id, "state": decision.key, "source": source,
                             "remark": decision.remark})
    log.info("approval decided instance=%s kind=%s state=%s source=%s", approval.process_instance_id,
             approval.kind, decision.key, source)
    return True


def _decided_line(decision: Decision, names: Mapping[str, str]) -> str:
    who = names.get(decision.decider or "", decision.decider or "审批人")
    return f"{who} 驳回" + (f"，意见：{decision.remark}" if decision.remark else "（未填写意见）")


def _agreed_by(approval: Approval, decision: Decision, names: Mapping[str, str]) -> str:
    """``（审批人：刘强、周敏）``: from the decision when it came from the detail, else from the steps noted so far."""
    people = [names.get(u, u) for u in decision.agreed] or [
        line.split("（同意）")[0] for line in (approval.remarks or "").splitlines() if "（同意）" in line]
    return f"（审批人：{'、'.join(dict.fromkeys(people))}）" if people else ""


async def _initiation_effect(services: ServiceSet, session: AsyncSession, approval: Approval, project: Project | None,
                             decision: Decision, names: Mapping[str, str]) -> None:

    instance = approval.process_instance_id
    key = f"approval:{instance}:{decision.key}"
    if project is None:
        return
    # Our announcement says more than the lifecycle's (who decided, the new plan), so theirs is suppressed by
    # naming the internal group as the origin; their audit row is still written.
    quiet = project.internal_conversation_id
    if decision.agreed_by_all:
        day = local_day(approval.decided_at, services.config.tz) or services.clock.today()
        if project.status in (ProjectStatus.PENDING_APPROVAL, ProjectStatus.DRAFT, ProjectStatus.REJECTED):
            await apply_initiation_decision(session, project, approved=True, today=day,
                                                   actor=decision.decider, origin_conversation=quiet)
        await _file_initiation_form(session, services, project, approval)
        shift, plan = await replan_from(session, services.calendar, project, day)
        body = (f"✅ 立项审批通过{md_literal(_agreed_by(approval, decision, names))}，审批日期 {day.isoformat()}。\n\n"
                f"项目状态：{project.status}，可以正式开展实施。")
        if plan:
            body += (f"\n\n未完成的阶段与交付物已按审批日期顺延 {shift} 个工作日：\n\n" if shift else "\n\n计划保持不变：\n\n")
            body += "\n".join(f"- {p.name}：{p.planned_start} 至 {p.planned_end}" for p in plan)
            if caveat := calendar_caveat(services.calendar, day, project.planned_end):
                body += f"\n\n{caveat}"
        await announce(session, project, approval, key, "立项审批通过", body)
    elif decision.result == ApprovalResult.REFUSE:
        if project.status == ProjectStatus.PENDING_APPROVAL:
            await apply_initiation_decision(session, project, approved=False, today=services.clock.today(),
                                                   actor=decision.decider, remark=decision.remark,
                                                   origin_conversation=quiet)
        what = _decided_line(decision, names)
        body = (f"❌ 立项审批未通过：{md_literal(what)}。\n\n项目状态：{project.status}。"
                "请项目经理按意见修改后重新发送「立项」提交，例如：立项 已补充项目范围与验收标准")
        await announce(session, project, approval, key, "立项审批被驳回", body)
        if project.internal_conversation_id:
            await enqueue(session, f"{key}:requester", users_target(approval.requester_user_id), Markdown(
                "立项审批被驳回",
                f"你提交的项目 {md_literal(project_label(project))} 立项申请未通过：{md_literal(what)}。\n\n"
                "请按意见调整（如补充项目目标与范围、风险与计划）后，在项目群发送「立项」重新提交，"
                "例如：立项 已补充项目范围与验收标准"))
    else:
        if project.status == ProjectStatus.PENDING_APPROVAL:
            before = {"status": str(project.status)}
            project.status = ProjectStatus.DRAFT
            session.add(project)
            await write_audit(session=session, action="project.initiation_withdrawn", actor_user_id=decision.decider,
                              project_id=project.id, entity="project", entity_id=project.id, before=before,
                              after={"status": str(project.status), "instance": instance})
        await announce(session, project, approval, key, "立项审批已撤销",
                       f"↩️ 立项审批已撤销，项目状态：{project.status}。修改后可重新发送「立项」。")


async def _file_initiation_form(session: AsyncSession, services: ServiceSet, project: Project, approval: Approval) -> None:
    """The approved approval is the 立项申请表 deliverable's submission (项目立项: approved in DingTalk): the form as
    approved, with the approvers, their results, remarks and times, kept as its next version with the link."""
    form = await flagged_deliverable(session, project, DeliverableFlag.PROJECT_APPROVAL)
    if form is None:
        return
    config = services.config
    data = await gather_project_report(session=session, project=project, today=services.clock.today(),
                                       calendar=services.calendar, tz=config.tz,
                                       company_name=config.organization.company_name)
    spec = find_document(INITIATION_DOCUMENT)
    assert spec is not None
    await file_generated(
        session, files_dir=config.storage.files_dir, project=project, deliverable=form,
        submitted_by=approval.requester_user_id, now=services.clock.now(),
        data=await render_off_loop(spec.render, data), file_name=spec.file_name(data),
        link=approval_link(config, approval.process_instance_id),
        note=f"钉钉审批通过（编号 {approval.process_instance_id}）",
    )


async def replan_from(session: AsyncSession, calendar: WorkCalendar, project: Project, start_day: date) -> tuple[int, list[Any]]:
    """Move the open phases, their pending deliverables and the planned end so that the work starts on the first
    working day on or after ``start_day`` (the approval date); returns (working days moved, open phases).

    Only ever later: a project planned to start after its approval keeps its plan. Working days (holidays and 调休)
    come from the work calendar; submitted and waived deliverables and finished phases keep their dates.
    """
    phases = await list_phases(session=session, project_id=project.id)
    open_phases = [p for p in phases if p.actual_end is None and p.gate_passed_at is None]
    starts = [p.planned_start for p in open_phases if p.planned_start is not None]
    if not starts or calendar is None:
        return 0, open_phases
    anchor = min(starts)
    shift = calendar.workdays_between(anchor, calendar.roll_forward(start_day))
    if shift <= 0:
        return 0, open_phases
    open_ids = {p.id for p in open_phases}
    for phase in open_phases:
        phase.planned_start = calendar.shift(phase.planned_start, shift) if phase.planned_start else None
        phase.planned_end = calendar.shift(phase.planned_end, shift) if phase.planned_end else None
        session.add(phase)
    for deliverable in await list_deliverables(session=session, project_id=project.id):
        if (deliverable.status == DeliverableStatus.PENDING and deliverable.due_date is not None
                and (deliverable.phase_id is None or deliverable.phase_id in open_ids)):
            deliverable.due_date = calendar.shift(deliverable.due_date, shift)
            session.add(deliverable)
    if project.planned_start is not None and project.planned_start >= anchor:
        project.planned_start = calendar.shift(project.planned_start, shift)
    if project.planned_end is not None:
        project.planned_end = calendar.shift(project.planned_end, shift)
    session.add(project)
    return shift, open_phases


async def _schedule_change_effect(services: ServiceSet, session: AsyncSession, approval: Approval, project: Project | None,
                                  decision: Decision, names: Mapping[str, str]) -> None:

    key = f"approval:{approval.process_instance_id}:{decision.key}"
    entry = await approval_entry(session=session, approval=approval)
    reason = (approval.form_values or {}).get("原因", "")
    now = services.clock.now()
    if decision.agreed_by_all:
        paused = False
        if project is not None and project.status in ACTIVE_PROJECT_STATUSES:
            at = approval.decided_at or now
            if entry is not None:
                await apply_pause(session, project, entry, now=at, actor=decision.decider,
                                         origin_conversation=project.internal_conversation_id,
                                         link=approval_link(services.config, approval.process_instance_id))
            else:
                project.status, project.paused_at = ProjectStatus.PAUSED, at
                session.add(project)
            paused = True
        elif entry is not None:
            _decide_entry(entry, RegisterStatus.APPROVED, f"审批通过{_agreed_by(approval, decision, names)}", None)
            session.add(entry)
        state = ("项目已暂停：提醒与周报停止；问题解决后项目经理发送「恢复」，未完成交付物按暂停的工作日顺延。" if paused
                 else f"项目当前状态为「{project.status if project else '未知'}」，未做暂停。")
        await announce(session, project, approval, key, "进度变更单审批通过",
                       f"⏸ 项目进度变更单审批通过{md_literal(_agreed_by(approval, decision, names))}。{state}\n\n"
                       f"原因：{md_literal(reason or '未填写')}")
    elif decision.result == ApprovalResult.REFUSE:
        if entry is not None:
            _decide_entry(entry, RegisterStatus.REJECTED, f"审批驳回：{_decided_line(decision, names)}", now)
            session.add(entry)
        await announce(session, project, approval, key, "进度变更单被驳回",
                       f"❌ 项目进度变更单未通过：{md_literal(_decided_line(decision, names))}。项目继续进行。")
    else:
        if entry is not None:
            _decide_entry(entry, RegisterStatus.CLOSED, "申请人撤销了审批", now)
            session.add(entry)
        await announce(session, project, approval, key, "进度变更单已撤销", "↩️ 项目进度变更单已撤销，项目继续进行。")


async def _change_request_effect(services: ServiceSet, session: AsyncSession, approval: Approval, project: Project | None,
                                 decision: Decision, names: Mapping[str, str]) -> None:
    key = f"approval:{approval.process_instance_id}:{decision.key}"
    entry = await approval_entry(session=session, approval=approval)
    title = (approval.form_values or {}).get("变更事项") or (entry.title if entry is not None else "变更")
    label = f"变更#{entry.seq}「{clip(title, 40)}」" if entry is not None else f"变更「{clip(title, 40)}」"
    now = services.clock.now()
    if decision.agreed_by_all:
        schedule = ""
        if entry is not None:
            opinions = f"：{approval.remarks}" if approval.remarks else ""
            resolution = f"审批通过{_agreed_by(approval, decision, names)}{opinions}"
            _decide_entry(entry, RegisterStatus.APPROVED, resolution, None)
            session.add(entry)
            if project is not None:
                day = local_day(approval.decided_at, services.config.tz) or services.clock.today()
                moved = await apply_change_schedule(session, services.calendar, project, entry, today=day,
                                                    actor=decision.decider)
                schedule = change_schedule_text(entry, moved, day)
        await announce(session, project, approval, key, "变更申请审批通过",
                       f"✅ {md_literal(label)} 审批通过{md_literal(_agreed_by(approval, decision, names))}，已记为「已批准」，"
                       f"可以实施。{schedule}")
    elif decision.result == ApprovalResult.REFUSE:
        if entry is not None:
            _decide_entry(entry, RegisterStatus.REJECTED, f"审批驳回：{_decided_line(decision, names)}", now)
            session.add(entry)
        await announce(session, project, approval, key, "变更申请被驳回",
                       f"❌ {md_literal(label)} 未通过：{md_literal(_decided_line(decision, names))}。已记为「已驳回」。")
    else:
        if entry is not None:
            _decide_entry(entry, RegisterStatus.CLOSED, "申请人撤销了审批", now)
            session.add(entry)
        await announce(session, project, approval, key, "变更申请已撤销", f"↩️ {md_literal(label)} 的审批已撤销。")


def _decide_entry(entry: RegisterEntry, status: RegisterStatus, resolution: str, closed_at: datetime | None) -> None:
    entry.status = status
    entry.resolution = resolution[:4000]
    if closed_at is not None:
        entry.closed_at = closed_at


_EFFECTS = {
    ApprovalKind.INITIATION: _initiation_effect,
    ApprovalKind.SCHEDULE_CHANGE: _schedule_change_effect,
    ApprovalKind.CHANGE_REQUEST: _change_request_effect,
}


__all__ = [
    "ApprovalRequest",
    "Decision",
    "Step",
    "add_step",
    "announce",
    "announcement_target",
    "apply_decision",
    "approval_link",
    "approval_number",
    "approver_chain",
    "form_values_of",
    "link_text",
    "local_day",
    "note_step",
    "replan_from",
    "request_approval",
    "submit_initiation",
]
