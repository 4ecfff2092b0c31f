"""Signed, expiring download links to files the bot generated, served by its own HTTP server (beside /healthz).

A custom robot can post markdown but no file, so a client group reached that way gets its weekly report as markdown
with a link to the .docx. The link names the file (its path under ``storage.files_dir``), when it stops working,
and an HMAC of both: ``{public_base_url}/files/<path>?exp=<unix seconds>&sig=<hex>``. The key is derived from the
app's secret (``HMAC(client_secret, "dingpm download links")``), so no new secret is needed and links die with a
rotated secret. Only generated reports (``reports/…``) can be linked. An altered link answers 403, an expired one
410, each with a short Chinese page; nothing is logged but the outcome (the link itself is a credential).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from aiohttp import web

from bot.config import Config

log = logging.getLogger("dingpm.downloads")

ROUTE = "/files/{path:.+}"
LINKABLE_ROOT = "reports"  # generated reports only: never a deliverable someone submitted
_KEY_LABEL = b"dingpm download links"
_SIG_HEX = 32


class DownloadLinks:
    """Signs and checks links for one app. ``base_url`` is the config's ``server.public_base_url``, else the health
    server's address once it listens (``use_base``)."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(config.dingtalk.client_secret.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()
        self._root = Path(config.storage.files_dir)
        self._lifetime = config.server.download_link_hours * 3600
        self.base_url = config.server.public_base_url
        self.clock = clock

    def use_base(self, url: str) -> None:
        """The server's own address, when no public base URL is configured."""
        if not self.base_url:
            self.base_url = url.rstrip("/")

    def _signature(self, path: str, expires: int) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode("utf-8"), hashlib.sha256).hexdigest()[:_SIG_HEX]

    def url(self, path: str | Path, *, expires: int | None = None) -> str:
        """A link to ``path`` (absolute under ``files_dir``, or relative to it), valid for the configured hours."""
        relative = _relative(Path(path), self._root)
        if relative is None or not relative.startswith(LINKABLE_ROOT + "/"):
            raise ValueError("only generated reports under storage.files_dir can be linked")
        if not self.base_url:
            raise RuntimeError("no base URL for download links yet (server.public_base_url, or the server's address)")
        expires = int(self.clock()) + self._lifetime if expires is None else expires
        return f"{self.base_url}/files/{quote(relative)}?exp={expires}&sig={self._signature(relative, expires)}"

    def check(self, path: str, expires: str, signature: str) -> str:
        """``ok``, ``invalid`` (altered or not ours) or ``expired``."""
        try:
            when = int(expires)
        except ValueError:
            return "invalid"
        if not hmac.compare_digest(self._signature(path, when), signature or ""):
            return "invalid"
        return "expired" if self.clock() > when else "ok"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        outcome = self.check(path, request.query.get("exp", ""), request.query.get("sig", ""))
        if outcome == "invalid":
            log.info("download refused: invalid link")
            return _page(403, "下载链接无效", "链接不完整或被改动过。请使用群消息里的原链接。")
        if outcome == "expired":
            log.info("download refused: expired link")
            return _page(410, "下载链接已过期", "请在群里联系项目经理重新发送周报。")
        target = (self._root / PurePosixPath(path)).resolve()
        if not target.is_relative_to((self._root / LINKABLE_ROOT).resolve()) or not target.is_file():
            return _page(404, "文件不存在", "文件可能已被清理，请联系项目经理。")
        response = web.FileResponse(target)
        response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(target.name)}"
        return response


def _relative(path: Path, root: Path) -> str | None:
    if not path.is_absolute():
        return path.as_posix() if ".." not in path.parts else None
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _page(status: int, title: str, text: str) -> web.Response:
    body = (f"<!doctype html><meta charset=utf-8><title>{title}</title>"
            f"<h3>{title}</h3><p>{text}</p>")
    return web.Response(status=status, text=body, content_type="text/html", charset="utf-8")


__all__ = ["DownloadLinks", "LINKABLE_ROOT", "ROUTE"]
