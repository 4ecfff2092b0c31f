"""Per-conversation transcript of everything said to and by the bot.

Two record types share one sequence: `ReceivedMessage` (a user spoke to the bot; what
the emulator pushed as a CALLBACK frame) and `SentMessage` (the bot posted through a
session webhook or the robot OpenAPI). The conversation key is the group's
conversation id, or the user's 1:1 conversation id with the bot.

Waiting is event-driven: every record bumps the emulator's change signal (an
asyncio.Condition underneath), and subscribers get their own queues (for the web
chat page). Reads
from other threads (the harness's `sent()`) go through a lock and get snapshots.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from .custom_robots import CustomRobot
from .media import MediaFile
from .signals import ChangeSignal


@dataclass
class SentMessage:
    """Something a robot posted. `msgtype` is the webhook msgtype, or the kind a msgKey maps to.

    Usually the app's bot; a custom robot's message has `custom_robot` set and `app_id` "".
    """

    conversation_id: str
    conversation_type: str      # "1" single chat, "2" group
    app_id: str                 # AppKey (= robotCode) of the sending bot; "" for a custom robot
    via: str                    # "webhook", "openapi" or "custom_robot"
    api: str                    # API name, e.g. "robot.groupMessages.send"
    msgtype: str                # text, markdown, actionCard, link, feedCard, image, file, audio, video
    msg_key: str | None         # OpenAPI msgKey (None for webhook replies)
    title: str | None
    text: str | None            # text content / markdown text / card text
    params: dict[str, Any]      # msgParam (OpenAPI) or the msgtype section of the webhook body
    created_at: int             # ms, emulator clock
    at_user_ids: tuple[str, ...] = ()
    at_mobiles: tuple[str, ...] = ()
    is_at_all: bool = False
    media: MediaFile | None = None
    to_user_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    custom_robot: CustomRobot | None = field(default=None, repr=False)
    seq: int = 0
    direction: str = "out"

    @property
    def file_bytes(self) -> bytes | None:
        return self.media.data if self.media else None

    @property
    def file_name(self) -> str | None:
        if self.media is None:
            return None
        return self.params.get("fileName") or self.media.file_name


@dataclass
class ReceivedMessage:
    """Something a user said to the bot (delivered as a CALLBACK frame unless `delivered` is False)."""

    conversation_id: str
    conversation_type: str
    app_id: str
    sender_id: str
    sender_name: str
    msgtype: str
    text: str | None
    payload: dict[str, Any]     # the callback `data` object (before JSON encoding)
    created_at: int
    message_id: str | None = None   # Stream headers.messageId of the push
    delivered: bool = True          # False: a group message that did not @ the bot, or the bot is not there
    media: MediaFile | None = None
    bot_absent: bool = False        # the app's robot may not be in this group (external groups refused)
    seq: int = 0
    direction: str = "in"

    @property
    def msg_id(self) -> str:
        return self.payload.get("msgId", "")

    @property
    def session_webhook(self) -> str:
        return self.payload.get("sessionWebhook", "")


Record = Union[SentMessage, ReceivedMessage]


class Subscription:
    """An async iterator of new records (optionally of one conversation)."""

    def __init__(self, recorder: "Recorder", conversation_id: str | None):
        self.conversation_id = conversation_id
        self.queue: asyncio.Queue[Record] = asyncio.Queue()
        self._recorder = recorder

    def __aiter__(self):
        return self

    async def __anext__(self) -> Record:
        return await self.queue.get()

    def close(self) -> None:
        self._recorder._subscriptions.discard(self)


class Recorder:
    def __init__(self, signal: ChangeSignal | None = None):
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._seq = 0
        self._signal = signal or ChangeSignal()
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[Record], None]] = []

    # ---- writing (emulator loop) ----------------------------------------------------
    def record(self, entry: Record) -> Record:
        with self._lock:
            self._seq += 1
            entry.seq = self._seq
            self._records.append(entry)
        for sub in list(self._subscriptions):
            if sub.conversation_id in (None, entry.conversation_id):
                sub.queue.put_nowait(entry)
        for listener in list(self._listeners):
            listener(entry)
        self._signal.bump()
        return entry

    # ---- reading (any thread) -----------------------------------------------------
    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def history(self, conversation_id: str | None = None, *, after_seq: int = 0) -> list[Record]:
        with self._lock:
            return [r for r in self._records
                    if r.seq > after_seq and conversation_id in (None, r.conversation_id)]

    def sent(self, conversation_id: str | None = None) -> list[SentMessage]:
        return [r for r in self.history(conversation_id) if isinstance(r, SentMessage)]

    def received(self, conversation_id: str | None = None) -> list[ReceivedMessage]:
        return [r for r in self.history(conversation_id) if isinstance(r, ReceivedMessage)]

    def conversations(self) -> list[str]:
        with self._lock:
            return list(dict.fromkeys(r.conversation_id for r in self._records))

    # ---- waiting (emulator loop) --------------------------------------------------
    async def wait_for(self, conversation_id: str | None = None, *, after_seq: int = 0,
                       kind: type | tuple[type, ...] = SentMessage,
                       timeout: float | None = None) -> Record:
        """The first record of `kind` after `after_seq` in the conversation; waits for it if needed."""

        def find() -> Record | None:
            for r in self.history(conversation_id, after_seq=after_seq):
                if isinstance(r, kind):
                    return r
            return None

        return await self._signal.wait_until(find, timeout)

    def subscribe(self, conversation_id: str | None = None) -> Subscription:
        """New records from now on; call `close()` when done (the web page's live feed)."""
        sub = Subscription(self, conversation_id)
        self._subscriptions.add(sub)
        return sub

    def add_listener(self, listener: Callable[[Record], None]) -> Callable[[], None]:
        """A synchronous callback for every record (runs on the emulator loop); returns an remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
