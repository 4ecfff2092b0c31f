"""A stored weekly report's markdown as HTML, safely: headings, lists, quotes, paragraphs and **bold**, nothing else.

Every character is escaped first; the few shapes the report renderer writes (``reports.weekly``) are then drawn. No
link, image or HTML from the text ever becomes one: a ``[text](url)`` shows its text, an image line is left out (the
charts are in the .docx), and users' text in it was already made inert by ``reports.user_text.md_literal``.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_IMAGE = re.compile(r"^!\[[^\]]*\]\([^)]*\)\s*$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _inline(text: str) -> str:
    html = str(escape(_LINK.sub(r"\1", text)))
    return _BOLD.sub(r"<strong>\1</strong>", html)


def markdown_html(text: str) -> Markup:
    out: list[str] = []
    in_list = False
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        item = _ITEM.match(line)
        if in_list and not item:
            out.append("</ul>")
            in_list = False
        if not line or _IMAGE.match(line):
            continue
        heading = _HEADING.match(line)
        if heading:
            level = min(6, max(3, len(heading.group(1))))  # the page's own h1/h2 stay above the report
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif item:
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(item.group(1))}</li>")
        elif line.startswith(">"):
            out.append(f"<blockquote>{_inline(line.lstrip('> '))}</blockquote>")
        else:
            out.append(f"<p>{_inline(line)}</p>")
    if in_list:
        out.append("</ul>")
    return Markup("\n".join(out))


__all__ = ["markdown_html"]
