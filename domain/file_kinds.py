"""What a received file really is, from its first bytes: its content must match its extension, and a program is
refused whatever it is called.

A deliverable is opened later by colleagues, leaders, the client and auditors, trusting the extension the bot
accepted: a Windows program named ``验收单.pdf`` must not be filed as a PDF. Each accepted extension lists the
signatures its files start with (several where the format has variants: Office files are OOXML zips or legacy OLE
compound files, WPS saves either); text formats must be text. Programs (PE ``MZ``, ELF, Mach-O, Java classes) and
scripts with a ``#!`` line are recognised first, so the refusal says what the file is.
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD_BYTES = 4096  # enough for every signature below and for telling text from binary

ZIP = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
OLE = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)
PDF = (b"%PDF",)


@dataclass(frozen=True, slots=True)
class Kind:
    name: str  # what the refusal calls it: 「内容不是 Word 文档」
    signatures: tuple[bytes, ...] = ()
    offset_signatures: tuple[tuple[int, bytes], ...] = ()  # (offset, bytes), e.g. "ftyp" at 4 in MP4/HEIC
    text: bool = False  # plain text: no signature, but no binary bytes either
    anywhere_in_head: bool = False  # PDF readers accept junk before %PDF (within the first 1 KB)

    def matches(self, head: bytes) -> bool:
        if self.text:
            return _is_text(head)
        if self.anywhere_in_head and any(sig in head[:1024] for sig in self.signatures):
            return True
        return head.startswith(self.signatures) or any(head[at:at + len(sig)] == sig
                                                        for at, sig in self.offset_signatures)


_WORD, _EXCEL, _SLIDES = Kind("Word 文档", ZIP + OLE), Kind("Excel 表格", ZIP + OLE), Kind("PPT 演示文稿", ZIP + OLE)
_FTYP = ((4, b"ftyp"),)
KINDS: dict[str, Kind] = {
    "doc": _WORD, "docx": _WORD, "wps": Kind("WPS 文字文档", ZIP + OLE),
    "xls": _EXCEL, "xlsx": _EXCEL, "et": Kind("WPS 表格", ZIP + OLE),
    "ppt": _SLIDES, "pptx": _SLIDES, "dps": Kind("WPS 演示文稿", ZIP + OLE),
    "vsd": Kind("Visio 图", OLE), "vsdx": Kind("Visio 图", ZIP),
    "pdf": Kind("PDF 文件", PDF, anywhere_in_head=True), "ofd": Kind("OFD 文件", ZIP),
    "rtf": Kind("RTF 文档", (b"{\\rtf",)),
    "dwg": Kind("DWG 图纸", (b"AC10", b"AC1.")), "dxf": Kind("DXF 图纸", text=True),
    "jpg": Kind("JPEG 图片", (b"\xff\xd8",)), "jpeg": Kind("JPEG 图片", (b"\xff\xd8",)),
    "png": Kind("PNG 图片", (b"\x89PNG",)), "gif": Kind("GIF 图片", (b"GIF87a", b"GIF89a")),
    "bmp": Kind("BMP 图片", (b"BM",)), "webp": Kind("WebP 图片", offset_signatures=((8, b"WEBP"),)),
    "heic": Kind("HEIC 图片", offset_signatures=_FTYP),
    "tif": Kind("TIFF 图片", (b"II*\x00", b"MM\x00*")), "tiff": Kind("TIFF 图片", (b"II*\x00", b"MM\x00*")),
    "zip": Kind("zip 压缩包", ZIP), "rar": Kind("rar 压缩包", (b"Rar!\x1a\x07",)),
    "7z": Kind("7z 压缩包", (b"7z\xbc\xaf\x27\x1c",)),
    "mp4": Kind("MP4 视频", offset_signatures=_FTYP),
    "mov": Kind("MOV 视频", offset_signatures=(*_FTYP, (4, b"moov"), (4, b"wide"), (4, b"mdat"), (4, b"free"))),
    "avi": Kind("AVI 视频", offset_signatures=((8, b"AVI "),)),
    "amr": Kind("AMR 录音", (b"#!AMR",)), "wav": Kind("WAV 录音", offset_signatures=((8, b"WAVE"),)),
    "mp3": Kind("MP3 音频", (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"\xff\xe3")),
    "txt": Kind("文本文件", text=True), "csv": Kind("CSV 文件", text=True), "md": Kind("文本文件", text=True),
    "xml": Kind("XML 文件", text=True), "json": Kind("JSON 文件", text=True),
}

# Programs, by what they start with; checked before the extension so the refusal names the real thing.
PROGRAMS: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "Windows 程序"),
    (b"\x7fELF", "Linux 程序"),
    (b"\xfe\xed\xfa\xce", "macOS 程序"), (b"\xfe\xed\xfa\xcf", "macOS 程序"),
    (b"\xce\xfa\xed\xfe", "macOS 程序"), (b"\xcf\xfa\xed\xfe", "macOS 程序"),
    (b"\xca\xfe\xba\xbe", "macOS 或 Java 程序"),
    (b"#!", "脚本程序"),
)


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for encoding in ("utf-8", "gb18030"):
        try:
            head.decode(encoding)
        except UnicodeDecodeError as exc:
            # The head may end inside a multi-byte character: only an error before the last 3 bytes counts.
            if exc.start >= len(head) - 3:
                return True
            continue
        return True
    return False


def program_kind(head: bytes) -> str | None:
    """``Windows 程序`` for a file that is a program (or a ``#!`` script), else None."""
    if head.startswith(b"#!AMR"):  # an AMR recording, whose signature happens to start like a script
        return None
    return next((what for magic, what in PROGRAMS if head.startswith(magic)), None)


def content_refusal(head: bytes, suffix: str, name: str) -> str | None:
    """Why a file whose first bytes are ``head`` cannot be taken as ``.suffix`` (a Chinese answer), or None."""
    program = program_kind(head)
    if program is not None:
        return (f"文件「{name}」实际上是{program}，为安全起见不能接收，也没有保存。"
                "请发送文档、表格、图片或压缩包，例如：验收报告.pdf")
    kind = KINDS.get(suffix)
    if kind is None or kind.matches(head):
        return None
    return (f"文件「{name}」的内容不是{kind.name}（扩展名是 .{suffix}，内容与扩展名不符），没有保存。"
            f"请确认文件完好、扩展名正确后重新发送，例如用办公软件另存为 .{suffix} 后再发送。")


__all__ = ["HEAD_BYTES", "KINDS", "content_refusal", "program_kind"]
