"""Argument parsing: every accepted form, and the Chinese refusals for wrong input."""

from __future__ import annotations

from datetime import date

import pytest

from bot.args import (
    Args,
    DateError,
    Param,
    User,
    check_params,
    normalize_text,
    parse_args,
    parse_date,
    render_usage,
    tokenize,
)
from domain.errors import UsageError

TODAY = date(2026, 9, 2)  # a Wednesday

RISK_PARAMS = (
    Param.text("描述", required=True, max_length=40),
    Param.choice("概率", ("高", "中", "低"), required=True, aliases=("probability",)),
    Param.choice("影响", ("高", "中", "低")),
    Param.user("负责人", aliases=("owner",)),
    Param.date("截止"),
    Param.number("天数", min_value=1, max_value=30),
)


async def parse(text: str, params=RISK_PARAMS, **kwargs) -> Args:
    kwargs.setdefault("today", TODAY)
    return await parse_args(params, text, **kwargs)


async def refusal(text: str, params=RISK_PARAMS, **kwargs) -> str:
    with pytest.raises(UsageError) as caught:
        await parse(text, params, **kwargs)
    return caught.value.problem


# --- key forms -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "供货延迟 概率:高 影响:中",
        "供货延迟 概率=高 影响=中",
        "供货延迟 概率：高 影响：中",
        "供货延迟 概率＝高 影响＝中",
        "供货延迟 概率: 高 影响： 中",
        "概率:高 供货延迟 影响:中",
        "供货延迟 probability:高 影响:中",
        "供货延迟 PROBABILITY:高 影响:中",
    ],
)
async def test_key_value_forms(text: str) -> None:
    args = await parse(text)
    assert args["描述"] == "供货延迟"
    assert args.text("概率") == "高"
    assert args.text("影响") == "中"


async def test_free_text_takes_the_remaining_words_and_keeps_line_breaks() -> None:
    args = await parse("登录 页面\n报错 500 概率:低")
    assert args["描述"] == "登录 页面\n报错 500"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"登录 页面 报错" 概率:高', "登录 页面 报错"),
        ("'登录 页面 报错' 概率:高", "登录 页面 报错"),
        ("“登录 页面 报错” 概率:高", "登录 页面 报错"),
        ("「登录 页面 报错」 概率:高", "登录 页面 报错"),
        ("『登录 页面』 概率:高", "登录 页面"),
        ("‘登录 页面’ 概率:高", "登录 页面"),
        ("“登录 页面“ 概率:高", "登录 页面"),  # some IMEs type the same quote twice
        ('“原因：网络 中断” 概率:高', "原因：网络 中断"),  # a colon inside quotes is text, not a key
        ('描述:"登录 页面 报错" 概率:高', "登录 页面 报错"),
        ("描述：「登录 页面 报错」 概率:高", "登录 页面 报错"),
    ],
)
async def test_quotes(text: str, expected: str) -> None:
    assert (await parse(text))["描述"] == expected


async def test_unclosed_quote_is_refused_with_an_example() -> None:
    problem = await refusal("“登录 页面 概率:高")
    assert "引号没有配对" in problem and "例如" in problem


async def test_times_and_links_are_not_keys() -> None:
    args = await parse("会议 17:00 看 http://example.com/a:b 概率:中")
    assert args["描述"] == "会议 17:00 看 http://example.com/a:b"


async def test_full_width_digits_letters_and_spaces() -> None:
    args = await parse("供货\u3000延迟\u3000概率：高\u3000天数：１２\u3000截止：２０２６－１０－０１")
    assert args["描述"] == "供货 延迟"
    assert args.integer("天数") == 12
    assert args.date("截止") == date(2026, 10, 1)


def test_normalize_text_removes_invisible_characters() -> None:
    assert normalize_text("\u200b帮助\u202e\x00 \ufeffｈｅｌｐ\r\n") == "帮助 help"


def test_tokenize_marks_keys_and_quotes() -> None:
    tokens = tokenize('a 键:值 “b c” d=')
    assert [(t.value, t.key, t.quoted) for t in tokens] == [
        ("a", None, False),
        ("值", "键", False),
        ("b c", None, True),
        ("", "d", False),
    ]


# --- refusals --------------------------------------------------------------------------------------------------


async def test_unknown_key_names_it_and_lists_the_known_ones() -> None:
    problem = await refusal("供货延迟 概率:高 原因：网络")
    assert "未知参数「原因」" in problem
    assert "概率" in problem and "引号" in problem


async def test_missing_required_key() -> None:
    problem = await refusal("供货延迟")
    assert "缺少必填参数「概率」" in problem and "概率:高|中|低" in problem


async def test_missing_required_positional() -> None:
    assert "缺少必填参数「描述」" in await refusal("概率:高")


async def test_bad_choice_lists_the_choices() -> None:
    problem = await refusal("供货延迟 概率:很高")
    assert "「概率」应为 高、中、低 之一" in problem and "很高" in problem


async def test_repeated_key() -> None:
    assert "写了两次" in await refusal("供货延迟 概率:高 概率:低")


async def test_key_without_value() -> None:
    assert "缺少值" in await refusal("供货延迟 概率:")


async def test_overlong_text() -> None:
    problem = await refusal("长" * 41 + " 概率:高")
    assert "太长" in problem and "最多 40 字" in problem


async def test_integer_checks() -> None:
    assert "应为整数" in await refusal("x 概率:高 天数:三")
    assert "应在 1–30 之间" in await refusal("x 概率:高 天数:31")


async def test_extra_words_without_a_text_parameter() -> None:
    params = (Param.choice("状态", ("打开", "关闭"), positional=True),)
    assert (await parse("关闭", params))["状态"] == "关闭"
    assert "多余的内容「多余 的」" in await refusal("关闭 多余 的", params)


async def test_wrong_value_is_clipped_in_the_message() -> None:
    problem = await refusal("x 概率:" + "很" * 500)
    assert len(problem) < 120


# --- dates -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-01", date(2026, 10, 1)),
        ("2026/10/1", date(2026, 10, 1)),
        ("2026.10.1", date(2026, 10, 1)),
        ("20261001", date(2026, 10, 1)),
        ("2026年10月1日", date(2026, 10, 1)),
        ("2026年10月1号", date(2026, 10, 1)),
        ("10月1日", date(2026, 10, 1)),
        ("10月1号", date(2026, 10, 1)),
        ("10/1", date(2026, 10, 1)),
        ("２０２６年１０月１日", date(2026, 10, 1)),
        ("２０２６／１０／１", date(2026, 10, 1)),
        ("今天", TODAY),
        ("明天", date(2026, 9, 3)),
        ("后天", date(2026, 9, 4)),
        ("昨天", date(2026, 9, 1)),
        ("下周一", date(2026, 9, 7)),
        ("下星期日", date(2026, 9, 13)),
        ("下下周一", date(2026, 9, 14)),
        ("周五", date(2026, 9, 4)),
        ("本周一", date(2026, 8, 31)),
        ("这礼拜五", date(2026, 9, 4)),
        ("3天后", date(2026, 9, 5)),
        ("2周后", date(2026, 9, 16)),
        ("2024-02-29", date(2024, 2, 29)),
    ],
)
def test_dates(text: str, expected: date) -> None:
    assert parse_date(text, TODAY) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-02-30", "2026年2月只有28天"),
        ("2026-02-29", "2026年2月只有28天"),
        ("2026-04-31", "2026年4月只有30天"),
        ("13月1日", "月份应为 1–12"),
        ("2026年13月1日", "月份应为 1–12"),
        ("2026-00-10", "月份应为 1–12"),
        ("1月0日", "1月只有31天"),
        ("1999-01-01", "年份超出范围"),
        ("下周八", "无法识别"),
        ("十月一日", "无法识别"),
        ("2026-10", "无法识别"),
    ],
)
def test_impossible_or_unreadable_dates(text: str, reason: str) -> None:
    with pytest.raises(DateError) as caught:
        parse_date(text, TODAY)
    assert reason in str(caught.value)


async def test_date_refusal_names_the_parameter_and_the_forms() -> None:
    problem = await refusal("x 概率:高 截止:2026-02-30")
    assert problem.startswith("「截止」日期不存在：2026-02-30")
    assert "10月1日" in problem and "下周一" in problem


# --- users -----------------------------------------------------------------------------------------------------


KNOWN = {"zhangsan": User("zhangsan", "张三"), "lisi": User("lisi", "李四")}


async def find_user(user_id: str) -> User | None:
    return KNOWN.get(user_id)


async def test_mentions_map_in_order_to_staff_ids() -> None:
    args = await parse("供货延迟 概率:高 负责人:@王五", mentions=["wangwu"])
    assert args.user("负责人") == User("wangwu", "王五")


async def test_mention_order_counts_mentions_inside_free_text() -> None:
    # DingTalk lists 赵六 first because he is mentioned first, inside the description.
    args = await parse("请@赵六 看看 概率:高 负责人：@王五", mentions=["zhaoliu", "wangwu"])
    assert args["描述"] == "请@赵六 看看"
    assert args.user("负责人") == User("wangwu", "王五")


async def test_mention_with_trailing_punctuation_and_space_after_colon() -> None:
    args = await parse("x 概率:高 负责人: @王五，", mentions=["wangwu"])
    assert args.user("负责人") == User("wangwu", "王五")


async def test_raw_user_id_is_accepted_when_known() -> None:
    args = await parse("x 概率:高 owner:@lisi", find_user=find_user)
    assert args.user("负责人") == User("lisi", "李四")
    args = await parse("x 概率:高 负责人:zhangsan", find_user=find_user)
    assert args.user("负责人") == User("zhangsan", "张三")


async def test_raw_user_id_does_not_shift_real_mentions() -> None:
    params = (Param.user("人", positional=True, many=True),)
    args = await parse("@lisi @王五", params, mentions=["wangwu"], find_user=find_user)
    assert args.users("人") == (User("lisi", "李四"), User("wangwu", "王五"))


async def test_email_addresses_are_not_mentions() -> None:
    args = await parse("联系 a@b.com 概率:高 负责人:@王五", mentions=["wangwu"])
    assert args.user("负责人") == User("wangwu", "王五")


async def test_unknown_user_is_refused_with_an_example() -> None:
    problem = await refusal("x 概率:高 负责人:@没人", find_user=find_user)
    # Issue 12 rewords it: the directory is searched, so the answer names what it tried and the other ways to say it.
    assert "找不到「负责人」里的「@没人」" in problem and "负责人:@张三" in problem and "手机号" in problem


async def test_positional_users_and_words_in_any_order() -> None:
    params = (
        Param.user("成员", positional=True, required=True, many=True),
        Param.choice("角色", ("项目经理", "实施工程师", "客户"), positional=True, required=True),
    )
    first = await parse("@张三 @李四 实施工程师", params, mentions=["zs", "ls"])
    second = await parse("实施工程师 @张三 @李四", params, mentions=["zs", "ls"])
    assert first == second
    assert first.users("成员") == (User("zs", "张三"), User("ls", "李四"))
    assert first.text("角色") == "实施工程师"


async def test_positional_users_from_mentions_when_dingtalk_drops_the_names() -> None:
    params = (Param.user("成员", positional=True, required=True),)
    args = await parse("", params, mentions=["zs"])
    assert args.user("成员") == User("zs")


async def test_too_many_mentions() -> None:
    params = (Param.user("成员", positional=True, many=True),)
    assert "太多人" in await refusal(" ".join(f"@u{i}" for i in range(60)), params)


# --- declarations and the Args object ------------------------------------------------------------------------


def test_usage_line_is_generated_from_params() -> None:
    assert render_usage("风险 新增", RISK_PARAMS) == (
        "风险 新增 〈描述〉 概率:高|中|低 [影响:高|中|低] [负责人:@某人] [截止:日期] [天数:数字]"
    )


@pytest.mark.parametrize(
    "params",
    [
        (Param.text("a"), Param.word("b", positional=True)),  # text must be the last positional
        (Param.word("a"), Param.word("A")),  # keys are case-insensitive
        (Param.word("a", aliases=("b",)), Param.word("b")),
    ],
)
def test_ambiguous_declarations_are_refused(params: tuple[Param, ...]) -> None:
    with pytest.raises(ValueError):
        check_params(params)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Param("a", "float"),  # type: ignore[arg-type]
        lambda: Param.choice("a", ()),
        lambda: Param.word("a", choices=("x",)),
        lambda: Param.word("1a"),
        lambda: Param.word("a b"),
        lambda: Param.word("a", many=True),
    ],
)
def test_bad_params_are_refused(build) -> None:
    with pytest.raises(ValueError):
        build()


async def test_typed_accessors() -> None:
    args = await parse("x 概率:高 天数:3 截止:明天")
    assert args.integer("天数") == 3
    assert args.date("截止") == date(2026, 9, 3)
    assert args.user("负责人") is None
    assert args.users("负责人") == ()
    assert "影响" not in args and args.get("影响") is None
    with pytest.raises(TypeError):
        args.date("天数")
