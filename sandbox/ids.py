"""Identifier generators shaped like the real service's.

Clients must treat these as opaque strings, but realistic shapes catch code that
assumes too much (e.g. a numeric message id or a conversation id without `==`).
Random choices go through an injected `random.Random`, so a seeded emulator is
reproducible.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import string
import uuid

_ALNUM = string.ascii_letters + string.digits


class IdFactory:
    def __init__(self, rng: random.Random):
        self._rng = rng
        self._counter = itertools.count(1)

    def _hex(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))

    def _alnum(self, n: int) -> str:
        return "".join(self._rng.choice(_ALNUM) for _ in range(n))

    def _b64(self, nbytes: int) -> str:
        return base64.b64encode(self._rng.randbytes(nbytes)).decode()

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # Stream -------------------------------------------------------------------
    def ticket(self) -> str:
        return self.uuid()

    def connection_id(self) -> str:
        return self.uuid()

    def frame_message_id(self, now_ms: int) -> str:
        # Real CALLBACK/EVENT ids look like "212ca9d7_974_1898c159aa6_1783b".
        return f"{self._hex(8)}_{self._rng.randint(100, 999)}_{now_ms:x}_{next(self._counter):x}"

    def system_message_id(self, now_ms: int) -> str:
        # Real SYSTEM ids look like "c0a815dd1698551133918195d43".
        return f"{self._hex(8)}{now_ms}{next(self._counter):05x}"

    def event_id(self) -> str:
        return self._hex(32)

    # Messages -----------------------------------------------------------------
    def msg_id(self) -> str:
        return "msg" + self._b64(24)

    def session_key(self) -> str:
        return self._hex(32)

    def download_code(self) -> str:
        return self._b64(45).replace("/", "_")

    def media_id(self) -> str:
        return "@lA" + self._alnum(2) + "P" + self._alnum(26)

    def process_query_key(self) -> str:
        return self._b64(33)

    def numeric(self, digits: int) -> str:
        return str(self._rng.randint(10 ** (digits - 1), 10 ** digits - 1))

    # Auth / errors ------------------------------------------------------------
    def access_token(self) -> str:
        return self._hex(32)

    def request_id(self) -> str:
        return self.uuid().upper()

    # Custom robots ------------------------------------------------------------
    def custom_robot_token(self) -> str:
        return self._hex(64)

    def custom_robot_secret(self) -> str:
        return "SEC" + self._hex(64)

    def custom_robot_id(self) -> str:
        return "robot" + self._hex(12)

    # Workflow -----------------------------------------------------------------
    def process_code(self) -> str:
        return "PROC-" + "-".join(self._alnum(8).upper() for _ in range(3)) + "-" + self._alnum(1).upper()

    def instance_id(self, now_ms: int) -> str:
        return self._alnum(22) + "0" + str(now_ms)[-9:]

    def task_id(self) -> int:
        return int(self.numeric(11))

    # 待办 and 免登 ----------------------------------------------------------------
    def todo_task_id(self) -> str:
        # P2 §2.4 sample: "task15cbab1097xxxxxxxxd45".
        return "task" + self._hex(28)

    def auth_code(self) -> str:
        return self._hex(32)

    def device_id(self) -> str:
        return self._hex(32)


def stable_digest(*parts: str, length: int = 16) -> bytes:
    """Deterministic bytes for ids derived from world data (same world ⇒ same ids)."""
    return hashlib.sha256("\x1f".join(parts).encode()).digest()[:length]


def encrypted_id(*parts: str) -> str:
    # senderId / chatbotUserId / dingtalkId are encrypted ids: "$:LWCP_v1:$…"
    return "$:LWCP_v1:$" + base64.b64encode(stable_digest(*parts, length=24)).decode()


def conversation_id(*parts: str) -> str:
    return "cid" + base64.b64encode(stable_digest(*parts, length=16)).decode()
