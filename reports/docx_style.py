"""python-docx building blocks with Chinese typography: East Asian fonts, A4 page, form tables.

Word and WPS pick the font for Chinese characters from ``w:rFonts/@w:eastAsia``; python-docx's
``font.name`` only sets the Latin slots, and the default template points every slot at theme fonts
(``w:eastAsiaTheme``), which override an explicit name. So each style here gets explicit
``ascii/hAnsi/eastAsia/cs`` names and loses its theme attributes; otherwise Chinese text comes out
in whatever the reader's theme says (often a Japanese or fallback face in WPS).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

from .docx_fonts import DEFAULT_FONTS, DocxFonts


HEADING_COLOUR = RGBColor(0x1F, 0x3A, 0x5F)
HEADER_FILL = "DCE6F1"
LABEL_FILL = "F2F2F2"
TABLE_TEXT = "Table Text"

_THEME_ATTRS = ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme")


def set_rfonts(rpr, latin: str, east_asia: str) -> None:
    """Point every script slot of an ``w:rPr`` at explicit fonts, dropping theme references."""
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = OxmlElement("w:rFonts")
        rpr.insert(0, rfonts)
    for attr in _THEME_ATTRS:
        key = qn(attr)
        if key in rfonts.attrib:
            del rfonts.attrib[key]
    rfonts.set(qn("w:ascii"), latin)
    rfonts.set(qn("w:hAnsi"), latin)
    rfonts.set(qn("w:cs"), latin)
    rfonts.set(qn("w:eastAsia"), east_asia)


def set_run_font(run, latin: str, east_asia: str) -> None:
    set_rfonts(run._element.get_or_add_rPr(), latin, east_asia)


def _set_style_fonts(style, latin: str, east_asia: str) -> None:
    set_rfonts(style.element.get_or_add_rPr(), latin, east_asia)


def _set_document_defaults(doc, fonts: DocxFonts) -> None:
    styles = doc.styles.element
    rpr = styles.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr"))
    set_rfonts(rpr, fonts.body_latin, fonts.body_east_asia)
    lang = rpr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        rpr.append(lang)
    # zh-CN tells Word to apply Chinese line breaking and punctuation compression rules.
    lang.set(qn("w:val"), "en-US")
    lang.set(qn("w:eastAsia"), "zh-CN")


def new_document(*, fonts: DocxFonts = DEFAULT_FONTS, landscape: bool = False, header_text: str = "") -> Document:
    """An empty A4 document with Chinese fonts on every style we use, page numbers in the footer."""
    doc = Document()
    _set_document_defaults(doc, fonts)

    normal = doc.styles["Normal"]
    _set_style_fonts(normal, fonts.body_latin, fonts.body_east_asia)
    normal.font.size = Pt(10.5)  # 五号, the usual body size of Chinese business documents
    normal.paragraph_format.space_after = Pt(4)
    normal.paragraph_format.line_spacing = 1.25

    for name, size in (("Title", 20), ("Subtitle", 12), ("Heading 1", 15), ("Heading 2", 13), ("Heading 3", 11.5)):
        style = doc.styles[name]
        _set_style_fonts(style, fonts.heading_latin, fonts.heading_east_asia)
        style.font.size = Pt(size)
        style.font.color.rgb = HEADING_COLOUR
        style.font.italic = False
        style.font.bold = name != "Subtitle"
        style.paragraph_format.space_before = Pt(12 if name.startswith("Heading") else 0)
        style.paragraph_format.space_after = Pt(6)
    # The linked character styles carry their own theme fonts; Word uses them when a heading style is
    # applied to part of a paragraph, so they get the same explicit names.
    for name in ("Title Char", "Subtitle Char", "Heading 1 Char", "Heading 2 Char", "Heading 3 Char"):
        _set_style_fonts(doc.styles[name], fonts.heading_latin, fonts.heading_east_asia)
    title = doc.styles["Title"]
    title.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    # The default Title has a blue bottom border and tight spacing meant for English cover pages.
    ppr = title.element.get_or_add_pPr()
    for border in ppr.findall(qn("w:pBdr")):
        ppr.remove(border)
    doc.styles["Subtitle"].paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.styles["Subtitle"].font.color.rgb = RGBColor(0x59, 0x59, 0x59)

    for name in ("Caption", "List Bullet", "List Number", "Header", "Footer", "Table Grid"):
        _set_style_fonts(doc.styles[name], fonts.body_latin, fonts.body_east_asia)
    caption = doc.styles["Caption"]
    caption.font.color.rgb = RGBColor(0x59, 0x59, 0x59)
    caption.font.bold = False
    caption.font.size = Pt(9)
    caption.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER

    table_text = doc.styles.add_style(TABLE_TEXT, WD_STYLE_TYPE.PARAGRAPH)
    table_text.base_style = normal
    table_text.font.size = Pt(9.5)
    table_text.paragraph_format.space_after = Pt(0)
    table_text.paragraph_format.space_before = Pt(0)
    table_text.paragraph_format.line_spacing = 1.1
    _set_style_fonts(table_text, fonts.body_latin, fonts.body_east_asia)

    section = doc.sections[0]
    # python-docx's template is US Letter; Chinese offices print on A4 with 2.54/3.17 cm margins.
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    section.top_margin = section.bottom_margin = Cm(2.54)
    section.left_margin = section.right_margin = Cm(2.6)
    if header_text:
        hp = section.header.paragraphs[0]
        hp.text = header_text
        hp.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        for run in hp.runs:
            run.font.size = Pt(8)
            run.font.color.rgb = RGBColor(0x80, 0x80, 0x80)
    _add_page_number_footer(section)
    return doc


def _field(paragraph, instr: str) -> None:
    fld = OxmlElement("w:fldSimple")
    fld.set(qn("w:instr"), instr)
    run = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    run.append(text)
    fld.append(run)
    paragraph._p.append(fld)


def _add_page_number_footer(section) -> None:
    p = section.footer.paragraphs[0]
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    p.add_run("第 ")
    _field(p, "PAGE")
    p.add_run(" 页 / 共 ")
    _field(p, "NUMPAGES")
    p.add_run(" 页")
    for run in p.runs:
        run.font.size = Pt(8)


def usable_width_cm(doc) -> float:
    s = doc.sections[-1]
    return (s.page_width - s.left_margin - s.right_margin) / 360000


def add_title(doc, title: str, subtitle: str = "") -> None:
    doc.add_paragraph(title, style="Title")
    if subtitle:
        doc.add_paragraph(subtitle, style="Subtitle")


def add_paragraph(doc, text: str, *, bold_prefix: str = "", style: str | None = None):
    p = doc.add_paragraph(style=style)
    if bold_prefix:
        p.add_run(bold_prefix).bold = True
    p.add_run(text)
    return p


def add_bullets(doc, items: Iterable[str], *, empty: str = "无") -> None:
    items = list(items)
    if not items:
        doc.add_paragraph(empty)
        return
    for item in items:
        doc.add_paragraph(item, style="List Bullet")


def _shade(cell, fill: str) -> None:
    tcpr = cell._tc.get_or_add_tcPr()
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    tcpr.append(shd)


def _repeat_as_header(row) -> None:
    trpr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    trpr.append(el)


def _table_text_id(doc) -> str:
    """The style id of ``TABLE_TEXT`` in ``doc``, resolved once per table.

    ``Paragraph.style = name`` resolves the name through styles.xml and then scans every style to check whether it
    is the default, for each cell: that was over half of a weekly report's .docx time. Setting the id on the
    paragraph directly writes the same ``w:pStyle``."""
    return doc.styles[TABLE_TEXT].style_id


def _cell_text(cell, text: str, style_id: str, *, bold: bool = False, align=None, colour: str | None = None) -> None:
    cell.text = ""
    p = cell.paragraphs[0]
    p._p.style = style_id  # == p.style = TABLE_TEXT, without the per-cell lookup (see _table_text_id)
    lines = str(text).split("\n")
    for i, line in enumerate(lines):
        run = p.add_run(line)
        run.bold = bold
        if colour:
            run.font.color.rgb = RGBColor.from_string(colour)
        if i < len(lines) - 1:
            run.add_break()
    if align is not None:
        p.alignment = align


def _set_widths(table, widths_cm: Sequence[float]) -> None:
    table.autofit = False
    # Word reads tblGrid/gridCol, LibreOffice and WPS read the cell widths: set both.
    grid = table._tbl.tblGrid
    for col, width in zip(grid.findall(qn("w:gridCol")), widths_cm):
        col.set(qn("w:w"), str(int(width * 567)))
    for row in table.rows:
        for cell, width in zip(row.cells, widths_cm):
            cell.width = Cm(width)


def add_table(doc, header: Sequence[str], rows: Iterable[Sequence[object]], *, widths_cm: Sequence[float] | None = None,
              empty: str = "无记录"):
    """A grid table with a shaded header row that repeats on every page."""
    rows = [list(map(_text, r)) for r in rows]
    table = doc.add_table(rows=1, cols=len(header))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    style_id = _table_text_id(doc)
    for cell, text in zip(table.rows[0].cells, header):
        _cell_text(cell, text, style_id, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER)
        _shade(cell, HEADER_FILL)
    _repeat_as_header(table.rows[0])
    if not rows:
        cells = table.add_row().cells
        merged = cells[0].merge(cells[-1]) if len(cells) > 1 else cells[0]
        _cell_text(merged, empty, style_id, align=WD_ALIGN_PARAGRAPH.CENTER)
    for values in rows:
        for cell, text in zip(table.add_row().cells, values):
            _cell_text(cell, text, style_id)
    if widths_cm is None:
        total = usable_width_cm(doc)
        widths_cm = [total / len(header)] * len(header)
    _set_widths(table, widths_cm)
    doc.add_paragraph()
    return table


def add_form_table(doc, pairs: Sequence[tuple[str, object]], *, columns: int = 2, label_cm: float = 2.8,
                   wide_labels: Iterable[str] = (), colours: Mapping[str, str] | None = None):
    """Label/value form grid, ``columns`` pairs per row; labels in ``wide_labels`` span the whole row; ``colours``
    gives a value its text colour by label (``{"健康状况": "2E7D32"}``).

    This is the layout of the paper forms in the standard (立项申请表, 验收确认单 ...): shaded labels,
    white value cells to read or fill in.
    """
    wide = set(wide_labels)
    total = usable_width_cm(doc)
    value_cm = (total - label_cm * columns) / columns
    widths = [label_cm, value_cm] * columns
    table = doc.add_table(rows=0, cols=2 * columns)
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    style_id = _table_text_id(doc)
    pending: list[tuple[str, object]] = []

    def flush() -> None:
        if not pending:
            return
        cells = table.add_row().cells
        for i, (label, value) in enumerate(pending):
            _cell_text(cells[2 * i], label, style_id, bold=True)
            _shade(cells[2 * i], LABEL_FILL)
            _cell_text(cells[2 * i + 1], _text(value), style_id, colour=(colours or {}).get(label))
        if len(pending) < columns:
            cells[2 * len(pending) - 1].merge(cells[-1])
        pending.clear()

    for label, value in pairs:
        if label in wide:
            flush()
            cells = table.add_row().cells
            _cell_text(cells[0], label, style_id, bold=True)
            _shade(cells[0], LABEL_FILL)
            merged = cells[1].merge(cells[-1])
            _cell_text(merged, _text(value), style_id, colour=(colours or {}).get(label))
            continue
        pending.append((label, value))
        if len(pending) == columns:
            flush()
    flush()
    _set_widths(table, widths)
    doc.add_paragraph()
    return table


def add_signature_block(doc, parties: Sequence[str], *, note: str = "") -> None:
    """Signature and seal lines, one column per party: "客户方（签字/盖章）" ... "日期：    年   月   日"."""
    if note:
        doc.add_paragraph(note)
    table = doc.add_table(rows=1, cols=len(parties))
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, party in zip(table.rows[0].cells, parties):
        cell.text = ""
        p = cell.paragraphs[0]
        p.add_run(f"{party}：").bold = True
        cell.add_paragraph("")
        cell.add_paragraph("签字：____________________")
        cell.add_paragraph("")
        cell.add_paragraph("日期：______年____月____日")
    _set_widths(table, [usable_width_cm(doc) / len(parties)] * len(parties))


def add_picture(doc, png: bytes, caption: str = "", *, width_cm: float | None = None) -> None:
    width = Cm(width_cm or min(16.0, usable_width_cm(doc)))
    doc.add_picture(io.BytesIO(png), width=width)
    doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
    if caption:
        doc.add_paragraph(caption, style="Caption")


def to_bytes(doc) -> bytes:
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _text(value: object) -> str:
    if value is None:
        return "—"
    return str(value)
