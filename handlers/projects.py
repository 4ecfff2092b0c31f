"""项目: 新建项目, 项目列表, 我的项目, 项目 (overview), 绑定 (a group to a project as its internal or client group)."""

from __future__ import annotations

from bot.args import Param
from bot.client_robots import CUSTOM_ROBOT, REACH_TEXT, client_reach
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.roles import EVERYONE, MEMBERS_AND_CLIENTS, PROJECT_MANAGER, only
from bot.router import Router
from bot.scheduler import request_job
from domain.changes import (
    change_context,
    ensure_not_closed,
    lock_project,
    record_change,
)
from domain.errors import Conflict, PermissionDenied, UsageError, UserError
from domain.job_names import GROUP_MEMBERS_JOB
from domain.labels import calendar_caveat, fmt_day, names_of, project_label, who
from domain.planner import PlanError, plan_project
from domain.project_facts import (
    FACT_LABELS,
    FACTS,
    SET_EXAMPLE,
    apply_facts,
    missing_facts,
    read_facts,
    set_example,
    shown,
)
from domain.replies import Markdown, Reply
from handlers._common import (
    STATUS_ICONS,
    client_view,
    counts_toward_progress,
    gate_progress_percent,
    overdue_days,
    remember_sender_project,
)
from handlers._project import project_middleware, project_named, roles_in
from reports.formatting import fmt_percent
from reports.model import DeliverableCounts
from reports.user_text import clip, md_literal
from storage.models import (
    DeliverableStatus,
    MemberRole,
    Project,
    ProjectStatus,
    is_external_key,
)
from storage.repo import (
    create_project_from_plan,
    get_project_by_conversation,
    list_deliverables,
    list_members,
    list_phases,
    list_projects,
    projects_of_user,
    upsert_user,
)
from storage.templates import UnknownTemplateError, client_visible

FACT_PARAMS = tuple(Param.word(f.label, max_length=f.max_length, help=f.help) for f in FACTS)

router = Router("projects", title="项目")


MAX_LISTED = 30
MILESTONES_SHOWN = 3
INTERNAL_GROUP, CLIENT_GROUP = "内部群", "客户群"


# ---- 新建项目 ---------------------------------------------------------------------------------------------------


@router.command(
    "新建项目",
    aliases=("创建项目", "newproject"),
    summary="按项目类型的模板新建项目：阶段与交付物按中国工作日排好计划",
    examples=(
        "新建项目 智慧工厂MES 客户:某某制造 类型:软件 经理:@张三",
        "新建项目 仓储RFID二期 客户:某某物流 类型:设备 经理:@李四 开始:下周一 结束:2026-12-31",
    ),
    params=(
        Param.text("名称", required=True, max_length=128, help="项目名称"),
        Param.word("客户", required=True, max_length=128, aliases=("customer",), help="客户单位"),
        Param.word("类型", required=True, max_length=64, aliases=("模板", "type"), example="软件|设备|技改",
                   help="项目类型（模板），如 软件、设备、技改"),
        Param.user("经理", required=True, aliases=("项目经理", "pm"), help="项目经理"),
        Param.date("开始", aliases=("start",), help="计划开始日期，默认今天"),
        Param.date("结束", aliases=("end",), help="计划结束日期；给出时各阶段工期按比例缩放"),
        *FACT_PARAMS,
    ),
)
async def create_project(incoming: Incoming, ctx: Context) -> Reply:
    if not incoming.sender_id:
        raise PermissionDenied("无法识别你的钉钉身份（外部联系人不能新建项目）。请由公司同事发送「新建项目」。")
    args = ctx.args
    registry = ctx.services.templates
    try:
        template = registry.get(args.text("类型") or "")
    except UnknownTemplateError:
        names = "、".join(f"{t.name}（{'、'.join(t.aliases[:2])}）" if t.aliases else t.name for t in registry)
        raise UsageError(f"没有名为「{clip(args.text('类型') or '')}」的项目类型。可选：{names}") from None
    today = ctx.today()
    start = args.date("开始") or today
    end = args.date("结束")
    try:
        plan = plan_project(template, start, ctx.services.calendar, end)
    except PlanError as exc:
        raise UsageError(str(exc)) from None
    pm = args.user("经理")
    assert pm is not None
    if is_external_key(pm.user_id):
        raise UsageError(f"{pm.display} 是其他单位的人（外部联系人），不能担任项目经理。请指定公司同事，例如 经理:张三")
    facts = read_facts(args)
    name = " ".join((args.text("名称") or "").split())
    if pm.name:
        await upsert_user(session=ctx.session, user_id=pm.user_id, name=pm.name)
    project = await create_project_from_plan(
        session=ctx.session,
        plan=plan,
        name=name,
        customer=args.text("客户"),
        pm_user_id=pm.user_id,
        year=plan.start.year,
        created_by=incoming.sender_id,
    )
    apply_facts(project, facts)
    ctx.session.add(project)
    await remember_sender_project(ctx, project)
    await record_change(
        ctx.session, project, action="project.create", summary=f"新建项目 {project_label(project)}",
        key=f"project-created:{project.code}", entity="project", entity_id=project.id,
        after={"code": project.code, "template": template.name, "pm": pm.user_id, **facts}, **change_context(ctx),
    )
    lines = [
        f"#### 已新建项目 {project.code}",
        f"- 名称：{md_literal(project.name)}",
        f"- 客户：{md_literal(project.customer)}",
        f"- 类型：{template.name}（{len(plan.phases)} 个阶段，{len(plan.deliverables)} 项交付物）",
        f"- 项目经理：{md_literal(pm.display)}",
        f"- 计划：{fmt_day(plan.start)} 至 {fmt_day(plan.end, plan.start)}" + ("（已按结束日期缩放工期）" if plan.scaled else ""),
        *(f"- {fact.label}：{md_literal(shown(project, fact))}" for fact in FACTS if getattr(project, fact.attribute)),
        "",
        # A list, not a markdown table: DingTalk's mobile client squeezes tables into unreadable columns.
        "**阶段计划**",
        *(f"- {p.name}：{fmt_day(p.start, plan.start)} 至 {fmt_day(p.end, plan.start)}"
          + (f"（与{p.parallel_with}并行）" if p.parallel_with else "") for p in plan.phases),
        *(["", caveat] if (caveat := calendar_caveat(ctx.services.calendar, plan.start, plan.end)) else []),
        "",
        "**下一步**",
        f"1. 在项目内部群发送「绑定 {project.code} 内部群」，在客户群发送「绑定 {project.code} 客户群」",
        "2. 添加成员，例如「成员 添加 @王五 实施工程师」",
        *_facts_step(project),
        f"{4 if missing_facts(project) else 3}. 内部启动会后由项目经理发送「立项」",
    ]
    return Markdown(f"已新建项目 {project.code}", "\n".join(lines))


def _facts_step(project: Project) -> list[str]:
    missing = missing_facts(project)
    if not missing:
        return []
    return [f"3. 补充立项信息（{'、'.join(missing)}），它们会填入立项申请表和审批单，例如：{set_example(missing)}"]


# ---- 项目 设置 ----------------------------------------------------------------------------------------------------


@router.command(
    "项目 设置",
    aliases=("设置项目",),
    summary="设置立项信息：合同编号、合同金额、项目背景、项目目标、项目范围（填入立项申请表和立项审批单）",
    examples=(SET_EXAMPLE, "项目 设置 项目目标:冲压、焊接、总装三个车间上线MES 项目范围:生产执行与质量追溯"),
    params=FACT_PARAMS,
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="设置立项信息",
)
async def set_project_facts(incoming: Incoming, ctx: Context) -> Reply:
    given = read_facts(ctx.args)
    if not given:
        raise UsageError(f"请写出要设置的立项信息（{'、'.join(FACT_LABELS)}），例如：{SET_EXAMPLE}")
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    before, after = apply_facts(project, given)
    ctx.session.add(project)
    labels = [fact.label for fact in FACTS if fact.attribute in given]
    await record_change(
        ctx.session, project, action="project.update", summary=f"设置立项信息：{'、'.join(labels)}",
        key=f"project-updated:{project.code}:{ctx.trace_id}", entity="project", entity_id=project.id,
        before=before, after=after, **change_context(ctx),
    )
    lines = [f"#### 已设置项目 {project.code} 的立项信息"]
    lines += [f"- {fact.label}：{md_literal(shown(project, fact))}" for fact in FACTS if fact.attribute in given]
    missing = missing_facts(project)
    if missing:
        lines.append(f"\n尚未填写：{'、'.join(missing)}，例如：{set_example(missing)}")
    if project.status in (ProjectStatus.DRAFT, ProjectStatus.REJECTED):
        lines.append("发送「立项」时会填入立项申请表和立项审批单。")
    else:
        lines.append("之后生成的文档（如「文档 项目立项申请表」）会使用新的信息。")
    return Markdown(f"{project.code} 立项信息", "\n".join(lines))


# ---- 项目列表 / 我的项目 ---------------------------------------------------------------------------------------------


def _project_line(project: Project, names: dict[str, str], roles: str = "") -> str:
    closed = project.status == ProjectStatus.CLOSED
    phase = f"·{project.current_phase}" if project.current_phase and not closed else ""
    extra = f"·我是{roles}" if roles else ""
    # 归档 is the only way a project closes, and the overview calls it 已归档: the list says the same.
    status = "已归档" if closed else project.status
    return (f"- **{project.code}** {md_literal(clip(project.name, 30))}（{md_literal(clip(project.customer or '—', 20))}）"
            f" {status}{phase}·经理 {md_literal(who(names, project.pm_user_id))}{extra}")


@router.command(
    "项目列表",
    aliases=("全部项目", "projects"),
    summary="列出公司的项目（默认不含已归档的）",
    examples=("项目列表", "项目列表 全部"),
    params=(Param.choice("范围", ("全部",), positional=True, help="写「全部」包括已归档关闭的项目"),),
    reads_only=True,
)
async def list_all_projects(incoming: Incoming, ctx: Context) -> Reply:
    session = ctx.session
    statuses = None if ctx.args.text("范围") == "全部" else [s for s in ProjectStatus if s != ProjectStatus.CLOSED]
    projects = await list_projects(session=session, statuses=statuses)
    if incoming.sender_key:
        # Someone who is only a client contact (in every project they are in) sees only their own projects.
        mine = await projects_of_user(session=session, user_id=incoming.sender_key)
        if mine and all([await _only_client(ctx, p) for p in mine]):
            projects = [p for p in projects if p.id in {m.id for m in mine}]
    if not projects:
        return "还没有项目。发送「新建项目」创建，例如：新建项目 智慧工厂MES 客户:某某制造 类型:软件 经理:@张三"
    names = await names_of(session, [p.pm_user_id for p in projects])
    shown = projects[:MAX_LISTED]
    lines = [f"#### 项目列表（{len(projects)} 个）", *(_project_line(p, names) for p in shown)]
    if len(projects) > MAX_LISTED:
        lines.append(f"……另有 {len(projects) - MAX_LISTED} 个未显示。")
    lines.append("\n发送「项目 编号」查看概况，例如：项目 " + shown[0].code)
    return Markdown("项目列表", "\n".join(lines))


async def _only_client(ctx: Context, project: Project) -> bool:
    roles = await roles_in(ctx, project)
    return roles == {str(MemberRole.CLIENT)}


@router.command(
    "我的项目",
    aliases=("mine",),
    summary="我参与的项目和我的角色",
    examples=("我的项目",),
    reads_only=True,
)
async def my_projects(incoming: Incoming, ctx: Context) -> Reply:
    session = ctx.session
    projects = await projects_of_user(session=session, user_id=incoming.sender_id) if incoming.sender_id else []
    if not projects:
        return "你还没有参与任何项目。项目经理可以用「成员 添加 @你 实施工程师」把你加入项目。"
    names = await names_of(session, [p.pm_user_id for p in projects])
    lines = [f"#### 我的项目（{len(projects)} 个）"]
    for project in projects[:MAX_LISTED]:
        roles = "、".join(sorted((await roles_in(ctx, project)) - {"领导", "项目管理员"})) or ""
        lines.append(_project_line(project, names, roles))
    lines.append("\n在单聊中可加 项目:编号 指定项目，例如：交付物 项目:" + projects[0].code)
    return Markdown("我的项目", "\n".join(lines))


# ---- 项目 (overview) ---------------------------------------------------------------------------------------------


@router.command(
    "项目",
    aliases=("概况", "project"),
    summary="项目概况：阶段、状态、进度、逾期和接下来的里程碑",
    examples=("项目", "项目 XM-2026-001"),
    params=(Param.word("编号", positional=True, max_length=64, example="XM-2026-001", aliases=("项目",),
                       help="项目编号；在已绑定项目的群里可省略"),),
    roles=EVERYONE,  # checked against the named project below; clients get the client view
    reads_only=True,
)
async def project_overview(incoming: Incoming, ctx: Context) -> Reply:
    project, roles = await project_named(ctx, ctx.args.text("编号"), MEMBERS_AND_CLIENTS, "查看项目概况")
    await remember_sender_project(ctx, project)
    return await overview_markdown(ctx, project, for_client=client_view(ctx, roles))


async def overview_markdown(ctx: Context, project: Project, *, for_client: bool = False) -> Markdown:
    """The overview; ``for_client``: the client's view of it (what the client weekly report shows too): no overdue
    details with their owners, no internal documents, no internal group."""
    session, today, calendar = ctx.session, ctx.today(), ctx.services.calendar
    deliverables = await list_deliverables(session=session, project_id=project.id)
    phases = await list_phases(session=session, project_id=project.id)
    members = await list_members(session=session, project_id=project.id)
    names = await names_of(session, [project.pm_user_id, *(d.owner_user_id for d in deliverables)])
    phase_of = {p.id: p.name for p in phases}
    running = project.status in (ProjectStatus.APPROVED, ProjectStatus.IN_PROGRESS)
    overdue = [d for d in deliverables if running and overdue_days(d, today, calendar) > 0]
    upcoming = sorted(
        (d for d in deliverables if d.status == DeliverableStatus.PENDING and d.due_date and d.due_date >= today
         and counts_toward_progress(d) and (not for_client or client_visible(d.flags))),
        key=lambda d: (d.due_date, d.seq),
    )[:MILESTONES_SHOWN]
    counts = DeliverableCounts.of((counts_toward_progress(d), d.status) for d in deliverables)
    current = next((p for p in phases if p.name == project.current_phase), None)
    closed = project.status == ProjectStatus.CLOSED
    lines = [
        f"#### {project.code} {md_literal(project.name)}",
        f"- 客户：{md_literal(project.customer or '—')}　类型：{project.template}",
        ("- 状态：**已归档**（项目已关闭，只能查看）" if closed else
         f"- 状态：**{project.status}**　当前阶段：**{project.current_phase or '—'}**"
         + (f"（计划 {fmt_day(current.planned_start, today)}–{fmt_day(current.planned_end, today)}）"
            if current and current.planned_start else "")),
        f"- 项目经理：{md_literal(who(names, project.pm_user_id))}　成员：{len({m.user_id for m in members})} 人",
        # The same figures, worded the same way, as the weekly report's.
        f"- 进度：{fmt_percent(gate_progress_percent(deliverables))}（{counts.required_text}）　{counts.all_text}",
        f"- 计划周期：{fmt_day(project.planned_start, today)} 至 {fmt_day(project.planned_end, today)}",
    ]
    if project.status == ProjectStatus.PAUSED and project.paused_at:
        lines.append("- ⏸ 项目已暂停，周报暂停" if for_client else "- ⏸ 项目已暂停，提醒与周报停止；项目经理发送「恢复」后继续")
    reach = REACH_TEXT[await client_reach(session, ctx.config, project)]
    if for_client:
        if overdue:
            lines.append(f"- 逾期交付物：{len(overdue)} 项")
        lines.append(f"- {reach}")
    else:
        lines.append(f"- 群：内部群{'已绑定' if project.internal_conversation_id else '未绑定'}；{reach}")
    if overdue and not for_client:
        lines.append(f"\n**⚠️ 逾期 {len(overdue)} 项**")
        lines += [f"- {md_literal(d.name)}（{phase_of.get(d.phase_id, '')}）{md_literal(who(names, d.owner_user_id))}，"
                  f"应于 {fmt_day(d.due_date, today)}，逾期 {overdue_days(d, today, calendar)} 个工作日"
                  for d in overdue[:5]]
    if upcoming:
        lines.append("\n**接下来**")
        lines += [f"- {fmt_day(d.due_date, today)} {STATUS_ICONS[d.status]} {md_literal(d.name)}（{md_literal(who(names, d.owner_user_id))}）"
                  for d in upcoming]
    lines.append("\n" + (client_next_steps(project) if for_client else next_steps(project)))
    return Markdown(f"{project.code} 概况", "\n".join(lines))


def client_next_steps(project: Project) -> str:
    """What a client contact can look at next; a closed project only looks back."""
    if project.status == ProjectStatus.CLOSED:
        return "项目已归档关闭。发送「交付物」查看交付物。"
    return "发送「交付物」查看本阶段交付物，「周报 预览」查看本周周报。"


def next_steps(project: Project) -> str:
    """What to do next, by the project's state: a closed project invites nothing."""
    status = project.status
    if status == ProjectStatus.CLOSED:
        return "项目已归档关闭，不能再修改。发送「交付物 全部」查看交付物，「审批」查看审批记录。"
    if status == ProjectStatus.ACCEPTED:
        return "项目已验收。接下来：「复盘 总结」「交接 @售后」「归档」；发送「交付物 收尾」查看收尾资料。"
    if status == ProjectStatus.PAUSED:
        return "项目已暂停：问题解决后项目经理发送「恢复」。发送「交付物」查看本阶段交付物。"
    if status in (ProjectStatus.DRAFT, ProjectStatus.REJECTED):
        return "内部启动会后由项目经理发送「立项」。发送「交付物」查看本阶段交付物。"
    if status == ProjectStatus.PENDING_APPROVAL:
        return "立项审批中，发送「审批」查看进度。发送「交付物」查看本阶段交付物。"
    return "发送「交付物」查看本阶段交付物，「推进」进入下一阶段。"


# ---- 绑定 -------------------------------------------------------------------------------------------------------


@router.command(
    "绑定",
    aliases=("bind",),
    summary="把当前群绑定为项目的内部群（提醒与状态变更）或客户群（客户项目周报）",
    examples=("绑定 XM-2026-001 内部群", "绑定 XM-2026-001 客户群"),
    params=(
        Param.word("编号", positional=True, required=True, max_length=64, example="XM-2026-001", help="项目编号"),
        Param.choice("群", (INTERNAL_GROUP, CLIENT_GROUP), positional=True, required=True,
                     help="内部群：提醒与状态变更；客户群：每周的客户项目周报"),
    ),
    action="绑定项目群",
    client_group=True,
)
async def bind_group(incoming: Incoming, ctx: Context) -> Reply:
    if not incoming.is_group or not incoming.conversation_id:
        raise UserError("请在要绑定的群里 @我 发送这条命令，例如：绑定 XM-2026-001 内部群")
    found, _ = await project_named(ctx, ctx.args.text("编号"), only(PROJECT_MANAGER), "绑定项目群")
    project = await lock_project(ctx.session, found.id)
    ensure_not_closed(project)
    kind = ctx.args.text("群")
    conversation = incoming.conversation_id
    bound = await get_project_by_conversation(session=ctx.session, conversation_id=conversation)
    if bound is not None and bound.id != project.id:
        raise Conflict(f"本群已绑定项目 {project_label(bound)}，一个群只能属于一个项目。")
    field, other = (("internal_conversation_id", "client_conversation_id") if kind == INTERNAL_GROUP
                    else ("client_conversation_id", "internal_conversation_id"))
    if getattr(project, other) == conversation:
        other_kind = CLIENT_GROUP if kind == INTERNAL_GROUP else INTERNAL_GROUP
        raise Conflict(f"本群已是项目 {project.code} 的{other_kind}，内部群和客户群不能是同一个群。")
    if kind == INTERNAL_GROUP and ctx.client_conversation:
        raise Conflict("本群是客户群或有其他单位的成员，不能作为内部群（内部群会收到内部事项）。请在只有公司同事的群里绑定内部群。")
    previous = getattr(project, field)
    if previous == conversation:
        return f"本群已是项目 {project_label(project)}的{kind}，无需重复绑定。"
    setattr(project, field, conversation)
    ctx.session.add(project)
    await ctx.session.flush()
    await remember_sender_project(ctx, project)
    title = f"「{incoming.conversation_title}」" if incoming.conversation_title else "本群"
    await record_change(
        ctx.session, project, action="project.bind", summary=f"{title}已绑定为{kind}",
        key=f"project-bound:{project.code}:{field}:{conversation}", entity="project", entity_id=project.id,
        before={field: previous}, after={field: conversation}, **change_context(ctx),
    )
    replaced = "（原来绑定的群已解除）" if previous else ""
    # Who is in the group, read at once: outsiders in a client group become the project's 客户联系人 now, not at
    # their first message; outsiders in an internal group make it a conversation that answers nothing internal.
    await request_job(ctx.session, GROUP_MEMBERS_JOB, f"{project.code}:{conversation}",
                      {"conversation_id": conversation,
                       "project_id": project.id if kind == CLIENT_GROUP else None}, now=ctx.clock.now())
    if kind == INTERNAL_GROUP:
        return (f"已把本群绑定为项目 {project_label(project)}的{kind}{replaced}，以后的提醒和状态变更会发到这里。"
                "在本群发送命令时默认就是这个项目。")
    reach = await client_reach(ctx.session, ctx.config, project)
    how = ("每周的客户项目周报由登记的自定义机器人推送到客户群（消息加 Word 下载链接）" if reach == CUSTOM_ROBOT
           else "每周的客户项目周报会由我发到这里")
    return (f"已把本群绑定为项目 {project_label(project)}的{kind}{replaced}。{how}；群里其他单位的成员默认是客户联系人，"
            "可以查看项目概况、交付物和客户版周报（项目经理可用「成员 移除」取消）。本群不显示内部内容。")


feature = Feature("projects", router=router, middleware=(project_middleware,))

__all__ = ["feature", "bind_group", "create_project", "list_all_projects", "my_projects", "next_steps", "overview_markdown",
           "project_overview", "router", "set_project_facts"]

