"""Declarative command registration and matching.

Each handler module owns ``router = Router("projects", title="项目")`` and declares its commands with
``@router.command(...)``. The app includes every router in the dispatcher's ``CommandTable``, which refuses
duplicate names and aliases at start, matches a message to the longest name or alias, and suggests close ones.

Sub-commands are commands with a two-word name (``成员 添加``). Their first word becomes a group: typing the group
alone lists its sub-commands, and help shows them together. ``router.group(...)`` gives a group a summary and
aliases; a command may also be a group's head (``周报`` beside ``周报 预览``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from bot.args import KEY_SEPARATORS, QUOTES, Param, check_params, render_usage
from bot.roles import ANYONE, RolePolicy
from reports.user_text import clip

if TYPE_CHECKING:
    from bot.context import Context
    from bot.incoming import Incoming
    from domain.replies import Reply

Handler = Callable[["Incoming", "Context"], Awaitable["Reply | str | None"]]
H = TypeVar("H", bound=Handler)

# Every command that works on a project also takes ``项目:编号``, so it can be used in a 1:1 chat or an unbound group.
PROJECT_PARAM = Param.word(
    "项目", aliases=("project",), max_length=64, example="编号", help="项目编号；在没有绑定项目的会话里用它指定项目"
)
SUGGESTION_CUTOFF = 0.5  # a one-character slip in a two-character name scores 0.5
SUGGESTION_LIMIT = 3


class RegistrationError(ValueError):
    """A programming mistake in a command declaration, raised at import or at start, never at run time."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # canonical Chinese name; sub-commands have two words: ``成员 添加``
    handler: Handler
    summary: str  # one line for the help list
    examples: tuple[str, ...]
    usage: str
    aliases: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    roles: RolePolicy = ANYONE
    needs_project: bool = False
    action: str = ""  # completes the refusal "只有项目经理可以{action}"
    # Only reads: runs in a read transaction, outside the write lock (SQLite has one writer); its answer and the
    # sender's last project are written after it, in a short write transaction. Writing anything else fails loudly.
    reads_only: bool = False
    # May be used in a client conversation (a bound client group, a group with external members) though clients
    # may not use it: it shows nothing internal (成员 添加 of the client's people, 绑定 … 客户群). Commands clients
    # may use (``RolePolicy.clients``) are allowed there anyway; every other command is refused there.
    client_group: bool = False
    router: str = ""
    section: str = ""  # the router's title, the heading in the help list

    @property
    def in_client_groups(self) -> bool:
        """Whether it may run in a client conversation (it shows the client view there, if it has another)."""
        return self.roles.clients or self.client_group

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def parent(self) -> str | None:
        head, _, rest = self.name.partition(" ")
        return head if rest else None

    @property
    def all_params(self) -> tuple[Param, ...]:
        return (*self.params, PROJECT_PARAM) if self.needs_project else self.params


@dataclass(frozen=True, slots=True)
class Group:
    """The first word of sub-commands (``成员``); matched alone, it lists them."""

    name: str
    summary: str = ""
    aliases: tuple[str, ...] = ()
    section: str = ""


Target = Command | Group


@dataclass(frozen=True, slots=True)
class Match:
    target: Target
    rest: str  # the text after the matched name or alias: the arguments


_ASCII_LOWER = {cp: cp + 32 for cp in range(ord("A"), ord("Z") + 1)}


def fold(text: str) -> str:
    """Case-fold ASCII only, so offsets stay valid (``str.lower`` can change a string's length)."""
    return text.translate(_ASCII_LOWER)


def compact(key: str) -> str:
    return fold("".join(key.split()))


def _check_key(key: str, what: str) -> None:
    if not key or key != " ".join(key.split()):
        raise RegistrationError(f"{what} {key!r}: words separated by single spaces, no outer spaces")
    if key[0] in "/@" or any(ch in KEY_SEPARATORS or ch in QUOTES for ch in key):
        raise RegistrationError(f"{what} {key!r}: must not start with / or @ nor contain separators or quotes")


class Router:
    """A module's registry of commands. Creating one at import is fine: it holds declarations, no resources."""

    def __init__(self, name: str, *, title: str | None = None) -> None:
        self.name = name
        self.title = title or name
        self._commands: list[Command] = []
        self._groups: list[Group] = []
        self._keys: dict[str, str] = {}  # compact key -> owner name, to refuse duplicates at declaration

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(self._commands)

    @property
    def groups(self) -> tuple[Group, ...]:
        return tuple(self._groups)

    def _claim(self, keys: Iterable[str], owner: str) -> None:
        for key in keys:
            _check_key(key, f"{owner}: name or alias")
            taken = self._keys.get(compact(key))
            if taken is not None and taken != owner:
                raise RegistrationError(f"router {self.name!r}: {key!r} of {owner!r} is already used by {taken!r}")
            self._keys[compact(key)] = owner

    def command(
        self,
        name: str,
        *,
        summary: str,
        examples: Sequence[str],
        aliases: Sequence[str] = (),
        params: Sequence[Param] = (),
        roles: RolePolicy = ANYONE,
        needs_project: bool = False,
        action: str | None = None,
        usage: str | None = None,
        reads_only: bool = False,
        client_group: bool = False,
    ) -> Callable[[H], H]:
        """Declare a command; the usage line is generated from ``params`` unless given. ``reads_only`` and
        ``client_group``: see ``Command``."""
        if not summary.strip():
            raise RegistrationError(f"command {name!r}: a one-line summary is required")
        if not examples:
            raise RegistrationError(f"command {name!r}: at least one example is required")
        keys = (name, *aliases)
        for example in examples:
            if not any(compact(example).startswith(compact(key)) for key in keys):
                raise RegistrationError(f"command {name!r}: example {example!r} does not start with its name")
        all_params = (*params, PROJECT_PARAM) if needs_project else tuple(params)
        try:
            check_params(all_params)
        except ValueError as exc:
            raise RegistrationError(f"command {name!r}: {exc}") from None

        def register(handler: H) -> H:
            self._claim(keys, name)
            self._commands.append(
                Command(
                    name=name,
                    handler=handler,
                    summary=summary.strip(),
                    examples=tuple(examples),
                    usage=usage or render_usage(name, all_params),
                    aliases=tuple(aliases),
                    params=tuple(params),
                    roles=roles,
                    needs_project=needs_project,
                    action=action or f"使用「{name}」",
                    reads_only=reads_only,
                    client_group=client_group,
                    router=self.name,
                    section=self.title,
                )
            )
            return handler

        return register

    def group(self, name: str, *, summary: str, aliases: Sequence[str] = ()) -> None:
        """Give the sub-commands under ``name`` a summary and aliases (``成员`` / ``member``)."""
        if " " in name:
            raise RegistrationError(f"group {name!r}: a group name is one word")
        self._claim((name, *aliases), f"group {name}")
        self._groups.append(Group(name, summary.strip(), tuple(aliases), self.title))


@dataclass(frozen=True, slots=True)
class _Key:
    pattern: re.Pattern[str]
    compact: str
    ascii_end: bool  # an ASCII word needs a boundary after it: ``new`` must not match ``newton``
    target: Target


def _owner(target: Target) -> str:
    return f"command {target.name!r} ({target.router})" if isinstance(target, Command) else f"group {target.name!r}"


class CommandTable:
    """All included commands: matching, suggestions, and the structure help is rendered from."""

    def __init__(self) -> None:
        self._routers: list[Router] = []
        self._commands: list[Command] = []
        self._groups: dict[str, Group] = {}
        self._by_first_char: dict[str, list[_Key]] = {}

    def include(self, *routers: Router) -> None:
        """Add routers; refuses a router included twice and any name or alias used twice across routers."""
        candidate = [*self._routers, *routers]
        if len({id(r) for r in candidate}) != len(candidate):
            raise RegistrationError("a router is included twice")
        commands, groups, keys = _build(candidate)
        self._routers, self._commands, self._groups = candidate, commands, groups
        self._by_first_char = {}
        for key in sorted(keys, key=lambda k: len(k.compact), reverse=True):
            self._by_first_char.setdefault(key.compact[0], []).append(key)

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(self._commands)

    def match(self, text: str) -> Match | None:
        """The longest name or alias that ``text`` starts with (spaces between words optional), and the rest."""
        folded = fold(text)
        for key in self._by_first_char.get(folded[:1], ()):
            found = key.pattern.match(folded)
            if found is None:
                continue
            end = found.end()
            if end < len(text) and key.ascii_end and text[end].isascii() and text[end].isalnum():
                continue
            rest = text[end:]
            # 「项目：XM-2026-001」「日志：…」: the command's name written as a label, the colon full-width or not,
            # right after the name (with a space between, or as 「=」, it is the user's text: 「问题 新增 =1+1」).
            return Match(key.target, (rest[1:] if rest[:1] in ":：" else rest).strip())
        return None

    def find(self, name: str) -> Target | None:
        """The command or group that ``name`` (a name or alias, nothing after it) stands for."""
        found = self.match(name)
        return found.target if found is not None and not found.rest else None

    def children(self, parent: str) -> tuple[Command, ...]:
        return tuple(c for c in self._commands if c.parent == parent)

    def sections(self) -> list[tuple[str, list[Target]]]:
        """Top-level entries per router, in inclusion and declaration order; sub-commands sit under their group."""
        result: list[tuple[str, list[Target]]] = []
        placed: set[str] = set()
        by_name = {c.name: c for c in self._commands}
        for router in self._routers:
            entries: list[Target] = []
            for command in router.commands:
                head = command.parent or command.name
                if head in placed:
                    continue
                placed.add(head)
                entries.append(by_name.get(head) or self._groups[head])
            if entries:
                result.append((router.title, entries))
        return result

    def suggest(self, text: str, *, among: Iterable[Target] | None = None) -> list[str]:
        """Canonical names close to the first word(s) of ``text``: difflib on names and aliases, plus substrings."""
        words = fold(text).split()
        if not words:
            return []
        typed = {words[0][:20], "".join(words[:2])[:20]}
        pool = list(among) if among is not None else [*self._commands, *self._groups.values()]
        scored: dict[str, float] = {}
        for target in pool:
            for key in (target.name, *target.aliases):
                candidate = compact(key)
                score = max(difflib.SequenceMatcher(None, t, candidate).ratio() for t in typed)
                if len(candidate) >= 2 and any(len(t) >= 2 and (t in candidate or candidate in t) for t in typed):
                    score = max(score, 0.9)
                if score >= SUGGESTION_CUTOFF:
                    scored[target.name] = max(score, scored.get(target.name, 0.0))
        ranked = sorted(scored, key=lambda name: -scored[name])
        return ranked[:SUGGESTION_LIMIT]


def _key(key: str, target: Target) -> _Key:
    pattern = r"\s*".join(re.escape(part) for part in fold(key).split())
    return _Key(re.compile(pattern), compact(key), key[-1].isascii() and key[-1].isalnum(), target)


def _build(routers: Sequence[Router]) -> tuple[list[Command], dict[str, Group], list[_Key]]:
    commands = [c for r in routers for c in r.commands]
    by_compact: dict[str, _Key] = {}

    def claim(key: str, target: Target) -> None:
        entry = _key(key, target)
        taken = by_compact.get(entry.compact)
        if taken is not None and taken.target is not target:
            raise RegistrationError(f"{key!r} of {_owner(target)} is already used by {_owner(taken.target)}")
        by_compact[entry.compact] = entry

    for command in commands:
        for key in command.keys:
            claim(key, command)
    names = {c.name for c in commands}
    declared: dict[str, Group] = {}
    for router in routers:
        for group in router.groups:
            if group.name in declared:
                raise RegistrationError(f"group {group.name!r} declared twice")
            if group.name in names:
                raise RegistrationError(f"group {group.name!r} is also a command: give the summary on the command")
            declared[group.name] = group
    groups: dict[str, Group] = {}
    for command in commands:
        head = command.parent
        if head and head not in names and head not in groups:
            groups[head] = declared.get(head) or Group(head, section=command.section)
    for name in declared.keys() - groups.keys():
        raise RegistrationError(f"group {name!r} has no sub-commands")
    for group in groups.values():
        for key in (group.name, *group.aliases):
            claim(key, group)
    return commands, groups, list(by_compact.values())


def unknown_command_text(typed: str, suggestions: Sequence[str]) -> str:
    """``未找到命令「新建项」。你是不是想用：新建项目？发送「帮助」查看全部命令。``"""
    word = clip(typed.split()[0] if typed.split() else typed, 20)
    if suggestions:
        return f"未找到命令「{word}」。你是不是想用：{'、'.join(suggestions)}？发送「帮助」查看全部命令。"
    return f"未找到命令「{word}」。发送「帮助」查看全部命令。"


def group_text(table: CommandTable, group: Target, rest: str = "") -> str:
    """What a group alone (or with an unknown sub-command) answers: its sub-commands with a summary each."""
    children = table.children(group.name)
    lines: list[str] = []
    if rest:
        typed = f"{group.name} {clip(rest.split()[0], 20)}"
        lines.append(f"未找到命令「{typed}」。")
        close = table.suggest(f"{group.name}{rest.split()[0]}", among=children)
        if close:
            lines.append(f"你是不是想用：{'、'.join(close)}？")
    lines.append(f"「{group.name}」的子命令：")
    lines.extend(f"· {child.name} — {child.summary}" for child in children)
    if children:
        lines.append(f"例如：{children[0].examples[0]}")
    lines.append(f"发送「帮助 {group.name}」查看详细用法。")
    return "\n".join(lines)
