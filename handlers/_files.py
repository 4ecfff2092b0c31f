"""Files users send to the bot: the download into the staging area (checked for size, kind and name by
``domain.file_store``), and taking the file a command is about (sent with it, or waiting from before).

Downloads stream to disk in chunks; hashing runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.context import Context
from bot.dingtalk.errors import DingTalkError, FileTooLarge
from bot.incoming import Incoming, ReceivedFile
from domain.errors import UserError
from domain.file_kinds import HEAD_BYTES, content_refusal
from domain.file_store import MAX_FILE_BYTES, STAGING_DIR, StagedFile, checked_file_name, file_suffix, unlink_quietly
from domain.matching import named_in_file
from domain.submissions import staged_from
from storage.models import Deliverable, PendingKind
from storage.repo import consume_pending, open_pending

HASH_CHUNK = 1024 * 1024
MAX_FILES_PER_MESSAGE = 5


def _head_and_sha256_of(path: Path) -> tuple[bytes, str]:
    """The file's first ``HEAD_BYTES`` (what it really is) and its SHA-256, in one read."""
    digest = hashlib.sha256()
    head = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            head = head or chunk[:HEAD_BYTES]
            digest.update(chunk)
    return head, digest.hexdigest()


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
    head, sha256 = await asyncio.to_thread(_head_and_sha256_of, target)
    refusal = content_refusal(head, file_suffix(name), name[:40])
    if refusal is not None:
        await asyncio.to_thread(unlink_quietly, target)
        raise UserError(refusal)
    return StagedFile(relative, name, size, sha256)


async def take_pending_file(ctx: Context, deliverable: Deliverable | None = None,
                            deliverables: Sequence[Deliverable] = ()) -> StagedFile | None:
    """The file for a command: one carried by the message itself (a rich-text message with a picture), else one this
    user sent in this chat and has not submitted yet (marked used), else None. Of several kept files, the newest
    whose name names ``deliverable`` goes first (「提交 接口说明文档」 takes ``接口说明文档.docx`` even when
    ``系统蓝图.docx`` came a moment later), then the newest that names no other of ``deliverables``: a file named
    for another one is left for it (``项目验收确认单-签字.docx`` is not taken by 「提交 需求调研报告」)."""
    incoming = ctx.incoming
    if incoming.files:
        return await fetch_to_staging(ctx, incoming.files[0])
    rows = await open_pending(session=ctx.session, conversation_id=incoming.conversation_id,
                              user_id=incoming.sender_id, kinds=(PendingKind.FILE,), now=ctx.clock.now())
    if deliverable is not None:
        named = {row.id: named_in_file(deliverables, row.file_name or "") for row in rows}
        # Named for this document first, then named for none (newest first within each: the sort is stable).
        rows = sorted((row for row in rows if deliverable in named[row.id] or not named[row.id]),
                      key=lambda row: deliverable not in named[row.id])
    for row in rows:
        if await consume_pending(session=ctx.session, pending_id=row.id, now=ctx.clock.now()):
            return staged_from(row)
    return None
