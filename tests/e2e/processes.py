"""Bot processes for the end-to-end tests: start ``bot_entry.py`` as a subprocess, stop it politely or kill it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def raw_config(sb: Any, database_url: str, files_dir: Path, **pacing: Any) -> dict[str, Any]:
    return {
        "dingtalk": {"client_id": sb.client_id, "client_secret": sb.client_secret, "robot_code": sb.robot_code,
                     "api_base_url": sb.base_url, "oapi_base_url": sb.base_url},
        "database": {"url": database_url},
        "storage": {"files_dir": str(files_dir)},
        "server": {"health_host": "127.0.0.1", "health_port": 0},
        "pacing": {"calls_per_second": 500, "http_timeout_seconds": 3, "max_concurrent_messages": 32, **pacing},
        "logging": {"level": "INFO"},
    }


class BotProcess:
    """One ``bot_entry.py`` process; its log goes to a file next to the spec (read it when a test fails)."""

    def __init__(self, name: str, workdir: Path, config: dict[str, Any], *, jobs: bool = False) -> None:
        self.name = name
        self.spec = workdir / f"{name}.json"
        self.log_path = workdir / f"{name}.log"
        self.spec.write_text(json.dumps({"config": config, "jobs": jobs}, ensure_ascii=False), encoding="utf-8")
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> BotProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed after the spawn
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, str(HERE / "bot_entry.py"), str(self.spec),
                stdout=log, stderr=log, cwd=str(REPO), env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def worker(self) -> str:
        return f"e2e-bot:{self.pid}"

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the graceful shutdown; kill if it does not come."""
        if self.process is None or self.process.returncode is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return await self.wait(timeout)
        except TimeoutError:
            self.kill()
            await self.wait(10)
            raise

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""
