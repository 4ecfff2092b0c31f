"""The DingTalk transport: the call pipeline under every OpenAPI call the bot makes (``DingTalkClient``).

One instance per process, on one ``aiohttp.ClientSession`` that the app lifecycle creates and closes (pass it in, or
let the client own one with ``async with DingTalkClient(config) as client``). Each call is:

paced (a token bucket per API, below DingTalk's per-app-per-API limit) -> authenticated (cached token, refreshed
before expiry, single-flight) -> sent with an explicit timeout -> classified into a typed ``DingTalkError`` ->
retried with full-jitter backoff when the error is retryable and resending is safe.

Sends are not idempotent on DingTalk's side (§11.2): a send that timed out or lost its connection mid-request is not
resent here; it raises with ``maybe_sent=True`` and the outbox decides. The token and the secret never appear in a
log line or an error message; URLs are not logged because the sessionWebhook and media URLs carry credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from collections import Counter
from typing import Any, AsyncContextManager, Callable, Literal, Mapping, Self

import aiohttp

from bot.config import Config
from bot.dingtalk.errors import (
    AuthError,
    DingTalkError,
    InvalidRequest,
    NetworkError,
    ServerError,
    Throttled,
    Timeout,
    classify_new_api,
    classify_old_api,
)
from bot.dingtalk.pacing import Pacer
from bot.dingtalk.retry import RetryPolicy

log = logging.getLogger("bot.dingtalk.client")  # one logger for the whole client, whichever module logs

TOKEN_HEADER = "x-acs-dingtalk-access-token"
TOKEN_REFRESH_MARGIN_SECONDS = 300.0  # refresh 5 min before expiry, as the SDK does (§6)



@dataclass
class ClientStats:
    """Counters for /healthz, metrics and tests."""

    requests: int = 0  # HTTP requests actually sent
    retries: int = 0
    token_fetches: int = 0
    token_refreshes_after_auth_error: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # by error class name, each failed try counted
    requests_by_api: Counter[str] = field(default_factory=Counter)
    retries_by_api: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "token_fetches": self.token_fetches,
            "token_refreshes_after_auth_error": self.token_refreshes_after_auth_error,
            "errors": dict(self.errors),
            "requests_by_api": dict(self.requests_by_api),
            "retries_by_api": dict(self.retries_by_api),
        }


@dataclass
class _Token:
    value: str
    refresh_at: float  # monotonic seconds

# Session-webhook replies are not an OpenAPI call: DingTalk's per-app, per-API QPS limit does not meter them
# (dingtalk-platform.md §4, §13.2: no known webhook limit). Pacing them at that limit capped a busy bot at ~15
# replies/s across all groups (bench scenario 1); a throttle answer, should one come, is still retried with backoff.
UNPACED_APIS = frozenset({"robot/sendBySession"})


class Transport:
    """The call pipeline every DingTalk API family of ``DingTalkClient`` goes through (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        session: aiohttp.ClientSession | None = None,
        retry_policy: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        transfer_timeout_seconds: float | None = None,
    ) -> None:
        self._dt = config.dingtalk
        self._api = self._dt.api_base_url.rstrip("/")
        self._oapi = self._dt.oapi_base_url.rstrip("/")
        self._robot_code = self._dt.effective_robot_code
        self._timeout_seconds = config.pacing.http_timeout_seconds
        self._transfer_timeout_seconds = transfer_timeout_seconds or max(60.0, 6 * self._timeout_seconds)
        self._session = session
        self._owns_session = session is None
        self._retry = retry_policy or RetryPolicy()
        self._pacer = pacer or Pacer(config.pacing.calls_per_second, burst=config.pacing.burst, sliding=True)
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self.stats = ClientStats()

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client created it; a session passed in belongs to the caller."""
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise RuntimeError("DingTalkClient has no open session: use `async with` or pass session=")
        return self._session

    @property
    def pacer(self) -> Pacer:
        return self._pacer

    # ---- access token ----------------------------------------------------------------------------------------

    async def access_token(self) -> str:
        """A valid access token: cached, refreshed ahead of expiry, one fetch for any number of concurrent callers."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        async with self._token_lock:
            # Whoever waited on the lock finds the token the first caller fetched.
            token = self._token
            if token is not None and self._clock() < token.refresh_at:
                return token.value
            self._token = await self._fetch_token()
            return self._token.value

    def invalidate_token(self, rejected: str | None = None) -> None:
        """Drop the cached token (only if it is still the one that was rejected, so that concurrent failures of
        one token cause one refresh, not one per caller)."""
        if self._token is not None and (rejected is None or self._token.value == rejected):
            self._token = None

    async def _fetch_token(self) -> _Token:
        payload = await self._call(
            "oauth2/accessToken", "POST", f"{self._api}/v1.0/oauth2/accessToken",
            json_body={"appKey": self._dt.client_id, "appSecret": self._dt.client_secret},
            auth=None, idempotent=True,
        )
        value = payload.get("accessToken")
        if not value:
            raise ServerError("token.missing", "accessToken missing in the answer", api="oauth2/accessToken")
        expire_in = float(payload.get("expireIn") or 7200)
        margin = min(TOKEN_REFRESH_MARGIN_SECONDS, expire_in / 2)
        self.stats.token_fetches += 1
        log.info("dingtalk access token fetched, valid for %ds", int(expire_in))
        return _Token(value=str(value), refresh_at=self._clock() + expire_in - margin)

    # ---- the call pipeline -----------------------------------------------------------------------------------

    async def _call(
        self,
        api: str,
        method: str,
        url: str,
        *,
        style: Literal["new", "old"] = "new",
        auth: Literal["header", "query"] | None = "header",
        json_body: Any = None,
        raw_json: bytes | None = None,
        params: Mapping[str, str] | None = None,
        form: Callable[[], AsyncContextManager[aiohttp.FormData]] | None = None,
        idempotent: bool,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> dict[str, Any]:
        auth_retried = False
        attempt = 0
        while True:
            # The token fetch retries on its own; its final failure ends this call (no retries of retries).
            token = await self.access_token() if auth is not None else None
            if api not in UNPACED_APIS:
                # After the token: calls that waited out a slow token refresh must not go out in one bunch.
                await self._pacer.acquire(api)
            headers = {"Accept": "application/json"}
            query = dict(params or {})
            if token is not None:
                if auth == "header":
                    headers[TOKEN_HEADER] = token
                else:
                    query["access_token"] = token
            try:
                return await self._send_once(
                    api, method, url, style=style, headers=headers, params=query, json_body=json_body,
                    raw_json=raw_json, form=form, idempotent=idempotent, timeout=timeout,
                )
            except DingTalkError as exc:
                self.stats.errors[type(exc).__name__] += 1
                if isinstance(exc, AuthError) and exc.token_rejected and auth is not None and not auth_retried:
                    # A rejected token is refreshed and the call retried once (§6): a second rejection is real.
                    auth_retried = True
                    self.stats.token_refreshes_after_auth_error += 1
                    self.invalidate_token(token)
                    log.warning("dingtalk %s: access token rejected (%s); refreshing and retrying once", api, exc.code)
                    continue
                delay = self._retry.delay_for(exc, attempt, idempotent=idempotent)
                if delay is None:
                    raise
                attempt += 1
                self.stats.retries += 1
                self.stats.retries_by_api[api] += 1
                log.warning("dingtalk %s failed (%s: %s); retry %d in %.2fs",
                            api, type(exc).__name__, exc.code, attempt, delay)
                if isinstance(exc, Throttled):
                    # Push the whole API's schedule back, so that concurrent callers back off too.
                    self._pacer.penalize(api, delay)
                else:
                    await asyncio.sleep(delay)

    async def _send_once(
        self,
        api: str,
        method: str,
        url: str,
        *,
        style: Literal["new", "old"],
        headers: dict[str, str],
        params: Mapping[str, str],
        json_body: Any,
        raw_json: bytes | None,
        form: Callable[[], AsyncContextManager[aiohttp.FormData]] | None,
        idempotent: bool,
        timeout: aiohttp.ClientTimeout | None,
    ) -> dict[str, Any]:
        timeout = timeout or aiohttp.ClientTimeout(total=self._timeout_seconds)
        self.stats.requests += 1
        self.stats.requests_by_api[api] += 1
        try:
            async with contextlib.AsyncExitStack() as stack:
                data: Any = None
                if form is not None:
                    data = await stack.enter_async_context(form())
                elif raw_json is not None:
                    data = raw_json
                    headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
                async with self.session.request(
                    method, url, params=params or None, json=json_body, data=data, headers=headers, timeout=timeout,
                ) as resp:
                    body = await resp.read()
                    status = resp.status
                    request_id = resp.headers.get("x-acs-request-id")
        except aiohttp.ConnectionTimeoutError as exc:
            # Not connected within the timeout: nothing left this process.
            raise Timeout("timeout.connect", f"no connection within the timeout ({type(exc).__name__})",
                          api=api, maybe_sent=False) from None
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise Timeout("timeout", f"no answer within {timeout.total or self._timeout_seconds:g}s",
                          api=api, maybe_sent=True) from None
        except aiohttp.ClientConnectorError as exc:
            raise NetworkError("connect.failed", type(exc).__name__, api=api, maybe_sent=False) from None
        except aiohttp.ClientError as exc:
            # Reset or disconnected after the request may have been written: it may have taken effect.
            raise NetworkError("connection.broken", type(exc).__name__, api=api, maybe_sent=True) from None

        if style == "new":
            error = classify_new_api(status, body, api=api, request_id=request_id)
        else:
            error = classify_old_api(body, http_status=status, api=api) if status == 200 else classify_new_api(
                status, body, api=api, request_id=request_id)
        if error is not None:
            raise error
        payload = _json_object(body)
        if payload.get("success") in (False, "false"):
            raise InvalidRequest(str(payload.get("errorCode") or "success.false"),
                                 str(payload.get("errorMsg") or payload.get("message") or "success=false"),
                                 api=api, http_status=status, request_id=request_id)
        return payload

    # ---- webhooks (no token; the URL carries its credential) ------------------------------------------------

    async def post_webhook(self, api: str, url: str, raw: bytes) -> dict[str, Any]:
        """POST a serialized webhook body to a robot webhook (no token; the URL carries its own credential and is
        never logged); the ``errcode`` is checked like any old-API answer. Not resent after a possible delivery."""
        return await self._call(api, "POST", url, style="old", auth=None, raw_json=raw, idempotent=False)

    # ---- reads for the API families outside this package's classes (contacts, group members, cards, 待办) ---------

    async def call_oapi(self, api: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """An old-API read (``POST {oapi}{path}?access_token=…`` with a JSON body): paced per ``api``, retried, typed
        errors from the ``errcode``."""
        return await self._call(api, "POST", f"{self._oapi}{path}", style="old", auth="query",
                                json_body=dict(body), idempotent=True)

    async def call_api(self, api: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A new-API read (``POST {api}{path}`` with the token header)."""
        return await self._call(api, "POST", f"{self._api}{path}", json_body=dict(body), idempotent=True)

    async def call_rest(self, api: str, method: Literal["GET", "POST", "PUT", "DELETE"], path: str, *,
                        body: Mapping[str, Any] | None = None, params: Mapping[str, str] | None = None,
                        idempotent: bool) -> dict[str, Any]:
        """A new-API call of any method (the 待办 APIs: ``GET``/``PUT``/``DELETE`` on a path with query params)."""
        return await self._call(api, method, f"{self._api}{path}", json_body=None if body is None else dict(body),
                                params=params, idempotent=idempotent)

    # ---- helpers ---------------------------------------------------------------------------------------------

    def _transfer_timeout(self) -> aiohttp.ClientTimeout:
        # Large transfers get a longer total, but a stalled socket still fails after the normal timeout.
        return aiohttp.ClientTimeout(total=self._transfer_timeout_seconds, sock_connect=self._timeout_seconds,
                                     sock_read=self._timeout_seconds)


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except ValueError:
        raise ServerError("body.invalid", "answer is not JSON") from None
    return payload if isinstance(payload, dict) else {"result": payload}
