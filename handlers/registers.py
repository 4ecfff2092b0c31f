"""登记簿: the standard's monitoring records, kept throughout the project.

问题 (问题记录表), 需求 (需求跟踪表), 风险, 变更 (changes wait for approval), 升级 (升级记录表, with the
系统升级通知单/确认单 as a .docx), 日志 (实施日志: the weekly report's 本周完成), 下周计划 (its 下周工作计划) and
会议 (会议记录). Entries are numbered per project and register: 问题#3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.args import Param
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.roles import (
    LEADER,
    MEMBERS,
    MEMBERS_AND_CLIENTS,
    PROJECT_ADMIN,
    RolePolicy,
    only,
)
from bot.router import Router
from domain import approval_flow, approval_forms
from domain.changes import (
    change_context,
    ensure_not_closed,
    lock_project,
    record_change,
)
from domain.errors import Conflict, NotFound, UsageError
from domain.labels import fmt_day, names_of, who
from domain.replies import File, Markdown, Reply
from domain.report_data import gather_project_report, register_entry_info
from domain.schedule_moves import (
    DAYS_EXAMPLE,
    DAYS_KEY,
    apply_change_schedule,
    change_schedule_text,
    days_in_impact,
    days_text,
    from_text,
    parse_days,
    resolve_from,
)
from domain.submissions import file_made_document
from handlers._project import project_middleware
from reports.documents import find_document
from reports.pool import render_off_loop
from reports.registers_xlsx import REGISTER_KINDS, render_registers_xlsx, sheet_title
from reports.user_text import clip, md_literal
from storage.models import (
    ApprovalKind,
    DeliverableStatus,
    Level,
    Project,
    RegisterEntry,
    RegisterKind,
    RegisterStatus,
    RiskResponse,
)
from storage.repo import (
    add_register_entry,
    get_register_entry,
    list_deliverables,
    list_register_entries,
    upsert_user,
)

router = Router("registers", title="登记簿（问题、需求、风险、变更、升级、日志、会议）")
# Issues, requirements, logs, plans and meeting notes may be written in the client group too (``client_group=True``):
# things said with the client, whose answers only repeat what was typed there. Risks, changes and upgrades, and
# every list but the client's, stay out of it.
router.group("问题", summary="问题记录表：登记、关闭（写明解决方法）、列表", aliases=("issue", "issues"))
router.group("需求", summary="需求跟踪表：登记、完成、列表", aliases=("requirement", "requirements"))
router.group("风险", summary="风险登记：概率、影响、应对（规避/转移/减轻/接受）", aliases=("risk", "risks"))
router.group("变更", summary="变更申请：写明影响，审批通过后才执行", aliases=("change", "changes"))

ALL = "全部"
MAX_LISTED = 30
TITLE_CHARS = 120
OPEN_STATUSES = {
    RegisterKind.ISSUE: (RegisterStatus.OPEN, RegisterStatus.IN_PROGRESS),
    RegisterKind.REQUIREMENT: (RegisterStatus.PENDING, RegisterStatus.IN_PROGRESS),
    RegisterKind.RISK: (RegisterStatus.OPEN,),
    RegisterKind.CHANGE: (RegisterStatus.AWAITING_APPROVAL, RegisterStatus.PENDING, RegisterStatus.APPROVED),
}
LEVELS = tuple(level.value for level in Level)
YES, NO = "是", "否"
YES_NO = (YES, NO)
# RegisterEntry.extra keys read by domain.report_data (an issue's 严重程度 prints as the register's priority).
SEVERITY_KEY, NEEDS_CLIENT_KEY = "priority", "needs_client"
RESPONSES = tuple(response.value for response in RiskResponse)
MEETING_TYPES = ("内部启动会", "外部启动会", "周会", "验收会", "交接会", "技术交底", "方案评审", "临时会议", "复盘会")
UPGRADE_NOTICE, UPGRADE_CONFIRMATION = "通知", "确认"

SCOPE = Param.choice("范围", (ALL,), positional=True, help="写「全部」包括已关闭的")
OWNER = Param.user("负责人", aliases=("owner",), help="谁来处理，默认是你")
DUE = Param.date("截止", aliases=("due",), help="计划完成日期")


def title_of(text: str) -> str:
    """The first line, shortened: what lists and reports show; the whole text stays in ``content``."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return clip(first, TITLE_CHARS)


def entry_number(text: str | None, kind: RegisterKind, example: str) -> int:
    match = re.fullmatch(rf"\s*(?:{kind.value})?\s*[#＃]?\s*(\d{{1,6}})\s*", text or "")
    if match is None:
        raise UsageError(f"编号应为数字，如 3 或 #3，收到「{clip(text or '')}」。例如：{example}")
    return int(match.group(1))


async def _entry(ctx: Context, project: Project, kind: RegisterKind, number_text: str | None,
                 example: str) -> RegisterEntry:
    number = entry_number(number_text, kind, example)
    entry = await get_register_entry(session=ctx.session, project_id=project.id, kind=kind, seq=number)
    if entry is None:
        raise NotFound(f"本项目没有{kind}#{number}。发送「{_list_command(kind)}」查看编号。")
    return entry


def _list_command(kind: RegisterKind) -> str:
    return {RegisterKind.ISSUE: "问题 列表", RegisterKind.REQUIREMENT: "需求 列表", RegisterKind.RISK: "风险 列表",
            RegisterKind.CHANGE: "变更 列表", RegisterKind.UPGRADE: "升级 列表"}.get(kind, "项目")


async def _add(ctx: Context, kind: RegisterKind, text: str, *, owner_id: str | None = None,
               status: RegisterStatus | None = None, **fields: object) -> tuple[Project, RegisterEntry]:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    owner = ctx.args.user("负责人")
    if owner is not None and owner.name:
        await upsert_user(session=ctx.session, user_id=owner.user_id, name=owner.name)
    entry = await add_register_entry(
        session=ctx.session, project_id=project.id, kind=kind, title=title_of(text) or kind.value, content=text,
        created_by=ctx.incoming.sender_id, owner_user_id=owner.user_id if owner else (owner_id or ctx.incoming.sender_id),
        status=status, now=ctx.clock.now(), **fields,
    )
    await record_change(
        ctx.session, project, action="register.add", summary=f"新增{kind}#{entry.seq}：{entry.title}",
        key=f"register-added:{project.code}:{kind.value}:{entry.seq}", entity="register", entity_id=entry.id,
        after={"kind": kind.value, "seq": entry.seq, "status": str(entry.status)}, **change_context(ctx),
    )
    return project, entry


async def _close(ctx: Context, kind: RegisterKind, number_text: str | None, resolution: str | None,
                 status: RegisterStatus, verb: str, example: str) -> str:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    entry = await _entry(ctx, project, kind, number_text, example)
    if entry.closed_at is not None or entry.status not in OPEN_STATUSES.get(kind, ()):
        raise Conflict(f"{kind}#{entry.seq} 已经是「{entry.status}」了。")
    if kind == RegisterKind.CHANGE and entry.status != RegisterStatus.APPROVED:
        raise Conflict(f"变更#{entry.seq} 当前为「{entry.status}」：只有审批通过的变更才能执行和完成。")
    before = {"status": str(entry.status)}
    entry.status = status
    entry.resolution = resolution
    entry.closed_at = ctx.clock.now()
    ctx.session.add(entry)
    await record_change(
        ctx.session, project, action="register.close", summary=f"{verb}{kind}#{entry.seq}：{entry.title}",
        key=f"register-closed:{project.code}:{kind.value}:{entry.seq}", entity="register", entity_id=entry.id,
        before=before, after={"status": str(status), "resolution": resolution}, **change_context(ctx),
    )
    return f"已{verb}{kind}#{entry.seq}「{entry.title}」" + (f"，{resolution}" if resolution else "") + "。"


async def _list(ctx: Context, kind: RegisterKind, title: str) -> Reply:
    project: Project = ctx.project
    # Upgrades, logs and meetings are records, never "open": always all of them.
    everything = ctx.args.text("范围") == ALL or kind not in OPEN_STATUSES
    entries = await list_register_entries(session=ctx.session, project_id=project.id, kind=kind,
                                          statuses=None if everything else OPEN_STATUSES.get(kind))
    if not entries:
        state = "" if everything else "未关闭的"
        return f"{project.code} 没有{state}{title}记录。" + ("" if everything else f"发送「{_list_command(kind)} 全部」查看全部。")
    names = await names_of(ctx.session, [e.owner_user_id for e in entries])
    today = ctx.today()
    lines = [f"#### {project.code} {title}（{'全部' if everything else '未关闭'} {len(entries)} 条）"]
    for entry in entries[-MAX_LISTED:]:
        detail = ""
        if kind == RegisterKind.RISK:
            detail = f"，概率{entry.probability}/影响{entry.impact}，{md_literal(entry.response)}"
        elif kind == RegisterKind.ISSUE:
            extra = entry.extra or {}
            detail = "".join((f"，严重程度{extra[SEVERITY_KEY]}" if extra.get(SEVERITY_KEY) else "",
                              "，需客户协助" if extra.get(NEEDS_CLIENT_KEY) else ""))
        elif kind == RegisterKind.CHANGE:
            detail = f"，影响：{md_literal(clip((entry.extra or {}).get('影响', ''), 40))}"
        elif kind == RegisterKind.UPGRADE:
            detail = f"，版本 {md_literal(entry.version)}"
        due = f"，截止 {fmt_day(entry.due_date, today)}" if entry.due_date else ""
        resolution = f"，{md_literal(clip(entry.resolution, 40))}" if entry.resolution else ""
        lines.append(f"- {kind}#{entry.seq} {md_literal(entry.title)}（{entry.status}，{md_literal(who(names, entry.owner_user_id))}"
                     f"{due}{detail}{resolution}）")
    return Markdown(f"{project.code} {title}", "\n".join(lines))


# ---- closing and listing, one spec per register kind -------------------------------------------------------------


@dataclass(frozen=True)
class Closing:
    """How entries of a register are closed: 「问题 关闭 3 已修复」."""

    name: str
    alias: str
    summary: str
    example: str
    note: Param  # what the closer writes: the resolution, or a remark
    status: RegisterStatus
    verb: str  # 关闭 / 完成
    action: str
    client_group: bool = False


@dataclass(frozen=True)
class Listing:
    """How a register is listed: 「问题 列表 全部」."""

    name: str
    alias: str
    summary: str
    title: str  # 问题记录 -> 「XM-2026-001 问题记录（未关闭 3 条）」
    examples: tuple[str, ...]
    roles: RolePolicy = MEMBERS


@dataclass(frozen=True)
class RegisterSpec:
    kind: RegisterKind
    listing: Listing
    closing: Closing | None = None
    number_example: str = "3"


def declare_register(spec: RegisterSpec) -> None:
    """Declare the register's close command (if it has one) and its list command, in help order."""
    kind, closing, listing = spec.kind, spec.closing, spec.listing
    if closing is not None:
        number = Param.word("编号", positional=True, required=True, max_length=12, example=spec.number_example)

        async def close(incoming: Incoming, ctx: Context) -> Reply:
            return await _close(ctx, kind, ctx.args.text("编号"), ctx.args.text(closing.note.name), closing.status,
                                closing.verb, closing.example)

        router.command(closing.name, aliases=(closing.alias,) if closing.alias else (), summary=closing.summary, examples=(closing.example,),
                       params=(number, closing.note), roles=MEMBERS, needs_project=True, action=closing.action,
                       client_group=closing.client_group)(close)

    async def show(incoming: Incoming, ctx: Context) -> Reply:
        return await _list(ctx, kind, listing.title)

    router.command(listing.name, aliases=(listing.alias,), summary=listing.summary, examples=listing.examples,
                   params=(SCOPE,), roles=listing.roles, needs_project=True, reads_only=True)(show)


REMARK = Param.text("说明", help="完成情况")
ISSUES = RegisterSpec(
    RegisterKind.ISSUE,
    Listing("问题 列表", "问题记录表", "列出未关闭的问题（写「全部」包括已关闭的）", "问题记录", ("问题 列表", "问题 列表 全部"),
            roles=MEMBERS_AND_CLIENTS),
    Closing("问题 关闭", "关闭问题", "关闭问题并写明解决方法", "问题 关闭 3 已升级浏览器兼容补丁",
            Param.text("解决方法", required=True, aliases=("解决",), help="问题是怎么解决的"), RegisterStatus.CLOSED,
            "关闭", "关闭问题", client_group=True),
)
REQUIREMENTS = RegisterSpec(
    RegisterKind.REQUIREMENT,
    Listing("需求 列表", "需求跟踪表", "列出未完成的需求（写「全部」包括已完成的）", "需求跟踪", ("需求 列表", "需求 列表 全部"),
            roles=MEMBERS_AND_CLIENTS),
    Closing("需求 完成", "完成需求", "标记需求已完成", "需求 完成 2 已在 v2.3 上线", REMARK, RegisterStatus.DONE, "完成",
            "完成需求", client_group=True),
    number_example="2",
)
RISKS = RegisterSpec(
    RegisterKind.RISK,
    Listing("风险 列表", "风险登记表", "列出未关闭的风险", "风险登记", ("风险 列表",)),
    Closing("风险 关闭", "关闭风险", "关闭风险（已消除或已发生并处理）", "风险 关闭 1 客户已提供接口文档",
            Param.text("说明", help="风险如何消除"), RegisterStatus.CLOSED, "关闭", "关闭风险"),
    number_example="1",
)
CHANGES = RegisterSpec(
    RegisterKind.CHANGE,
    Listing("变更 列表", "变更记录", "列出未结束的变更", "变更", ("变更 列表",)),
    Closing("变更 完成", "", "标记审批通过的变更已执行完成", "变更 完成 3 移动端审核功能已上线",
            Param.text("说明", help="执行情况"), RegisterStatus.DONE, "完成", "完成变更"),
)
UPGRADES = RegisterSpec(RegisterKind.UPGRADE, Listing("升级 列表", "升级记录表", "列出升级记录", "升级记录", ("升级 列表",)))


# ---- 问题 (问题记录表) -------------------------------------------------------------------------------------------------


@router.command("问题 新增", aliases=("新问题",), summary="登记一个问题（问题记录表）：严重程度，是否需客户协助",
                examples=("问题 新增 登录页面在IE11下空白 负责人:@王五 截止:周五",
                          "问题 新增 医保目录编码缺失 严重程度:高 需客户协助:是"),
                params=(Param.text("描述", required=True, help="问题描述"), OWNER, DUE,
                        Param.choice("严重程度", LEVELS, help="高、中、低"),
                        Param.choice("需客户协助", YES_NO, help="是：列入客户项目周报「需客户协助的问题与风险」")),
                roles=MEMBERS, needs_project=True, action="登记问题",
                client_group=True)
async def add_issue(incoming: Incoming, ctx: Context) -> Reply:
    severity, needs_client = ctx.args.text("严重程度"), ctx.args.text("需客户协助") == YES
    extra: dict[str, Any] = {}
    if severity:
        extra[SEVERITY_KEY] = severity
    if needs_client:
        extra[NEEDS_CLIENT_KEY] = True
    _, entry = await _add(ctx, RegisterKind.ISSUE, ctx.args.text("描述") or "", due_date=ctx.args.date("截止"),
                          extra=extra or None)
    facts = "".join((f"，严重程度{severity}" if severity else "", "，需客户协助（会列入客户项目周报）" if needs_client else ""))
    return f"已登记问题#{entry.seq}：{entry.title}{facts}。解决后发送「问题 关闭 {entry.seq} 解决方法」。"


declare_register(ISSUES)


# ---- 需求 (需求跟踪表) -------------------------------------------------------------------------------------------------


@router.command("需求 新增", aliases=("新需求",), summary="登记客户提出的需求（需求跟踪表）",
                examples=("需求 新增 报表增加按科室导出 截止:2026-05-30",),
                params=(Param.text("描述", required=True, help="需求内容"), OWNER, DUE),
                roles=MEMBERS, needs_project=True, action="登记需求",
                client_group=True)
async def add_requirement(incoming: Incoming, ctx: Context) -> Reply:
    _, entry = await _add(ctx, RegisterKind.REQUIREMENT, ctx.args.text("描述") or "", due_date=ctx.args.date("截止"))
    return f"已登记需求#{entry.seq}：{entry.title}。完成后发送「需求 完成 {entry.seq}」。"


declare_register(REQUIREMENTS)


# ---- 风险 -------------------------------------------------------------------------------------------------------


@router.command("风险 新增", aliases=("新风险",), summary="登记风险：概率、影响和应对方式",
                examples=("风险 新增 客户接口文档迟迟未提供 概率:高 影响:中 应对:减轻 措施:每周催办并升级",),
                params=(Param.text("描述", required=True, help="风险描述"),
                        Param.choice("概率", LEVELS, required=True), Param.choice("影响", LEVELS, required=True),
                        Param.choice("应对", RESPONSES, required=True),
                        Param.word("措施", max_length=300, help="具体应对措施"), OWNER),
                roles=MEMBERS, needs_project=True, action="登记风险")
async def add_risk(incoming: Incoming, ctx: Context) -> Reply:
    args = ctx.args
    measures = args.text("措施")
    _, entry = await _add(
        ctx, RegisterKind.RISK, args.text("描述") or "", probability=Level(args.text("概率")),
        impact=Level(args.text("影响")), response=RiskResponse(args.text("应对")),
        extra={"措施": measures} if measures else None,
    )
    high = "（高风险，请在周会上跟踪）" if "高" in (entry.probability, entry.impact) else ""
    return f"已登记风险#{entry.seq}：{entry.title}，概率{entry.probability}、影响{entry.impact}，应对：{entry.response}{high}。"


declare_register(RISKS)


# ---- 变更 -------------------------------------------------------------------------------------------------------


@router.command("变更 申请", summary="提出变更申请：写明目的和影响，工期变化写 工期:+N（工作日）；经审批后才能执行，"
                                      "批准时未完成的截止日期按工期顺延",
                examples=("变更 申请 增加移动端审核功能 目的:领导要在手机上审批 影响:增加费用3万元 工期:+10 从:执行",
                          "变更 申请 增加移动端审核功能 影响:工期延后10个工作日，增加费用3万元"),
                params=(Param.text("描述", required=True, help="变更事项"),
                        Param.word("目的", max_length=500, help="为什么要变更"),
                        Param.word("影响", max_length=500, help="对范围、工期、费用、资源的影响"),
                        Param.word("工期", max_length=16, example="+10",
                                   help="工期变化（工作日），如 +10 延后、-3 提前；批准后未完成的截止日期随之调整"),
                        Param.word("从", max_length=128, example="执行",
                                   help="工期从哪个阶段或交付物起调整，默认从批准之日起")),
                roles=MEMBERS, needs_project=True, action="提出变更申请")
async def request_change(incoming: Incoming, ctx: Context) -> Reply:
    args = ctx.args
    text, purpose, impact = args.text("描述") or "", args.text("目的"), args.text("影响")
    typed_days = args.text("工期")
    days = parse_days(typed_days) if typed_days else days_in_impact(impact)
    if not impact and days is None:
        raise UsageError(f"缺少必填参数「影响」：请写明变更的影响（影响:…）或工期变化（工期:+10），例如：{DAYS_EXAMPLE}")
    extra: dict[str, Any] = {"影响": impact or days_text(days or 0)}
    if purpose:
        extra["目的"] = purpose
    if days is not None:
        extra[DAYS_KEY] = days
    if args.text("从"):
        if days is None:
            raise UsageError(f"「从」说的是工期从哪里起调整，请同时写 工期:+N，例如：{DAYS_EXAMPLE}")
        extra.update(await resolve_from(ctx.session, ctx.project, args.text("从") or ""))
    project, entry = await _add(ctx, RegisterKind.CHANGE, text, status=RegisterStatus.AWAITING_APPROVAL, extra=extra)
    timing = f"{days_text(days)}，{from_text(extra)}" if days is not None else None
    request = await approval_flow.request_approval(
        ctx, project, kind=ApprovalKind.CHANGE_REQUEST, entry=entry,
        form_values={"变更事项": entry.title, "目的": purpose or "未填写", "影响": extra["影响"], "时间": timing},
    )
    notes = []
    if days is not None:
        read = "" if typed_days else f"（按影响中的「{days_text(days)}」）"
        notes.append(f"批准后，未完成的截止日期{from_text(extra)}顺延：{days_text(days)}{read}。")
    if not purpose:
        notes.append("建议写明变更目的（目的:…），审批人会看到。")
    if request is not None:  # its decision marks the entry 已批准 / 已驳回
        return request.reply(f"已提交变更申请：变更#{entry.seq}", "只有审批通过的变更才能执行。", *notes)
    return (f"已登记变更#{entry.seq}：{entry.title}（待审批）。只有审批通过的变更才能执行"
            f"（未启用钉钉审批：线下审批后由领导或项目管理员发送「变更 批准 {entry.seq}」或「变更 驳回 {entry.seq} 原因:…」）。"
            + "".join(notes))


CHANGE_NUMBER = Param.word("编号", positional=True, required=True, max_length=12, example="3")


async def _decide_change_offline(ctx: Context, approve: bool, reason: str | None, example: str) -> str:
    """Record the outcome of an approval held outside DingTalk: without OA approvals nothing else can decide."""
    if approval_forms.approvals_enabled(ctx.config):
        raise Conflict("已启用钉钉审批：变更的结果以钉钉审批为准，请在钉钉「审批」中处理。发送「审批」查看进度。")
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    entry = await _entry(ctx, project, RegisterKind.CHANGE, ctx.args.text("编号"), example)
    if entry.status != RegisterStatus.AWAITING_APPROVAL:
        raise Conflict(f"变更#{entry.seq} 当前为「{entry.status}」，只有待审批的变更可以批准或驳回。")
    decider = ctx.incoming.sender_nick or ctx.incoming.sender_id
    before = {"status": str(entry.status)}
    entry.status = RegisterStatus.APPROVED if approve else RegisterStatus.REJECTED
    entry.resolution = f"线下审批{'通过' if approve else '驳回'}（{decider} 登记）" + (f"：{reason}" if reason else "")
    if not approve:
        entry.closed_at = ctx.clock.now()
    ctx.session.add(entry)
    verb = "批准" if approve else "驳回"
    moved = (await apply_change_schedule(ctx.session, ctx.services.calendar, project, entry, today=ctx.today(),
                                         actor=ctx.incoming.sender_id or None)) if approve else []
    schedule = change_schedule_text(entry, moved, ctx.today()) if approve else ""
    await record_change(
        ctx.session, project, action="register.decide",
        summary=f"{verb}变更#{entry.seq}：{entry.title}（线下审批）{schedule}",
        key=f"change-decided:{project.code}:{entry.seq}", entity="register", entity_id=entry.id, before=before,
        after={"status": str(entry.status), "resolution": entry.resolution}, **change_context(ctx),
    )
    if approve:
        return (f"已登记变更#{entry.seq}「{entry.title}」线下审批通过，可以执行。执行完成后发送「变更 完成 {entry.seq}」。"
                f"{schedule}")
    return f"已登记变更#{entry.seq}「{entry.title}」线下审批驳回" + (f"：{reason}" if reason else "") + "。"


@router.command("变更 批准", summary="登记线下审批通过的变更（未启用钉钉审批时）",
                examples=("变更 批准 3",), params=(CHANGE_NUMBER,),
                roles=only(LEADER, PROJECT_ADMIN), needs_project=True, action="登记变更审批结果")
async def approve_change(incoming: Incoming, ctx: Context) -> str:
    return await _decide_change_offline(ctx, True, None, "变更 批准 3")


@router.command("变更 驳回", summary="登记线下审批驳回的变更（未启用钉钉审批时）",
                examples=("变更 驳回 3 原因:费用超出合同范围",),
                params=(CHANGE_NUMBER, Param.text("原因", required=True, max_length=500, help="驳回的理由")),
                roles=only(LEADER, PROJECT_ADMIN), needs_project=True, action="登记变更审批结果")
async def reject_change(incoming: Incoming, ctx: Context) -> str:
    return await _decide_change_offline(ctx, False, ctx.args.text("原因"), "变更 驳回 3 原因:费用超出合同范围")


declare_register(CHANGES)


# ---- 升级 (升级记录表 + 系统升级通知单/确认单) ---------------------------------------------------------------------------


@router.command(
    "升级", aliases=("upgrade",),
    summary="登记系统升级（升级记录表）并生成系统升级通知单（常规升级）或确认单（解决了客户问题/需求）",
    examples=("升级 v2.3.1 修复报表导出乱码 确认", "升级 v2.4.0 常规性能优化"),
    params=(Param.word("版本", positional=True, required=True, max_length=64, help="升级后的版本号"),
            Param.text("说明", required=True, help="升级内容；末尾写「确认」生成确认单，写「通知」或不写生成通知单")),
    roles=MEMBERS, needs_project=True, action="登记系统升级",
    usage="升级 〈版本〉 〈说明〉 [通知|确认] [项目:编号]",
)
async def record_upgrade(incoming: Incoming, ctx: Context) -> Reply:
    text = (ctx.args.text("说明") or "").strip()
    kind = UPGRADE_NOTICE
    words = text.split()
    if words and words[-1] in (UPGRADE_NOTICE, UPGRADE_CONFIRMATION, "确认单", "通知单"):
        kind = UPGRADE_CONFIRMATION if words[-1].startswith(UPGRADE_CONFIRMATION) else UPGRADE_NOTICE
        text = text[: text.rfind(words[-1])].strip()
    if not text:
        raise UsageError("请写出升级内容，例如：升级 v2.3.1 修复报表导出乱码 确认")
    related = kind == UPGRADE_CONFIRMATION
    project, entry = await _add(ctx, RegisterKind.UPGRADE, text, version=ctx.args.text("版本"),
                                extra={"related_to_client": related})
    entry.closed_at = entry.created_at  # an upgrade is recorded once it is done
    ctx.session.add(entry)
    data = await gather_project_report(session=ctx.session, project=project, today=ctx.today(),
                                       calendar=ctx.services.calendar, tz=ctx.config.tz,
                                       company_name=ctx.config.organization.company_name)
    names = await names_of(ctx.session, [entry.owner_user_id, entry.created_by])
    spec = find_document("系统升级确认单" if related else "系统升级通知单")
    assert spec is not None
    docx = await render_off_loop(spec.render, data, register_entry_info(entry, names=names, tz=ctx.config.tz))
    file_name = f"{spec.name}_{project.code}_{entry.version}.docx"
    form = next((d for d in await list_deliverables(session=ctx.session, project_id=project.id)
                 if d.name == spec.name and d.status != DeliverableStatus.WAIVED), None)
    filed = await file_made_document(ctx, project, form, docx, file_name, f"升级记录#{entry.seq} {entry.version}")
    await ctx.reply(f"已登记升级记录#{entry.seq}：{entry.version} {entry.title}。"
                    + ("请把确认单交客户签字后，用「提交 系统升级确认单」提交签字版。" if related
                       else "通知单如下，可转发客户。") + filed)
    return File(file_name, data=docx)


declare_register(UPGRADES)


# ---- 导出 (项目登记表.xlsx) -------------------------------------------------------------------------------------------


@router.command("导出", aliases=("登记簿 导出", "导出登记簿", "export"),
                summary="导出项目登记表（Excel）：问题、需求、风险、变更、升级、日志、计划、会议，每个登记簿一张表",
                examples=("导出", "登记簿 导出"), roles=MEMBERS, needs_project=True, action="导出登记簿")
async def export_registers(incoming: Incoming, ctx: Context) -> Reply:
    project: Project = ctx.project
    data = await gather_project_report(session=ctx.session, project=project, today=ctx.today(),
                                       calendar=ctx.services.calendar, tz=ctx.config.tz,
                                       company_name=ctx.config.organization.company_name)
    workbook = await render_off_loop(render_registers_xlsx, data)
    counts = "、".join(f"{sheet_title(kind)} {len(data.entries(kind))} 条" for kind in REGISTER_KINDS)
    await ctx.reply(f"项目 {project.code} 的项目登记表：{counts}。")
    return File(f"项目登记表_{project.code}.xlsx", data=workbook)


# ---- 日志 / 下周计划 / 会议 ------------------------------------------------------------------------------------------------


@router.command("日志", aliases=("实施日志", "log"), summary="记实施日志：今天完成的工作（进入周报的「本周完成」）",
                examples=("日志 完成3号楼AP安装调试，培训操作员12人",),
                params=(Param.text("内容", required=True, help="今天完成的工作"),),
                roles=MEMBERS, needs_project=True, action="记实施日志",
                client_group=True)
async def write_log(incoming: Incoming, ctx: Context) -> Reply:
    _, entry = await _add(ctx, RegisterKind.LOG, ctx.args.text("内容") or "", due_date=ctx.today())
    return f"已记录 {fmt_day(ctx.today())} 的实施日志（日志#{entry.seq}），会出现在本周周报的「本周完成」里。"


@router.command("下周计划", aliases=("plan", "周计划"), summary="写下周工作计划（进入周报的「下周工作计划」）",
                examples=("下周计划 完成数据接口联调，组织操作员培训",),
                params=(Param.text("内容", required=True, help="下周要做的工作"),),
                roles=MEMBERS, needs_project=True, action="写下周计划",
                client_group=True)
async def write_plan(incoming: Incoming, ctx: Context) -> Reply:
    today = ctx.today()
    next_friday = today - timedelta(days=today.weekday()) + timedelta(days=11)
    _, entry = await _add(ctx, RegisterKind.PLAN, ctx.args.text("内容") or "",
                          due_date=ctx.services.calendar.roll_backward(next_friday))
    return f"已记录下周计划（计划#{entry.seq}），会出现在本周周报的「下周工作计划」里。"


@router.command("会议", aliases=("会议记录", "meeting"), summary="记会议纪要（内部启动会、外部启动会、周会、验收会、交接会…）",
                examples=("会议 周会 确认接口联调延期一周，客户周三前提供测试账号",),
                params=(Param.word("类型", positional=True, required=True, max_length=16,
                                   help="会议类型：" + "、".join(MEETING_TYPES)),
                        Param.text("纪要", required=True, help="会议内容和决议")),
                roles=MEMBERS, needs_project=True, action="记会议纪要",
                client_group=True)
async def record_meeting(incoming: Incoming, ctx: Context) -> Reply:
    meeting_type = (ctx.args.text("类型") or "").strip()
    if meeting_type.endswith("会议") and len(meeting_type) > 2:
        meeting_type = meeting_type[:-2] + "会"  # 周例会议 / 交接会议 -> 交接会
    _, entry = await _add(ctx, RegisterKind.MEETING, ctx.args.text("纪要") or "", meeting_type=meeting_type)
    hint = "" if meeting_type in MEETING_TYPES else f"（常用类型：{'、'.join(MEETING_TYPES[:5])}）"
    return f"已记录{meeting_type}纪要（会议记录#{entry.seq}）{hint}。"


feature = Feature("registers", router=router, middleware=(project_middleware,))

__all__ = ["feature", "router", "title_of"]
