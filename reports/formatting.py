"""Small text helpers shared by the markdown and docx renderers (dates, percentages, truncation)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache

EMPTY = "—"


def fmt_date(value: date | datetime | None, *, empty: str = EMPTY) -> str:
    if value is None:
        return empty
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return _day_text(value, "%Y-%m-%d")


def fmt_short_date(value: date | datetime | None, *, empty: str = EMPTY) -> str:
    """Month and day only (12-05): enough inside a weekly report whose week is in the title."""
    if value is None:
        return empty
    if isinstance(value, datetime):
        return value.strftime("%m-%d")
    return _day_text(value, "%m-%d")


# strftime is the largest single cost of wording tens of thousands of reminders, and they mention a few hundred
# distinct days: dates are immutable and hashable, so their text is cached. Datetimes are not (they are all distinct).
@lru_cache(maxsize=4096)
def _day_text(day: date, pattern: str) -> str:
    return day.strftime(pattern)


def fmt_chinese_date(value: date | None) -> str:
    """2025年3月7日, the style used on signed forms; a blank to fill in by hand when unknown."""
    if value is None:
        return "    年   月   日"
    return f"{value.year}年{value.month}月{value.day}日"


def fmt_period(start: date | None, end: date | None) -> str:
    if start is None and end is None:
        return EMPTY
    return f"{fmt_date(start)} 至 {fmt_date(end)}"


def fmt_percent(value: float) -> str:
    value = max(0.0, min(100.0, float(value)))
    return f"{value:.0f}%"


def or_blank(value: str | None, blank: str = EMPTY) -> str:
    value = (value or "").strip()
    return value or blank


def one_line(text: str, limit: int = 60) -> str:
    """Collapse whitespace and cut long text with an ellipsis, for list items and table cells."""
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    return text[: max(1, limit - 1)] + "…"


def truncated(items: Sequence[str], limit: int) -> list[str]:
    """At most ``limit`` items; when cut, a last line "…等 N 项" gives the full count."""
    if limit < 0 or len(items) <= limit:
        return list(items)
    return [*items[:limit], f"…等 {len(items)} 项"]


def progress_bar(value: float, width: int = 10) -> str:
    """A text bar for chat messages, where images are not inline: ■■■■■□□□□□."""
    filled = round(max(0.0, min(100.0, value)) / 100 * width)
    return "■" * filled + "□" * (width - filled)
