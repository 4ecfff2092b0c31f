"""Property: whatever arrives — random unicode, control characters, huge strings, punctuation only, fake mentions,
key:value soup, SQL and path tricks — the dispatcher answers it exactly once and never fails unexpectedly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.args import Param, User, parse_args
from bot.config import parse_config
from bot.context import Context, FrozenClock, Services
from bot.dispatcher import Dispatcher
from bot.incoming import Incoming
from bot.roles import MEMBERS, MEMBERS_AND_CLIENTS, PROJECT_MANAGER, only
from bot.router import Router
from bot.testing import RecordingUnits, make_incoming, run_text
from domain.errors import NotFound, UsageError, UserError
from domain.replies import REPLY_TYPES
from handlers import help as help_module

FUZZ = settings(
    max_examples=1500,
    deadline=None,
    database=None,  # leave no .hypothesis folder in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)

RISK_PARAMS = (
    Param.text("描述", required=True, max_length=200),
    Param.choice("概率", ("高", "中", "低"), required=True, aliases=("probability",)),
    Param.choice("影响", ("高", "中", "低")),
    Param.user("负责人", aliases=("owner",)),
    Param.date("截止", aliases=("due",)),
    Param.number("天数", min_value=0, max_value=365),
)
MEMBER_PARAMS = (
    Param.user("成员", positional=True, required=True, many=True),
    Param.choice("角色", ("项目经理", "实施工程师", "客户"), positional=True, required=True),
)


def describe_args(ctx: Context) -> str:
    return "；".join(f"{name}={value!r}" for name, value in ctx.args.items()) or "无参数"


def sample_routers() -> list[Router]:
    projects = Router("projects", title="项目")
    registers = Router("registers", title="登记")

    @projects.command("新建项目", aliases=("new", "创建项目"), summary="创建项目", examples=("新建项目 测试 类型:技改",),
                      params=(Param.text("名称", required=True, max_length=50),
                              Param.choice("类型", ("软件实施", "设备系统", "技改"), required=True),
                              Param.user("经理"), Param.date("开始")))
    async def new_project(incoming: Incoming, ctx: Context) -> str:
        return describe_args(ctx)

    @projects.command("下一阶段", aliases=("进入下一阶段", "next"), summary="推进阶段", examples=("下一阶段",),
                      roles=only(PROJECT_MANAGER), needs_project=True, action="推进阶段")
    async def advance_phase(incoming: Incoming, ctx: Context) -> str:
        return "已推进"

    @projects.command("成员 添加", aliases=("member add",), summary="添加成员", examples=("成员 添加 @张三 客户",),
                      params=MEMBER_PARAMS, roles=only(PROJECT_MANAGER), needs_project=True)
    async def add_member(incoming: Incoming, ctx: Context) -> str:
        return describe_args(ctx)

    @projects.command("周报", summary="周报", examples=("周报",), roles=MEMBERS_AND_CLIENTS, needs_project=True)
    async def weekly(incoming: Incoming, ctx: Context) -> None:
        await ctx.reply("周报已生成")

    @projects.command("周报 预览", summary="预览", examples=("周报 预览",), needs_project=True,
                      params=(Param.date("周", positional=True),))
    async def weekly_preview(incoming: Incoming, ctx: Context) -> str:
        return describe_args(ctx)

    for register in ("问题", "风险"):
        @registers.command(f"{register} 新增", summary="新增", examples=(f"{register} 新增 x 概率:高",),
                           params=RISK_PARAMS, roles=MEMBERS, needs_project=True)
        async def add_entry(incoming: Incoming, ctx: Context) -> str:
            return describe_args(ctx)

        @registers.command(f"{register} 关闭", summary="关闭", examples=(f"{register} 关闭 1",),
                           params=(Param.number("编号", positional=True, required=True),), needs_project=True)
        async def close_entry(incoming: Incoming, ctx: Context) -> str:
            return describe_args(ctx)

    return [projects, registers, help_module.router]


async def fake_projects(incoming: Incoming, ctx: Context, call_next):
    """The project middleware without a database: a bound group's project, or a plausible 项目:编号."""
    code = ctx.args.text("项目") if ctx.command.needs_project else None
    if code is not None:
        project = code if code.startswith("P") and len(code) < 10 else None
        if project is None:
            raise NotFound(f"未找到项目「{code}」")
    else:
        project = "P1" if incoming.conversation_id.endswith("1") else None
    if ctx.command.needs_project and project is None:
        raise UserError(f"「{ctx.command.name}」需要先指定项目")
    ctx.project, ctx.roles = project, await roles_of(incoming.sender_key, project)
    return await call_next()


async def roles_of(user_id: str, project: object) -> frozenset[str]:
    return frozenset({"项目经理"}) if user_id == "pm" else frozenset({"客户"}) if user_id == "client" else frozenset()


async def find_user(user_id: str) -> User | None:
    return User(user_id, "已知") if user_id in {"lisi", "zhangsan"} else None


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def harness() -> tuple[Dispatcher, RecordingUnits]:
    config = parse_config({"dingtalk": {"client_id": "id", "client_secret": "real-secret"}}, environ={})
    dispatcher = Dispatcher(
        Services(config=config, clock=FrozenClock(datetime(2026, 9, 2, 3))),
        roles_of=roles_of,
        find_user=find_user,
        middleware=[fake_projects],
    )
    dispatcher.include_routers(*sample_routers())
    return dispatcher, RecordingUnits()


# --- strategies ---------------------------------------------------------------------------------------------------

COMMAND_WORDS = [
    "新建项目", "new", "创建项目", "下一阶段", "进入下一阶段", "next", "成员 添加", "member add", "成员", "周报",
    "周报 预览", "周报预览", "问题 新增", "风险 新增", "风险新增", "问题 关闭", "风险", "帮助", "help", "?", "？",
    "/帮助", "／新建项目", "新建项", "帮助 新建项目", "help member",
]
KEYS = ["描述", "概率", "probability", "影响", "负责人", "owner", "截止", "due", "天数", "名称", "类型", "经理",
        "开始", "项目", "project", "编号", "周", "成员", "角色", "未知", "http", "C", "a_b", "1x"]
SEPARATORS = [":", "：", "=", "＝", ": ", "： ", "::", ":=", ""]
VALUES = [
    "高", "中", "低", "很高", "@张三", "@lisi", "@", "@@", "zhangsan", "2026-02-30", "13月1日", "10月1日", "明天",
    "下周一", "下周八", "２０２６／１０／１", "0", "-1", "99999999999999999999", "365", "１２", "P1", "P" + "9" * 40,
    "“", "”", "「", "」", '"', "'", "‘", "『", "“未闭合", "「a b」", '"x y"', "", " ", "\u3000", "\n",
    "'; DROP TABLE projects; --", "../../etc/passwd", "..\\..\\windows\\system32", "%s%s%n", "${jndi:ldap://x/a}",
    "<script>alert(1)</script>", "\x00", "\u202e", "\u200b", "\ufeff", "🙂", "a@b.com", "http://x/y:z", "17:00",
    "NaN", "None", "null", "__import__('os')", "{{7*7}}", "项目经理", "实施工程师", "客户",
]
HOSTILE = st.sampled_from(VALUES)
mention_like = st.builds(lambda name: "@" + name, st.text(max_size=12))
key_value = st.builds(
    lambda k, s, v: f"{k}{s}{v}", st.sampled_from(KEYS) | st.text(max_size=6), st.sampled_from(SEPARATORS),
    HOSTILE | st.text(max_size=10),
)
soup_part = HOSTILE | mention_like | key_value | st.text(max_size=15)
joiner = st.sampled_from([" ", "  ", "\u3000", "\n", "\t", "", "，"])
soup = st.builds(lambda parts, j: j.join(parts), st.lists(soup_part, max_size=12), joiner)
command_soup = st.builds(lambda c, j, s: f"{c}{j}{s}", st.sampled_from(COMMAND_WORDS), joiner, soup)
punctuation = st.text(alphabet=st.sampled_from(list("，。！？：；“”「」『』‘’'\"@/\\:=＝、…—（）()[]{}<>#$%^&*~`|")), max_size=60)
huge = st.builds(lambda piece, n: piece * n, st.text(min_size=1, max_size=8) | HOSTILE, st.integers(500, 3000))
messages = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8")),
    st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Po", "Ps", "Pe"])),
    punctuation,
    soup,
    command_soup,
    command_soup,
    command_soup,
    huge,
)
staff_ids = st.lists(st.sampled_from(["u1", "u2", "u3", "lisi"]) | st.text(min_size=1, max_size=8), max_size=4)
senders = st.sampled_from(["pm", "client", "stranger", ""])
conversations = st.sampled_from(["cid-group-1", "cid-group-2"])


# --- properties ---------------------------------------------------------------------------------------------------


@FUZZ
@given(text=messages, mentions=staff_ids, sender=senders, conversation=conversations, group=st.booleans())
def test_every_message_is_answered_exactly_once(
    loop, harness, text: str, mentions: list[str], sender: str, conversation: str, group: bool
) -> None:
    dispatcher, units = harness
    units.replies.clear()
    incoming = make_incoming(text, sender_id=sender, conversation_id=conversation, group=group, mentions=mentions)
    result = loop.run_until_complete(run_text(dispatcher, incoming, units))
    assert result.outcome != "error", f"unexpected failure for {text[:200]!r}"
    [reply] = units.replies
    assert isinstance(reply, REPLY_TYPES)
    assert reply.text.strip()
    assert list(result.replies) == [reply]


@FUZZ
@given(text=soup | st.text(), mentions=staff_ids)
def test_the_parser_refuses_only_with_usage_errors(loop, text: str, mentions: list[str]) -> None:
    async def parse() -> None:
        for params in (RISK_PARAMS, MEMBER_PARAMS):
            try:
                args = await parse_args(params, text, today=date(2026, 9, 2), mentions=mentions, find_user=find_user)
            except UsageError as exc:
                assert exc.problem and len(exc.problem) < 400
            else:
                for param in params:
                    if param.required:
                        assert param.name in args

    loop.run_until_complete(parse())
