"""Typed DingTalk errors and the classification of both error styles (platform reference §11).

Two families answer differently:

* the new OpenAPI (``api.dingtalk.com/v1.0/...``) fails with HTTP 4xx/5xx and ``{"code","message","requestid"}``;
* the old API (``oapi.dingtalk.com``) and the robot webhooks answer HTTP 200 with ``{"errcode","errmsg"}``.

Callers key on the class (and ``retryable``), never on message text. ``retryable`` means "the same request may
succeed later without change"; ``maybe_sent`` means "the request may already have taken effect although we saw an
error" (a send that timed out: DingTalk has no idempotency key, §11.2), so the outbox decides whether to resend.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from domain.errors import RemoteError, RemoteRefusal

# How long to stay away after the per-IP deny page (§11.2: "IP banned 5 min").
IP_BAN_BACKOFF_SECONDS = 300.0
# Custom-robot style flow control: 410100 throttles for 10 minutes, 660026 is per minute (§11.2).
CUSTOM_ROBOT_THROTTLE_SECONDS = {410100: 600.0, 660026: 60.0}


class DingTalkError(RemoteError):
    """Base of every error raised by the DingTalk transport (the domain knows it as a ``RemoteError``).

    ``code`` is the platform's code as a string (``"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"`` or ``"90018"``);
    ``retry_after`` is a lower bound for the next attempt when the platform implies one (IP ban, robot throttling).
    """

    default_retryable = False

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        maybe_sent: bool = False,
        retry_after: float | None = None,
        api: str | None = None,
    ) -> None:
        self.code = str(code)
        self.message = message
        self.http_status = http_status
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.maybe_sent = maybe_sent
        self.retry_after = retry_after
        self.api = api
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f"{self.api}: " if self.api else ""
        status = f" (HTTP {self.http_status})" if self.http_status is not None else ""
        rid = f" requestid={self.request_id}" if self.request_id else ""
        return f"{where}{self.code}: {self.message}{status}{rid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, http_status={self.http_status!r}, "
            f"request_id={self.request_id!r}, retryable={self.retryable!r}, maybe_sent={self.maybe_sent!r})"
        )


class Throttled(DingTalkError):
    """Rate limit hit (QPS/QPM codes, 900xx): retry after a backoff."""

    default_retryable = True


class IpBanned(Throttled):
    """The per-IP deny page (HTML or ``punish: deny``): back off for minutes, not seconds."""

    def __init__(self, code: str = "ip.banned", message: str = "per-IP deny page", **kwargs: Any) -> None:
        kwargs.setdefault("retry_after", IP_BAN_BACKOFF_SECONDS)
        super().__init__(code, message, **kwargs)


class ServerError(DingTalkError):
    """HTTP 5xx, gateway timeout, or an old-API server-side failure (errcode 15, 88 without sub_code, -1)."""

    default_retryable = True


class NetworkError(DingTalkError):
    """The connection failed or broke (refused, reset, DNS). Sent-ness is in ``maybe_sent``."""

    default_retryable = True


class Timeout(DingTalkError):
    """No answer within the client timeout. For a send the message may have been delivered (``maybe_sent``)."""

    default_retryable = True


class AuthError(DingTalkError):
    """Authentication failed.

    ``token_rejected`` marks a bad or expired access token (``InvalidAuthentication``, errcode 88/40014): the client
    refreshes the token and retries once. Without it (wrong AppKey/AppSecret) it is permanent.
    """

    def __init__(self, code: str, message: str, *, token_rejected: bool = False, **kwargs: Any) -> None:
        self.token_rejected = token_rejected
        super().__init__(code, message, **kwargs)


class InvalidRequest(DingTalkError, RemoteRefusal):
    """The request itself is wrong (bad parameter, unknown conversation, too large): retrying cannot help."""


class PermissionDenied(InvalidRequest):
    """The app lacks a scope (``Forbidden.AccessDenied.AccessTokenPermissionDenied``)."""


class SessionWebhookExpired(InvalidRequest):
    """errcode 300001: the sessionWebhook is gone (~90 min after the message); fall back to an OpenAPI send."""


class QuotaExhausted(DingTalkError):
    """Monthly org call quota used up (90020 / ``ApiCountLimitForOrg``): nothing succeeds before next month."""


class FileTooLarge(InvalidRequest):
    """A download or upload exceeded the size limit."""


# 待办 (reference part 2 §2.2): a 400 that asks for later, not a bad request: flow control per executor or org, and
# the lock on a sourceId another call is creating.
_TODO_BUSY_SUFFIXES = (".flowControlError", ".lockError")
_THROTTLE_CODES = frozenset({
    "send.too.fast",
    "send.byToken.tooFast",
    "too.many.group",
    "too.many.people",
    "autoflowLikeTriggerRateLimited",
    "Throttling",
})
_CREDENTIAL_CODES = frozenset({"invalidClientIdOrSecret", "AuthenticationFailed.MissingParameter"})
_TOKEN_ERRCODES = frozenset({40014, 42001, 40001})  # invalid / expired access_token on the old API


def _decode(body: str | bytes | None) -> Any:
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = body.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _is_deny_page(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("punish") == "deny"


def _short(text: str | bytes | None, limit: int = 200) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text[:limit]


def classify_new_api(
    http_status: int, body: str | bytes | None, *, api: str | None = None, request_id: str | None = None
) -> DingTalkError | None:
    """Error for a new-API response, or ``None`` on success (2xx).

    A non-JSON body is not a DingTalk answer: a 5xx page is a gateway failure, anything else is the per-IP deny page.
    """
    payload = _decode(body)
    if 200 <= http_status < 300 and not _is_deny_page(payload):
        if payload is None and body and str(body).strip():
            return IpBanned(api=api, http_status=http_status, message=f"non-JSON answer: {_short(body, 80)}")
        return None
    common = {"http_status": http_status, "api": api}
    if _is_deny_page(payload):
        return IpBanned(message=f"deny page: {_short(body, 120)}", **common)
    if not isinstance(payload, dict):
        if http_status >= 500:
            return ServerError(str(http_status), f"HTTP {http_status} without a JSON body", **common)
        if http_status == 429:
            return Throttled(str(http_status), "HTTP 429", **common)
        return IpBanned(message=f"non-JSON answer with HTTP {http_status}: {_short(body, 80)}", **common)
    code = str(payload.get("code") or http_status)
    message = str(payload.get("message") or payload.get("msg") or "")
    rid = payload.get("requestid") or payload.get("requestId") or request_id
    common["request_id"] = rid
    if code == "Forbidden.AccessDenied.ApiCountLimitForOrg":
        return QuotaExhausted(code, message, **common)
    if code.startswith(("Forbidden.AccessDenied.Qps", "Forbidden.AccessDenied.Qpm")) or code in _THROTTLE_CODES:
        return Throttled(code, message, **common)
    if http_status == 429 or code.endswith(_TODO_BUSY_SUFFIXES):
        return Throttled(code, message, **common)
    if code == "InvalidAuthentication":
        return AuthError(code, message, token_rejected=True, **common)
    if code in _CREDENTIAL_CODES or http_status == 401:
        return AuthError(code, message, **common)
    if code == "Forbidden.AccessDenied.AccessTokenPermissionDenied":
        return PermissionDenied(code, message, **common)
    if http_status >= 500:
        return ServerError(code, message, **common)
    return InvalidRequest(code, message, **common)


def classify_old_api(
    body: Mapping[str, Any] | str | bytes | None, *, http_status: int = 200, api: str | None = None
) -> DingTalkError | None:
    """Error for an old-API or webhook response (HTTP 200 + ``errcode``), or ``None`` when ``errcode`` is 0."""
    payload = body if isinstance(body, Mapping) else _decode(body)
    common: dict[str, Any] = {"http_status": http_status, "api": api}
    if _is_deny_page(payload):
        return IpBanned(message="deny page", **common)
    if not isinstance(payload, Mapping):
        if http_status >= 500:
            return ServerError(str(http_status), f"HTTP {http_status} without a JSON body", **common)
        return IpBanned(message=f"non-JSON answer with HTTP {http_status}: {_short(body, 80)}", **common)
    if "errcode" not in payload:
        # Some gateways in front of oapi answer new-style bodies (e.g. on 5xx); classify those as such.
        if http_status >= 300 or "code" in payload:
            return classify_new_api(http_status if http_status >= 300 else 400, json.dumps(dict(payload)), api=api)
        return None
    try:
        errcode = int(payload.get("errcode"))
    except (TypeError, ValueError):
        return InvalidRequest(str(payload.get("errcode")), str(payload.get("errmsg") or ""), **common)
    if errcode == 0:
        return None
    message = str(payload.get("errmsg") or "")
    sub_code = str(payload.get("sub_code") or "").strip()
    if payload.get("sub_msg"):
        message = f"{message} ({payload['sub_msg']})"
    common["request_id"] = payload.get("request_id") or payload.get("requestid")
    code = str(errcode)
    if errcode == 90020:
        return QuotaExhausted(code, message, **common)
    if 90000 <= errcode < 91000:
        return Throttled(code, message, **common)
    if errcode in CUSTOM_ROBOT_THROTTLE_SECONDS or errcode == 130101:
        return Throttled(code, message, retry_after=CUSTOM_ROBOT_THROTTLE_SECONDS.get(errcode), **common)
    if errcode == 88:
        if not sub_code:
            return ServerError(code, message or "auth service timeout", **common)
        if sub_code in {str(c) for c in _TOKEN_ERRCODES}:
            return AuthError(f"{code}/{sub_code}", message, token_rejected=True, **common)
        return AuthError(f"{code}/{sub_code}", message, **common)
    if errcode in _TOKEN_ERRCODES:
        return AuthError(code, message, token_rejected=True, **common)
    if errcode == 40096:
        return AuthError(code, message, **common)
    if errcode == 300001:
        return SessionWebhookExpired(code, message or "session 不存在", **common)
    if errcode in (15, -1):
        return ServerError(code, message, **common)
    return InvalidRequest(code, message, **common)
