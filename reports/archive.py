"""The project archive (电子资料存档): one zip for the project administrator.

Layout (``NN-`` keeps phases in project order in any file browser)::

    01-启动/商务合同/合同扫描件.pdf           latest version of each deliverable, a folder per phase
    02-规划/...
    客户项目周报/2025-W10_客户项目周报.docx      every weekly report
    项目管理记录/项目登记表.xlsx               the registers
    项目管理记录/审批记录.docx                 the approval trail
    项目管理记录/操作日志.csv                  the audit log
    索引.md, 索引.docx                       every file above with its size and SHA-256

Files on disk are streamed into the zip in 1 MiB chunks and hashed on the way, so a 2 GB video of the
training session does not need 2 GB of memory. Names are sanitised (no path traversal, no characters
Windows refuses) and stored as UTF-8 with the zip's language-encoding flag, so Windows Explorer and
7-Zip show the Chinese names instead of mojibake.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from .formatting import fmt_date
from .model import ProjectReportData
from .user_text import TextCsvWriter, md_literal

CHUNK = 1024 * 1024
UTF8_FLAG = 0x800
REGISTERS_NAME = "项目管理记录/项目登记表.xlsx"
APPROVALS_NAME = "项目管理记录/审批记录.docx"
AUDIT_NAME = "项目管理记录/操作日志.csv"
WEEKLY_FOLDER = "客户项目周报"
INDEX_MD = "索引.md"
INDEX_DOCX = "索引.docx"
# Already-compressed formats: deflating them again costs CPU and saves nothing.
STORED_SUFFIXES = frozenset({
    ".zip", ".rar", ".7z", ".gz", ".jpg", ".jpeg", ".png", ".gif", ".webp", ".mp4", ".mov", ".avi", ".mp3",
    ".docx", ".xlsx", ".pptx", ".pdf",
})
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """The latest version of one deliverable, stored on disk (``original_name`` is what the user uploaded)."""

    phase: str
    deliverable: str
    path: Path
    original_name: str


@dataclass(frozen=True, slots=True)
class WeeklyReportFile:
    week: str  # ISO week key, e.g. "2025-W10"
    source: Path | bytes
    file_name: str | None = None  # defaults to "<week>_客户项目周报.docx"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    name: str  # path inside the zip
    size: int
    sha256: str
    category: str  # 交付物 / 客户项目周报 / 登记表 / 审批记录 / 操作日志 / 附加文件


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    path: Path
    entries: tuple[IndexEntry, ...]

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)


def _fit(text: str, max_bytes: int) -> str:
    while len(text.encode("utf-8")) > max_bytes:
        text = text[:-1]
    return text


def safe_component(name: str, *, fallback: str = "未命名", max_bytes: int = 200) -> str:
    """One path component that is safe everywhere: no separators, no ``..``, nothing Windows rejects,
    and at most ``max_bytes`` of UTF-8 (Linux file systems allow 255 bytes per name: ~85 Chinese
    characters), cut inside the stem so the extension survives."""
    name = unicodedata.normalize("NFC", str(name or ""))
    name = _BAD_CHARS.sub("_", name)
    name = name.strip().strip(".").strip()
    if not name or set(name) <= {"_", "."}:
        name = fallback
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name.encode("utf-8")) > max_bytes:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and 0 < len(ext) <= 10 and ext.isascii():
            name = _fit(stem, max_bytes - len(ext) - 1).rstrip(" .") + "." + ext
        else:
            name = _fit(name, max_bytes).rstrip(" .")
    return name or fallback


def base_name(name: str) -> str:
    """The last component of an uploaded file's name, whatever separator its client used."""
    pieces = [p for p in re.split(r"[\\/]+", str(name or "")) if p.strip() not in ("", ".", "..")]
    return safe_component(pieces[-1] if pieces else "")


def safe_path(*parts: str) -> str:
    """Join sanitised components with ``/``; a part containing slashes is split and each piece cleaned."""
    pieces: list[str] = []
    for part in parts:
        for piece in re.split(r"[\\/]+", str(part)):
            if piece.strip() in ("", ".", ".."):
                continue
            pieces.append(safe_component(piece))
    return "/".join(pieces) or "未命名"


class _Names:
    """Keeps zip member names unique (case-insensitively, as Windows sees them)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def claim(self, name: str) -> str:
        candidate, n = name, 1
        while candidate.lower() in self._seen:
            n += 1
            path = PurePosixPath(name)
            candidate = str(path.with_name(f"{path.stem} ({n}){path.suffix}"))
        self._seen.add(candidate.lower())
        return candidate


def _zipinfo(name: str, when: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=max(when, datetime(1980, 1, 1)).timetuple()[:6])
    info.flag_bits |= UTF8_FLAG
    info.compress_type = (zipfile.ZIP_STORED if PurePosixPath(name).suffix.lower() in STORED_SUFFIXES
                          else zipfile.ZIP_DEFLATED)
    info.external_attr = 0o644 << 16
    return info


def _write_path(zf: zipfile.ZipFile, name: str, path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    when = datetime.fromtimestamp(path.stat().st_mtime)
    with open(path, "rb") as src, zf.open(_zipinfo(name, when), "w", force_zip64=True) as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            dst.write(chunk)
    return size, digest.hexdigest()


def _write_bytes(zf: zipfile.ZipFile, name: str, payload: bytes, when: datetime) -> tuple[int, str]:
    zf.writestr(_zipinfo(name, when), payload)
    return len(payload), hashlib.sha256(payload).hexdigest()


def audit_csv(data: ProjectReportData) -> bytes:
    """The audit log as CSV with a BOM, which Excel needs to read UTF-8 Chinese correctly."""
    buf = io.StringIO()
    writer = TextCsvWriter(buf)
    writer.writerow(["时间", "操作人", "操作", "对象", "详情"])
    for a in sorted(data.audit, key=lambda a: a.at):
        writer.writerow([a.at.strftime("%Y-%m-%d %H:%M:%S"), a.actor_name, a.action, a.target, a.detail])
    return buf.getvalue().encode("utf-8-sig")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def index_markdown(data: ProjectReportData, entries: Iterable[IndexEntry]) -> str:
    entries = list(entries)
    p = data.project
    lines = [
        f"# {md_literal(p.name)} 项目资料归档索引",
        "",
        f"- 项目编号：{p.code}",
        f"- 客户单位：{md_literal(p.customer)}",
        f"- 项目经理：{md_literal(p.pm_name)}",
        f"- 归档日期：{fmt_date(data.today)}",
        f"- 文件数量：{len(entries)}，合计 {_size(sum(e.size for e in entries))}",
        "",
        "| 序号 | 类别 | 文件 | 大小（字节） | SHA-256 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for i, e in enumerate(entries, 1):
        lines.append(f"| {i} | {e.category} | {e.name.replace('|', '｜')} | {e.size} | {e.sha256} |")
    lines += ["", "校验方法：Windows 执行 `certutil -hashfile <文件> SHA256`，Linux/macOS 执行 `sha256sum <文件>`。", ""]
    return "\n".join(lines)


def index_docx(data: ProjectReportData, entries: Iterable[IndexEntry]) -> bytes:
    from . import docx_style as dx  # python-docx is heavy: loaded by the render thread, not by our importers
    entries = list(entries)
    doc = dx.new_document(landscape=True, header_text=f"{data.project.name} · 项目资料归档索引")
    dx.add_title(doc, "项目资料归档索引", data.project.name)
    dx.add_form_table(doc, [("项目编号", data.project.code), ("客户单位", data.project.customer),
                            ("项目经理", data.project.pm_name), ("归档日期", fmt_date(data.today)),
                            ("文件数量", len(entries)), ("合计大小", _size(sum(e.size for e in entries)))], columns=3)
    dx.add_table(doc, ["序号", "类别", "文件", "大小（字节）", "SHA-256"],
                 [(i, e.category, e.name, e.size, e.sha256) for i, e in enumerate(entries, 1)],
                 widths_cm=[1.2, 2.4, 9.0, 2.4, 9.4])
    return dx.to_bytes(doc)


def build_archive(
    data: ProjectReportData,
    files: Iterable[ArchiveFile | tuple[str, str, str | os.PathLike, str]],
    weekly_reports: Iterable[WeeklyReportFile | tuple] = (),
    out_path: str | os.PathLike = "archive.zip",
    progress: Progress | None = None,
    *,
    extra_files: Iterable[tuple[str, str | os.PathLike | bytes]] = (),
    registers_xlsx: bytes | None = None,
    approvals_docx: bytes | None = None,
    generated_at: datetime | None = None,
) -> ArchiveResult:
    """Write the archive zip to ``out_path`` and return what it holds.

    ``files`` are (phase, deliverable, path on disk, original name); ``weekly_reports`` are (ISO week,
    path or bytes[, file name]); ``extra_files`` are (name inside the zip, path or bytes), e.g. signed
    scans that are not deliverables. The registers workbook and the approval trail are rendered from
    ``data`` unless passed in. ``progress(done, total, name)`` is called after each file, index
    included, so a CLI can draw a bar. The zip is written to a temporary file next to ``out_path``
    and renamed at the end: an interrupted run never leaves a truncated archive behind.
    """
    from .documents import render_approval_trail
    from .registers_xlsx import render_registers_xlsx

    out_path = Path(out_path)
    when = generated_at or datetime.combine(data.today, datetime.min.time())
    files = [f if isinstance(f, ArchiveFile) else ArchiveFile(f[0], f[1], Path(f[2]), f[3]) for f in files]
    weekly = [w if isinstance(w, WeeklyReportFile) else WeeklyReportFile(*w) for w in weekly_reports]
    extras = list(extra_files)
    total = len(files) + len(weekly) + len(extras) + 3 + 2  # + registers, approvals, audit + two indexes
    done = 0
    names = _Names()
    entries: list[IndexEntry] = []

    phase_order = list(data.phase_names())
    for f in files:
        if f.phase not in phase_order:
            phase_order.append(f.phase)

    def tick(name: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, name)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".archive-", suffix=".zip.part", dir=out_path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for f in sorted(files, key=lambda f: (phase_order.index(f.phase), f.deliverable, f.original_name)):
                folder = f"{phase_order.index(f.phase) + 1:02d}-{base_name(f.phase)}"
                name = names.claim("/".join((folder, base_name(f.deliverable), base_name(f.original_name))))
                size, sha = _write_path(zf, name, Path(f.path))
                entries.append(IndexEntry(name, size, sha, "交付物"))
                tick(name)

            for w in sorted(weekly, key=lambda w: w.week):
                suffix = ".docx" if isinstance(w.source, bytes) else (Path(w.source).suffix or ".docx")
                file_name = w.file_name or f"{w.week}_客户项目周报{suffix}"
                name = names.claim(safe_path(WEEKLY_FOLDER, base_name(file_name)))
                if isinstance(w.source, bytes):
                    size, sha = _write_bytes(zf, name, w.source, when)
                else:
                    size, sha = _write_path(zf, name, Path(w.source))
                entries.append(IndexEntry(name, size, sha, "客户项目周报"))
                tick(name)

            generated = (
                (REGISTERS_NAME, registers_xlsx if registers_xlsx is not None else render_registers_xlsx(data), "登记表"),
                (APPROVALS_NAME, approvals_docx if approvals_docx is not None else render_approval_trail(data), "审批记录"),
                (AUDIT_NAME, audit_csv(data), "操作日志"),
            )
            for name, payload, category in generated:
                name = names.claim(name)
                size, sha = _write_bytes(zf, name, payload, when)
                entries.append(IndexEntry(name, size, sha, category))
                tick(name)

            for inner, source in extras:
                name = names.claim(safe_path(inner))
                if isinstance(source, bytes):
                    size, sha = _write_bytes(zf, name, source, when)
                else:
                    size, sha = _write_path(zf, name, Path(source))
                entries.append(IndexEntry(name, size, sha, "附加文件"))
                tick(name)

            # The indexes describe every other member; they cannot hash themselves.
            _write_bytes(zf, names.claim(INDEX_MD), index_markdown(data, entries).encode("utf-8"), when)
            tick(INDEX_MD)
            _write_bytes(zf, names.claim(INDEX_DOCX), index_docx(data, entries), when)
            tick(INDEX_DOCX)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return ArchiveResult(out_path, tuple(entries))
