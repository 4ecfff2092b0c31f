"""Helpers for the sandbox tests: a raw Stream protocol client and small OpenAPI calls.

The raw client speaks the protocol by hand (with `websockets`), so tests can look at
frames exactly as they travel and decide when (and whether) to ACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Callable
from urllib.parse import quote_plus

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection, connect

from sandbox.harness import Sandbox

INTERNAL_GROUP = "【智慧工厂MES项目】内部群"
CLIENT_GROUP = "【智慧工厂MES项目】客户沟通群"
BOT_TOPIC = "/v1.0/im/bot/messages/get"
DEFAULT_SUBSCRIPTIONS = [{"type": "EVENT", "topic": "*"}, {"type": "CALLBACK", "topic": BOT_TOPIC}]


async def open_connection(http: aiohttp.ClientSession, sb: Sandbox, *, client_id: str | None = None,
                          client_secret: str | None = None,
                          subscriptions: list[dict[str, str]] | None = None) -> tuple[int, dict[str, Any]]:
    body = {"clientId": client_id or sb.client_id, "clientSecret": client_secret or sb.client_secret,
            "subscriptions": DEFAULT_SUBSCRIPTIONS if subscriptions is None else subscriptions,
            "ua": "sandbox-tests/1.0", "localIp": "127.0.0.1"}
    async with http.post(f"{sb.base_url}/v1.0/gateway/connections/open", json=body,
                         headers={"Accept": "application/json"}) as resp:
        return resp.status, await resp.json()


class RawStreamClient:
    def __init__(self, sb: Sandbox, http: aiohttp.ClientSession, *,
                 subscriptions: list[dict[str, str]] | None = None, auto_ack: bool = False):
        self.sb = sb
        self.http = http
        self.subscriptions = subscriptions
        self.auto_ack = auto_ack
        self.ws: ClientConnection | None = None
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.raw_frames: list[str] = []
        self.closed = asyncio.Event()
        self.close_exc: Exception | None = None     # set when the connection ended abnormally
        self.received_close = None                   # the server's Close frame, if one came
        self._reader: asyncio.Task | None = None

    async def connect(self) -> "RawStreamClient":
        status, body = await open_connection(self.http, self.sb, subscriptions=self.subscriptions)
        assert status == 200, body
        # No library keepalive: tests send their own pings when they need one.
        self.ws = await connect(f"{body['endpoint']}?ticket={quote_plus(body['ticket'])}", ping_interval=None,
                                close_timeout=1)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                self.raw_frames.append(raw)
                frame = json.loads(raw)
                if self.auto_ack and frame["type"] in ("CALLBACK", "EVENT"):
                    await self.ack(frame)
                self.frames.put_nowait(frame)
        except websockets.ConnectionClosed as exc:
            self.close_exc = exc
        finally:
            self.received_close = self.ws.protocol.close_rcvd
            self.closed.set()

    async def next_frame(self, predicate: Callable[[dict[str, Any]], bool] | None = None,
                         timeout: float = 5.0) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                frame = await self.frames.get()
                if predicate is None or predicate(frame):
                    return frame

        return await asyncio.wait_for(find(), timeout)

    async def next_of(self, frame_type: str, timeout: float = 5.0, topic: str | None = None) -> dict[str, Any]:
        return await self.next_frame(lambda f: f["type"] == frame_type and
                                     (topic is None or f["headers"].get("topic") == topic), timeout)

    async def ack(self, frame: dict[str, Any], *, code: int = 200, message: str = "OK", data: Any = None) -> None:
        assert self.ws is not None
        if data is None:
            data = json.dumps({"response": None}) if frame["type"] == "CALLBACK" else frame["data"]
        await self.ws.send(json.dumps({"code": code, "headers": {"messageId": frame["headers"]["messageId"],
                                                                 "contentType": "application/json"},
                                       "message": message, "data": data}))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait_for(self.closed.wait(), 5)


class StandInBot:
    """A raw Stream client that answers every CALLBACK frame with `handle(frame)`, in the background."""

    def __init__(self, sb: Sandbox, http: aiohttp.ClientSession, topics: list[str]):
        self.http = http
        self.client = RawStreamClient(sb, http, subscriptions=[{"type": "CALLBACK", "topic": t} for t in topics])
        self.task: asyncio.Task | None = None

    async def __aenter__(self):
        await self.client.connect()
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.client.close()

    async def _run(self) -> None:
        while True:
            frame = await self.client.frames.get()
            if frame["type"] == "CALLBACK":
                await self.handle(frame)

    async def handle(self, frame: dict[str, Any]) -> None:
        raise NotImplementedError


async def new_token(http: aiohttp.ClientSession, sb: Sandbox, app_key: str | None = None,
                    app_secret: str | None = None) -> str:
    async with http.post(f"{sb.base_url}/v1.0/oauth2/accessToken",
                         json={"appKey": app_key or sb.client_id, "appSecret": app_secret or sb.client_secret}) as r:
        body = await r.json()
        assert r.status == 200, body
        return body["accessToken"]


async def new_api(http: aiohttp.ClientSession, sb: Sandbox, method: str, path: str, token: str | None, *,
                  json_body: Any = None, params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"x-acs-dingtalk-access-token": token} if token else {}
    async with http.request(method, f"{sb.base_url}{path}", json=json_body, params=params, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def upload(http: aiohttp.ClientSession, sb: Sandbox, token: str, kind: str, file_name: str, data: bytes, *,
                 type_in: str = "query") -> dict[str, Any]:
    form = aiohttp.FormData()
    if type_in == "form":
        form.add_field("type", kind)
    form.add_field("media", data, filename=file_name, content_type="application/octet-stream")
    params = {"access_token": token}
    if type_in == "query":
        params["type"] = kind
    async with http.post(f"{sb.base_url}/media/upload", params=params, data=form) as r:
        assert r.status == 200
        return await r.json(content_type=None)


@contextlib.asynccontextmanager
async def sandbox_process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m sandbox --port 0 --ping-interval 0 <args>`, its stdout piped; Ctrl-C at the end must exit 0."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "sandbox", "--port", "0", "--ping-interval", "0",
                                                *args, stdout=asyncio.subprocess.PIPE,
                                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield proc
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
class SdkBot:
    """The real SDK in a subprocess (a script under tests/sandbox) printing one JSON object per line."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path):
        self.proc = proc
        self.log_path = log_path
        self.lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.put_nowait(json.loads(line))

    @classmethod
    async def start(cls, sb: Sandbox, script: Path, log_path: Path, *args: str) -> "SdkBot":
        env = {**os.environ, **sb.env(), "PYTHONUNBUFFERED": "1"}
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(sys.executable, str(script), sb.client_id, sb.client_secret,
                                                        *args, stdout=asyncio.subprocess.PIPE, stderr=log, env=env)
        return cls(proc, log_path)

    async def next(self, kind: str, timeout: float = 10.0,
                   where: Callable[[dict[str, Any]], bool] = lambda line: True) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            while True:
                line = await self.lines.get()
                if line["kind"] == kind and where(line):
                    return line

        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"SDK printed no {kind!r}; its log:\n{self.log_path.read_text()[-3000:]}") from None

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        self._reader.cancel()
