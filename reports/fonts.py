"""The bundled CJK font and its registration with matplotlib.

Charts never rely on system fonts: a fresh server with only ``pip install`` has no Chinese font, and
matplotlib would silently draw empty boxes. The font file lives in ``reports/fonts/`` (package data,
built by ``reports/fonts/build_font.py``) and is registered with matplotlib's font manager the first
time a chart is drawn in a process, so importing this module does no work.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

CJK_FONT_FAMILY = "DingPM CJK Sans"
CJK_FONT_FILE = "DingPMCJKSans-Regular.ttf"

# matplotlib falls back glyph by glyph along this list (>= 3.6), so a stray character outside the
# GB2312 subset (e.g. a Greek letter in a risk title) still renders from matplotlib's own DejaVu
# instead of becoming a box. DejaVu Sans ships inside matplotlib, so this is still no system font.
CHART_FONT_FAMILIES = (CJK_FONT_FAMILY, "DejaVu Sans")

_lock = threading.Lock()
_registered = False


def cjk_font_path() -> Path:
    """Filesystem path of the bundled TrueType font (works from a wheel or a source checkout)."""
    return Path(str(resources.files("reports").joinpath("fonts", CJK_FONT_FILE)))


def ensure_cjk_font() -> str:
    """Register the bundled font with matplotlib once per process and return its family name.

    ``fontManager.addfont`` appends unconditionally, so the flag keeps repeated calls (one per chart,
    possibly from several threads) from growing the font list.
    """
    global _registered
    if _registered:
        return CJK_FONT_FAMILY
    with _lock:
        if not _registered:
            from matplotlib import font_manager

            path = cjk_font_path()
            if not path.is_file():
                raise FileNotFoundError(
                    f"bundled CJK font missing: {path}; rebuild it with reports/fonts/build_font.py"
                )
            font_manager.fontManager.addfont(str(path))
            _registered = True
    return CJK_FONT_FAMILY
