"""帮助 generated from the registrations: the list, one command's details, groups, and suggestions."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.args import Param
from bot.config import parse_config
from bot.context import Context, FrozenClock, Services
from bot.dispatcher import Dispatcher
from bot.incoming import Incoming
from bot.roles import MEMBERS_AND_CLIENTS, PROJECT_MANAGER, only
from bot.router import Router
from bot.testing import RecordingUnits, make_incoming, run_text
from domain.replies import Markdown, Text
from handlers import help as help_module


async def noop(incoming: Incoming, ctx: Context) -> str:
    return "ok"


def build_routers() -> tuple[Router, Router]:
    projects = Router("projects", title="项目")
    projects.command(
        "新建项目",
        aliases=("new", "创建项目"),
        summary="创建一个实施项目",
        examples=("新建项目 某医院信息化 类型:软件实施", "new 某仓库 类型:设备系统"),
        params=(
            Param.text("名称", required=True, max_length=50),
            Param.choice("类型", ("软件实施", "设备系统", "技改"), required=True),
            Param.user("经理", help="默认为发送者"),
            Param.date("开始"),
        ),
        roles=only(PROJECT_MANAGER),
    )(noop)
    projects.group("成员", summary="管理项目成员", aliases=("member",))
    projects.command("成员 添加", summary="添加项目成员", examples=("成员 添加 @张三 实施工程师",), needs_project=True)(noop)
    projects.command("成员 移除", summary="移除项目成员", examples=("成员 移除 @张三",), needs_project=True)(noop)
    reports = Router("reports", title="报告")
    reports.command("周报", summary="生成本周周报", examples=("周报",), roles=MEMBERS_AND_CLIENTS, needs_project=True)(noop)
    reports.command("周报 预览", summary="预览本周周报", examples=("周报 预览",), needs_project=True)(noop)
    return projects, reports


@pytest.fixture
def chat() -> Dispatcher:
    config = parse_config({"dingtalk": {"client_id": "id", "client_secret": "real-secret"}}, environ={})
    dispatcher = Dispatcher(Services(config=config, clock=FrozenClock(datetime(2026, 9, 2))))
    dispatcher.include_routers(*build_routers(), help_module.router)
    return dispatcher


async def ask(chat, text: str):
    units = RecordingUnits()
    await run_text(chat, make_incoming(text), units)
    [reply] = units.replies
    return reply


@pytest.mark.parametrize("text", ["帮助", "help", "?", "？", "/帮助", "HELP"])
async def test_list_groups_commands_by_section(chat, text: str) -> None:
    reply = await ask(chat, text)
    assert isinstance(reply, Markdown) and reply.title == "命令一览"
    assert reply.text == (
        "#### 命令一览\n\n"
        "**项目**\n\n"
        "- **新建项目**：创建一个实施项目\n"
        "- **成员** 添加｜移除：管理项目成员\n\n"
        "**报告**\n\n"
        "- **周报**：生成本周周报（子命令：预览）\n\n"
        "**帮助**\n\n"
        "- **帮助**：查看全部命令，或某个命令的用法、参数、示例和权限\n\n"
        "发送「帮助 命令名」查看用法和示例，例如：帮助 帮助"
    )


@pytest.mark.parametrize("text", ["帮助 新建项目", "帮助 new", "help 创建项目", "帮助新建项目", "帮助 /新建项目"])
async def test_one_command_shows_usage_params_examples_roles_aliases(chat, text: str) -> None:
    reply = await ask(chat, text)
    assert isinstance(reply, Markdown) and reply.title == "帮助：新建项目"
    assert reply.text == (
        "#### 新建项目\n\n"
        "创建一个实施项目\n\n"
        "**用法**：新建项目 〈名称〉 类型:软件实施|设备系统|技改 [经理:@某人] [开始:日期]\n\n"
        "**参数**\n\n"
        "- 名称（必填）：文字，最多 50 字\n"
        "- 类型（必填）：软件实施｜设备系统｜技改\n"
        "- 经理（可选）：在钉钉里 @ 选择的人，或写姓名、名字(部门)、手机号。默认为发送者\n"
        "- 开始（可选）：日期，如 2026-10-01、2026/10/1、10月1日、2026年10月1日、今天、明天、下周一\n\n"
        "**示例**\n\n"
        "- 新建项目 某医院信息化 类型:软件实施\n"
        "- new 某仓库 类型:设备系统\n\n"
        "**谁可以用**：项目经理（或领导、项目管理员）\n\n"
        "**别名**：new、创建项目"
    )


async def test_command_with_sub_commands_and_project(chat) -> None:
    reply = await ask(chat, "帮助 周报")
    assert "**谁可以用**：项目组成员和客户联系人（客户只读）" in reply.text
    assert "**需要项目**：在已绑定项目的群里发送，或加上 项目:编号" in reply.text
    assert "- 项目（可选）：文字，最多 64 字。项目编号；在没有绑定项目的会话里用它指定项目（也可写作 project）" in reply.text
    assert reply.text.endswith("**子命令**\n\n- 周报 预览：预览本周周报")


async def test_sub_command_detail(chat) -> None:
    reply = await ask(chat, "帮助 成员 添加")
    assert reply.title == "帮助：成员 添加" and "**用法**：成员 添加 [项目:编号]" in reply.text


@pytest.mark.parametrize("text", ["帮助 成员", "帮助 member"])
async def test_group_detail(chat, text: str) -> None:
    reply = await ask(chat, text)
    assert reply.title == "帮助：成员"
    assert "**成员 添加**：添加项目成员\n\n用法：成员 添加 [项目:编号]\n\n例如：成员 添加 @张三 实施工程师" in reply.text
    assert "**别名**：member" in reply.text


async def test_unknown_topic_suggests(chat) -> None:
    reply = await ask(chat, "帮助 新建项")
    assert isinstance(reply, Text)
    assert reply.text == "未找到命令「新建项」。你是不是想用：新建项目？发送「帮助」查看全部命令。"


async def test_help_for_help(chat) -> None:
    reply = await ask(chat, "帮助 帮助")
    assert "**别名**：help、?、？" in reply.text and "- 命令（可选）" in reply.text
