"""`POST /media/upload?access_token=…` (§7): multipart, `type` in the query or the form."""

from __future__ import annotations

from aiohttp import web

from .media import MEDIA_RULES, extension
from .openapi_common import ApiContext, OldApiError, api

_MAX_ANY = max(limit for limit, _ in MEDIA_RULES.values())
_CHUNK = 256 * 1024


@api("media.upload", "old")
async def media_upload(request: web.Request, ctx: ApiContext) -> web.Response:
    kind = request.query.get("type")
    if not request.content_type.startswith("multipart/"):
        raise OldApiError(40035, "缺少参数 media")
    data: bytes | None = None
    file_name = ""
    too_big = False
    reader = await request.multipart()
    async for part in reader:
        if part.name == "type" and not kind:
            kind = (await part.text()).strip()
        elif part.name == "media" and data is None:
            file_name = part.filename or ""
            chunks, size = [], 0
            # Stream the part so an oversized upload is refused without buffering it all.
            while chunk := await part.read_chunk(_CHUNK):
                size += len(chunk)
                if size > _MAX_ANY:
                    too_big = True
                    break
                chunks.append(chunk)
            data = b"".join(chunks)
            if too_big:
                break
    if not kind:
        raise OldApiError(40035, "缺少参数 type")
    if kind not in MEDIA_RULES:
        raise OldApiError(40004, "不合法的媒体文件类型")
    if data is None:
        raise OldApiError(40035, "缺少参数 media")
    limit, formats = MEDIA_RULES[kind]
    if extension(file_name) not in formats:
        raise OldApiError(40005, "不合法的文件类型")
    if too_big or len(data) > limit or not data:
        raise OldApiError(40006, "不合法的文件大小")
    media = ctx.emulator.media.add_upload(app_id=ctx.app.client_id, kind=kind, file_name=file_name, data=data,
                                          now_ms=ctx.emulator.clock.now_ms())
    return ctx.ok({"errcode": 0, "errmsg": "ok", "type": kind, "media_id": media.media_id,
                   "created_at": media.created_at})
