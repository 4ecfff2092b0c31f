"""The 看板's session cookie and CSRF tokens: signed, stateless, shared by every bot process with the same secret.

A session is ``base64url(JSON {u: userId, n: name, x: expiry, k: nonce}) "." base64url(HMAC-SHA256)``: the server
keeps nothing, any replica can check it, and changing the secret ends every session. The cookie is HttpOnly (no
script reads it), SameSite=Lax (other sites' forms and scripts never carry it; following a link from a chat does),
Secure behind the HTTPS proxy, and expires with the session.

CSRF: every POST carries a token that is the HMAC of the session's nonce (or, before the session exists, of a
short-lived login cookie's nonce); a forged request from another origin cannot know it. Tokens are compared in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

SESSION_COOKIE = "dingpm_board"
LOGIN_COOKIE = "dingpm_board_login"
LOGIN_TTL = timedelta(minutes=10)  # a 免登 code lives 5 minutes; the login page's nonce a little longer
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


def derive_secret(configured: str, client_secret: str) -> bytes:
    """The signing key: the configured secret, else one derived from the app's secret (never the secret itself)."""
    if configured:
        return configured.encode("utf-8")
    return hmac.new(client_secret.encode("utf-8"), b"dingpm dashboard session v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    user_id: str
    name: str
    expires_at: float  # epoch seconds
    nonce: str


class Signer:
    """Issues and checks signed values with one key (sessions, login nonces, CSRF tokens)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self._key, purpose.encode() + b"\0" + payload, hashlib.sha256).digest()

    def sign(self, purpose: str, value: dict[str, Any]) -> str:
        payload = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._mac(purpose, payload))}"

    def unsign(self, purpose: str, token: str | None, *, now: float) -> dict[str, Any] | None:
        """The signed value, or None when it is missing, forged, malformed or expired (its ``x``)."""
        if not token or token.count(".") != 1 or len(token) > 4096:
            return None
        payload_text, mac_text = token.split(".")
        try:
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._mac(purpose, payload)):
            return None
        try:
            value = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("x"), (int, float)) or value["x"] <= now:
            return None
        return value

    # ---- sessions ---------------------------------------------------------------------------------------------

    def issue_session(self, user_id: str, name: str, *, now: float, ttl: timedelta) -> tuple[str, Session]:
        session = Session(user_id, name, now + ttl.total_seconds(), secrets.token_urlsafe(16))
        return self.sign("session", {"u": user_id, "n": name, "x": session.expires_at, "k": session.nonce}), session

    def read_session(self, token: str | None, *, now: float) -> Session | None:
        value = self.unsign("session", token, now=now)
        if value is None or not value.get("u") or not value.get("k"):
            return None
        return Session(str(value["u"]), str(value.get("n") or value["u"]), float(value["x"]), str(value["k"]))

    # ---- the login page's nonce, before a session exists -------------------------------------------------------

    def issue_login_nonce(self, *, now: float) -> tuple[str, str]:
        nonce = secrets.token_urlsafe(16)
        return self.sign("login", {"k": nonce, "x": now + LOGIN_TTL.total_seconds()}), nonce

    def read_login_nonce(self, token: str | None, *, now: float) -> str | None:
        value = self.unsign("login", token, now=now)
        return str(value["k"]) if value and value.get("k") else None

    # ---- CSRF ---------------------------------------------------------------------------------------------------

    def csrf_token(self, nonce: str) -> str:
        return _b64(self._mac("csrf", nonce.encode("utf-8")))

    def csrf_ok(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(token.encode("utf-8", "replace"), self.csrf_token(nonce).encode("ascii"))


__all__ = ["CSRF_FIELD", "CSRF_HEADER", "LOGIN_COOKIE", "LOGIN_TTL", "SESSION_COOKIE", "Session", "Signer",
           "derive_secret"]
