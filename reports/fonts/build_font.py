"""Build the bundled CJK font: a GB2312 subset of Noto Sans CJK SC as a single-face TrueType file.

Why this exists: charts must render Chinese on a fresh machine that only ran ``pip install``, so the
font ships inside the ``reports`` package instead of coming from the system. The full Noto Sans CJK
collection is ~19 MB of CFF outlines in a TTC, which matplotlib cannot address by face and which would
bloat the wheel; a subset to the characters a Chinese business report actually uses is ~2.1 MB.

How it was made (Debian 12, fonttools 4.x, run from the repository root)::

    apt-get install fonts-noto-cjk           # Noto Sans CJK 2.004, SIL OFL 1.1
    .venv/bin/python reports/fonts/build_font.py \\
        --source /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc

Steps: pick the "Noto Sans CJK SC" face out of the collection, subset it to GB2312 + ASCII + Latin-1
punctuation + general punctuation + CJK symbols and punctuation + full-width/half-width forms (plus a
few common name characters outside GB2312), drop hinting and vertical-layout tables, convert the cubic
CFF outlines to quadratic TrueType outlines (fontTools cu2qu, max error 1 unit of 1000), and rename
the family so that it can never be confused with, or shadowed by, a system-installed Noto font.
The OFL allows modified versions under the same license; "Source" is the only Reserved Font Name and
the new name does not use it. See LICENSE-OFL.txt next to the font.

fontTools is a matplotlib dependency, so no extra package is needed to rebuild.
"""

from __future__ import annotations

import argparse
from pathlib import Path

OUTPUT_NAME = "DingPMCJKSans-Regular.ttf"
FAMILY = "DingPM CJK Sans"
POSTSCRIPT_NAME = "DingPMCJKSans-Regular"
SOURCE_FAMILY = "Noto Sans CJK SC"

# Characters outside GB2312 that still turn up in Chinese personal and company names and in reports.
EXTRA_CHARS = "镕堃喆玥珺昇赟犇祎甯焜琇旻昱晔玮琛瑄璟皓淏钰妍婧嫣彧曌〇№•·–—‘’“”…‰′″※←↑→↓√×÷±≤≥≈≠∞℃"


def gb2312_characters() -> set[int]:
    """Every character encodable in GB2312 (rows 0xA1-0xF7, cells 0xA1-0xFE)."""
    chars: set[int] = set()
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                ch = bytes((row, cell)).decode("gb2312")
            except UnicodeDecodeError:
                continue
            chars.add(ord(ch))
    return chars


def wanted_codepoints() -> set[int]:
    cps = gb2312_characters()
    cps.update(range(0x20, 0x7F))  # ASCII
    cps.update(range(0xA0, 0x100))  # Latin-1 supplement (° ± × · etc.)
    cps.update(range(0x2000, 0x2070))  # general punctuation
    cps.update(range(0x2100, 0x2150))  # letterlike symbols (℃ №)
    cps.update(range(0x2190, 0x2200))  # arrows
    cps.update(range(0x2200, 0x2300))  # math operators, incl. U+2212 minus used by matplotlib
    cps.update(range(0x2460, 0x24A0))  # circled numbers ①
    cps.update(range(0x3000, 0x3040))  # CJK symbols and punctuation
    cps.update(range(0xFF00, 0xFFF0))  # full-width and half-width forms
    cps.update(ord(c) for c in EXTRA_CHARS)
    return cps


def _open_face(source: Path):
    from fontTools.ttLib import TTCollection, TTFont

    if source.suffix.lower() in {".ttc", ".otc"}:
        collection = TTCollection(str(source), lazy=True)
        for index, face in enumerate(collection.fonts):
            if face["name"].getDebugName(1) == SOURCE_FAMILY:
                return TTFont(str(source), fontNumber=index)
        raise SystemExit(f"{SOURCE_FAMILY!r} not found in {source}")
    return TTFont(str(source))


def _subset(font, codepoints: set[int]) -> None:
    from fontTools import subset

    options = subset.Options()
    options.hinting = False  # hints are ignored by matplotlib's Agg at chart sizes; they cost ~10 %
    options.desubroutinize = True  # cu2qu works on plain charstrings
    # Only positioning features: GSUB closure (ccmp, locl, liga...) drags in thousands of alternate
    # glyphs that a chart label never shows, nearly doubling the file.
    options.layout_features = ["kern", "palt"]
    options.drop_tables += ["VORG", "vhea", "vmtx", "DSIG", "BASE"]
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(font)


def _cff_to_glyf(font) -> None:
    """Replace CFF outlines by quadratic TrueType outlines (after fontTools' Snippets/otf2ttf.py)."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    quadratic = {}
    for name in glyph_order:
        tt_pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(tt_pen, max_err=1.0, reverse_direction=True))
        quadratic[name] = tt_pen.glyph()

    font["loca"] = newTable("loca")
    font["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = quadratic
    del font["CFF "]
    glyf.compile(font)

    hmtx = font["hmtx"]
    for name, glyph in glyf.glyphs.items():
        if hasattr(glyph, "xMin"):
            hmtx[name] = (hmtx[name][0], glyph.xMin)

    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    maxp.maxZones = 1
    maxp.maxTwilightPoints = 0
    maxp.maxStorage = 0
    maxp.maxFunctionDefs = 0
    maxp.maxInstructionDefs = 0
    maxp.maxStackElements = 0
    maxp.maxSizeOfInstructions = 0
    maxp.maxComponentElements = 0
    maxp.compile(font)

    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = glyph_order
    font["head"].glyphDataFormat = 0
    font.sfntVersion = "\x00\x01\x00\x00"


def _rename(font) -> None:
    name = font["name"]
    version = name.getDebugName(5) or ""
    # Only Windows-platform English records: matplotlib and fontconfig read these; keeping Mac and
    # localized duplicates of the old name would leave "Noto Sans CJK SC" visible as an alias.
    name.names = [r for r in name.names if r.platformID == 3 and r.langID == 0x409]
    name.setName(FAMILY, 1, 3, 1, 0x409)
    name.setName("Regular", 2, 3, 1, 0x409)
    name.setName(f"{POSTSCRIPT_NAME};{version}", 3, 3, 1, 0x409)
    name.setName(f"{FAMILY} Regular", 4, 3, 1, 0x409)
    name.setName(POSTSCRIPT_NAME, 6, 3, 1, 0x409)
    name.setName(
        "Subset of Noto Sans CJK SC 2.004 (GB2312 + ASCII + CJK punctuation + full-width forms), "
        "converted to TrueType outlines and renamed for the dingpm reports package. "
        "Modified Version under the SIL Open Font License 1.1.",
        10,
        3,
        1,
        0x409,
    )


def build(source: Path, output: Path) -> Path:
    font = _open_face(source)
    _subset(font, wanted_codepoints())
    _cff_to_glyf(font)
    _rename(font)
    output.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(output))
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"))
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name(OUTPUT_NAME))
    args = parser.parse_args()
    out = build(args.source, args.output)
    print(f"wrote {out} ({out.stat().st_size / 1024 / 1024:.2f} MB)")


if __name__ == "__main__":
    main()
