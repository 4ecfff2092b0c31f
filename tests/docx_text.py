"""The text of a .docx as a reader sees it (paragraphs and table cells, in document order), for assertions."""

from __future__ import annotations

import io
import re
import zipfile

_PARAGRAPH = re.compile(r"<w:p[ >].*?</w:p>", re.S)
_TEXT = re.compile(r"<w:t(?: [^>]*)?>([^<]*)</w:t>")


def docx_text(data: bytes) -> str:
    """One line per paragraph (a table cell's paragraphs included)."""
    with zipfile.ZipFile(io.BytesIO(data)) as docx:
        xml = docx.read("word/document.xml").decode("utf-8")
    lines = ("".join(_TEXT.findall(paragraph)) for paragraph in _PARAGRAPH.findall(xml))
    return "\n".join(line for line in lines if line)
