"""成员: who plays which role in a project (成员, 成员 添加, 成员 移除).

Roles are the standard's: 项目经理, 实施工程师, 拓展/业务负责人 (拓展 and 业务负责人 accepted), 质控, 售后, 领导,
项目管理员, 客户. Adding someone hands them the deliverables of their role that have no owner yet; removing them
hands their open deliverables to another member with the same role, if there is one.
"""

from __future__ import annotations

from bot.args import Param, User
from bot.context import Context
from bot.feature import Feature
from bot.incoming import Incoming
from bot.roles import MEMBERS_AND_CLIENTS, PROJECT_MANAGER, only
from bot.router import Router
from domain.changes import (
    change_context,
    ensure_not_closed,
    lock_project,
    record_change,
)
from domain.errors import Conflict, NotFound, UsageError
from domain.labels import names_of
from domain.replies import Markdown, Reply
from handlers._common import client_view
from handlers._project import project_middleware
from reports.user_text import clip, md_literal
from storage.models import MemberRole, Project, is_external_key, parse_member_role
from storage.repo import (
    add_member,
    assign_unowned_deliverables,
    list_members,
    reassign_deliverables,
    remove_member,
    upsert_user,
)
from storage.repo.directory import (
    clear_exclusion,
    exclude_member,
    people_by_key,
    person_cards,
)

router = Router("members", title="成员与角色")

ROLE_CHOICES = "、".join(r.value for r in MemberRole)
ROLE_PARAM_HELP = f"角色：{ROLE_CHOICES}（也可写 拓展、业务负责人）"


def parse_role(text: str | None, *, example: str) -> MemberRole:
    role = parse_member_role(text or "")
    if role is None:
        raise UsageError(f"未知角色「{clip(text or '')}」。可选：{ROLE_CHOICES}。例如：{example}")
    return role


@router.command(
    "成员",
    aliases=("members", "member"),
    summary="查看项目成员和各自的角色",
    examples=("成员", "成员 添加 @王五 实施工程师"),
    params=(Param.text("子命令", max_length=200, help="添加 或 移除；不写则列出成员"),),
    roles=MEMBERS_AND_CLIENTS,
    needs_project=True,
    reads_only=True,
)
async def show_members(incoming: Incoming, ctx: Context) -> Reply:
    typed = ctx.args.text("子命令")
    if typed:
        # 「成员 加入 @某人」: a sub-command we do not have; the group's own commands are what was meant.
        raise UsageError(f"「成员」没有子命令「{clip(typed.split()[0], 10)}」。子命令：添加、移除。",
                         usage="成员 添加 @某人 〈角色〉 / 成员 移除 @某人 [角色]",
                         examples=("成员 添加 @王五 实施工程师",))
    project: Project = ctx.project
    members = await list_members(session=ctx.session, project_id=project.id)
    names = await member_labels(ctx.session, [m.user_id for m in members])
    by_role: dict[MemberRole, list[str]] = {}
    for member in members:
        by_role.setdefault(MemberRole(member.role), []).append(names[member.user_id])
    lines = [f"#### {project.code} 项目成员"]
    lines += [f"- **{role}**：{'、'.join(map(md_literal, by_role[role]))}" for role in MemberRole if role in by_role]
    organization = ctx.config.organization
    if not client_view(ctx):
        if organization.leaders or organization.project_admins:
            lines.append("\n公司领导和项目管理员（见配置）在每个项目中都有项目经理的权限。")
        lines.append("\n项目经理可以「成员 添加 @某人 实施工程师」或「成员 移除 @某人」；在单聊里可以直接写姓名，"
                     "如「成员 添加 李明 实施工程师」。客户群里的外部成员默认是客户联系人。")
    return Markdown(f"{project.code} 项目成员", "\n".join(lines))


async def member_labels(session: object, user_ids: list[str]) -> dict[str, str]:
    """``李明``; ``黄蕾（华东某制造集团）`` for an external contact; ``赵磊（已离职）`` for someone who left."""
    people = await people_by_key(session=session, user_ids=user_ids)  # type: ignore[arg-type]
    cards = {c.user_id: c for c in await person_cards(session=session, users=list(people.values()))}  # type: ignore
    labels = {}
    for user_id in user_ids:
        card = cards.get(user_id)
        if card is None:
            labels[user_id] = user_id
            continue
        notes = [card.organization or "外部联系人"] if card.external else []
        if not card.active:
            notes.append("已离职")
        labels[user_id] = f"{card.name}（{'，'.join(notes)}）" if notes else card.name
    return labels


@router.command(
    "成员 添加",
    aliases=("加成员",),
    summary="把人加入项目并指定角色；该角色尚无负责人的交付物交给他",
    examples=("成员 添加 @王五 实施工程师", "成员 添加 @赵六 @钱七 拓展"),
    params=(
        Param.user("成员", positional=True, required=True, many=True, help="在钉钉里 @ 选择（单聊里写姓名），可以多个"),
        Param.word("角色", positional=True, required=True, max_length=16, help=ROLE_PARAM_HELP),
    ),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="管理项目成员",
    client_group=True,  # the PM adds the client's people by @ where they are: in the client group
)
async def add_members(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    role = parse_role(ctx.args.text("角色"), example="成员 添加 @王五 实施工程师")
    users: tuple[User, ...] = ctx.args.users("成员")
    outsiders = [u for u in users if is_external_key(u.user_id)]
    if outsiders and role != MemberRole.CLIENT:
        who = "、".join(u.display for u in outsiders)
        raise UsageError(f"{who} 是其他单位的人（外部联系人），只能是{MemberRole.CLIENT}联系人，不能担任{role}。"
                         f"例如：成员 添加 @{outsiders[0].display} 客户联系人")
    added, already, handed = [], [], 0
    for user in users:
        if user.name:
            await upsert_user(session=ctx.session, user_id=user.user_id, name=user.name)
        await clear_exclusion(session=ctx.session, project_id=project.id, user_id=user.user_id)
        if await add_member(session=ctx.session, project_id=project.id, user_id=user.user_id, role=role):
            added.append(user)
            handed += await assign_unowned_deliverables(
                session=ctx.session, project_id=project.id, role=role, user_id=user.user_id
            )
        else:
            already.append(user)
    names = await names_of(ctx.session, [u.user_id for u in users])
    for user in added:
        await record_change(
            ctx.session, project, action="member.add", summary=f"{names[user.user_id]} 加入项目，角色：{role}",
            key=f"member-added:{project.code}:{user.user_id}:{role.value}", entity="member", entity_id=user.user_id,
            after={"user": user.user_id, "role": role.value}, **change_context(ctx),
        )
    parts = []
    if added:
        parts.append(f"已把 {'、'.join(names[u.user_id] for u in added)} 加入项目 {project.code}，角色：{role}。")
        if handed:
            parts.append(f"{handed} 项{role}负责的交付物已交给{'他们' if len(added) > 1 else '他'}。")
    if already:
        parts.append(f"{'、'.join(names[u.user_id] for u in already)} 已经是{role}。")
    return "".join(parts)


@router.command(
    "成员 移除",
    aliases=("删成员",),
    summary="把人移出项目（或只去掉一个角色）；他未完成的交付物转给同角色的其他成员",
    examples=("成员 移除 @王五", "成员 移除 @王五 实施工程师"),
    params=(
        Param.user("成员", positional=True, required=True, former=True, help="在钉钉里 @ 选择，或写姓名；已离职的人也可以"),
        Param.word("角色", positional=True, max_length=16, help="只去掉这个角色；不写则移出项目"),
    ),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="管理项目成员",
    client_group=True,
)
async def remove_members(incoming: Incoming, ctx: Context) -> Reply:
    project = await lock_project(ctx.session, ctx.project.id)
    ensure_not_closed(project)
    user = ctx.args.user("成员")
    assert user is not None
    role_text = ctx.args.text("角色")
    role = parse_role(role_text, example="成员 移除 @王五 实施工程师") if role_text else None
    members = await list_members(session=ctx.session, project_id=project.id)
    held = [MemberRole(m.role) for m in members if m.user_id == user.user_id and (role is None or m.role == role)]
    names = await names_of(ctx.session, [user.user_id])
    name = names[user.user_id] if user.user_id in names else (user.name or user.user_id)
    if not held:
        what = f"不是本项目的{role}" if role else "不是本项目成员"
        raise NotFound(f"{name}{what}。发送「成员」查看项目成员。")
    managers = {m.user_id for m in members if m.role == MemberRole.PM}
    if MemberRole.PM in held and managers == {user.user_id}:
        raise Conflict("不能移除项目唯一的项目经理。请先「成员 添加 @新经理 项目经理」，再移除。")
    await remove_member(session=ctx.session, project_id=project.id, user_id=user.user_id, role=role)
    if is_external_key(user.user_id):
        # External members of the client group are 客户联系人 by default: remember that the PM took this one away.
        await exclude_member(session=ctx.session, project_id=project.id, user_id=user.user_id)
    handed_to: list[str] = []
    orphaned = 0
    for held_role in held:
        successor = next((m.user_id for m in members if m.role == held_role and m.user_id != user.user_id), None)
        moved = await reassign_deliverables(session=ctx.session, project_id=project.id, from_user_id=user.user_id,
                                            to_user_id=successor, role=held_role)
        if moved and successor:
            handed_to.append(successor)
        elif moved:
            orphaned += moved
    if project.pm_user_id == user.user_id and MemberRole.PM in held:
        project.pm_user_id = next(uid for uid in managers if uid != user.user_id)
        ctx.session.add(project)
    roles_text = "、".join(r.value for r in held)
    await record_change(
        ctx.session, project, action="member.remove", summary=f"{name} 不再担任：{roles_text}",
        key=f"member-removed:{project.code}:{user.user_id}:{roles_text}:{ctx.trace_id}", entity="member",
        entity_id=user.user_id, before={"user": user.user_id, "roles": [r.value for r in held]}, **change_context(ctx),
    )
    successors = await names_of(ctx.session, handed_to)
    # Say only what happened: a hand-over when deliverables moved, a gap when they were left without an owner.
    handed = f"他负责的未完成交付物已转给 {'、'.join(successors.values())}。" if successors else ""
    if orphaned:
        handed += (f"他负责的 {orphaned} 项未完成交付物暂无负责人（本项目没有同角色的其他成员），"
                   "请用「计划」指定，例如：计划 接口说明文档 负责人:@王五")
    return f"已移除 {name} 的角色：{roles_text}。{handed}"


feature = Feature("members", router=router, middleware=(project_middleware,))

__all__ = ["feature", "add_members", "parse_role", "remove_members", "router", "show_members"]
