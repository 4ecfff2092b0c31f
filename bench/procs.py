"""Bot processes under test: ``python -m bench.<entry> spec.json`` with its log in a file, stopped politely."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ENTRIES = {"ours": "bench.bot_entry", "baseline": "bench.baseline_bot", "null": "bench.null_bot"}


class BotProcess:
    def __init__(self, kind: str, workdir: Path, spec: dict[str, Any], *, endpoint: str) -> None:
        self.kind = kind
        workdir.mkdir(parents=True, exist_ok=True)
        self.spec_path = workdir / f"{kind}.json"
        self.log_path = workdir / f"{kind}.log"
        self.spec_path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        self.endpoint = endpoint
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> "BotProcess":
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child
        try:
            env = {**os.environ, "PYTHONUNBUFFERED": "1", "DINGTALK_OPENAPI_ENDPOINT": self.endpoint}
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", ENTRIES[self.kind], str(self.spec_path), stdout=log, stderr=log,
                cwd=str(REPO), env=env)
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(sig)

    async def stop(self, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""
