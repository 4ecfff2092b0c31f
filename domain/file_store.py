"""The file store: where a submitted or generated file lives, ``<storage.files_dir>/<项目编号>/<阶段>/<交付物>/v<N>-
<文件名>``, which names and kinds it accepts, and how a file gets there (never half-written, never on the loop).

A staged file (downloaded by the chat side, ``handlers._files``) is hard-linked (or copied) into place rather than
moved, so a command whose transaction rolls back leaves the staged file where its pending row says it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePath

from domain.errors import UserError
from domain.ports import CommandScope
from reports.archive import base_name, safe_component

MAX_FILE_BYTES = 20 * 1024 * 1024  # what DingTalk lets a user send to a bot
STAGING_DIR = ".incoming"
PENDING_FILE_TTL = timedelta(days=1)  # a sent file waits this long for 「提交 <交付物>」
WAITING_TTL = timedelta(minutes=30)  # 「提交 <交付物>」 without a file waits this long for it

# Documents, spreadsheets, slides, drawings, scans and photos, archives, videos of a training: what projects hand in.
# Each file's content must match its extension (domain.file_kinds), and programs are refused whatever their name.
ALLOWED_SUFFIXES = frozenset(
    {
        "doc", "docx", "xls", "xlsx", "ppt", "pptx", "pdf", "wps", "et", "dps", "ofd", "txt", "csv", "md", "rtf",
        "vsd", "vsdx", "dwg", "dxf", "jpg", "jpeg", "png", "gif", "bmp", "webp", "heic", "tif", "tiff",
        "zip", "rar", "7z", "mp4", "mov", "avi", "amr", "mp3", "wav", "xml", "json",
    }
)
ALLOWED_HINT = "Word、Excel、PPT、PDF、WPS、图片、压缩包、视频等"



@dataclass(frozen=True, slots=True)
class StagedFile:
    relative_path: str  # under files_dir
    name: str  # sanitised original name
    size: int
    sha256: str


def files_root(ctx: CommandScope) -> Path:
    return Path(ctx.config.storage.files_dir)


def checked_file_name(name: str) -> str:
    """The file's name made safe for any disk (no path tricks, no reserved names); refuses forbidden kinds."""
    safe = base_name(name)
    suffix = file_suffix(safe)
    if not suffix or suffix not in ALLOWED_SUFFIXES:
        kind = f"「.{suffix}」类型的" if suffix else "没有扩展名的"
        raise UserError(
            f"不能接收{kind}文件「{base_name(name)[:40]}」。可以提交 {ALLOWED_HINT} 文件；"
            "程序和脚本请打包为 zip 后再发送，例如：实施部署脚本.zip"
        )
    return safe


def file_suffix(name: str) -> str:
    return PurePath(name).suffix.lower().lstrip(".")



def unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass



def version_path(project_code: str, phase: str, deliverable: str, version: int, file_name: str) -> str:
    """Where version ``version`` of a deliverable is kept, relative to files_dir (each part sanitised)."""
    parts = (project_code, phase or "未分阶段", deliverable, f"v{version}-{file_name}")
    return "/".join(safe_component(part) for part in parts)


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{uuid.uuid4().hex}.part")
    try:
        os.link(source, temporary)
    except OSError:  # another file system, or links not allowed: copy
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)


async def place_file(ctx: CommandScope, staged_relative: str, final_relative: str) -> Path:
    """Put a staged file at its final place (off the loop); returns the absolute path."""
    root = files_root(ctx)
    target = root / final_relative
    await asyncio.to_thread(_link_or_copy, root / staged_relative, target)
    return target


def _write_atomically(target: Path, data: bytes) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{uuid.uuid4().hex}.part")
    temporary.write_bytes(data)
    os.replace(temporary, target)
    return hashlib.sha256(data).hexdigest()


async def write_generated(root: Path, relative: str, data: bytes) -> str:
    """Write a document the bot made at ``root/relative`` (off the loop, never half-written); returns its SHA-256."""
    return await asyncio.to_thread(_write_atomically, root / relative, data)


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"
