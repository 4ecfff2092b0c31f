"""The unmodified dingtalk-stream SDK (PyPI 0.24.3) as a bot, run in a subprocess by the tests.

DINGTALK_OPENAPI_ENDPOINT must be set in the environment before the import below
(the SDK reads it at import time). Arguments: client_id client_secret.
Everything the bot sees is printed to stdout as one JSON object per line.

Behaviour per message text:
  contains "hold":   the first delivery is never ACKed (the handler blocks), the
                     redelivery (same messageId) is ACKed
  contains "reply":  answered through the session webhook with the SDK's reply_text
  a picture:         downloaded through messageFiles/download with the SDK's helper
"""

from __future__ import annotations

import asyncio
import json
import sys

import dingtalk_stream  # noqa: E402  (after the environment is set by the parent)
import requests
from dingtalk_stream import AckMessage


def emit(**fields) -> None:
    print(json.dumps(fields, ensure_ascii=False), flush=True)


class Bot(dingtalk_stream.ChatbotHandler):
    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    async def process(self, callback: dingtalk_stream.CallbackMessage):
        incoming = dingtalk_stream.ChatbotMessage.from_dict(callback.data)
        message_id = callback.headers.message_id
        text = incoming.text.content if incoming.text else ""
        first = message_id not in self.seen
        self.seen.add(message_id)
        emit(kind="callback", messageId=message_id, msgId=incoming.message_id, text=text,
             conversationType=incoming.conversation_type, first=first)
        if "hold" in text and first:
            await asyncio.sleep(3600)       # never ACK the first delivery
        if "reply" in text:
            body = self.reply_text(f"收到：{text.strip()}", incoming)
            emit(kind="replied", body=body)
        if incoming.message_type == "picture":
            url = self.get_image_download_url(incoming.image_content.download_code)
            emit(kind="downloaded", size=len(requests.get(url, timeout=10).content))
        return AckMessage.STATUS_OK, "OK"


class Events(dingtalk_stream.EventHandler):
    async def process(self, event: dingtalk_stream.EventMessage):
        emit(kind="event", eventType=event.headers.event_type, messageId=event.headers.message_id, data=event.data)
        return AckMessage.STATUS_OK, "OK"


def main() -> None:
    client_id, client_secret = sys.argv[1], sys.argv[2]
    client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(client_id, client_secret))
    client.register_callback_handler(dingtalk_stream.ChatbotMessage.TOPIC, Bot())
    client.register_all_event_handler(Events())
    emit(kind="ready", endpoint=dingtalk_stream.DingTalkStreamClient.OPEN_CONNECTION_API)
    asyncio.run(client.start())


if __name__ == "__main__":
    main()
