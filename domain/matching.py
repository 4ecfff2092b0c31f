"""Finding the deliverable a user means: by number (``#7``), by name as typed (with or without 《》, a part of the
name when only one deliverable has it), and guessing from the name of a file they sent."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import PurePath
from typing import Protocol, TypeVar

from domain.errors import NotFound, UserError
from reports.user_text import clip
from storage.models import Deliverable, DeliverableStatus

_NOISE = re.compile(r"[\s《》<>「」『』\"'“”‘’()（）\[\]【】_\-—.,，、]+")
# What people add to a document's file name: versions, dates, copies, "final".
_FILE_NOISE = re.compile(
    r"(v\d+(\.\d+)*|第?\d+版|终版|最终版|定稿|修订版?|初稿|副本|扫描件?|签字版|盖章版|copy|\d{6,8}|\(\d+\))",
    re.IGNORECASE,
)
MAX_CANDIDATES = 5


def normalize(text: str) -> str:
    return _NOISE.sub("", text).casefold()


def _seq(text: str) -> int | None:
    match = re.fullmatch(r"[#＃]?\s*(\d{1,4})", text.strip())
    return int(match.group(1)) if match else None


def _listing(deliverables: Sequence[Deliverable]) -> str:
    shown = "、".join(f"#{d.seq} {d.name}" for d in deliverables[:MAX_CANDIDATES])
    return shown + (" 等" if len(deliverables) > MAX_CANDIDATES else "")


def match_deliverable(deliverables: Sequence[Deliverable], typed: str, *, example: str) -> Deliverable:
    """The one deliverable ``typed`` names; ``UserError``/``NotFound`` with candidates and ``example`` otherwise."""
    number = _seq(typed)
    if number is not None:
        for deliverable in deliverables:
            if deliverable.seq == number:
                return deliverable
        raise NotFound(f"本项目没有编号为 #{number} 的交付物。发送「交付物 全部」查看编号，例如：{example}")
    key = normalize(typed)
    if not key:
        raise UserError(f"请写出交付物的名称或编号，例如：{example}")
    exact = [d for d in deliverables if normalize(d.name) == key]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [d for d in deliverables if key in normalize(d.name)]
    if not partial:
        partial = [d for d in deliverables if normalize(d.name) in key]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise UserError(
            f"「{clip(typed)}」对应多个交付物：{_listing(partial)}。请写全名或用编号，例如：{example.split()[0]} #{partial[0].seq}"
        )
    names = {normalize(d.name): d for d in deliverables}
    close = [names[n] for n in difflib.get_close_matches(key, list(names), n=3, cutoff=0.5)]
    hint = f"你是不是指：{_listing(close)}？" if close else ""
    raise NotFound(f"本项目没有名为「{clip(typed)}」的交付物。{hint}发送「交付物 全部」查看全部交付物，例如：{example}")


def _file_key(file_name: str) -> str:
    stem = PurePath(file_name).stem if "." in file_name else file_name
    return normalize(_FILE_NOISE.sub("", stem))


def _longest_common(a: str, b: str) -> int:
    match = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b))
    return match.size


def named_in_file(deliverables: Sequence[Deliverable], file_name: str) -> list[Deliverable]:
    """The deliverables whose whole name a file's name contains (``项目验收确认单-签字.pdf``), longest name first."""
    key = _file_key(file_name)
    found = [d for d in deliverables if (name := normalize(d.name)) and name in key]
    return sorted(found, key=lambda d: -len(normalize(d.name)))


class Named(Protocol):
    """What guessing needs of a deliverable: a loaded ``Deliverable`` or a ``storage.repo.DeliverableHeading``."""

    @property
    def seq(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> DeliverableStatus: ...


NamedT = TypeVar("NamedT", bound=Named)


def guess_by_file_name(deliverables: Sequence[NamedT], file_name: str, limit: int = 3) -> list[NamedT]:
    """The deliverables a file is most likely for, best first (pending ones before submitted ones on a tie)."""
    key = _file_key(file_name)
    if not key:
        return []
    scored: list[tuple[float, int, NamedT]] = []
    for deliverable in deliverables:
        if deliverable.status == DeliverableStatus.WAIVED:
            continue
        name = normalize(deliverable.name)
        if not name:
            continue
        if name == key:
            score = 3.0
        elif name in key:
            score = 2.0 + len(name) / 100
        elif key in name and len(key) >= 2:
            score = 1.5 + len(key) / len(name)
        else:
            common = _longest_common(key, name)
            score = (common / len(name)) if common >= 2 else 0.0
        if score < 0.5:
            continue
        if deliverable.status == DeliverableStatus.PENDING:
            score += 0.01
        scored.append((score, -deliverable.seq, deliverable))
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [d for _, _, d in scored[:limit]]


__all__ = ["guess_by_file_name", "match_deliverable", "named_in_file", "normalize"]
