"""Session webhooks handed out in bot-message payloads (§3.2, §4).

Each pushed message gets its own session; it expires `session_webhook_ttl` seconds
(90 min) after the message's createAt.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .clock import Clock
from .ids import IdFactory


@dataclass
class Session:
    key: str
    app_id: str
    conversation_id: str
    conversation_type: str
    user_id: str
    created_at: int             # ms
    expires_at: int             # ms
    sends: deque = field(default_factory=deque)   # ms timestamps, for the optional per-minute limit


class SessionStore:
    def __init__(self, clock: Clock, ids: IdFactory):
        self._clock = clock
        self._ids = ids
        self._sessions: dict[str, Session] = {}

    def create(self, *, app_id: str, conversation_id: str, conversation_type: str, user_id: str,
               created_at: int, ttl: float) -> Session:
        session = Session(self._ids.session_key(), app_id, conversation_id, conversation_type, user_id,
                          created_at, created_at + int(ttl * 1000))
        self._sessions[session.key] = session
        return session

    def get_valid(self, key: str | None) -> Session | None:
        session = self._sessions.get(key or "")
        if session is None or self._clock.now_ms() >= session.expires_at:
            return None
        return session

    def get(self, key: str) -> Session | None:
        return self._sessions.get(key)
