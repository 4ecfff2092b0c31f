"""Reading a page's query parameters: every bad value is a ``BadParameter`` naming it, with a good example."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from web.errors import BadParameter

MAX_TEXT = 50  # a search or filter value; longer is not a real one
MAX_PAGE = 100_000


def page_number(query: Mapping[str, str], name: str = "page") -> int:
    raw = query.get(name, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise BadParameter(f"页码「{raw[:20]}」不对：应为从 1 开始的整数，例如 ?{name}=2")
    return int(raw)


def text(query: Mapping[str, str], name: str, label: str) -> str:
    value = " ".join(query.get(name, "").split())
    if len(value) > MAX_TEXT:
        raise BadParameter(f"{label}太长：最多 {MAX_TEXT} 个字")
    return value


def choice(query: Mapping[str, str], name: str, label: str, allowed: Iterable[str], *, default: str = "") -> str:
    """One of ``allowed`` (or ``default`` when absent or empty)."""
    value = query.get(name, "").strip()
    if not value:
        return default
    options = list(allowed)
    if value not in options:
        shown = "、".join(o for o in options if o)[:200]
        raise BadParameter(f"{label}「{value[:20]}」不对：可选 {shown}")
    return value


__all__ = ["MAX_TEXT", "choice", "page_number", "text"]
