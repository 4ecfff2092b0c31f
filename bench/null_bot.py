"""The null bot: the ceiling the emulator and the machine allow.

``python -m bench.null_bot spec.json``. The raw dingtalk-stream SDK client (``start_forever``) with a callback
handler that does no work at all: it schedules the answer and returns at once (so the ACK goes out immediately),
and the answer is one POST to the message's sessionWebhook on a shared ``aiohttp.ClientSession``. Whatever our bot
does beyond this -- inbox, database, dispatch, outbox -- is what the ratio to this bot measures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import aiohttp
import dingtalk_stream  # noqa: E402 - DINGTALK_OPENAPI_ENDPOINT is set by the bench
from dingtalk_stream import AckMessage, ChatbotMessage


class NullHandler(dingtalk_stream.CallbackHandler):
    def __init__(self) -> None:
        super().__init__()
        self.session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()

    async def process(self, callback: dingtalk_stream.CallbackMessage):  # type: ignore[override]
        webhook = callback.data.get("sessionWebhook")
        if webhook:
            task = asyncio.get_running_loop().create_task(self.reply(webhook))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return AckMessage.STATUS_OK, "OK"

    async def reply(self, webhook: str) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10),
                                                 connector=aiohttp.TCPConnector(limit=0))
        body = {"msgtype": "text", "text": {"content": "收到"}}
        async with self.session.post(webhook, json=body) as response:
            await response.read()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.WARNING)
    client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(spec["client_id"], spec["client_secret"]))
    client.register_callback_handler(ChatbotMessage.TOPIC, NullHandler())
    client.start_forever()


if __name__ == "__main__":
    main()
