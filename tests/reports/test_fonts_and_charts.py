"""The bundled CJK font and the charts drawn with it."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from dataclasses import astuple, fields
from datetime import date

import pytest
from fontTools.ttLib import TTFont

from reports import charts
from reports.fonts import CJK_FONT_FAMILY, cjk_font_path, ensure_cjk_font
from reports.model import PhaseInfo, WeeklyIssueCount

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def font():
    return TTFont(str(cjk_font_path()))


def test_font_is_a_small_single_face_truetype(font):
    path = cjk_font_path()
    assert path.suffix == ".ttf"
    assert path.stat().st_size < 4 * 1024 * 1024
    assert font.sfntVersion == "\x00\x01\x00\x00"  # TrueType outlines, not CFF
    assert "glyf" in font and "CFF " not in font
    assert font["name"].getDebugName(1) == CJK_FONT_FAMILY
    assert (path.parent / "LICENSE-OFL.txt").read_text(encoding="utf-8").count("SIL OPEN FONT LICENSE") >= 1
    assert (path.parent / "build_font.py").is_file()


def test_font_covers_gb2312_ascii_and_punctuation(font):
    cmap = font.getBestCmap()
    gb2312 = set()
    for row in range(0xB0, 0xF8):  # the 6763 hanzi
        for cell in range(0xA1, 0xFF):
            try:
                gb2312.add(bytes((row, cell)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    assert len(gb2312) == 6763
    missing = [c for c in gb2312 if ord(c) not in cmap]
    assert not missing, missing[:20]
    for c in "ASCII 0123456789，。、；：？！“”‘’（）《》【】—…·￥％＋－＝　":
        assert ord(c) in cmap, c
    for c in range(0xFF01, 0xFF5F):  # full-width forms
        assert c in cmap


def _text_of(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return "".join(_text_of(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return "".join(_text_of(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, dict):
        return "".join(_text_of(k) + _text_of(v) for k, v in value.items())
    return ""


def test_font_covers_every_character_of_the_sample_projects(font, samples):
    cmap = font.getBestCmap()
    text = "".join(_text_of(d) for d in samples.values())
    missing = sorted({c for c in text if ord(c) not in cmap})
    assert not missing, missing


def test_font_registration_is_idempotent():
    from matplotlib import font_manager

    ensure_cjk_font()
    before = len(font_manager.fontManager.ttflist)
    ensure_cjk_font()
    ensure_cjk_font()
    assert len(font_manager.fontManager.ttflist) == before
    found = font_manager.findfont(font_manager.FontProperties(family=CJK_FONT_FAMILY), fallback_to_default=False)
    assert found == str(cjk_font_path())


def _png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return im.size


def test_charts_render_chinese_without_missing_glyph_warnings(samples):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rendered = {t: charts.render_charts(d) for t, d in samples.items()}
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "missing from font" in m or "Glyph" in m], messages
    for per_project in rendered.values():
        assert set(per_project) == set(charts.CHART_TITLES)
        for png in per_project.values():
            assert png.startswith(PNG_MAGIC)
            width, height = _png_size(png)
            # 8 in wide, printed 16 cm wide in the .docx: at least 150 pixels per printed inch stays sharp.
            assert width == 8 * charts.DEFAULT_DPI and width / (16 / 2.54) >= 150 and 250 < height < 1200


def test_charts_use_the_bundled_font_for_every_text(samples, monkeypatch):
    """Every Chinese text artist of a chart resolves to the bundled font file, not a system font."""
    from matplotlib import font_manager
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    captured = []
    original = charts._png

    def spy(fig):
        captured.append(fig)
        return original(fig)

    monkeypatch.setattr(charts, "_png", spy)
    charts.render_charts(samples["软件系统实施"])
    assert len(captured) == 3
    for fig in captured:
        assert isinstance(fig, Figure)
        texts = [t for t in fig.findobj(Text) if t.get_text() and any("\u4e00" <= c <= "\u9fff" for c in t.get_text())]
        assert texts
        for t in texts:
            path = font_manager.findfont(t.get_fontproperties(), fallback_to_default=False)
            assert path == str(cjk_font_path()), (t.get_text(), path)


def test_charts_handle_empty_and_odd_data():
    today = date(2025, 3, 12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pngs = [
            charts.phase_timeline_png([], today),
            charts.deliverables_by_phase_png([]),
            charts.issues_per_week_png([]),
            # actual start only, no plan; a phase started after today; a single week
            charts.phase_timeline_png([PhaseInfo("试运行", actual_start=today),
                                       PhaseInfo("验收", date(2025, 4, 1), date(2025, 4, 1))], today),
            charts.issues_per_week_png([WeeklyIssueCount(2025, 1, 0, 0)]),
            charts.issues_per_week_png([WeeklyIssueCount(2024, w, w % 3, w % 2) for w in range(1, 53)]),
        ]
    assert all(p.startswith(PNG_MAGIC) for p in pngs)
    assert not [w for w in caught if "Glyph" in str(w.message) or "missing from font" in str(w.message)]


def test_deliverable_counts_split_overdue_from_pending(samples):
    data = samples["软件系统实施"]
    counts = charts.deliverable_counts(data.deliverables, data.phase_names())
    assert counts["规划"] == {"已完成": 5, "待提交": 0, "逾期": 1, "已豁免": 2}
    assert counts["执行"]["逾期"] == 1
    assert sum(sum(v.values()) for v in counts.values()) == len(data.deliverables)


def test_charts_never_load_pyplot():
    """pyplot keeps global figures and is unsafe in threads; the charts module must not pull it in."""
    code = (
        "import sys; sys.path.insert(0, 'tests/reports'); import sample_data; from reports import charts;"
        "charts.render_charts(sample_data.software_project());"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_importing_reports_loads_no_heavy_library():
    code = (
        "import sys; import reports, reports.model, reports.weekly, reports.documents, reports.archive, "
        "reports.pool, reports.digest, reports.reminders, reports.registers_xlsx, reports.charts;"
        "heavy = [m for m in ('matplotlib', 'matplotlib.font_manager', 'openpyxl') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_sample_data_is_plain_values(samples):
    # astuple walks every nested dataclass: proves the model holds only plain values.
    for data in samples.values():
        assert astuple(data)
