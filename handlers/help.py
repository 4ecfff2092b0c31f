"""帮助: the command list and each command's usage, generated from the registrations so it never goes stale."""

from __future__ import annotations

from bot.args import Param
from bot.context import Context
from bot.dispatcher import command_text
from bot.incoming import Incoming
from bot.replies import Markdown, Reply, Text
from bot.router import Command, CommandTable, Group, Router, Target, unknown_command_text

router = Router("help", title="帮助")


def _heading(target: Target, table: CommandTable) -> str:
    """``**成员** 添加｜移除：管理项目成员`` for a group, ``**周报**：…（子命令：预览）`` for a command."""
    children = table.children(target.name)
    subs = "｜".join(child.name.partition(" ")[2] for child in children)
    if isinstance(target, Group):
        return f"- **{target.name}** {subs}" + (f"：{target.summary}" if target.summary else "")
    line = f"- **{target.name}**：{target.summary}"
    return line + (f"（子命令：{subs}）" if subs else "")


def command_list(table: CommandTable) -> Markdown:
    parts = ["#### 命令一览"]
    for title, entries in table.sections():
        parts.append(f"**{title}**\n\n" + "\n".join(_heading(entry, table) for entry in entries))
    parts.append("发送「帮助 命令名」查看用法和示例，例如：帮助 帮助")
    return Markdown("命令一览", "\n\n".join(parts))


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


def group_detail(group: Group, table: CommandTable) -> Markdown:
    parts = [f"#### {group.name}"]
    if group.summary:
        parts.append(group.summary)
    for child in table.children(group.name):
        parts.append(f"**{child.name}**：{child.summary}\n\n用法：{child.usage}\n\n例如：{child.examples[0]}")
    if group.aliases:
        parts.append(f"**别名**：{'、'.join(group.aliases)}")
    parts.append(f"发送「帮助 {group.name} 子命令」查看参数和权限。")
    return Markdown(f"帮助：{group.name}", "\n\n".join(parts))


@router.command(
    "帮助",
    aliases=("help", "?", "？"),
    summary="查看全部命令，或某个命令的用法、参数、示例和权限",
    examples=("帮助", "帮助 帮助"),
    params=(Param.text("命令", max_length=50, help="要查看的命令名或别名"),),
    reads_only=True,
)
async def show_help(incoming: Incoming, ctx: Context) -> Reply:
    topic = ctx.args.text("命令")
    if not topic:
        return command_list(ctx.commands)
    found = ctx.commands.match(command_text(topic))
    if found is None:
        return Text(unknown_command_text(topic, ctx.commands.suggest(topic)))
    if isinstance(found.target, Group):
        return group_detail(found.target, ctx.commands)
    return command_detail(found.target, ctx.commands)
