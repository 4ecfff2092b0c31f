"""The fonts a generated .docx names, apart from ``docx_style`` so that renderer signatures can default to them
without importing python-docx (a heavy import that belongs in the render thread, not in whoever imports us)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DocxFonts:
    """Font names written into the document. The names are what Chinese Office installs ship with;
    LibreOffice substitutes a CJK font through fontconfig when they are absent."""

    body_east_asia: str = "宋体"
    heading_east_asia: str = "微软雅黑"
    body_latin: str = "Times New Roman"
    heading_latin: str = "Arial"


DEFAULT_FONTS = DocxFonts()

__all__ = ["DEFAULT_FONTS", "DocxFonts"]
