"""Every generated .docx converts to PDF with LibreOffice, and the PDF carries the Chinese text.

All documents go through ONE soffice invocation (start-up dominates the cost), with a private profile
so parallel runs do not fight over ~/.config/libreoffice, and a private fontconfig file that adds the
bundled font and maps the documents' 宋体/微软雅黑 to it: the check does not depend on which CJK fonts
the CI machine happens to have (``fonts-noto-cjk`` is not needed).
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
import subprocess
from pathlib import Path

import pytest
import sample_data
from pypdf import PdfReader

from reports import documents, weekly
from reports.archive import build_archive
from reports.fonts import CJK_FONT_FAMILY, cjk_font_path

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")

pytestmark = [
    pytest.mark.libreoffice,
    pytest.mark.skipif(SOFFICE is None, reason="LibreOffice not installed (apt-get install libreoffice-writer-nogui)"),
]

FONTS_CONF = """<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <dir>{font_dir}</dir>
  <cachedir>{cache}</cachedir>
  {aliases}
</fontconfig>
"""
ALIAS = '<alias binding="same"><family>{name}</family><prefer><family>{family}</family></prefer></alias>'


def _fontconfig(tmp: Path) -> Path:
    aliases = "\n  ".join(ALIAS.format(name=n, family=CJK_FONT_FAMILY)
                          for n in ("宋体", "微软雅黑", "SimSun", "Microsoft YaHei"))
    conf = tmp / "fonts.conf"
    conf.write_text(FONTS_CONF.format(font_dir=cjk_font_path().parent, cache=tmp / "fc-cache", aliases=aliases),
                    encoding="utf-8")
    return conf


def _collect_docx(tmp: Path) -> dict[str, tuple[str, str]]:
    """Write every .docx we generate; return file stem -> (project name, document title)."""
    expected: dict[str, tuple[str, str]] = {}
    for i, template in enumerate(sample_data.TEMPLATES):
        data = sample_data.sample(template)
        outputs = {
            "客户项目周报": weekly.render_weekly_docx(data),
            "项目内部周报": weekly.render_weekly_docx(data, internal=True),
        }
        for name, spec in documents.DOCUMENTS.items():
            try:
                outputs[name] = spec(data)
            except documents.MissingDocumentData:
                continue
        for title, payload in outputs.items():
            stem = f"{i}-{title}"
            (tmp / f"{stem}.docx").write_bytes(payload)
            expected[stem] = (data.project.name, title)
    data = sample_data.software_project()
    build_archive(data, [], [], tmp / "a.zip")

    (tmp / "9-索引.docx").write_bytes(zipfile.ZipFile(tmp / "a.zip").read("索引.docx"))
    expected["9-索引"] = (data.project.name, "项目资料归档索引")
    return expected


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lo")
    src, out = tmp / "docx", tmp / "pdf"
    src.mkdir()
    expected = _collect_docx(src)
    env = {**os.environ, "FONTCONFIG_FILE": str(_fontconfig(tmp)), "HOME": str(tmp)}
    cmd = [SOFFICE, f"-env:UserInstallation={(tmp / 'profile').as_uri()}", "--headless", "--norestore",
           "--convert-to", "pdf", "--outdir", str(out), *sorted(str(p) for p in src.glob("*.docx"))]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr
    return expected, out, result


def test_every_docx_converts(converted):
    expected, out, result = converted
    produced = {p.stem for p in out.glob("*.pdf")}
    assert produced == set(expected), (sorted(set(expected) - produced), result.stdout[-2000:])
    assert len(expected) >= 28


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_pdfs_hold_the_chinese_text_in_the_bundled_font(converted):
    expected, out, _ = converted
    for stem, (project_name, title) in expected.items():
        reader = PdfReader(out / f"{stem}.pdf")
        assert len(reader.pages) >= 1
        text = _squash("".join(page.extract_text() or "" for page in reader.pages))
        assert _squash(title) in text, stem
        assert _squash(project_name) in text, stem
        fonts = set()
        for page in reader.pages:
            for font in (page.get("/Resources", {}).get("/Font", {}) or {}).values():
                fonts.add(str(font.get_object().get("/BaseFont", "")))
        assert any("DingPMCJKSans" in f for f in fonts), (stem, fonts)


def test_weekly_pdf_shows_sections_and_content(converted):
    expected, out, _ = converted
    text = _squash("".join(p.extract_text() for p in PdfReader(out / "0-项目内部周报.pdf").pages))
    for section in weekly.weekly_sections(internal=True):
        assert _squash(section) in text
    assert "HIS接口返回的门诊结算数据缺少医保目录编码" in text
    assert "上线规则清单" in text and "执行阶段里程碑调整申请" in text
