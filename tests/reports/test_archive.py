"""The project archive zip: layout, index hashes, UTF-8 names, sanitising, streaming, progress."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
import sample_data
from hypothesis import given
from hypothesis import strategies as st
from sample_data import docx_text

from reports import archive
from reports.archive import ArchiveFile, WeeklyReportFile, build_archive, safe_component, safe_path
from reports.weekly import render_weekly_docx


def _deliverable_files(data, root: Path) -> list[tuple[str, str, Path, str]]:
    files = []
    for d in data.deliverables:
        if d.latest_file_name:
            path = root / f"blob-{len(files)}.bin"
            path.write_bytes(f"{d.phase}/{d.name}/{d.latest_file_name}\n".encode() * 50)
            files.append((d.phase, d.name, path, d.latest_file_name))
    return files


def _index_rows(md: str) -> dict[str, tuple[int, str]]:
    rows = {}
    for line in md.splitlines():
        m = re.match(r"^\| (\d+) \| [^|]+ \| (.+) \| (\d+) \| ([0-9a-f]{64}) \|$", line)
        if m:
            rows[m.group(2)] = (int(m.group(3)), m.group(4))
    return rows


@pytest.mark.parametrize("template", sample_data.TEMPLATES)
def test_archive_layout_and_index(template, samples, tmp_path):
    data = samples[template]
    files = _deliverable_files(data, tmp_path)
    weekly_path = tmp_path / "w10.docx"
    weekly_path.write_bytes(b"previous week")
    weekly = [("2025-W11", render_weekly_docx(data, charts={})), WeeklyReportFile("2025-W10", weekly_path)]
    calls = []
    out = tmp_path / "out" / "归档.zip"
    result = build_archive(data, files, weekly, out, progress=lambda *a: calls.append(a))

    assert result.path == out and out.is_file()
    assert not list(out.parent.glob("*.part"))
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
        # a folder per phase, numbered in project order, holding each deliverable's latest version
        for i, phase in enumerate(data.phase_names(), 1):
            expected = [f for f in files if f[0] == phase]
            in_folder = [n for n in names if n.startswith(f"{i:02d}-{phase}/")]
            assert len(in_folder) == len(expected), phase
        first = files[0]
        assert f"01-{first[0]}/{first[1]}/{first[3]}" in names
        assert "客户项目周报/2025-W10_客户项目周报.docx" in names
        assert "客户项目周报/2025-W11_客户项目周报.docx" in names
        for fixed in (archive.REGISTERS_NAME, archive.APPROVALS_NAME, archive.AUDIT_NAME, archive.INDEX_MD,
                      archive.INDEX_DOCX):
            assert fixed in names
        # the index lists every other member, with the right size and sha256
        index = _index_rows(zf.read(archive.INDEX_MD).decode("utf-8"))
        assert set(index) == set(names) - {archive.INDEX_MD, archive.INDEX_DOCX}
        for name, (size, sha) in index.items():
            payload = zf.read(name)
            assert len(payload) == size and hashlib.sha256(payload).hexdigest() == sha, name
        assert {e.name for e in result.entries} == set(index)
        _, index_docx_text = docx_text(zf.read(archive.INDEX_DOCX))
        for name, (_, sha) in index.items():
            assert name in index_docx_text and sha in index_docx_text
        # UTF-8 names flagged so Windows shows Chinese
        for info in zf.infolist():
            assert info.flag_bits & 0x800, info.filename
        # the registers and the audit log are readable
        wb = openpyxl.load_workbook(io.BytesIO(zf.read(archive.REGISTERS_NAME)))
        assert "问题记录表" in wb.sheetnames
        audit = list(csv.reader(io.StringIO(zf.read(archive.AUDIT_NAME).decode("utf-8-sig"))))
        assert audit[0] == ["时间", "操作人", "操作", "对象", "详情"] and len(audit) == len(data.audit) + 1
        headings, _ = docx_text(zf.read(archive.APPROVALS_NAME))
        assert headings[0] == "审批记录"
    # one progress call per file, counting up to the total
    assert [c[0] for c in calls] == list(range(1, len(calls) + 1))
    assert all(c[1] == len(calls) for c in calls) and calls[-1][2] == archive.INDEX_DOCX


def test_raw_zip_bytes_carry_the_utf8_flag(samples, tmp_path):
    """Check the central directory itself, not zipfile's reading of it."""
    data = samples["技改项目"]
    out = build_archive(data, _deliverable_files(data, tmp_path), (), tmp_path / "a.zip").path
    raw = out.read_bytes()
    eocd = raw.rindex(b"PK\x05\x06")
    entries = int.from_bytes(raw[eocd + 10 : eocd + 12], "little")
    pos = int.from_bytes(raw[eocd + 16 : eocd + 20], "little")
    count = 0
    for _ in range(entries):
        assert raw[pos : pos + 4] == b"PK\x01\x02"
        flags = int.from_bytes(raw[pos + 8 : pos + 10], "little")
        name_len, extra_len, comment_len = (int.from_bytes(raw[pos + o : pos + o + 2], "little") for o in (28, 30, 32))
        name = raw[pos + 46 : pos + 46 + name_len].decode("utf-8")
        assert flags & 0x800, name
        count += 1
        pos += 46 + name_len + extra_len + comment_len
    assert count == len(zipfile.ZipFile(out).namelist())


def test_hostile_names_are_sanitised_and_deduplicated(samples, tmp_path):
    data = samples["软件系统实施"]
    src = tmp_path / "x.txt"
    src.write_text("x")
    files = [
        ("启动", "商务合同", src, "../../../etc/passwd"),
        ("启动", "商务合同", src, "..\\..\\windows\\system32\\evil.dll"),
        ("启动", "../逃逸", src, "合同:扫描件?.pdf"),
        ("启动", "商务合同", src, "CON.txt"),
        ("启动", "商务合同", src, "重复.pdf"),
        ("启动", "商务合同", src, "重复.PDF"),
        ("../外部阶段", "文件", src, "/abs/path.txt"),
        ("启动", "商务合同", src, "名" * 300 + ".docx"),
    ]
    out = build_archive(data, files, (), tmp_path / "a.zip", extra_files=[("../../附件/签字扫描.pdf", b"%PDF")]).path
    names = zipfile.ZipFile(out).namelist()
    for n in names:
        parts = n.split("/")
        assert not n.startswith("/") and "\\" not in n and ".." not in parts
        assert all(p and not re.search(r'[<>:"|?*]', p) and len(p.encode()) <= 200 for p in parts)
    assert "01-启动/商务合同/passwd" in names
    assert "01-启动/商务合同/evil.dll" in names
    assert "01-启动/逃逸/合同_扫描件_.pdf" in names
    assert "01-启动/商务合同/_CON.txt" in names
    dupes = sorted(n for n in names if "重复" in n)
    assert len(dupes) == 2 and any(n.endswith("/重复 (2).pdf") or n.endswith("/重复 (2).PDF") for n in dupes)
    assert any(n.startswith("06-外部阶段/文件/") for n in names)
    assert any(n.endswith(".docx") and n.split("/")[-1] == "名" * 65 + ".docx" for n in names)
    assert "附件/签字扫描.pdf" in names
    # and extracting it stays inside the target folder
    target = tmp_path / "extract"
    zipfile.ZipFile(out).extractall(target)
    for path in target.rglob("*"):
        assert target in path.resolve().parents


FORBIDDEN = set('<>:"/\\|?*')


@given(st.text(max_size=300))
def test_safe_component_is_always_safe(name):
    out = safe_component(name)
    assert out and len(out.encode("utf-8")) <= 200
    assert not (set(out) & FORBIDDEN) and all(ord(c) >= 32 and c != "\x7f" for c in out)
    assert out not in (".", "..") and out == out.strip() and not out.endswith(".")
    assert not re.match(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", out, re.I)


@given(st.lists(st.text(max_size=40), max_size=6))
def test_safe_path_never_escapes(parts):
    out = safe_path(*parts)
    assert out and not out.startswith("/") and ".." not in out.split("/") and "\\" not in out


def test_large_files_are_streamed_in_chunks(samples, tmp_path, monkeypatch):
    data = samples["技改项目"]
    big = tmp_path / "培训录像.mp4"
    size = 3 * 1024 * 1024 + 123
    with open(big, "wb") as fh:
        fh.write(os.urandom(size))
    monkeypatch.setattr(archive, "CHUNK", 256 * 1024)
    reads: list[int] = []
    real_open = open

    class Spy:
        def __init__(self, fh):
            self._fh = fh

        def read(self, n=-1):
            reads.append(n)
            return self._fh.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._fh.close()

    monkeypatch.setattr(archive, "open", lambda p, mode="r", *a, **k: Spy(real_open(p, mode, *a, **k)), raising=False)
    result = build_archive(data, [("安装调试", "培训录像", big, big.name)], (), tmp_path / "a.zip")
    assert reads and all(0 < n <= 256 * 1024 for n in reads)
    entry = next(e for e in result.entries if e.name.endswith("培训录像.mp4"))
    assert entry.size == size
    assert entry.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    info = zipfile.ZipFile(result.path).getinfo(entry.name)
    assert info.compress_type == zipfile.ZIP_STORED  # already compressed: not deflated again


def test_failure_leaves_no_partial_archive(samples, tmp_path):
    data = samples["技改项目"]
    out = tmp_path / "a.zip"
    with pytest.raises(FileNotFoundError):
        build_archive(data, [ArchiveFile("合同签订", "购销合同", tmp_path / "missing.pdf", "合同.pdf")], (), out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
