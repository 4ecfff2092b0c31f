"""An aiohttp application served on a host and port of this process: the health endpoint, the 看板."""

from __future__ import annotations

from aiohttp import web


class LocalSite:
    """Serves one application; ``port`` is the real one once started (port 0: the OS picks)."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, app: web.Application, host: str, port: int) -> int:
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


__all__ = ["LocalSite"]
