"""The dispatcher as the one error boundary: matching, context, role refusals, typed errors, apologies, log line."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime

import pytest

from bot.args import Param, User
from bot.config import parse_config
from bot.context import Context, FrozenClock, Services
from bot.dispatcher import (
    APOLOGY,
    DONE,
    GREETING,
    Dispatcher,
    Handled,
    Outcome,
    log_handled,
)
from bot.incoming import Incoming
from bot.roles import (
    CLIENT,
    ENGINEER,
    LEADER,
    MEMBERS,
    MEMBERS_AND_CLIENTS,
    PROJECT_MANAGER,
    only,
)
from bot.router import Router
from bot.testing import RecordingUnits, make_incoming, run_text
from domain.errors import Conflict, NotFound, PermissionDenied, UsageError, UserError
from domain.replies import Markdown, Text


@dataclass(frozen=True)
class Project:
    code: str
    name: str


PROJECTS = {"P1": Project("P1", "某医院信息化"), "P2": Project("P2", "某仓库RFID")}
BOUND = {"cid-group-1": "P1"}
ROLES = {
    ("pm", "P1"): {PROJECT_MANAGER},
    ("eng", "P1"): {ENGINEER},
    ("client", "P1"): {CLIENT},
    ("boss", None): {LEADER},
}


async def fake_projects(incoming: Incoming, ctx: Context, call_next):
    """The project middleware's part the kernel relies on, without a database (``handlers._project`` is the real one,
    tested with the features): it sets ``ctx.project`` and the roles in it, or refuses."""
    code = ctx.args.text("项目") if ctx.command.needs_project else None
    project = PROJECTS.get(code or BOUND.get(incoming.conversation_id, ""))
    if code and project is None:
        raise NotFound(f"未找到项目「{code}」，请检查项目编号。")
    if ctx.command.needs_project and project is None:
        raise UserError(f"「{ctx.command.name}」需要先指定项目：请在已绑定项目的群里发送，"
                        f"或加上项目编号，例如：{ctx.command.examples[0]} 项目:编号")
    ctx.project, ctx.roles = project, await roles_of(incoming.sender_key, project)
    return await call_next()


async def roles_of(user_id: str, project: Project | None) -> frozenset[str]:
    own = ROLES.get((user_id, project.code if project else None), set())
    return frozenset(own | ROLES.get((user_id, None), set()))


async def find_user(user_id: str) -> User | None:
    return User(user_id, "李四") if user_id == "lisi" else None


calls: list[Context] = []
projects = Router("projects", title="项目")
faults = Router("faults", title="故障")


@projects.command(
    "下一阶段",
    aliases=("进入下一阶段", "next"),
    summary="推进到下一阶段",
    examples=("下一阶段",),
    roles=only(PROJECT_MANAGER),
    needs_project=True,
    action="推进阶段",
)
async def advance_phase(incoming: Incoming, ctx: Context) -> str:
    calls.append(ctx)
    return f"{ctx.project.name} 已进入下一阶段"


@projects.command(
    "风险 新增",
    summary="登记风险",
    examples=("风险 新增 供货延迟 概率:高 负责人:@张三",),
    params=(
        Param.text("描述", required=True),
        Param.choice("概率", ("高", "中", "低"), required=True),
        Param.user("负责人"),
        Param.date("截止"),
    ),
    roles=MEMBERS,
    needs_project=True,
)
async def add_risk(incoming: Incoming, ctx: Context) -> Text:
    calls.append(ctx)
    owner = ctx.args.user("负责人")
    return Text(f"已登记：{ctx.args['描述']}，概率{ctx.args['概率']}，负责人{owner.user_id if owner else '无'}")


@projects.command("进度", summary="查看进度", examples=("进度",), roles=MEMBERS_AND_CLIENTS, needs_project=True)
async def show_progress(incoming: Incoming, ctx: Context) -> Markdown:
    return Markdown("进度", f"{ctx.project.name}：执行阶段")


@projects.command("问候", summary="多条回复", examples=("问候",))
async def several_replies(incoming: Incoming, ctx: Context) -> None:
    await ctx.reply("第一条")
    await ctx.reply(Text("第二条"))


@projects.command("静默", summary="什么都不回", examples=("静默",))
async def silent(incoming: Incoming, ctx: Context) -> None:
    return None


ERRORS = {
    "notfound": NotFound("未找到问题 #12。发送「问题 列表」查看本项目的问题。"),
    "conflict": Conflict("本群已绑定项目 P1，不能再绑定其他项目。"),
    "user": UserError("请先上传文件再提交。"),
    "denied": PermissionDenied("只有领导可以审批。你当前的角色：项目经理"),
    "usage": UsageError("截止日期不能早于今天"),
    "crash": RuntimeError("db password=hunter2 exploded"),
    "badreply": None,
}


@faults.command("故障", summary="按名字抛错", examples=("故障 crash",), params=(Param.word("种类", positional=True),))
async def fail(incoming: Incoming, ctx: Context) -> object:
    kind = ctx.args["种类"]
    if kind == "badreply":
        return 42
    raise ERRORS[kind]


class Kernel:
    """The dispatcher behind the kernel's door with session-less units: push a message, pop its reply."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.units = RecordingUnits()
        self.handled: list[Handled] = []

    async def handle(self, incoming: Incoming) -> Handled:
        handled = await run_text(self.dispatcher, incoming, self.units)
        self.handled.append(handled)
        return handled

    @property
    def replies(self) -> list:
        return self.units.replies

    def pop(self):
        replies, self.units.replies = self.units.replies, []
        assert len(replies) == 1, f"expected exactly one reply, got {len(replies)}: {replies!r}"
        return replies[0]

    def include_routers(self, *routers: Router) -> None:
        self.dispatcher.include_routers(*routers)


def make_dispatcher(recorder=None, **overrides) -> tuple[Kernel, list[Handled]]:
    config = parse_config({"dingtalk": {"client_id": "id", "client_secret": "real-secret"}}, environ={})
    services = Services(config=config, clock=FrozenClock(datetime(2026, 9, 2, 1, 0)))  # 09:00 in Shanghai
    options = dict(roles_of=roles_of, find_user=find_user, middleware=[fake_projects])
    options.update(overrides)
    kernel = Kernel(Dispatcher(services, **options))
    kernel.include_routers(projects, faults)
    return kernel, kernel.handled


@pytest.fixture
def dispatcher() -> Kernel:
    calls.clear()
    return make_dispatcher()[0]


@pytest.fixture
def recorder(dispatcher: Kernel) -> Kernel:
    return dispatcher  # the kernel keeps the replies


async def say(dispatcher: Kernel, recorder: Kernel, text: str, **kwargs) -> str:
    await dispatcher.handle(make_incoming(text, **kwargs))
    return recorder.pop().text


# --- the happy path ----------------------------------------------------------------------------------------------


async def test_handler_gets_args_project_roles_and_services(dispatcher, recorder) -> None:
    text = await say(dispatcher, recorder, "风险 新增 供货 延迟 概率：高 负责人:@张三 截止:明天", sender_id="eng", mentions=["zs"])
    assert text == "已登记：供货 延迟，概率高，负责人zs"
    ctx = calls[-1]
    assert ctx.project == PROJECTS["P1"]
    assert ctx.roles == {ENGINEER}
    assert ctx.args.date("截止") == date(2026, 9, 3)
    assert ctx.command.name == "风险 新增"
    assert ctx.today() == date(2026, 9, 2)
    assert len(ctx.trace_id) == 12


@pytest.mark.parametrize("text", ["/下一阶段", "／下一阶段", "\u3000 进入下一阶段 ", "NEXT", "@机器人 下一阶段"])
async def test_text_is_normalised_before_matching(dispatcher, recorder, text: str) -> None:
    assert await say(dispatcher, recorder, text, sender_id="pm") == "某医院信息化 已进入下一阶段"


async def test_project_code_selects_the_project_in_a_private_chat(dispatcher, recorder) -> None:
    text = await say(
        dispatcher, recorder, "风险 新增 x 概率:低 项目:P1", sender_id="eng", group=False, conversation_id="cid-1on1"
    )
    assert text.startswith("已登记")


async def test_raw_user_id_mention(dispatcher, recorder) -> None:
    text = await say(dispatcher, recorder, "风险 新增 x 概率:低 负责人:@lisi", sender_id="eng")
    assert text.endswith("负责人lisi")


async def test_several_replies_from_ctx_reply(dispatcher, recorder) -> None:
    handled = await dispatcher.handle(make_incoming("问候"))
    assert [r.text for r in recorder.replies] == ["第一条", "第二条"]
    assert len(handled.replies) == 2 and handled.outcome == "ok"


async def test_a_handler_that_answers_nothing_still_gets_an_answer(dispatcher, recorder) -> None:
    assert await say(dispatcher, recorder, "静默") == DONE


# --- greetings, unknown commands, groups ------------------------------------------------------------------------


@pytest.mark.parametrize("group", [True, False])
async def test_empty_text_gets_a_greeting(dispatcher, recorder, group: bool) -> None:
    assert await say(dispatcher, recorder, "  \u200b ", group=group) == GREETING
    assert "帮助" in GREETING


async def test_unknown_command_suggests(dispatcher, recorder) -> None:
    text = await say(dispatcher, recorder, "下一阶 项目:P1")
    assert text == "未找到命令「下一阶」。你是不是想用：下一阶段？发送「帮助」查看全部命令。"


async def test_group_alone_lists_its_sub_commands(dispatcher, recorder) -> None:
    text = await say(dispatcher, recorder, "风险")
    assert "「风险」的子命令" in text and "风险 新增 — 登记风险" in text


# --- roles and projects ---------------------------------------------------------------------------------------


async def test_refusal_names_the_role_needed_and_the_current_one(dispatcher, recorder) -> None:
    text = await say(dispatcher, recorder, "下一阶段", sender_id="eng")
    assert text == "只有项目经理（或领导、项目管理员）可以推进阶段。你当前的角色：实施工程师"
    assert calls == []


async def test_refusal_for_a_non_member(dispatcher, recorder) -> None:
    text = await say(dispatcher, recorder, "风险 新增 x 概率:高", sender_id="stranger")
    assert text == "只有项目组成员（不含客户）可以使用「风险 新增」。你当前的角色：无（不是本项目成员）"


async def test_leaders_may_do_what_a_project_manager_may(dispatcher, recorder) -> None:
    assert (await say(dispatcher, recorder, "下一阶段", sender_id="boss")).endswith("已进入下一阶段")


async def test_clients_read_only(dispatcher, recorder) -> None:
    assert await say(dispatcher, recorder, "进度", sender_id="client") == "某医院信息化：执行阶段"
    refused = await say(dispatcher, recorder, "风险 新增 x 概率:高", sender_id="client")
    assert refused.endswith("你当前的角色：客户")


async def test_project_needed_but_not_bound(dispatcher, recorder) -> None:
    text = await say(dispatcher, recorder, "下一阶段", sender_id="pm", conversation_id="cid-unbound")
    assert text == "「下一阶段」需要先指定项目：请在已绑定项目的群里发送，或加上项目编号，例如：下一阶段 项目:编号"


async def test_unknown_project_code(dispatcher, recorder) -> None:
    handled = await dispatcher.handle(make_incoming("下一阶段 项目:P9", sender_id="pm"))
    assert recorder.pop().text == "未找到项目「P9」，请检查项目编号。"
    assert handled.outcome == "not_found"


# --- typed errors and the error boundary --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [("notfound", "not_found"), ("conflict", "conflict"), ("user", "user_error"), ("denied", "denied")],
)
async def test_typed_errors_become_their_message(dispatcher, recorder, kind: str, outcome: str) -> None:
    handled = await dispatcher.handle(make_incoming(f"故障 {kind}"))
    assert recorder.pop().text == ERRORS[kind].message
    assert handled.outcome == outcome


async def test_usage_error_shows_the_usage_and_an_example(dispatcher, recorder) -> None:
    text = await say(dispatcher, recorder, "风险 新增 供货延迟 概率:很高", sender_id="eng")
    assert text == (
        "「概率」应为 高、中、低 之一，收到「很高」\n"
        "用法：风险 新增 〈描述〉 概率:高|中|低 [负责人:@某人] [截止:日期] [项目:编号]\n"
        "例如：风险 新增 供货延迟 概率:高 负责人:@张三"
    )
    raised = await say(dispatcher, recorder, "故障 usage")
    assert raised == "截止日期不能早于今天\n用法：故障 [种类]\n例如：故障 crash"


async def test_unexpected_error_is_logged_and_answered_with_a_trace_id(dispatcher, recorder, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="dingpm.dispatch"):
        handled = await dispatcher.handle(make_incoming("故障 crash"))
    assert recorder.pop().text == APOLOGY.format(trace_id=handled.trace_id)
    assert handled.outcome == "error" and handled.error == "RuntimeError"
    [record] = caplog.records
    assert handled.trace_id in record.getMessage() and record.exc_info is not None


async def test_a_handler_returning_something_odd_is_an_error(dispatcher, recorder) -> None:
    handled = await dispatcher.handle(make_incoming("故障 badreply"))
    assert handled.outcome == "error" and "追踪号" in recorder.pop().text


async def test_failing_callbacks_are_inside_the_boundary() -> None:
    async def broken_roles(user_id: str, project: object) -> frozenset[str]:
        raise ConnectionError("database is down")

    dispatcher, handled = make_dispatcher(roles_of=broken_roles)
    await dispatcher.handle(make_incoming("下一阶段"))
    assert "追踪号" in dispatcher.pop().text and handled[0].outcome == "error"


async def test_cancellation_is_not_swallowed() -> None:
    router = Router("slow")

    @router.command("慢", summary="x", examples=("慢",))
    async def slow(incoming: Incoming, ctx: Context) -> None:
        raise asyncio.CancelledError

    dispatcher, _ = make_dispatcher()
    dispatcher.include_routers(router)
    with pytest.raises(asyncio.CancelledError):
        await dispatcher.handle(make_incoming("慢"))


async def test_overlong_message_is_refused_before_parsing() -> None:
    dispatcher, handled = make_dispatcher(max_chars=100)
    await dispatcher.handle(make_incoming("风险 新增 " + "长" * 200))
    assert dispatcher.pop().text.startswith("消息太长（206 字）")
    assert handled[0].outcome == "user_error"


# --- the log line -------------------------------------------------------------------------------------------------


async def test_one_handled_record_per_message() -> None:
    dispatcher, handled = make_dispatcher()
    await dispatcher.handle(make_incoming("下一阶段", sender_id="pm", message_id="m-1"))
    await dispatcher.handle(make_incoming("随便说说", sender_id="pm", message_id="m-2"))
    assert [(h.message_id, h.command, h.sender_id, h.outcome) for h in handled] == [
        ("m-1", "下一阶段", "pm", "ok"),
        ("m-2", None, "pm", "unknown_command"),
    ]
    assert all(h.duration_ms >= 0 and len(h.replies) == 1 for h in handled)


def test_log_handled_writes_one_structured_line_without_the_text(caplog) -> None:
    handled = Handled("m-1", "abc123", "pm", "下一阶段", Outcome.OK, 12.345, (Text("好"),))
    with caplog.at_level(logging.INFO, logger="dingpm.dispatch"):
        log_handled(handled)
    [record] = caplog.records
    assert record.getMessage() == (
        "message handled message_id=m-1 command=下一阶段 sender=pm outcome=ok duration_ms=12.3 replies=1 trace_id=abc123"
    )
    fields = (record.event, record.message_id, record.outcome, record.duration_ms)
    assert fields == ("message_handled", "m-1", "ok", 12.3)


async def test_secrets_in_exceptions_stay_out_of_the_reply(dispatcher, recorder) -> None:
    text = await say(dispatcher, recorder, "故障 crash")
    assert "hunter2" not in text
