"""Custom robots (自定义机器人, P1 §4, §10, §11.2): webhooks an admin adds to a group.

A custom robot is not an app: it has a webhook `…/robot/send?access_token=<64 hex>`
and, with the 加签 security setting (the only one emulated), a secret `SEC…`. A sender
appends `&timestamp=<ms>&sign=<urlencoded Base64(HmacSHA256(secret, timestamp + "\\n" +
secret))>`; the timestamp must be within an hour of now. It may post into its group
only (no 1:1), in the webhook message formats, at most `custom_robot_per_minute`
messages a minute; the next one throttles it for `custom_robot_throttle` seconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import quote_plus

SIGN_TOLERANCE_MS = 3_600_000


def sign(secret: str, timestamp_ms: int | str) -> str:
    """The `sign` parameter before URL encoding."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    """The webhook with `timestamp` and the URL-encoded `sign`, as a sender builds it."""
    return f"{webhook}&timestamp={timestamp_ms}&sign={quote_plus(sign(secret, timestamp_ms))}"


def admit_per_minute(sends: deque, now_ms: int, limit: int) -> bool:
    """Count a send in a sliding one-minute window of accepted sends; False when `limit` are already in it."""
    while sends and now_ms - sends[0] >= 60_000:
        sends.popleft()
    if len(sends) >= limit:
        return False
    sends.append(now_ms)
    return True


@dataclass
class CustomRobot:
    robot_id: str               # public id for the page and tests (never the token)
    name: str
    conversation_id: str
    token: str                  # access_token of the webhook
    secret: str
    webhook: str
    created_at: int             # ms
    removed: bool = False
    sends: deque = field(default_factory=deque, repr=False)   # ms of the sends accepted in the last minute
    throttled_until: int = 0    # ms; refused until then

    def signature_ok(self, timestamp: str | None, given: str | None, now_ms: int) -> str | None:
        """None if the signature holds, else why not ("timestamp" or "sign")."""
        if not timestamp or not given:
            return "sign"
        if not timestamp.isdigit() or abs(now_ms - int(timestamp)) > SIGN_TOLERANCE_MS:
            return "timestamp"
        if not hmac.compare_digest(given.encode(), sign(self.secret, timestamp).encode()):
            return "sign"
        return None

    def admit(self, now_ms: int, per_minute: int, throttle_ms: int) -> bool:
        """Count one send, or refuse it: over the limit, the robot is throttled for `throttle_ms`."""
        if now_ms < self.throttled_until:
            return False
        if admit_per_minute(self.sends, now_ms, per_minute):
            return True
        self.throttled_until = now_ms + throttle_ms
        self.sends.clear()
        return False
