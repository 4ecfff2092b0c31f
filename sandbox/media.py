"""Files in the emulated DingTalk: media uploaded by bots and files sent by users.

Bytes are kept for the emulator's lifetime (§13.2 "media_id / downloadUrl lifetime"),
so a test can read back the exact .docx a bot sent, and a bot can download what a
user sent through `messageFiles/download`.
"""

from __future__ import annotations

import mimetypes
import threading
from dataclasses import dataclass, field

from .ids import IdFactory

# §7: upload types, size limits and formats.
MEDIA_RULES: dict[str, tuple[int, frozenset[str]]] = {
    "image": (20 * 1024 * 1024, frozenset({"jpg", "jpeg", "gif", "png", "bmp"})),
    "voice": (2 * 1024 * 1024, frozenset({"amr", "mp3", "wav"})),
    "video": (20 * 1024 * 1024, frozenset({"mp4"})),
    "file": (20 * 1024 * 1024, frozenset({"doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip", "pdf", "rar"})),
}


def extension(file_name: str) -> str:
    return file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""


@dataclass
class MediaFile:
    kind: str                   # image / voice / video / file
    file_name: str
    data: bytes = field(repr=False)
    created_at: int             # ms
    app_id: str | None = None   # uploading app (bot media); None for user files
    owner_id: str | None = None # sending user (user files)
    media_id: str | None = None
    download_code: str | None = None
    picture_download_code: str | None = None
    space_id: str | None = None
    file_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def content_type(self) -> str:
        return mimetypes.guess_type(self.file_name)[0] or "application/octet-stream"


class MediaStore:
    def __init__(self, ids: IdFactory):
        self._ids = ids
        self._lock = threading.Lock()
        self._by_media_id: dict[str, MediaFile] = {}
        self._by_download_code: dict[str, MediaFile] = {}
        self._by_url_token: dict[str, MediaFile] = {}

    def add_upload(self, *, app_id: str, kind: str, file_name: str, data: bytes, now_ms: int) -> MediaFile:
        media = MediaFile(kind=kind, file_name=file_name, data=data, created_at=now_ms, app_id=app_id,
                          media_id=self._ids.media_id())
        with self._lock:
            self._by_media_id[media.media_id] = media
        return media

    def add_user_file(self, *, owner_id: str, kind: str, file_name: str, data: bytes, now_ms: int) -> MediaFile:
        media = MediaFile(kind=kind, file_name=file_name, data=data, created_at=now_ms, owner_id=owner_id,
                          download_code=self._ids.download_code(), space_id=self._ids.numeric(10),
                          file_id=self._ids.numeric(11))
        if kind == "image":
            media.picture_download_code = self._ids.download_code()
        with self._lock:
            self._by_download_code[media.download_code] = media
            if media.picture_download_code:
                self._by_download_code[media.picture_download_code] = media
        return media

    def by_media_id(self, media_id: str) -> MediaFile | None:
        with self._lock:
            return self._by_media_id.get(media_id)

    def by_download_code(self, code: str) -> MediaFile | None:
        with self._lock:
            return self._by_download_code.get(code)

    def issue_download_token(self, media: MediaFile) -> str:
        token = self._ids.session_key()
        with self._lock:
            self._by_url_token[token] = media
        return token

    def by_download_token(self, token: str) -> MediaFile | None:
        with self._lock:
            return self._by_url_token.get(token)
