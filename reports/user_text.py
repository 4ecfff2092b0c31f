"""Text users typed, made inert where other people see it: in DingTalk markdown and in spreadsheet cells.

Project names, register texts, log lines, reasons, remarks, file names and nicknames are the users'; the bot shows
them to a client group, to leaders and to auditors under its own name. Whatever they contain must read as the same
text and do nothing: no link, image, heading, emphasis, HTML tag or @所有人 in a markdown message, no formula in an
xlsx or csv cell. This module is the one place that happens; renderers call it on every user value they interpolate,
and never on the bot's own markup (its links and emphasis stay live).

Markdown: DingTalk does not document backslash escapes, so a backslash might show. Instead the syntax is broken with
an invisible zero-width space (U+200B) where one suffices (the text reads the same and copies back clean: the
command parser drops zero-width characters), and the three characters no invisible character can disarm (``*``,
`````, ``~`` pair up as emphasis or code whatever sits between them) become their full-width forms ``＊｀～``, which
Chinese input methods type anyway. Escape after cutting text short (``md_literal(one_line(x, 40))``), never before.

Spreadsheets: a cell whose text starts with ``= + - @``, a tab or a carriage return is a formula to Excel, WPS and
LibreOffice (``=HYPERLINK(…)``, ``=cmd|' /C calc'!A0``). In xlsx the cell is written as a string with Excel's
quote-prefix flag (shown unchanged, still text after editing); in csv, which has no types, it gets the leading
apostrophe OWASP recommends.
"""

from __future__ import annotations

import csv
import re
from typing import Any

ZERO_WIDTH = "\u200b"
ECHO_CHARS = 30  # how much of a wrong value a reply quotes back
_LOOKALIKES = str.maketrans({"*": "＊", "`": "｀", "~": "～"})
# Places where markdown (or a client's link detection) would start something, each disarmed by a zero-width space:
#   ](  ][  ]:    a link, image or reference          <a  </  <!  <?   an HTML tag, comment or autolink
#   &#  &name     an entity                             x:              a URL scheme (http:, mailto:, tel:…)
#   x.com         a bare domain (www.… too): the zero-width space opens the top-level label, so even a link
#                 detector that takes it for a letter builds a host under a top-level domain that cannot exist
#   @             a mention, @所有人, @all, an e-mail
#   _             emphasis (a zero-width space on both sides makes it neither open nor close)
#   \             an escape of the character after it
_INLINE = re.compile(r"\](?=[(\[:])|<(?=[A-Za-z/!?])|&(?=[#A-Za-z])|(?<=[A-Za-z]):(?=\S)|(?<=[A-Za-z0-9-])\.(?=[A-Za-z])|[@_\\]")
# A line starting like a heading, quote, list, rule, table, code fence or reference definition: indentation dropped
# (four spaces make a code block) and a zero-width space put first.
# In a plain text message only link detection acts (DingTalk links addresses in text bubbles too): the same breaks.
_LINKS = re.compile(r"(?<=[A-Za-z]):(?=//)|(?<=[A-Za-z0-9-])\.(?=[A-Za-z])")
_LINE_START = re.compile(r"^[ \t]*(?=[#>+\-=|\[<!]|\d+[.)])", re.MULTILINE)
_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)


def _disarm(match: re.Match[str]) -> str:
    found = match.group()
    if found == "_":
        return ZERO_WIDTH + found + ZERO_WIDTH
    return found + ZERO_WIDTH


def md_literal(text: object) -> str:
    """``text`` (a user's) to put into a DingTalk markdown message: it shows as typed and is never markup."""
    if text is None:
        return ""
    value = str(text).replace("\r\n", "\n").replace("\r", "\n").translate(_LOOKALIKES)
    value = _INLINE.sub(_disarm, value)
    value = _LINE_START.sub(ZERO_WIDTH, value)
    return _LEADING_SPACE.sub("", value)


def text_literal(text: str) -> str:
    """A plain text message as the bot sends it: no address in it becomes a link (it has none of its own)."""
    return _LINKS.sub(lambda match: match.group() + ZERO_WIDTH, text)


# ---- spreadsheets ---------------------------------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def keep_as_text(cell: Any) -> Any:
    """An openpyxl cell holding a user's text stays text: a string cell with the quote prefix, never a formula."""
    if looks_like_formula(cell.value):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def csv_cell(value: object) -> object:
    """A value for a csv cell: text that a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + value if looks_like_formula(value) else value


class TextCsvWriter:
    """``csv.writer`` whose every row goes through `csv_cell`: the one way the bot writes csv."""

    def __init__(self, stream: Any, **options: Any) -> None:
        self._writer = csv.writer(stream, **options)

    def writerow(self, row: Any) -> Any:
        return self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Any) -> None:
        for row in rows:
            self.writerow(row)


__all__ = ["FORMULA_STARTS", "TextCsvWriter", "ZERO_WIDTH", "csv_cell", "keep_as_text", "looks_like_formula",
           "md_literal", "text_literal"]


def clip(value: str, limit: int = ECHO_CHARS) -> str:
    """A user's value on one line and shortened, for quoting back in a reply (escape it after, not before)."""
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"
