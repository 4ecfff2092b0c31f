"""Media (reference part 1 §7): uploading images and files for robot messages, and downloading the files users send
to the bot (streamed to disk, size-capped). Transfers get a longer total timeout than ordinary calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal

import aiohttp

from bot.dingtalk.errors import DingTalkError, FileTooLarge, InvalidRequest, NetworkError, ServerError, Timeout
from bot.dingtalk.messages import RobotMessage, robot_message_for_reply
from bot.dingtalk.transport import Transport
from domain import replies

log = logging.getLogger("bot.dingtalk.client")

DEFAULT_DOWNLOAD_MAX_BYTES = 50 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES = 64 * 1024
WRITE_BATCH_BYTES = 1024 * 1024  # a download's chunks are written to disk in batches of this size

MediaKind = Literal["image", "voice", "video", "file"]
# Per §7; checked here so an oversized or unsupported file fails fast with a clear error instead of a server code.
MEDIA_LIMITS: Mapping[str, tuple[int, frozenset[str]]] = {
    "image": (20 * 1024 * 1024, frozenset({"jpg", "jpeg", "gif", "png", "bmp"})),
    "voice": (2 * 1024 * 1024, frozenset({"amr", "mp3", "wav"})),
    "video": (20 * 1024 * 1024, frozenset({"mp4"})),
    "file": (20 * 1024 * 1024, frozenset({"doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip", "pdf", "rar"})),
}


class MediaApi(Transport):
    # ---- media -----------------------------------------------------------------------------------------------

    async def upload_media(
        self, kind: MediaKind, filename: str, data: bytes | None = None, *, path: str | os.PathLike[str] | None = None
    ) -> str:
        """Upload to ``{oapi}/media/upload`` and return the ``media_id`` (``@…``).

        Give either ``data`` or ``path``; a path is streamed from disk (read in aiohttp's executor), not loaded.
        """
        if (data is None) == (path is None):
            raise TypeError("upload_media needs exactly one of data= or path=")
        if kind not in MEDIA_LIMITS:
            raise InvalidRequest("media.type", f"unknown media kind {kind!r}", api="media/upload")
        max_bytes, formats = MEDIA_LIMITS[kind]
        suffix = Path(filename).suffix.lstrip(".").lower()
        if suffix not in formats:
            raise InvalidRequest("40005", f"{kind} upload does not accept .{suffix or '?'} ({sorted(formats)})",
                                 api="media/upload")
        size = len(data) if data is not None else (await asyncio.to_thread(os.stat, path)).st_size
        if size > max_bytes:
            raise FileTooLarge("media.tooLarge", f"{kind} of {size} bytes exceeds {max_bytes}", api="media/upload")
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"

        @contextlib.asynccontextmanager
        async def form() -> AsyncIterator[aiohttp.FormData]:
            # Rebuilt for each try: a FormData (and an open file) can be sent only once.
            fd = aiohttp.FormData()
            fd.add_field("type", kind)
            if data is not None:
                fd.add_field("media", data, filename=filename, content_type=content_type)
                yield fd
                return
            handle = await asyncio.to_thread(open, path, "rb")
            try:
                fd.add_field("media", handle, filename=filename, content_type=content_type)
                yield fd
            finally:
                await asyncio.to_thread(handle.close)

        payload = await self._call(
            "media/upload", "POST", f"{self._oapi}/media/upload", style="old", auth="query", params={"type": kind},
            form=form, idempotent=True, timeout=self._transfer_timeout(),
        )
        media_id = payload.get("media_id")
        if not media_id:
            raise ServerError("media_id.missing", "media_id missing in the upload answer", api="media/upload")
        return str(media_id)

    async def robot_message_for(self, reply: Any) -> RobotMessage:
        """The OpenAPI message for a reply value (``domain.replies``), uploading an Image's PNG or a File first."""
        reply = replies.as_reply(reply)
        if isinstance(reply, replies.Image) and reply.png is not None:
            media_id = await self.upload_media("image", "image.png", data=reply.png)
            return robot_message_for_reply(reply, media_id=media_id)
        if isinstance(reply, replies.File):
            media_id = await self.upload_media("file", reply.name, data=reply.data, path=reply.path)
            return robot_message_for_reply(reply, media_id=media_id)
        return robot_message_for_reply(reply)

    # ---- received files --------------------------------------------------------------------------------------

    async def file_download_url(self, download_code: str) -> str:
        """Exchange a message's ``downloadCode`` for a short-lived download URL (``messageFiles/download``)."""
        payload = await self._call(
            "robot/messageFiles/download", "POST", f"{self._api}/v1.0/robot/messageFiles/download",
            json_body={"downloadCode": download_code, "robotCode": self._robot_code}, idempotent=True,
        )
        url = payload.get("downloadUrl")
        if not url:
            raise ServerError("downloadUrl.missing", "downloadUrl missing in the answer",
                              api="robot/messageFiles/download")
        return str(url)

    async def download_file(
        self, download_code: str, *, max_bytes: int = DEFAULT_DOWNLOAD_MAX_BYTES, chunk_bytes: int = DOWNLOAD_CHUNK_BYTES
    ) -> AsyncIterator[bytes]:
        """Stream a file the user sent to the bot. Raises ``FileTooLarge`` past ``max_bytes``.

        Retries (connection errors, 5xx) happen only before the first chunk is yielded, so a consumer never sees
        bytes twice.
        """
        url = await self.file_download_url(download_code)
        api = "file download"
        attempt = 0
        while True:
            error: DingTalkError | None = None
            try:
                resp = await self.session.get(url, timeout=self._transfer_timeout())
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                error = (Timeout("timeout", "download did not start in time", api=api)
                         if isinstance(exc, asyncio.TimeoutError)
                         else NetworkError("connect.failed", type(exc).__name__, api=api))
            else:
                if resp.status == 200:
                    break
                resp.release()
                # Object storage answers XML/HTML errors: 5xx is worth another try, 4xx (expired URL) is not.
                error = (ServerError if resp.status >= 500 else InvalidRequest)(
                    str(resp.status), "download URL refused", http_status=resp.status, api=api)
            self.stats.errors[type(error).__name__] += 1
            delay = self._retry.delay_for(error, attempt)
            if delay is None:
                raise error
            attempt += 1
            self.stats.retries += 1
            self.stats.retries_by_api[api] += 1
            await asyncio.sleep(delay)
        async with resp:
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise FileTooLarge("file.tooLarge", f"{resp.content_length} bytes exceeds {max_bytes}", api=api)
            received = 0
            try:
                async for chunk in resp.content.iter_chunked(chunk_bytes):
                    received += len(chunk)
                    if received > max_bytes:
                        raise FileTooLarge("file.tooLarge", f"more than {max_bytes} bytes", api=api)
                    yield chunk
            except asyncio.TimeoutError:
                raise Timeout("timeout", "download stalled", api=api) from None
            except aiohttp.ClientError as exc:
                raise NetworkError("connection.broken", type(exc).__name__, api=api) from None

    async def save_file(
        self, download_code: str, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_DOWNLOAD_MAX_BYTES
    ) -> int:
        """Download to ``path`` (via a temporary sibling, renamed at the end; its folder is made if missing); return
        the size in bytes. Received chunks are written by a thread once ``WRITE_BATCH_BYTES`` have gathered, so a
        document of a few MB costs one or two trips off the loop, not one per chunk and per file operation."""
        spool = _Spool(Path(path))
        size = 0
        try:
            async for chunk in self.download_file(download_code, max_bytes=max_bytes):
                size += len(chunk)
                if spool.add(chunk) >= WRITE_BATCH_BYTES:
                    await _to_thread_to_its_end(spool.write)
            await _to_thread_to_its_end(spool.finish)
        except BaseException:
            await asyncio.to_thread(spool.discard)
            raise
        return size


async def _to_thread_to_its_end(function: Any) -> None:
    """``asyncio.to_thread(function)``, awaited to its end even if the caller is cancelled meanwhile (the cancellation
    is raised after it): a spool's calls must never overlap, its ``discard`` included."""
    call = asyncio.ensure_future(asyncio.to_thread(function))
    try:
        await asyncio.shield(call)
    except asyncio.CancelledError:
        await asyncio.wait([call])
        raise


class _Spool:
    """The chunks of a download on their way to ``target``: gathered on the loop, written, closed and renamed in
    place by a thread, one call at a time."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.partial = target.with_name(target.name + ".part")
        self._chunks: list[bytes] = []
        self._gathered = 0
        self._handle: Any = None
        self._finished = False

    def add(self, chunk: bytes) -> int:
        """Gather ``chunk``; returns the bytes gathered and not yet written."""
        self._chunks.append(chunk)
        self._gathered += len(chunk)
        return self._gathered

    def write(self) -> None:
        if self._handle is None:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.partial, "wb")  # noqa: SIM115 - closed by finish or discard
        self._handle.write(b"".join(self._chunks))
        self._chunks, self._gathered = [], 0

    def finish(self) -> None:
        self.write()
        self._handle.close()
        os.replace(self.partial, self.target)
        self._finished = True

    def discard(self) -> None:
        """Nothing of the download stays on disk (also when it was cancelled right after ``finish``)."""
        if self._handle is not None:
            self._handle.close()
        _unlink_quietly(self.target if self._finished else self.partial)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
