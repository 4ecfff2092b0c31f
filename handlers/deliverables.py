"""交付物: the documents (项目文件) each phase must produce — 交付物, 提交, 豁免, 计划, and files sent to the bot.

A file arrives as a message of its own (msgtype ``file``, no text). The kernel hands such a message to the
``暂存文件`` command (``FILE_COMMAND``; see ``as_file_command``): if the user said 「提交 <交付物>」 (or 「验收」) in
the last 30 minutes in that chat, the file completes it; otherwise the file is kept for a day as their pending file
and the bot asks which deliverable it is, best guesses by file name first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

from bot.args import Param
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.roles import MEMBERS, MEMBERS_AND_CLIENTS, PROJECT_MANAGER, only
from bot.router import Router
from domain.changes import (
    change_context,
    ensure_not_closed,
    lock_project,
    record_change,
)
from domain.errors import NotFound, PermissionDenied, UsageError, UserError
from domain.file_store import StagedFile, files_root, human_size, unlink_quietly
from domain.labels import calendar_caveat, fmt_day, names_of, project_label, who
from domain.lifecycle import accept_with_file
from domain.matching import guess_by_file_name, match_deliverable
from domain.replies import Markdown, Reply
from domain.submissions import (
    end_waits,
    mark_waived,
    names_another,
    remember_file,
    submit_deliverable,
    submitted_text,
    until_text,
    wait_for_file,
)
from handlers._common import STATUS_ICONS, client_view, overdue_days
from handlers._files import (
    MAX_FILES_PER_MESSAGE,
    fetch_to_staging,
    stage_files,
    take_pending_file,
)
from handlers._project import project_middleware, roles_in
from reports.user_text import clip, md_literal
from storage.models import (
    Deliverable,
    DeliverableStatus,
    PendingKind,
    Phase,
    Project,
    ProjectStatus,
    utcnow,
)
from storage.repo import (
    DeliverableHeading,
    consume_pending,
    deliverable_headings,
    list_deliverables,
    list_members,
    list_phases,
    memberships_of_user,
    open_pending,
    upsert_user,
)
from storage.templates import client_visible

router = Router("deliverables", title="交付物")


FILE_COMMAND = "暂存文件"
ALL = "全部"
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


def as_file_command(incoming: Incoming) -> Incoming:
    """A message that carries files but no text becomes the 「暂存文件」 command (the kernel calls this before
    dispatching, since the dispatcher answers an empty text with a greeting)."""
    if incoming.files and not incoming.text.strip():
        return dataclasses.replace(incoming, text=FILE_COMMAND)
    return incoming


async def project_deliverables(ctx: Context, project: Project) -> list[Deliverable]:
    return await list_deliverables(session=ctx.session, project_id=project.id)


# ---- 交付物 -----------------------------------------------------------------------------------------------------


def _pick_phases(phases: list[Phase], project: Project, wanted: str | None) -> list[Phase]:
    if wanted == ALL:
        return phases
    if wanted:
        number = int(wanted) if wanted.isascii() and wanted.isdigit() else None
        found = [p for p in phases if p.name == wanted or p.seq == number or wanted in p.name]
        if not found:
            raise NotFound(f"本项目没有「{clip(wanted)}」阶段。阶段有：{'、'.join(p.name for p in phases)}。"
                           f"例如：交付物 {phases[0].name}")
        return found[:1]
    current = [p for p in phases if p.name == project.current_phase]
    # A phase running alongside the current one (监控 beside 执行) is shown with it.
    return current + [p for p in phases if current and p.parallel_with == current[0].name] or phases


@router.command(
    "交付物",
    aliases=("deliverables", "文件清单"),
    summary="查看交付物：状态、负责人、截止日期，逾期的标出（默认当前阶段）",
    examples=("交付物", "交付物 规划", "交付物 全部"),
    params=(Param.word("阶段", positional=True, max_length=64, help="阶段名称，或「全部」；默认当前阶段"),),
    roles=MEMBERS_AND_CLIENTS,
    needs_project=True,
    reads_only=True,
)
async def show_deliverables(incoming: Incoming, ctx: Context) -> Reply:
    project: Project = ctx.project
    phases = await list_phases(session=ctx.session, project_id=project.id)
    chosen = _pick_phases(phases, project, ctx.args.text("阶段"))
    deliverables = await list_deliverables(session=ctx.session, project_id=project.id,
                                           phase_ids=[p.id for p in chosen])
    for_client = client_view(ctx)
    if for_client:  # the client sees the documents that concern them, not the company's internal records
        deliverables = [d for d in deliverables if client_visible(d.flags)]
    names = await names_of(ctx.session, [d.owner_user_id for d in deliverables])
    today, calendar = ctx.today(), ctx.services.calendar
    running = project.status in (ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS)
    lines = [f"#### {project.code} 交付物（{'、'.join(p.name for p in chosen)}）"]
    late_count = 0
    for phase in chosen:
        items = [d for d in deliverables if d.phase_id == phase.id]
        if len(chosen) > 1:
            lines.append(f"\n**{phase.name}**")
        for d in items:
            late = overdue_days(d, today, calendar) if running else 0
            late_count += late > 0
            mark = f" ⚠️逾期{late}个工作日" if late else ""
            optional = "（可选）" if not d.required else ""
            lines.append(f"- {STATUS_ICONS[d.status]} #{d.seq} {md_literal(d.name)}{optional}：{d.status}，"
                         f"{md_literal(who(names, d.owner_user_id))}，{fmt_day(d.due_date, today)}{mark}")
    if late_count:
        lines.append(f"\n共 {late_count} 项逾期。")
    if project.status == ProjectStatus.CLOSED:
        lines.append("\n项目已归档关闭，交付物只能查看。")
    elif not for_client:
        lines.append("\n发送文件后回复「提交 交付物名称」即可提交，例如：提交 #"
                     + str(deliverables[0].seq if deliverables else 1))
    return Markdown(f"{project.code} 交付物", "\n".join(lines))


# ---- 提交 -------------------------------------------------------------------------------------------------------


@router.command(
    "提交",
    aliases=("submit",),
    summary="提交交付物：先发文件再发本命令（或先发本命令再发文件），也可以给链接或文字说明",
    examples=("提交 接口说明文档", "提交 #12 初稿，请审阅", "提交 培训PPT 链接:https://space.dingtalk.com/s/abc"),
    params=(
        Param.word("交付物", positional=True, required=True, max_length=128, example="交付物名称或#编号",
                   help="交付物名称（可只写一部分）或编号，如 #12"),
        Param.text("说明", max_length=500, help="这一版的说明；以 http 开头时当作链接"),
        Param.word("链接", aliases=("link", "url"), max_length=1000, example="https://…",
                   help="钉盘或其他链接，代替文件"),
    ),
    roles=MEMBERS,
    needs_project=True,
    action="提交交付物",
)
async def submit(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    deliverables = await project_deliverables(ctx, project)
    deliverable = match_deliverable(deliverables, ctx.args.text("交付物") or "", example="提交 接口说明文档")
    note = ctx.args.text("说明")
    link = ctx.args.text("链接")
    if link is None and note and _URL.match(note.split()[0]):
        link, _, rest = note.partition(" ")
        note = rest.strip() or None
    if link is not None and not _URL.match(link):
        raise UsageError(f"链接应以 http:// 或 https:// 开头，收到「{clip(link)}」")
    # A new 提交 answers whatever this user's earlier 提交 was waiting for: a file sent later is asked about.
    ended = _ended_waits(await end_waits(ctx), deliverables, deliverable)
    staged = await take_pending_file(ctx, deliverable, deliverables) if link is None else None
    if staged is None and link is None:
        until = await wait_for_file(ctx, PendingKind.SUBMIT, project, deliverable, note)
        return (f"{ended}好的，请在 30 分钟内在这里发送《{deliverable.name}》的文件（{until}有效），我会把它作为新版本提交。"
                f"也可以改用链接：提交 {deliverable.name} 链接:https://…")
    version = await submit_deliverable(ctx, project, deliverable, staged=staged, link=link, note=note)
    return ended + submitted_text(deliverable, version)


def _ended_waits(rows: list[Any], deliverables: list[Deliverable], current: Deliverable) -> str:
    """``不再等待《需求调研报告》的文件。`` for the waits a new 提交 ended (other than for the same deliverable)."""
    names = {d.id: d.name for d in deliverables}
    ended = [names[r.deliverable_id] for r in rows if r.deliverable_id in names and r.deliverable_id != current.id]
    return f"不再等待《{'》《'.join(dict.fromkeys(ended))}》的文件。\n" if ended else ""


# ---- 豁免 -------------------------------------------------------------------------------------------------------


@router.command(
    "豁免",
    aliases=("waive",),
    summary="豁免一项交付物（不再要求提交），须写明原因",
    examples=("豁免 验收汇报PPT 原因:客户不组织验收会",),
    params=(
        Param.word("交付物", positional=True, required=True, max_length=128, example="交付物名称或#编号"),
        Param.text("原因", required=True, max_length=500, help="为什么不需要这份文件"),
    ),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="豁免交付物",
)
async def waive(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    deliverable = match_deliverable(await project_deliverables(ctx, project), ctx.args.text("交付物") or "",
                                    example="豁免 验收汇报PPT 原因:客户不组织验收会")
    if deliverable.status == DeliverableStatus.WAIVED:
        return f"《{deliverable.name}》已经豁免（原因：{deliverable.waiver_reason}）。"
    reason = ctx.args.text("原因") or ""
    await end_waits(ctx, deliverable=deliverable)  # nobody waits for a file of a document no longer asked for
    before = {"status": str(deliverable.status)}
    mark_waived(ctx.session, deliverable, reason, incoming.sender_id)
    await record_change(
        ctx.session, project, action="deliverable.waive", summary=f"豁免《{deliverable.name}》，原因：{reason}",
        key=f"deliverable-waived:{project.code}:{deliverable.id}:{ctx.trace_id}", entity="deliverable",
        entity_id=deliverable.id, before=before, after={"status": str(DeliverableStatus.WAIVED), "reason": reason},
        **change_context(ctx),
    )
    earlier = "（已提交的版本仍保留）" if before["status"] == DeliverableStatus.SUBMITTED else ""
    return f"已豁免《{deliverable.name}》{earlier}，阶段推进时不再要求它。原因：{reason}"


# ---- 计划 -------------------------------------------------------------------------------------------------------


@router.command(
    "计划",
    aliases=("replan", "调整计划"),
    summary="调整交付物的截止日期或负责人",
    examples=("计划 接口说明文档 截止:2026-04-10 负责人:@王五", "计划 #12 截止:下周五"),
    params=(
        Param.word("交付物", positional=True, required=True, max_length=128, example="交付物名称或#编号"),
        Param.date("截止", aliases=("due",), help="新的截止日期（遇节假日顺延到下一个工作日）"),
        Param.user("负责人", aliases=("owner",), help="新的负责人"),
    ),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="调整计划",
)
async def replan(incoming: Incoming, ctx: Context) -> Reply:
    due, owner = ctx.args.date("截止"), ctx.args.user("负责人")
    if due is None and owner is None:
        raise UsageError("请写出新的截止日期或负责人（或两者）")
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    deliverable = match_deliverable(await project_deliverables(ctx, project), ctx.args.text("交付物") or "",
                                    example="计划 接口说明文档 截止:2026-04-10")
    today, calendar = ctx.today(), ctx.services.calendar
    before = {"due": str(deliverable.due_date) if deliverable.due_date else None, "owner": deliverable.owner_user_id}
    notes: list[str] = []
    if due is not None:
        if due < today:
            raise UsageError(f"截止日期 {due.isoformat()} 已经过去了，请给一个今天或以后的日期")
        workday = calendar.roll_forward(due)
        if workday != due:
            notes.append(f"{fmt_day(due, today)} 不是工作日，已顺延到 {fmt_day(workday, today)}")
        deliverable.due_date = workday
    if owner is not None:
        members = await list_members(session=ctx.session, project_id=project.id)
        if owner.user_id not in {m.user_id for m in members}:
            raise UserError(f"{owner.display} 还不是本项目成员。请先「成员 添加 @{owner.display} 实施工程师」，再指定负责人。")
        if owner.name:
            await upsert_user(session=ctx.session, user_id=owner.user_id, name=owner.name)
        deliverable.owner_user_id = owner.user_id
    deliverable.updated_at = utcnow()
    ctx.session.add(deliverable)
    names = await names_of(ctx.session, [deliverable.owner_user_id])
    after = {"due": str(deliverable.due_date) if deliverable.due_date else None, "owner": deliverable.owner_user_id}
    summary = (f"调整《{deliverable.name}》计划：截止 {fmt_day(deliverable.due_date, today)}，"
               f"负责人 {who(names, deliverable.owner_user_id)}")
    await record_change(
        ctx.session, project, action="deliverable.replan", summary=summary,
        key=f"deliverable-replanned:{project.code}:{deliverable.id}:{ctx.trace_id}", entity="deliverable",
        entity_id=deliverable.id, before=before, after=after, **change_context(ctx),
    )
    caveat = calendar_caveat(calendar, today, deliverable.due_date) if due is not None else ""
    return "已" + summary[2:] + ("。" + "；".join(notes) if notes else "") + "。" + (f"\n{caveat}" if caveat else "")


# ---- files sent to the bot --------------------------------------------------------------------------------------


@router.command(
    FILE_COMMAND,
    aliases=("收到的文件", "pendingfiles"),
    summary="查看你发给我、还没提交为交付物的文件（发文件后回复「提交 交付物名称」）",
    examples=(FILE_COMMAND,),
)
async def pending_files(incoming: Incoming, ctx: Context) -> Reply:
    if incoming.files:
        return await receive_files(incoming, ctx)
    rows = await open_pending(session=ctx.session, conversation_id=incoming.conversation_id,
                              user_id=incoming.sender_id, kinds=(PendingKind.FILE,), now=ctx.clock.now())
    if not rows:
        return "你在这里没有待提交的文件。直接把文件发给我，再回复「提交 交付物名称」即可。"
    lines = [f"你在这里有 {len(rows)} 个待提交的文件（最新的在前，「提交」会用最新的一个）："]
    lines += [f"- {row.file_name}（{human_size(row.size)}）" for row in rows[:10]]
    lines.append("回复「提交 交付物名称」提交最新的文件，例如：提交 接口说明文档")
    return "\n".join(lines)


async def _team_projects(ctx: Context) -> list[Project]:
    """The projects the sender may submit to, the chat's project first."""
    current = ctx.project
    open_here = current is not None and current.status != ProjectStatus.CLOSED and MEMBERS.allows(ctx.roles)
    projects = [current] if open_here else []
    if ctx.incoming.sender_key:
        organization_roles = await roles_in(ctx, None)  # leader, project admin: from the config
        for project, roles in await memberships_of_user(session=ctx.session, user_id=ctx.incoming.sender_key):
            closed_or_listed = project.status == ProjectStatus.CLOSED or any(p.id == project.id for p in projects)
            if not closed_or_listed and MEMBERS.allows(organization_roles | {str(role) for role in roles}):
                projects.append(project)
    return projects


async def receive_files(incoming: Incoming, ctx: Context) -> Reply:
    answers: list[str] = []
    for received in incoming.files[:MAX_FILES_PER_MESSAGE]:
        staged = await fetch_to_staging(ctx, received)
        try:
            answers.append(await _take_in(ctx, staged, accept_with_file))
        except BaseException:
            # The command's transaction rolls back: the staged copy would be an orphan nobody points to.
            await asyncio.to_thread(unlink_quietly, files_root(ctx) / staged.relative_path)
            raise
    if len(incoming.files) > MAX_FILES_PER_MESSAGE:
        answers.append(f"一条消息最多处理 {MAX_FILES_PER_MESSAGE} 个文件，其余的请分开发送。")
    return "\n\n".join(a for a in answers if a) or "这个文件已经收到过了。"


async def _take_in(ctx: Context, staged: StagedFile, accept_with_file: Any) -> str:
    """One received file: completes a waiting 提交/验收 of this user in this chat, or is kept and asked about."""
    incoming, now = ctx.incoming, ctx.clock.now()
    waiting = await open_pending(session=ctx.session, conversation_id=incoming.conversation_id,
                                 user_id=incoming.sender_id, kinds=(PendingKind.SUBMIT, PendingKind.ACCEPT), now=now)
    row = waiting[0] if waiting else None
    mismatch = ""
    if row is not None and row.project_id is not None:
        project = await lock_project(ctx.session, row.project_id)
        deliverables = await project_deliverables(ctx, project)
        expected = next((d for d in deliverables if d.id == row.deliverable_id), None)
        other = names_another(deliverables, staged.name, expected) if expected is not None else None
        if expected is not None and other is not None:
            # The file names another document: filing it under the wait would be a silent mistake.
            mismatch = (f"你在等待《{expected.name}》的文件（{until_text(ctx, row.expires_at)}有效），但这个文件名看起来是"
                        f"《{other.name}》，所以没有提交为《{expected.name}》。\n")
        elif await consume_pending(session=ctx.session, pending_id=row.id, now=now):
            if row.kind == PendingKind.ACCEPT:
                return await accept_with_file(ctx, project, staged, note=row.note)
            if expected is not None:
                ensure_not_closed(project)
                version = await submit_deliverable(ctx, project, expected, staged=staged, note=row.note)
                return submitted_text(expected, version)
    if await remember_file(ctx, staged, ctx.project) is None:
        return ""  # this very message was taken in before
    return mismatch + await _ask_which(ctx, staged.name, staged.size)


async def _ask_which(ctx: Context, file_name: str, size: int) -> str:
    projects = await _team_projects(ctx)
    if not projects:
        if ctx.project is not None:
            ensure_not_closed(ctx.project)  # a file sent in the group of an archived project
        raise PermissionDenied(
            "你还不是任何进行中项目的成员，不能提交交付物。请项目经理先「成员 添加 @你 实施工程师」。"
        )
    headings = await deliverable_headings(session=ctx.session, project_ids=[p.id for p in projects])
    guesses: list[tuple[Project, DeliverableHeading]] = []
    for project in projects:
        of_project = [d for d in headings if d.project_id == project.id]
        guesses += [(project, deliverable) for deliverable in guess_by_file_name(of_project, file_name)]
    default = ctx.project if ctx.project in projects else None
    lines = [f"收到文件「{file_name}」（{human_size(size)}）。要提交为哪个交付物？"]
    for number, (project, deliverable) in enumerate(guesses[:3], start=1):
        where = "" if default is not None and project.id == default.id else f" 项目:{project.code}"
        lines.append(f"{number}. 提交 {deliverable.name}{where}（{deliverable.status}，截止 "
                     f"{fmt_day(deliverable.due_date, ctx.today())}）")
    if not guesses:
        where = f"（{project_label(default)}）" if default is not None else ""
        lines.append(f"没有从文件名认出对应的交付物{where}，发送「交付物」查看清单。")
    lines.append("回复「提交 交付物名称」即可（24 小时内有效），例如：提交 "
                 + (guesses[0][1].name if guesses else "接口说明文档"))
    return "\n".join(lines)


# A file arrives as its own message without text; it becomes 「暂存文件」 before command matching.
feature = Feature("deliverables", router=router, middleware=(project_middleware,), rewrites=(as_file_command,),
                  preparers=(stage_files,))

__all__ = [
    "feature",
    "FILE_COMMAND",
    "as_file_command",
    "pending_files",
    "receive_files",
    "replan",
    "router",
    "show_deliverables",
    "submit",
    "waive",
]
