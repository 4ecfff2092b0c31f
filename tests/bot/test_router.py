"""Registration and matching: aliases, longest match, sub-commands, duplicates refused, suggestions."""

from __future__ import annotations

import pytest

from bot.args import Param
from bot.roles import MEMBERS, PROJECT_MANAGER, only
from bot.router import Command, CommandTable, Group, RegistrationError, Router, group_text, unknown_command_text


async def noop(incoming, ctx) -> str:
    return "ok"


def build_table() -> CommandTable:
    projects = Router("projects", title="项目")
    projects.command("新建项目", aliases=("new", "创建项目"), summary="创建项目", examples=("新建项目 测试",))(noop)
    projects.command(
        "下一阶段",
        aliases=("进入下一阶段", "next"),
        summary="推进阶段",
        examples=("下一阶段",),
        roles=only(PROJECT_MANAGER),
        needs_project=True,
    )(noop)
    projects.group("成员", summary="项目成员", aliases=("member",))
    projects.command("成员 添加", aliases=("member add", "添加成员"), summary="添加成员", examples=("成员 添加 @张三",))(noop)
    projects.command("成员 移除", aliases=("member remove",), summary="移除成员", examples=("成员 移除 @张三",))(noop)
    reports = Router("reports", title="报告")
    reports.command("周报", aliases=("weekly",), summary="生成周报", examples=("周报",), roles=MEMBERS)(noop)
    reports.command("周报 预览", aliases=("weekly preview",), summary="预览周报", examples=("周报 预览",))(noop)
    registers = Router("registers", title="登记")
    for sub in ("新增", "关闭", "列表"):
        registers.command(f"问题 {sub}", summary=f"问题{sub}", examples=(f"问题 {sub}",))(noop)
        registers.command(f"风险 {sub}", summary=f"风险{sub}", examples=(f"风险 {sub}",))(noop)
    table = CommandTable()
    table.include(projects, reports, registers)
    return table


TABLE = build_table()


@pytest.mark.parametrize(
    ("text", "name", "rest"),
    [
        ("新建项目 某医院", "新建项目", "某医院"),
        ("new 某医院", "新建项目", "某医院"),
        ("NEW 某医院", "新建项目", "某医院"),
        ("创建项目", "新建项目", ""),
        ("新建项目某医院", "新建项目", "某医院"),  # Chinese needs no space after the name
        ("下一阶段", "下一阶段", ""),
        ("进入下一阶段 项目:P1", "下一阶段", "项目:P1"),
        ("周报", "周报", ""),
        ("周报 项目:P1", "周报", "项目:P1"),
        ("周报 预览", "周报 预览", ""),
        ("周报预览 项目:P1", "周报 预览", "项目:P1"),
        ("周报   预览", "周报 预览", ""),
        ("weekly preview", "周报 预览", ""),
        ("weekly", "周报", ""),
        ("成员 添加 @张三 实施工程师", "成员 添加", "@张三 实施工程师"),
        ("添加成员 @张三", "成员 添加", "@张三"),
        ("member add @张三", "成员 添加", "@张三"),
        ("问题 列表", "问题 列表", ""),
        ("问题列表", "问题 列表", ""),
        ("风险 新增 供货延迟", "风险 新增", "供货延迟"),
    ],
)
def test_match(text: str, name: str, rest: str) -> None:
    found = TABLE.match(text)
    assert found is not None and isinstance(found.target, Command)
    assert (found.target.name, found.rest) == (name, rest)


@pytest.mark.parametrize(("text", "group"), [("成员", "成员"), ("member", "成员"), ("成员 加", "成员"), ("问题", "问题")])
def test_group_alone_matches_the_group(text: str, group: str) -> None:
    found = TABLE.match(text)
    assert found is not None and isinstance(found.target, Group) and found.target.name == group


@pytest.mark.parametrize("text", ["newton", "nextday", "帮我看看", "", "项目"])
def test_no_match(text: str) -> None:
    assert TABLE.match(text) is None


def test_find_needs_the_whole_text() -> None:
    assert isinstance(TABLE.find("new"), Command)
    assert TABLE.find("new 某医院") is None


def test_sections_group_sub_commands_under_their_head() -> None:
    sections = TABLE.sections()
    assert [title for title, _ in sections] == ["项目", "报告", "登记"]
    names = {title: [entry.name for entry in entries] for title, entries in sections}
    assert names == {"项目": ["新建项目", "下一阶段", "成员"], "报告": ["周报"], "登记": ["问题", "风险"]}
    assert [c.name for c in TABLE.children("周报")] == ["周报 预览"]


def test_declared_group_keeps_its_summary_and_implicit_ones_exist() -> None:
    groups = {entry.name: entry for _, entries in TABLE.sections() for entry in entries if isinstance(entry, Group)}
    assert groups["成员"].summary == "项目成员"
    assert groups["问题"].summary == "" and groups["问题"].section == "登记"


def test_usage_and_project_parameter() -> None:
    command = TABLE.find("下一阶段")
    assert isinstance(command, Command)
    assert command.usage == "下一阶段 [项目:编号]"
    assert command.action == "使用「下一阶段」"


# --- registration refusals ------------------------------------------------------------------------------------


def test_duplicate_alias_within_a_router_is_refused() -> None:
    router = Router("a")
    router.command("新建项目", aliases=("new",), summary="x", examples=("新建项目",))(noop)
    with pytest.raises(RegistrationError, match="already used"):
        router.command("新建问题", aliases=("NEW",), summary="x", examples=("新建问题",))(noop)


def test_duplicate_name_across_routers_is_refused() -> None:
    first, second = Router("a"), Router("b")
    first.command("周报", summary="x", examples=("周报",))(noop)
    second.command("週報", aliases=("周报",), summary="x", examples=("週報",))(noop)
    table = CommandTable()
    with pytest.raises(RegistrationError, match="周报"):
        table.include(first, second)


def test_spaced_and_compact_forms_collide() -> None:
    first, second = Router("a"), Router("b")
    first.command("周报 预览", summary="x", examples=("周报 预览",))(noop)
    second.command("周报预览", summary="x", examples=("周报预览",))(noop)
    with pytest.raises(RegistrationError):
        CommandTable().include(first, second)


def test_group_alias_clashing_with_a_command_is_refused() -> None:
    router = Router("a")
    router.command("成员 添加", summary="x", examples=("成员 添加",))(noop)
    router.group("成员", summary="x", aliases=("list",))
    other = Router("b")
    other.command("列表", aliases=("list",), summary="x", examples=("列表",))(noop)
    with pytest.raises(RegistrationError):
        CommandTable().include(router, other)


def test_same_router_twice_is_refused() -> None:
    router = Router("a")
    table = CommandTable()
    table.include(router)
    with pytest.raises(RegistrationError, match="twice"):
        table.include(router)


@pytest.mark.parametrize(
    "declare",
    [
        lambda r: r.command("x", summary="", examples=("x",)),
        lambda r: r.command("x", summary="s", examples=()),
        lambda r: r.command("x", summary="s", examples=("y",)),
        lambda r: r.command("x", summary="s", examples=("x",), params=(Param.text("a"), Param.text("b"))),
        lambda r: r.command("x", summary="s", examples=("x",), params=(Param.word("项目"),), needs_project=True),
    ],
)
def test_bad_declarations_are_refused(declare) -> None:
    with pytest.raises(RegistrationError):
        declare(Router("a"))


@pytest.mark.parametrize("name", ["", " x", "a  b", "/x", "@x", "a:b", "“x”"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(RegistrationError):
        Router("a").command(name, summary="s", examples=(name or "x",))(noop)


def test_group_without_sub_commands_is_refused() -> None:
    router = Router("a")
    router.group("成员", summary="x")
    with pytest.raises(RegistrationError, match="no sub-commands"):
        CommandTable().include(router)


def test_a_group_that_is_also_a_command_is_refused() -> None:
    router = Router("a")
    router.command("周报", summary="x", examples=("周报",))(noop)
    router.command("周报 预览", summary="x", examples=("周报 预览",))(noop)
    with pytest.raises(RegistrationError, match="already used"):
        router.group("周报", summary="x")
    other = Router("b")
    other.group("周报", summary="x")
    with pytest.raises(RegistrationError, match="also a command"):
        CommandTable().include(router, other)


# --- suggestions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("新建项", "新建项目"),
        ("新建项木", "新建项目"),
        ("下一阶", "下一阶段"),
        ("周宝", "周报"),
        ("weeky", "周报"),
        ("membr", "成员"),
    ],
)
def test_suggestions_for_typos(typed: str, expected: str) -> None:
    assert expected in TABLE.suggest(typed)


def test_substring_suggestions_and_limit() -> None:
    suggestions = TABLE.suggest("项目")
    assert "新建项目" in suggestions and len(suggestions) <= 3


def test_nothing_close() -> None:
    assert TABLE.suggest("天气怎么样") == []
    assert TABLE.suggest("") == []


def test_unknown_command_text() -> None:
    assert unknown_command_text("新建项 某医院", ["新建项目"]) == (
        "未找到命令「新建项」。你是不是想用：新建项目？发送「帮助」查看全部命令。"
    )
    assert unknown_command_text("x" * 100, []).count("x") == 19


def test_group_text_lists_sub_commands_and_suggests() -> None:
    group = TABLE.find("成员")
    assert isinstance(group, Group)
    text = group_text(TABLE, group, "加")
    assert text.startswith("未找到命令「成员 加」。\n你是不是想用：成员 添加")
    assert "· 成员 移除 — 移除成员" in text and "例如：成员 添加 @张三" in text
