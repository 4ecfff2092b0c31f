"""收尾: 验收, 复盘, 交接, 归档 — the closing phase of the standard, in its order.

验收 takes the client's signed 项目验收确认单 (a file) and makes the project 已验收; 复盘 records the internal review;
交接 hands the project to after-sales with the standard's handover checklist (what exists, what is missing); 归档
closes the project and has the archive bundle built (after the command, see below) for the project administrator.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.args import Param
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.jobs import JobRegistry, JobRunContext
from bot.outbox import (
    conversation_target,
    enqueue,
    target_from_params,
    target_params,
    users_target,
)
from bot.roles import PROJECT_MANAGER, only
from bot.router import Router
from bot.scheduler import request_job
from domain.archive_service import (
    ProjectArchive,
    gather_project_archive,
    write_project_archive,
)
from domain.changes import change_context, lock_project, record_change
from domain.errors import UsageError
from domain.file_store import MAX_FILE_BYTES, human_size
from domain.handover import handover_checklist
from domain.labels import fmt_day, names_of, project_label
from domain.lifecycle import (
    HANDOVER_ACTION,
    accept_with_file,
    built_by_archive,
    close_project,
    ensure_acceptable,
    ensure_accepted,
    waived_note,
)
from domain.replies import File, Markdown, Reply
from domain.report_data import gather_project_report
from domain.submissions import (
    file_generated,
    file_made_document,
    flagged_deliverable,
    submit_deliverable,
    wait_for_file,
)
from handlers._files import take_pending_file
from handlers._project import project_middleware
from reports.documents import render_handover_list
from reports.pool import render_off_loop
from reports.user_text import md_literal
from storage.models import (
    AuditLog,
    DeliverableStatus,
    MemberRole,
    PendingKind,
    Project,
    RegisterKind,
)
from storage.repo import (
    add_member,
    add_register_entry,
    get_project_by_code,
    list_deliverables,
    upsert_user,
    write_audit,
)
from storage.templates import DeliverableFlag

router = Router("closing", title="收尾（验收、复盘、交接、归档）")
jobs = JobRegistry()



# ---- 验收 -------------------------------------------------------------------------------------------------------


@router.command(
    "验收",
    aliases=("accept", "项目验收"),
    summary="项目验收：提交客户签字盖章的《项目验收确认单》（先发文件再发「验收」，或反过来），项目转为已验收",
    examples=("验收", "验收 客户已签字盖章"),
    params=(Param.text("说明", max_length=500, help="验收说明"),),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="确认项目验收",
)
async def accept(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    await ensure_acceptable(ctx, project)
    deliverables = await list_deliverables(session=ctx.session, project_id=project.id)
    forms = [d for d in deliverables if d.has_flag(DeliverableFlag.ACCEPTANCE)]
    staged = await take_pending_file(ctx, forms[0] if forms else None, deliverables)
    note = ctx.args.text("说明")
    if forms and staged is None:
        until = await wait_for_file(ctx, PendingKind.ACCEPT, project, forms[0], note)
        return (f"请在 30 分钟内在这里发送客户签字盖章的《{forms[0].name}》（扫描件或照片，{until}有效），"
                "收到后项目即转为已验收。")
    return await accept_with_file(ctx, project, staged, note=note)


# ---- 复盘 -------------------------------------------------------------------------------------------------------


@router.command(
    "复盘",
    aliases=("review", "项目复盘"),
    summary="记录项目复盘：实施过程、风险、问题和经验（验收后在内部进行）",
    examples=("复盘 接口联调晚了两周，原因是客户文档滞后；经验：立项时把接口文档列入客户义务",),
    params=(Param.text("总结", required=True, help="复盘总结"),),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="记录项目复盘",
)
async def review(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_accepted(project, "复盘")
    summary = ctx.args.text("总结") or ""
    entry = await add_register_entry(
        session=ctx.session, project_id=project.id, kind=RegisterKind.MEETING, title=f"项目复盘：{summary}"[:120],
        content=summary, created_by=incoming.sender_id, owner_user_id=incoming.sender_id, meeting_type="复盘会",
        now=ctx.clock.now(),
    )
    record = next((d for d in await list_deliverables(session=ctx.session, project_id=project.id)
                   if "复盘" in d.name), None)
    if record is not None:
        await submit_deliverable(ctx, project, record, note=summary)
    else:
        await record_change(
            ctx.session, project, action="project.review", summary="记录了项目复盘",
            key=f"project-reviewed:{project.code}:{entry.seq}", entity="register", entity_id=entry.id,
            after={"meeting": entry.seq}, **change_context(ctx),
        )
    filed = f"，并作为《{record.name}》提交" if record is not None else ""
    return f"已记录项目复盘（会议记录#{entry.seq}）{filed}。接下来：「交接 @售后」，然后「归档」。"


# ---- 交接 -------------------------------------------------------------------------------------------------------


@router.command(
    "交接",
    aliases=("handover", "项目交接"),
    summary="把项目交接给售后：登记接收人，列出交接清单中已具备和缺失的资料，并生成《项目交接清单》",
    examples=("交接 @孙八",),
    params=(Param.user("售后", positional=True, required=True, help="接收项目的售后同事"),),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="交接项目",
)
async def handover(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_accepted(project, "交接")
    receiver = ctx.args.user("售后")
    assert receiver is not None
    if receiver.name:
        await upsert_user(session=ctx.session, user_id=receiver.user_id, name=receiver.name)
    await add_member(session=ctx.session, project_id=project.id, user_id=receiver.user_id, role=MemberRole.AFTER_SALES)
    names = await names_of(ctx.session, [receiver.user_id])
    receiver_name = names[receiver.user_id]
    checklist = await handover_checklist(ctx.session, ctx.services.templates, project)
    missing = [line.item for line in checklist if line.missing]
    ready = len(checklist) - len(missing)
    today = ctx.today()
    await record_change(
        ctx.session, project, action=HANDOVER_ACTION,
        summary=f"项目交接给售后 {receiver_name}，交接资料 {ready}/{len(checklist)} 项已具备",
        key=f"project-handover:{project.code}:{receiver.user_id}:{ctx.trace_id}", entity="project",
        entity_id=project.id, after={"receiver": receiver.user_id, "missing": missing}, **change_context(ctx),
    )
    data = await gather_project_report(session=ctx.session, project=project, today=today,
                                       calendar=ctx.services.calendar, tz=ctx.config.tz,
                                       company_name=ctx.config.organization.company_name)
    docx = await render_off_loop(render_handover_list, data, {line.item: list(line.found) for line in checklist},
                                 receiver=receiver_name, handover_date=today,
                                 how={line.item: "或".join(line.how) for line in checklist if line.missing})
    file_name = f"项目交接清单_{project.code}.docx"
    form = await flagged_deliverable(ctx.session, project, DeliverableFlag.HANDOVER)
    filed = await file_made_document(ctx, project, form, docx, file_name, "「交接」时生成的项目交接清单")
    lines = [f"#### {project.code} 项目交接清单", f"接收人：{md_literal(receiver_name)}（售后）　交接日期：{fmt_day(today)}",
             ""]
    lines += [line.markdown() for line in checklist]
    lines.append(f"\n共 {len(checklist)} 项，已具备 {ready} 项，缺失 {len(missing)} 项。")
    if filed:
        lines.append(f"《项目交接清单》{filed}")
    if missing:
        lines.append("缺失的资料请按提示补充后再「交接」一次更新清单；电子资料会在「归档」时打包给项目管理员。")
    else:
        lines.append("资料齐全。下一步：「归档」。")
    await ctx.reply(Markdown(f"{project.code} 项目交接清单", "\n".join(lines)))
    return File(file_name, data=docx)


# ---- 归档 -------------------------------------------------------------------------------------------------------
#
# 归档 closes the project at once (nothing changes after it) and requests the on-demand job that builds the archive:
# building the zip takes seconds to minutes, and inside the command's write transaction it would hold the database
# (on SQLite the only write lock) all that time. The job reads what the archive needs in a short read, writes the zip
# in a thread outside any transaction, then in one short write records it and queues the messages. Once per project:
# the job's run key is the project code, and its write step re-checks that no archive was recorded (a re-run after a
# crash between that write and the run's end sends nothing twice).

ARCHIVE_JOB = "project_archive"
ARCHIVE_BUILT = "project.archive_built"
WAIVE_WORD = "豁免"


async def _archive_recorded(session: AsyncSession, project_id: int) -> bool:
    query = select(AuditLog.id).where(AuditLog.project_id == project_id, AuditLog.action == ARCHIVE_BUILT).limit(1)
    return (await session.exec(query)).first() is not None


def _to_admins(admins: list[str]) -> str:
    return f"已发送给项目管理员（{len(admins)} 人）" if admins else "未配置项目管理员（organization.project_admins），请自行转交"


@router.command(
    "归档",
    aliases=("archive", "项目归档"),
    summary="归档并关闭项目：先检查资料是否齐全（必交交付物已提交或豁免、已验收、已交接），缺什么列出来；"
            "然后生成项目归档包（全部交付物最新版、生成的文档、周报、登记表、审批与操作记录、索引），发到本群并交项目管理员",
    examples=("归档", "归档 豁免 原因:客户不要求纸质资料封存，验收汇报改为线上"),
    params=(
        Param.choice("豁免", (WAIVE_WORD,), positional=True, help="把仍缺的必交交付物一并豁免后归档（须写原因）"),
        Param.text("原因", max_length=500, help="一并豁免的原因"),
    ),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="归档并关闭项目",
)
async def archive(incoming: Incoming, ctx: Context) -> Reply:
    waive, reason = ctx.args.text("豁免") == WAIVE_WORD, (ctx.args.text("原因") or "").strip()
    if waive != bool(reason):
        raise UsageError("一并豁免须同时写「豁免」和原因，例如：归档 豁免 原因:客户不要求纸质资料封存")
    project = await lock_project(ctx.session, ctx.project.id)
    waived = await close_project(ctx, project, waive_reason=reason or None)
    await request_job(ctx.session, ARCHIVE_JOB, project.code, {
        "target": target_params(conversation_target(incoming)),
        "requested_by": incoming.sender_id or None,
    }, now=ctx.clock.now())
    admins = list(ctx.config.organization.project_admins)
    then = "完成后发到这里" + ("，并发送给项目管理员" if admins else "")
    return (f"项目 {project_label(project)}已归档并关闭{waived_note(waived, reason)}，不能再修改。正在生成归档包"
            f"（全部交付物最新版、生成的文档、周报、登记表、审批与操作记录），{then}。")


@jobs.on_demand(ARCHIVE_JOB, timeout=3600, doing="生成归档包")
async def project_archive_job(run: JobRunContext) -> None:
    """Build the archive of a project closed by 归档, record it and send it (``run.period_key``: the project code)."""
    config, services = run.config, run.services
    root = Path(config.storage.files_dir)
    async with run.database.read() as session:
        project = await get_project_by_code(session=session, code=run.period_key)
        if project is None:
            run.log.warning("project %s no longer exists: no archive", run.period_key)
            return
        if await _archive_recorded(session, project.id):
            return  # a re-run: the archive was recorded (and sent) before the run could be marked done
        inputs = await gather_project_archive(session=session, project=project, files_dir=root,
                                              calendar=services.calendar, today=run.today, tz=config.tz,
                                              company_name=config.organization.company_name,
                                              templates=services.templates)
    built = await write_project_archive(inputs, files_dir=root, today=run.today)
    async with services.outbox.unit_of_work() as work:
        if await _archive_recorded(work.session, project.id):
            return
        await _record_archive(work.session, run, project, built, root)


async def _record_archive(session: AsyncSession, run: JobRunContext, project: Project, built: ProjectArchive,
                          root: Path) -> None:
    """The archive's records and messages, in one write: the 电子资料存档 version, the audit row, the zip (or where to
    fetch it) and a summary to the chat that asked, the zip to the project administrators."""
    result, size = built.result, built.size
    requested_by = run.params.get("requested_by")
    relative = result.path.relative_to(root).as_posix() if result.path.is_relative_to(root) else str(result.path)
    for deliverable in await list_deliverables(session=session, project_id=project.id):
        if built_by_archive(deliverable) and deliverable.status == DeliverableStatus.PENDING:
            version = await file_generated(session, files_dir=root, project=project, deliverable=deliverable,
                                           submitted_by=requested_by, now=run.now_utc, stored_path=relative,
                                           file_name=result.path.name, note="归档时自动生成")
            version.size = size
            session.add(version)
    await write_audit(session=session, action=ARCHIVE_BUILT, actor_user_id=requested_by, project_id=project.id,
                      entity="project", entity_id=project.id, at=run.now_utc,
                      after={"archive": relative, "files": len(result.entries), "size": size,
                             "missing": list(built.missing)})
    sendable = size <= MAX_FILE_BYTES
    admins = list(run.config.organization.project_admins)
    file_or_where = (File(result.path.name, path=result.path) if sendable else
                     f"项目 {project_label(project)}的归档包超过 20 MB，钉钉无法直接发送，请到服务器 {result.path} 领取"
                     f"（{human_size(size)}）。")
    if admins:
        await enqueue(session, f"archive:{project.code}", users_target(admins), file_or_where)
    target = target_from_params(run.params.get("target"))
    if target is not None:
        lines = [
            f"#### 项目 {project.code} 已归档并关闭",
            f"- 归档包：{md_literal(result.path.name)}（{len(result.entries)} 个文件，{human_size(size)}）",
            f"- 保存位置：{md_literal(relative)}",
            f"- {_to_admins(admins)}",
        ]
        if built.missing:
            lines.append(f"- ⚠️ {len(built.missing)} 个文件在服务器上找不到，未归档：{'、'.join(map(md_literal, built.missing[:5]))}")
        await enqueue(session, f"archive:{project.code}:summary", target,
                      Markdown(f"项目 {project.code} 已归档", "\n".join(lines)))
        await enqueue(session, f"archive:{project.code}:file", target, file_or_where)


feature = Feature("closing", router=router, middleware=(project_middleware,), jobs=jobs)

__all__ = [
    "feature",
    "ARCHIVE_JOB",
    "accept",
    "archive",
    "handover",
    "jobs",
    "project_archive_job",
    "review",
    "router",
]
