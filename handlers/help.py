"""帮助: the command list and each command's usage, generated from the registrations so it never goes stale.

The list depends on who asks and where: a client contact (and anyone in a client conversation) sees only what can
be used there, the client's view; a project member sees every command, those their role does not allow marked with
the role they need (``（仅项目经理）``).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.args import Param
from bot.context import Context
from bot.dispatcher import command_text
from bot.feature import Feature
from bot.incoming import Incoming
from bot.roles import CLIENT, EVERYONE
from bot.router import Command, CommandTable, Group, Router, Target, unknown_command_text
from domain.replies import Markdown, Reply, Text
from handlers._common import client_view

router = Router("help", title="帮助")

Shown = Callable[[Command], bool]


def _everything(command: Command) -> bool:
    return True


def _heading(target: Target, table: CommandTable, shown: Shown, mark: Callable[[Command], str]) -> str | None:
    """``**成员** 添加｜移除：管理项目成员`` for a group, ``**周报**：…（子命令：预览）`` for a command; None when nothing
    of it is shown."""
    children = [c for c in table.children(target.name) if shown(c)]
    subs = "｜".join(child.name.partition(" ")[2] + mark(child) for child in children)
    if isinstance(target, Group):
        if not children:
            return None
        # Some sub-commands only (a client's 问题 列表): their own summary, not the group's, which names the others.
        summary = target.summary if len(children) == len(table.children(target.name)) else children[0].summary
        return f"- **{target.name}** {subs}" + (f"：{summary}" if summary else "")
    if not shown(target):
        return None
    line = f"- **{target.name}**{mark(target)}：{target.summary}"
    return line + (f"（子命令：{subs}）" if subs else "")


def command_list(table: CommandTable, *, shown: Shown = _everything,
                 mark: Callable[[Command], str] = lambda command: "", heading: str = "命令一览",
                 note: str = "") -> Markdown:
    parts = [f"#### {heading}"]
    if note:
        parts.append(note)
    for title, entries in table.sections():
        lines = [line for entry in entries if (line := _heading(entry, table, shown, mark)) is not None]
        if lines:
            # A title that lists its commands (登记簿（问题、需求…）) would name ones this reader cannot see.
            shown_title = title if len(lines) == len(entries) else title.partition("（")[0]
            parts.append(f"**{shown_title}**\n\n" + "\n".join(lines))
    parts.append("发送「帮助 命令名」查看用法和示例，例如：帮助 帮助")
    return Markdown(heading, "\n\n".join(parts))


def command_detail(command: Command, table: CommandTable) -> Markdown:
    parts = [f"#### {command.name}", command.summary, f"**用法**：{command.usage}"]
    if command.all_params:
        parts.append("**参数**\n\n" + "\n".join(f"- {p.describe()}" for p in command.all_params))
    parts.append("**示例**\n\n" + "\n".join(f"- {example}" for example in command.examples))
    parts.append(f"**谁可以用**：{command.roles.describe()}")
    if command.needs_project:
        parts.append("**需要项目**：在已绑定项目的群里发送，或加上 项目:编号")
    if command.aliases:
        parts.append(f"**别名**：{'、'.join(command.aliases)}")
    children = table.children(command.name)
    if children:
        parts.append("**子命令**\n\n" + "\n".join(f"- {c.name}：{c.summary}" for c in children))
    return Markdown(f"帮助：{command.name}", "\n\n".join(parts))


def group_detail(group: Group, table: CommandTable, shown: Shown = _everything) -> Markdown:
    parts = [f"#### {group.name}"]
    if group.summary:
        parts.append(group.summary)
    for child in table.children(group.name):
        if shown(child):
            parts.append(f"**{child.name}**：{child.summary}\n\n用法：{child.usage}\n\n例如：{child.examples[0]}")
    if group.aliases:
        parts.append(f"**别名**：{'、'.join(group.aliases)}")
    parts.append(f"发送「帮助 {group.name} 子命令」查看参数和权限。")
    return Markdown(f"帮助：{group.name}", "\n\n".join(parts))


def _audience(ctx: Context) -> tuple[Shown, Callable[[Command], str], str, str]:
    """What the asker is shown: (which commands, how each is marked, the heading, a note)."""
    if client_view(ctx):
        if CLIENT in ctx.roles and not ctx.roles - {CLIENT}:
            return ((lambda c: c.roles.clients), lambda c: "", "客户联系人可用的命令",
                    "你是本项目的客户联系人，可以查看项目概况、交付物、问题和需求，以及客户版周报。")
        return ((lambda c: c.in_client_groups), lambda c: "", "客户群里可用的命令",
                "本群是客户群（或有外部成员），这里只显示客户也能看的内容；其他命令请在项目内部群或与我的单聊中发送。")
    team = ctx.roles - {CLIENT}

    def mark(command: Command) -> str:
        # A project member is told which commands need another role; someone without a role sees the plain list.
        if not team or command.roles.kind != "roles" or command.roles.allows(ctx.roles):
            return ""
        return f"（仅{command.roles.roles[0]}）"

    return _everything, mark, "命令一览", ""


@router.command(
    "帮助",
    aliases=("help", "?", "？"),
    summary="查看全部命令，或某个命令的用法、参数、示例和权限",
    examples=("帮助", "帮助 帮助"),
    params=(Param.text("命令", max_length=50, help="要查看的命令名或别名"),),
    roles=EVERYONE,
    reads_only=True,
)
async def show_help(incoming: Incoming, ctx: Context) -> Reply:
    shown, mark, heading, note = _audience(ctx)
    topic = ctx.args.text("命令")
    if not topic:
        return command_list(ctx.commands, shown=shown, mark=mark, heading=heading, note=note)
    found = ctx.commands.match(command_text(topic))
    if found is None:
        return Text(unknown_command_text(topic, ctx.commands.suggest(topic)))
    if isinstance(found.target, Group):
        return group_detail(found.target, ctx.commands, shown)
    if not shown(found.target):
        return Text(f"「{found.target.name}」不在这里可用的命令里。发送「帮助」查看可用的命令。")
    return command_detail(found.target, ctx.commands)


feature = Feature("help", router=router)
