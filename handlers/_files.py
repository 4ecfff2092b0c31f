"""Files users send to the bot: the checks (size, kind, name), the download into a staging area, and the versioned
place of a submitted file: ``<storage.files_dir>/<项目编号>/<阶段>/<交付物>/v<N>-<文件名>``.

Downloads stream to disk in chunks; hashing and linking run in a thread, never on the event loop. A staged file is
hard-linked (or copied) into place rather than moved, so a command whose transaction rolls back leaves the staged
file where its pending row says it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path, PurePath
from typing import Any

from bot.context import Context
from bot.dingtalk.errors import DingTalkError, FileTooLarge
from bot.errors import UserError
from bot.incoming import Incoming, ReceivedFile
from handlers._file_kinds import HEAD_BYTES, content_refusal
from reports.archive import base_name, safe_component

MAX_FILE_BYTES = 20 * 1024 * 1024  # what DingTalk lets a user send to a bot
STAGING_DIR = ".incoming"
PENDING_FILE_TTL = timedelta(days=1)  # a sent file waits this long for 「提交 <交付物>」
WAITING_TTL = timedelta(minutes=30)  # 「提交 <交付物>」 without a file waits this long for it
HASH_CHUNK = 1024 * 1024
MAX_FILES_PER_MESSAGE = 5
# Documents, spreadsheets, slides, drawings, scans and photos, archives, videos of a training: what projects hand in.
# Each file's content must match its extension (handlers._file_kinds), and programs are refused whatever their name.
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


def files_root(ctx: Context) -> Path:
    return Path(ctx.config.storage.files_dir)


def checked_file_name(name: str) -> str:
    """The file's name made safe for any disk (no path tricks, no reserved names); refuses forbidden kinds."""
    safe = base_name(name)
    suffix = _suffix(safe)
    if not suffix or suffix not in ALLOWED_SUFFIXES:
        kind = f"「.{suffix}」类型的" if suffix else "没有扩展名的"
        raise UserError(
            f"不能接收{kind}文件「{base_name(name)[:40]}」。可以提交 {ALLOWED_HINT} 文件；"
            "程序和脚本请打包为 zip 后再发送，例如：实施部署脚本.zip"
        )
    return safe


def _suffix(name: str) -> str:
    return PurePath(name).suffix.lower().lstrip(".")


def _head_of(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


async def fetch_to_staging(ctx: Context, received: ReceivedFile) -> StagedFile:
    """The file the user sent, in the staging area: downloaded before the command's transaction (``stage_files``),
    else now; ``UserError`` (nothing kept) when it cannot be taken."""
    if received.staging_error is not None:
        raise UserError(received.staging_error)
    if received.staged_path is not None:
        return StagedFile(received.staged_path, checked_file_name(received.file_name), received.staged_size,
                          received.staged_sha256)
    return await _download(ctx.services, received)


async def stage_files(incoming: Incoming, services: Any) -> Incoming:
    """The message's files downloaded into the staging area before its command's transaction opens: a download
    takes two DingTalk round trips, which must not hold the database's write lock (SQLite has only one)."""
    if not incoming.files:
        return incoming
    staged: list[ReceivedFile] = []
    for received in incoming.files[:MAX_FILES_PER_MESSAGE]:
        try:
            done = await _download(services, received)
        except UserError as refusal:
            staged.append(replace(received, staging_error=refusal.reply_text()))
        else:
            staged.append(replace(received, staged_path=done.relative_path, staged_size=done.size,
                                  staged_sha256=done.sha256))
    return replace(incoming, files=(*staged, *incoming.files[MAX_FILES_PER_MESSAGE:]))


async def _download(services: Any, received: ReceivedFile) -> StagedFile:
    name = checked_file_name(received.file_name)
    client: Any = services.dingtalk
    if client is None:
        raise UserError("暂时无法接收文件，请稍后重新发送。")
    relative = f"{STAGING_DIR}/{uuid.uuid4().hex}-{name}"
    target = Path(services.config.storage.files_dir) / relative
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    try:
        size = await client.save_file(received.download_code, target, max_bytes=MAX_FILE_BYTES)
    except FileTooLarge:
        await asyncio.to_thread(unlink_quietly, target)
        raise UserError(
            f"文件「{name[:40]}」超过 20 MB，钉钉无法传给机器人。请压缩或拆分后再发送，"
            "或上传到钉盘后用链接提交，例如：提交 培训PPT 链接:https://…"
        ) from None
    except DingTalkError:
        await asyncio.to_thread(unlink_quietly, target)
        raise UserError(f"下载文件「{name[:40]}」失败（钉钉暂时不可用），请稍后重新发送这个文件。") from None
    if size == 0:
        await asyncio.to_thread(unlink_quietly, target)
        raise UserError(f"文件「{name[:40]}」是空的（0 字节），请检查后重新发送。")
    refusal = content_refusal(await asyncio.to_thread(_head_of, target), _suffix(name), name[:40])
    if refusal is not None:
        await asyncio.to_thread(unlink_quietly, target)
        raise UserError(refusal)
    sha256 = await asyncio.to_thread(_sha256_of, target)
    return StagedFile(relative, name, size, sha256)


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


async def place_file(ctx: Context, staged_relative: str, final_relative: str) -> Path:
    """Put a staged file at its final place (off the loop); returns the absolute path."""
    root = files_root(ctx)
    target = root / final_relative
    await asyncio.to_thread(_link_or_copy, root / staged_relative, target)
    return target


def human_size(size: int | None) -> str:
    if size is None:
        return "—"
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


__all__ = [
    "ALLOWED_SUFFIXES",
    "MAX_FILE_BYTES",
    "PENDING_FILE_TTL",
    "StagedFile",
    "WAITING_TTL",
    "checked_file_name",
    "fetch_to_staging",
    "stage_files",
    "files_root",
    "human_size",
    "place_file",
    "unlink_quietly",
    "version_path",
]
