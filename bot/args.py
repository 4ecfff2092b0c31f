"""Command arguments: the text after a command's name -> a typed ``Args`` by the command's declared parameters.

Users type on phones with Chinese input methods, so the parser is forgiving about form (``key:value``,
``key=value``, ``key：value``, a space after the colon, ASCII and Chinese quotes, full-width digits, dates written
the Chinese way) and strict about content (unknown keys, missing or repeated ones, bad choices, impossible dates,
overlong text). Every refusal is a ``UsageError`` whose Chinese message names the problem; the dispatcher adds the
command's usage and example.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Literal, get_args

from domain.errors import UsageError
from reports.user_text import clip

Kind = Literal["str", "text", "int", "date", "user", "choice"]
KINDS = frozenset(get_args(Kind))

MAX_KEY_CHARS = 20
MAX_MENTIONS = 50  # more @s than this in one command is not a real message
DEFAULT_MAX_LENGTH = {"str": 100, "text": 2000}
DATE_FORMS = "2026-10-01、2026/10/1、10月1日、2026年10月1日、今天、明天、下周一"

KEY_SEPARATORS = frozenset(":：=＝")
# An opening quote and the characters accepted as its closing one; phone keyboards mix ASCII and Chinese quotes.
QUOTES: Mapping[str, frozenset[str]] = {
    '"': frozenset('"”'),
    "'": frozenset("'’"),
    "“": frozenset('”“"'),
    "‘": frozenset("’‘'"),
    "「": frozenset("」"),
    "『": frozenset("』"),
    "＂": frozenset("＂"),
    "＇": frozenset("＇"),
    "〝": frozenset("〞〟"),
}
_TRAILING_PUNCTUATION = "，。,.;；、:：!！?？)）」』”’\"'"


# --- normalising the text ------------------------------------------------------------------------------------


def _char_map() -> dict[int, int | str | None]:
    table: dict[int, int | str | None] = {}
    # Full-width digits and letters (Chinese IME in full-width mode) read as ASCII, and so does the full-width @.
    for first, last in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)):
        table.update({cp: cp - 0xFEE0 for cp in range(first, last + 1)})
    table[0xFF20] = "@"
    for cp in (0x00A0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000, 0x0B, 0x0C):
        table[cp] = " "
    for cp in (0x0D, 0x85, 0x2028, 0x2029):
        table[cp] = "\n"
    return table


_CHAR_MAP = _char_map()
# Controls and invisible format characters (zero-width, bidi overrides, BOM): they only ever hide what was typed.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
    "\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def normalize_text(text: str) -> str:
    """Full-width digits, letters and spaces to ASCII, line breaks unified, invisible characters removed, stripped."""
    return _INVISIBLE.sub("", text.replace("\r\n", "\n").translate(_CHAR_MAP)).strip()


# --- tokens ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    start: int  # offset of ``value`` in the tokenised text: orders @-mentions against ``Incoming.mentions``
    key: str | None = None  # set for key:value tokens
    quoted: bool = False
    newline_before: bool = False  # kept so free text keeps its line breaks


def is_key(candidate: str) -> bool:
    """A parameter key looks like a word (Chinese or ASCII) and does not start with a digit, so ``17:00`` is not."""
    return (
        0 < len(candidate) <= MAX_KEY_CHARS
        and not candidate[0].isdigit()
        and all(ch.isalnum() or ch == "_" for ch in candidate)
    )


def _read_quoted(text: str, opening: int) -> tuple[str, int]:
    """The text between the quote at ``opening`` and its closing quote, and the index after the closing quote."""
    closers = QUOTES[text[opening]]
    for index in range(opening + 1, len(text)):
        if text[index] in closers:
            return text[opening + 1 : index], index + 1
    raise UsageError(f"引号没有配对：{clip(text[opening:])}。请把整段文字用一对引号括起来，例如 “登录页面 报错”")


def _bare_token(word: str, start: int, newline: bool) -> Token:
    for index, ch in enumerate(word):
        if ch in KEY_SEPARATORS:
            key, value = word[:index], word[index + 1 :]
            if is_key(key) and not value.startswith("//"):  # http://… is a link, not key "http"
                return Token(value, start + index + 1, key=key, newline_before=newline)
            break
    return Token(word, start, newline_before=newline)


def tokenize(text: str) -> list[Token]:
    """Split on whitespace, keeping quoted text together and recognising ``key:value`` (also ``key:"a b"``)."""
    tokens: list[Token] = []
    index, length, newline = 0, len(text), False
    while index < length:
        ch = text[index]
        if ch.isspace():
            newline = newline or ch == "\n"
            index += 1
            continue
        if ch in QUOTES:
            value, index = _read_quoted(text, index)
            tokens.append(Token(value, index - len(value) - 1, quoted=True, newline_before=newline))
            newline = False
            continue
        end = index
        while end < length and not text[end].isspace():
            if (
                text[end] in KEY_SEPARATORS
                and end + 1 < length
                and text[end + 1] in QUOTES
                and is_key(text[index:end])
            ):
                value, after = _read_quoted(text, end + 1)
                tokens.append(Token(value, end + 2, key=text[index:end], quoted=True, newline_before=newline))
                index = after
                break
            end += 1
        else:
            tokens.append(_bare_token(text[index:end], index, newline))
            index = end
        newline = False
    return tokens


def _joined(tokens: Sequence[Token]) -> Token:
    """Free text made of several words, keeping the line breaks the user typed between them."""
    parts = [tokens[0].value]
    for token in tokens[1:]:
        parts.append(("\n" if token.newline_before else " ") + token.value)
    return Token("".join(parts), tokens[0].start, quoted=True)


# --- users -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    user_id: str  # the person key: an employee's userId (staffId), ``ext:…`` for an external contact
    name: str | None = None
    left: bool = False  # the directory marks them as having left the organization

    @property
    def display(self) -> str:
        return self.name or self.user_id


# A typed name, ``名字(部门)``, mobile number or userId -> the one person it names, None when it names nobody; raises
# ``UsageError`` (the candidates) when it names several.
UserFinder = Callable[[str], Awaitable[User | None]]

# An @ that starts a mention: not inside an e-mail address or a word.
_AT = re.compile(r"(?<![A-Za-z0-9._%+\-])@([^\s@]+)")


_NON_BRACKET_TRAILING = "".join(ch for ch in _TRAILING_PUNCTUATION if ch not in ")）")
_NAME_WITH_HINT = re.compile(r"[(（][^()（）]+[)）]$")


def _mention_name(raw: str) -> str:
    kept = raw.rstrip(_NON_BRACKET_TRAILING)
    if _NAME_WITH_HINT.search(kept):
        return kept  # 张伟(测试组): the closing bracket belongs to the name
    return raw.rstrip(_TRAILING_PUNCTUATION) or raw


def mention_names(text: str) -> list[str]:
    """The names after each ``@`` of a message, in order: DingTalk's ``atUsers`` list the same people in the same
    order, so the n-th name is how the n-th mention was shown."""
    return [_mention_name(match.group(1)) for match in _AT.finditer(normalize_text(text))]


async def map_mentions(text: str, staff_ids: Sequence[str], find_user: UserFinder | None) -> dict[int, User]:
    """Which user each ``@…`` in ``text`` stands for, keyed by the offset of its ``@``.

    DingTalk keeps ``@Name`` of other users in the text and lists their staff ids in ``atUsers`` in the same order,
    so the n-th ``@Name`` is the n-th mention. A hand-typed ``@userId`` is no mention at all; when the text has more
    ``@``s than mentions, each is first tried as a known userId so the real mentions stay in step.
    """
    found = list(_AT.finditer(text))
    if len(found) > MAX_MENTIONS:
        raise UsageError(f"一条命令里 @ 了太多人（{len(found)} 个），请不超过 {MAX_MENTIONS} 个")
    check_ids = find_user is not None and len(found) > len(staff_ids)
    remaining = list(staff_ids)
    mapped: dict[int, User] = {}
    for match in found:
        name = _mention_name(match.group(1))
        user = await find_user(name) if check_ids and find_user is not None else None
        if user is None and remaining:
            user = User(remaining.pop(0), name)
        if user is not None:
            mapped[match.start()] = user
    return mapped


# --- dates -----------------------------------------------------------------------------------------------------


class DateError(ValueError):
    """A date we cannot read, or one that does not exist; the message is Chinese."""


_RELATIVE_DAYS = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3, "昨天": -1, "前天": -2}
_WEEKDAY_NUMBERS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "七": 6}
_WEEK_SHIFT = {"上": -1, "本": 0, "这": 0, "": 0, "下": 1, "下下": 2}
_WEEKDAY_FORM = re.compile(r"(下下|下|本|这|上)?(?:个)?(?:周|星期|礼拜)([一二三四五六日天七])")
_DAYS_LATER = re.compile(r"(\d{1,3})天[以之]?后")
_WEEKS_LATER = re.compile(r"(\d{1,2})(?:个)?(?:周|星期|礼拜)[以之]?后")
_ABSOLUTE_FORMS = (
    re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"),
    re.compile(r"(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})[日号]?"),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})"),
    re.compile(r"(?P<m>\d{1,2})月(?P<d>\d{1,2})[日号]?"),
    re.compile(r"(?P<m>\d{1,2})[-/](?P<d>\d{1,2})"),
)
MIN_YEAR, MAX_YEAR = 2000, 2100
_DATE_PUNCTUATION = str.maketrans("－／．—", "-/.-")  # only inside a date: elsewhere they are the user's prose


def _checked_date(raw: str, year: int, month: int, day: int) -> date:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise DateError(f"年份超出范围：{clip(raw)}（应在 {MIN_YEAR}–{MAX_YEAR} 之间）")
    if not 1 <= month <= 12:
        raise DateError(f"日期不存在：{clip(raw)}（月份应为 1–12）")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise DateError(f"日期不存在：{clip(raw)}（{year}年{month}月只有{last}天）")
    return date(year, month, day)


def parse_date(value: str, today: date) -> date:
    """A date written the usual Chinese ways; relative words count from ``today`` (in the configured timezone)."""
    raw = normalize_text(value).translate(_DATE_PUNCTUATION)
    if raw in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[raw])
    if match := _WEEKDAY_FORM.fullmatch(raw):
        monday = today - timedelta(days=today.weekday())
        weeks = _WEEK_SHIFT[match.group(1) or ""]
        return monday + timedelta(weeks=weeks, days=_WEEKDAY_NUMBERS[match.group(2)])
    if match := _DAYS_LATER.fullmatch(raw):
        return today + timedelta(days=int(match.group(1)))
    if match := _WEEKS_LATER.fullmatch(raw):
        return today + timedelta(weeks=int(match.group(1)))
    for form in _ABSOLUTE_FORMS:
        if match := form.fullmatch(raw):
            parts = match.groupdict()
            year = int(parts["y"]) if parts.get("y") else today.year
            return _checked_date(raw, year, int(parts["m"]), int(parts["d"]))
    raise DateError(f"无法识别的日期「{clip(raw)}」")


# --- parameter specs -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """One declared parameter. Every parameter can be written as ``名:值``; positional ones also take bare words.

    Positional words fill positional parameters in order; a ``text`` parameter takes all the remaining words, so
    titles need no quotes. ``user`` parameters take the ``@``-mentions, wherever they stand.
    """

    name: str
    kind: Kind = "str"
    required: bool = False
    positional: bool = False
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    min_value: int | None = None
    max_value: int | None = None
    aliases: tuple[str, ...] = ()  # other keys for the same parameter, e.g. English ``owner``
    many: bool = False  # a positional ``user`` parameter taking every remaining @-mention
    former: bool = False  # a ``user`` parameter that may name someone who left (成员 移除)
    help: str = ""
    example: str = ""  # what a value looks like in usage lines, when the kind's word (文字, 数字) says too little

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name!r}: unknown kind {self.kind!r}")
        for key in (self.name, *self.aliases):
            if not is_key(key):
                raise ValueError(f"parameter key {key!r}: letters, digits or _, not starting with a digit")
        if (self.kind == "choice") != bool(self.choices):
            raise ValueError(f"parameter {self.name!r}: choices go with kind 'choice', and it needs them")
        if self.kind == "text" and not self.positional:
            raise ValueError(f"parameter {self.name!r}: a text parameter takes the remaining words: positional")
        if self.many and not (self.kind == "user" and self.positional):
            raise ValueError(f"parameter {self.name!r}: many= is for positional user parameters")

    # Short constructors so a command's declaration reads like its usage line.
    @classmethod
    def word(cls, name: str, **options: Any) -> Param:
        return cls(name, "str", **options)

    @classmethod
    def text(cls, name: str, **options: Any) -> Param:
        return cls(name, "text", positional=True, **options)

    @classmethod
    def number(cls, name: str, **options: Any) -> Param:
        return cls(name, "int", **options)

    @classmethod
    def date(cls, name: str, **options: Any) -> Param:
        return cls(name, "date", **options)

    @classmethod
    def user(cls, name: str, **options: Any) -> Param:
        return cls(name, "user", **options)

    @classmethod
    def choice(cls, name: str, choices: Sequence[str], **options: Any) -> Param:
        return cls(name, "choice", choices=tuple(choices), **options)

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def length_limit(self) -> int | None:
        return self.max_length if self.max_length is not None else DEFAULT_MAX_LENGTH.get(self.kind)

    def sample(self) -> str:
        """What a value looks like, for usage lines and error messages."""
        if self.example:
            return self.example
        if self.kind == "choice":
            return "|".join(self.choices)
        return {"str": "文字", "text": "文字", "int": "数字", "date": "日期", "user": "@某人"}[self.kind]

    def placeholder(self) -> str:
        """This parameter in a usage line: ``〈描述〉``, ``[@某人 …]``, ``概率:高|中|低``, ``[截止:日期]``."""
        if self.positional:
            core = ("@某人" if self.kind == "user" else self.name) + (" …" if self.many else "")
            # Not <…>: DingTalk markdown would take it for an HTML tag and hide it.
            return f"〈{core}〉" if self.required else f"[{core}]"
        core = f"{self.name}:{self.sample()}"
        return core if self.required else f"[{core}]"

    def describe(self) -> str:
        """One line for the help page: ``概率（必填）：高｜中｜低``."""
        need = "必填" if self.required else "可选"
        what = {
            "str": "文字",
            "text": "文字",
            "int": "整数",
            "date": f"日期，如 {DATE_FORMS}",
            "user": "在钉钉里 @ 选择的人，或写姓名、名字(部门)、手机号" + ("，可多个" if self.many else ""),
            "choice": "｜".join(self.choices),
        }[self.kind]
        if self.length_limit is not None:
            what += f"，最多 {self.length_limit} 字"
        if self.min_value is not None or self.max_value is not None:
            low = "" if self.min_value is None else str(self.min_value)
            high = "" if self.max_value is None else str(self.max_value)
            what += f"，范围 {low}–{high}"
        also = f"（也可写作 {'、'.join(self.aliases)}）" if self.aliases else ""
        extra = f"。{self.help}" if self.help else ""
        return f"{self.name}（{need}）：{what}{extra}{also}"


def check_params(params: Sequence[Param]) -> None:
    """Refuse, at registration, parameter lists that could not be parsed unambiguously."""
    seen: set[str] = set()
    for param in params:
        for key in param.keys:
            folded = key.lower()
            if folded in seen:
                raise ValueError(f"parameter key {key!r} declared twice")
            seen.add(folded)
    words = [p for p in params if p.positional and p.kind != "user"]
    if any(p.kind == "text" for p in words[:-1]):
        raise ValueError("a text parameter takes the remaining words, so it must be the last positional one")
    users = [p for p in params if p.positional and p.kind == "user"]
    if any(p.many for p in users[:-1]):
        raise ValueError("a many= user parameter takes the remaining mentions, so it must be the last one")


# --- parsed arguments ------------------------------------------------------------------------------------------


class Args(Mapping[str, Any]):
    """Parsed, validated values by parameter name; parameters not given are absent (``get`` returns None)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Args({self._values!r})"

    def _typed(self, name: str, kind: type | tuple[type, ...]) -> Any:
        value = self._values.get(name)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"argument {name!r} is {type(value).__name__}, not {kind}")
        return value

    def text(self, name: str) -> str | None:
        """A ``str``, ``text`` or ``choice`` parameter."""
        return self._typed(name, str)

    def integer(self, name: str) -> int | None:
        return self._typed(name, int)

    def date(self, name: str) -> date | None:
        return self._typed(name, date)

    def user(self, name: str) -> User | None:
        return self._typed(name, User)

    def users(self, name: str) -> tuple[User, ...]:
        """A ``many=`` user parameter (empty when not given)."""
        value = self._values.get(name, ())
        return value if isinstance(value, tuple) else (value,)


# --- parsing ---------------------------------------------------------------------------------------------------


class _MentionLookup:
    """Maps ``@`` offsets to users, computed on first need: most commands name no user."""

    def __init__(self, text: str, staff_ids: Sequence[str], find_user: UserFinder | None) -> None:
        self._text, self._staff_ids, self._find_user = text, staff_ids, find_user
        self._mapped: dict[int, User] | None = None

    async def at(self, offset: int) -> User | None:
        if self._mapped is None:
            self._mapped = await map_mentions(self._text, self._staff_ids, self._find_user)
        return self._mapped.get(offset)


def _unknown_key(key: str, params: Sequence[Param]) -> UsageError:
    known = "、".join(p.name for p in params) or "（本命令没有参数）"
    return UsageError(
        f"未知参数「{clip(key)}」。可用的参数：{known}。"
        f"如果它是正文的一部分，请用引号括起来，例如 “{clip(key)}：…”"
    )


def _collect(params: Sequence[Param], tokens: Sequence[Token]) -> tuple[dict[str, list[Token]], list[Token]]:
    """Key:value tokens by parameter name, and the loose (positional) tokens in order."""
    by_key = {key.lower(): p for p in params for key in p.keys}
    given: dict[str, list[Token]] = {}
    loose: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.key is None:
            loose.append(token)
            continue
        param = by_key.get(token.key.lower())
        if param is None:
            raise _unknown_key(token.key, params)
        if token.value == "" and not token.quoted:
            # ``负责人: @张三`` — the value is the next word.
            if index < len(tokens) and tokens[index].key is None:
                token = replace(tokens[index], key=token.key)
                index += 1
            else:
                raise UsageError(f"参数「{param.name}」缺少值，例如 {param.name}:{param.sample()}")
        if param.name in given:
            raise UsageError(f"参数「{param.name}」写了两次，请只写一次")
        given[param.name] = [token]
    return given, loose


def _assign_positionals(params: Sequence[Param], given: dict[str, list[Token]], loose: list[Token], *,
                        named_users: bool = False) -> None:
    user_slots = [p for p in params if p.positional and p.kind == "user" and p.name not in given]
    word_slots = [p for p in params if p.positional and p.kind != "user" and p.name not in given]

    def mention_like(token: Token) -> bool:
        return bool(user_slots) and not token.quoted and token.value.startswith("@") and len(token.value) > 1

    mentions = [t for t in loose if mention_like(t)]
    words = [t for t in loose if not mention_like(t)]
    if named_users and not mentions and user_slots and user_slots[0].required:
        # No @ at all (a 1:1 chat): the people are named by name, in front of the words the command needs after
        # them (``成员 添加 黄蕾 李明 实施工程师``: the last word is the role).
        needed = sum(1 for p in word_slots if p.required)
        take = max(0, len(words) - needed) if user_slots[0].many else min(1, max(0, len(words) - needed))
        mentions, words = words[:take], words[take:]
    for param in word_slots:
        if not words:
            break
        if param.kind == "text":
            given[param.name], words = [_joined(words)], []
        else:
            given[param.name] = [words.pop(0)]
    for param in user_slots:
        if not mentions:
            break
        if param.many:
            given[param.name], mentions = mentions, []
        else:
            given[param.name] = [mentions.pop(0)]
    extra = sorted(words + mentions, key=lambda t: t.start)
    if extra:
        raise UsageError(f"多余的内容「{clip(' '.join(t.value for t in extra))}」。含空格的文字请用引号括起来")


def _convert(param: Param, value: str, today: date) -> Any:
    if param.kind in ("str", "text"):
        if not value.strip():
            raise UsageError(f"「{param.name}」不能为空")
        limit = param.length_limit
        if limit is not None and len(value) > limit:
            raise UsageError(f"「{param.name}」太长了（{len(value)} 字），最多 {limit} 字")
        return value
    if param.kind == "int":
        if not re.fullmatch(r"[+-]?\d{1,12}", value):
            raise UsageError(f"「{param.name}」应为整数，收到「{clip(value)}」，例如 {param.name}:3")
        number = int(value)
        if (param.min_value is not None and number < param.min_value) or (
            param.max_value is not None and number > param.max_value
        ):
            low = "" if param.min_value is None else param.min_value
            high = "" if param.max_value is None else param.max_value
            raise UsageError(f"「{param.name}」应在 {low}–{high} 之间，收到 {number}")
        return number
    if param.kind == "date":
        try:
            return parse_date(value, today)
        except DateError as exc:
            raise UsageError(f"「{param.name}」{exc}。日期可以写成 {DATE_FORMS}") from None
    # choice
    for choice in param.choices:
        if value == choice or value.lower() == choice.lower():
            return choice
    raise UsageError(f"「{param.name}」应为 {'、'.join(param.choices)} 之一，收到「{clip(value)}」")


async def _to_user(param: Param, token: Token, mentions: _MentionLookup, find_user: UserFinder | None) -> User:
    value = token.value
    user: User | None = None
    if value.startswith("@") and not token.quoted:
        user = await mentions.at(token.start)
        value = value[1:]
    if user is None:
        value = _mention_name(value.strip())
        try:
            user = await find_user(value) if find_user is not None and value else None
        except UsageError as exc:
            raise UsageError(f"「{param.name}」：{exc.problem}") from None
    if user is None:
        raise UsageError(
            f"找不到「{param.name}」里的「{clip(token.value)}」：通讯录里没有这个人。请写全名、名字(部门)或手机号，"
            f"或在群里 @ 选择此人，例如 {param.name}:张三 或 {param.name}:@张三"
        )
    if user.left and not param.former:
        raise UsageError(f"{user.display} 已离职，不能指定为「{param.name}」。请换一位在职的同事，例如 {param.name}:张三")
    return user


async def parse_args(
    params: Sequence[Param],
    text: str,
    *,
    today: date,
    mentions: Sequence[str] = (),
    find_user: UserFinder | None = None,
) -> Args:
    """Parse ``text`` (what follows the command name) by ``params``.

    ``mentions`` are the person keys of the people DingTalk listed as @-mentioned (``Incoming.mentioned_keys``), in
    order; ``find_user`` looks up a person typed by hand (a name, a mobile, a hand-typed ``@userId``); ``today``
    anchors 今天/明天/下周一.
    """
    text = normalize_text(text)
    given, loose = _collect(params, tokenize(text))
    _assign_positionals(params, given, loose, named_users=not mentions and find_user is not None)
    lookup = _MentionLookup(text, mentions, find_user)
    values: dict[str, Any] = {}
    for param in params:
        tokens = given.get(param.name)
        if not tokens:
            continue
        if param.kind == "user":
            users = tuple([await _to_user(param, token, lookup, find_user) for token in tokens])
            values[param.name] = users if param.many else users[0]
        else:
            values[param.name] = _convert(param, tokens[0].value, today)
    # DingTalk may drop other users' @Name from the text and list them only in atUsers: fill positional users then.
    if not _AT.search(text):
        _fill_users_from_mentions(params, values, mentions)
    for param in params:
        if param.required and param.name not in values:
            how = "" if param.positional else f"，写法：{param.name}:{param.sample()}"
            raise UsageError(f"缺少必填参数「{param.name}」{how}")
    return Args(values)


def _fill_users_from_mentions(params: Sequence[Param], values: dict[str, Any], staff_ids: Sequence[str]) -> None:
    remaining = [User(staff_id) for staff_id in staff_ids]
    for param in params:
        if not remaining or not param.positional or param.kind != "user" or param.name in values:
            continue
        if param.many:
            values[param.name], remaining = tuple(remaining), []
        else:
            values[param.name] = remaining.pop(0)


def render_usage(name: str, params: Sequence[Param]) -> str:
    """A command's usage line: ``风险 新增 〈描述〉 概率:高|中|低 [负责人:@某人]``."""
    return " ".join([name, *(p.placeholder() for p in params)])
