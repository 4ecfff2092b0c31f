"""The outbound DingTalk client: every call the bot makes to DingTalk goes through one ``DingTalkClient``.

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
import mimetypes
import os
import time
from dataclasses import dataclass, field
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncContextManager, AsyncIterator, Callable, Literal, Mapping, Sequence

import aiohttp

from bot.config import Config
from bot.dingtalk.errors import (
    AuthError,
    DingTalkError,
    FileTooLarge,
    InvalidRequest,
    NetworkError,
    ServerError,
    SessionWebhookExpired,
    Throttled,
    Timeout,
    classify_new_api,
    classify_old_api,
)
from bot.dingtalk.messages import (
    RobotMessage, check_webhook_body_size, robot_message_for_reply, webhook_body,
    webhook_body_for_reply,
)
from bot.dingtalk.pacing import Pacer
from bot.dingtalk.retry import RetryPolicy

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-acs-dingtalk-access-token"
TOKEN_REFRESH_MARGIN_SECONDS = 300.0  # refresh 5 min before expiry, as the SDK does (§6)
BATCH_SEND_MAX_USERS = 20  # oToMessages/batchSend userIds limit (§5.2)
DEFAULT_DOWNLOAD_MAX_BYTES = 50 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES = 64 * 1024

MediaKind = Literal["image", "voice", "video", "file"]
# Per §7; checked here so an oversized or unsupported file fails fast with a clear error instead of a server code.
MEDIA_LIMITS: Mapping[str, tuple[int, frozenset[str]]] = {
    "image": (20 * 1024 * 1024, frozenset({"jpg", "jpeg", "gif", "png", "bmp"})),
    "voice": (2 * 1024 * 1024, frozenset({"amr", "mp3", "wav"})),
    "video": (20 * 1024 * 1024, frozenset({"mp4"})),
    "file": (20 * 1024 * 1024, frozenset({"doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip", "pdf", "rar"})),
}


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


@dataclass(frozen=True)
class SendResult:
    process_query_key: str | None


@dataclass(frozen=True)
class BatchSendResult:
    """Outcome of ``send_to_users``: chunks are independent calls, so a later chunk can fail after earlier ones sent.

    ``failed`` lists the user ids of each failed chunk with its error, so that only those are retried.
    """

    process_query_keys: tuple[str, ...] = ()
    sent_user_ids: tuple[str, ...] = ()
    invalid_staff_ids: tuple[str, ...] = ()
    flow_controlled_staff_ids: tuple[str, ...] = ()
    failed: tuple[tuple[tuple[str, ...], DingTalkError], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class InstanceIdPage:
    ids: tuple[str, ...]
    next_token: str | None  # None when there is no further page


@dataclass
class _Token:
    value: str
    refresh_at: float  # monotonic seconds

# Session-webhook replies are not an OpenAPI call: DingTalk's per-app, per-API QPS limit does not meter them
# (dingtalk-platform.md §4, §13.2: no known webhook limit). Pacing them at that limit capped a busy bot at ~15
# replies/s across all groups (bench scenario 1); a throttle answer, should one come, is still retried with backoff.
UNPACED_APIS = frozenset({"robot/sendBySession"})


class DingTalkClient:
    """Async DingTalk OpenAPI client. See the module docstring for the call pipeline."""

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
        self._pacer = pacer or Pacer(config.pacing.calls_per_second)
        self._clock = clock
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        self.stats = ClientStats()

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> "DingTalkClient":
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
            if api not in UNPACED_APIS:
                await self._pacer.acquire(api)
            # The token fetch retries on its own; its final failure ends this call (no retries of retries).
            token = await self.access_token() if auth is not None else None
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

    # ---- session webhook -------------------------------------------------------------------------------------

    async def reply_via_webhook(
        self,
        url: str,
        body: Mapping[str, Any] | RobotMessage | Any,
        *,
        expires_at: datetime | None = None,
        at_user_ids: Sequence[str] = (),
    ) -> None:
        """Reply through a message's sessionWebhook (no token). Checks ``errcode``.

        Raises ``SessionWebhookExpired`` when DingTalk answers 300001, or at once when ``expires_at`` (naive UTC, as
        in ``Incoming.session_webhook_expires_at``) has passed: the caller then sends through the OpenAPI.
        """
        if expires_at is not None:
            expiry = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=timezone.utc)
            if datetime.now(timezone.utc) >= expiry:
                raise SessionWebhookExpired("300001", "sessionWebhook expired (by its expiry time)",
                                            api="robot/sendBySession")
        if not isinstance(body, Mapping):
            # A RobotMessage, or a reply value from bot.replies (a str counts as Text).
            converted = (webhook_body(body, at_user_ids=at_user_ids) if isinstance(body, RobotMessage)
                         else webhook_body_for_reply(body))
            if converted is None:
                raise InvalidRequest("msgtype.unsupported",
                                     f"{type(body).__name__} cannot go through a sessionWebhook; use the OpenAPI",
                                     api="robot/sendBySession")
            body = converted
        await self.post_webhook("robot/sendBySession", url, check_webhook_body_size(body))

    async def post_webhook(self, api: str, url: str, raw: bytes) -> dict[str, Any]:
        """POST a serialized webhook body to a robot webhook (no token; the URL carries its own credential and is
        never logged); the ``errcode`` is checked like any old-API answer. Not resent after a possible delivery."""
        return await self._call(api, "POST", url, style="old", auth=None, raw_json=raw, idempotent=False)

    # ---- other APIs (contacts, group members: bot.dingtalk.contacts) -----------------------------------------

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

    # ---- robot messages --------------------------------------------------------------------------------------

    async def send_group(
        self,
        conversation_id: str,
        msg_key: str | RobotMessage,
        params: Mapping[str, Any] | None = None,
        *,
        cool_app_code: str | None = None,
    ) -> SendResult:
        """Proactive group message (``/v1.0/robot/groupMessages/send``); ``conversation_id`` = openConversationId."""
        message = msg_key if isinstance(msg_key, RobotMessage) else RobotMessage(msg_key, params or {})
        body: dict[str, Any] = {
            "msgParam": message.msg_param(),
            "msgKey": message.msg_key,
            "openConversationId": conversation_id,
            "robotCode": self._robot_code,
        }
        if cool_app_code:
            body["coolAppCode"] = cool_app_code
        payload = await self._call("robot/groupMessages/send", "POST", f"{self._api}/v1.0/robot/groupMessages/send",
                                   json_body=body, idempotent=False)
        return SendResult(process_query_key=payload.get("processQueryKey"))

    async def send_to_users(
        self,
        user_ids: Sequence[str],
        msg_key: str | RobotMessage,
        params: Mapping[str, Any] | None = None,
    ) -> BatchSendResult:
        """1:1 messages (``/v1.0/robot/oToMessages/batchSend``) in chunks of 20 users.

        Raises if nothing could be sent; otherwise reports the failed chunks in ``BatchSendResult.failed`` so that
        users who already got the message are not messaged twice.
        """
        message = msg_key if isinstance(msg_key, RobotMessage) else RobotMessage(msg_key, params or {})
        unique = list(dict.fromkeys(u for u in user_ids if u))
        if not unique:
            raise InvalidRequest("userIds.empty", "no user to send to", api="robot/oToMessages/batchSend")
        msg_param = message.msg_param()
        keys: list[str] = []
        sent: list[str] = []
        invalid: list[str] = []
        flow_controlled: list[str] = []
        failed: list[tuple[tuple[str, ...], DingTalkError]] = []
        for start in range(0, len(unique), BATCH_SEND_MAX_USERS):
            chunk = unique[start:start + BATCH_SEND_MAX_USERS]
            try:
                payload = await self._call(
                    "robot/oToMessages/batchSend", "POST", f"{self._api}/v1.0/robot/oToMessages/batchSend",
                    json_body={"robotCode": self._robot_code, "userIds": chunk, "msgKey": message.msg_key,
                               "msgParam": msg_param},
                    idempotent=False,
                )
            except DingTalkError as exc:
                if not sent and not failed and not exc.retryable:
                    raise  # the same permanent error would hit every chunk
                failed.append((tuple(chunk), exc))
                continue
            if payload.get("processQueryKey"):
                keys.append(str(payload["processQueryKey"]))
            chunk_invalid = [str(u) for u in payload.get("invalidStaffIdList") or ()]
            chunk_flow = [str(u) for u in payload.get("flowControlledStaffIdList") or ()]
            invalid += chunk_invalid
            flow_controlled += chunk_flow
            skipped = set(chunk_invalid) | set(chunk_flow)
            sent += [u for u in chunk if u not in skipped]
        if failed and not sent and not invalid and not flow_controlled:
            raise failed[0][1]
        if invalid or flow_controlled:
            log.warning("batchSend: %d invalid and %d flow-controlled staff ids", len(invalid), len(flow_controlled))
        return BatchSendResult(tuple(keys), tuple(sent), tuple(invalid), tuple(flow_controlled), tuple(failed))

    # ---- media -----------------------------------------------------------------------------------------------

    async def upload_media(
        self, kind: MediaKind, filename: str, data: bytes | None = None, *, path: str | os.PathLike[str] | None = None
    ) -> str:
        """Upload to ``{oapi}/media/upload`` and return the ``media_id`` (``@…``).

        Give either ``data`` or ``path``; a path is streamed from disk (read in aiohttp's executor), not loaded.
        """
        if (data is None) == (path is None):
            raise TypeError("upload_media needs exactly one of data= or path=")
        if kind not in MEDIA_LIMITS:
            raise InvalidRequest("media.type", f"unknown media kind {kind!r}", api="media/upload")
        max_bytes, formats = MEDIA_LIMITS[kind]
        suffix = Path(filename).suffix.lstrip(".").lower()
        if suffix not in formats:
            raise InvalidRequest("40005", f"{kind} upload does not accept .{suffix or '?'} ({sorted(formats)})",
                                 api="media/upload")
        size = len(data) if data is not None else (await asyncio.to_thread(os.stat, path)).st_size
        if size > max_bytes:
            raise FileTooLarge("media.tooLarge", f"{kind} of {size} bytes exceeds {max_bytes}", api="media/upload")
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"

        @contextlib.asynccontextmanager
        async def form() -> AsyncIterator[aiohttp.FormData]:
            # Rebuilt for each try: a FormData (and an open file) can be sent only once.
            fd = aiohttp.FormData()
            fd.add_field("type", kind)
            if data is not None:
                fd.add_field("media", data, filename=filename, content_type=content_type)
                yield fd
                return
            handle = await asyncio.to_thread(open, path, "rb")
            try:
                fd.add_field("media", handle, filename=filename, content_type=content_type)
                yield fd
            finally:
                await asyncio.to_thread(handle.close)

        payload = await self._call(
            "media/upload", "POST", f"{self._oapi}/media/upload", style="old", auth="query", params={"type": kind},
            form=form, idempotent=True, timeout=self._transfer_timeout(),
        )
        media_id = payload.get("media_id")
        if not media_id:
            raise ServerError("media_id.missing", "media_id missing in the upload answer", api="media/upload")
        return str(media_id)

    async def robot_message_for(self, reply: Any) -> RobotMessage:
        """The OpenAPI message for a reply value (``bot.replies``), uploading an Image's PNG or a File first."""
        from bot import replies

        reply = replies.as_reply(reply)
        if isinstance(reply, replies.Image) and reply.png is not None:
            media_id = await self.upload_media("image", "image.png", data=reply.png)
            return robot_message_for_reply(reply, media_id=media_id)
        if isinstance(reply, replies.File):
            media_id = await self.upload_media("file", reply.name, data=reply.data, path=reply.path)
            return robot_message_for_reply(reply, media_id=media_id)
        return robot_message_for_reply(reply)

    # ---- received files --------------------------------------------------------------------------------------

    async def file_download_url(self, download_code: str) -> str:
        """Exchange a message's ``downloadCode`` for a short-lived download URL (``messageFiles/download``)."""
        payload = await self._call(
            "robot/messageFiles/download", "POST", f"{self._api}/v1.0/robot/messageFiles/download",
            json_body={"downloadCode": download_code, "robotCode": self._robot_code}, idempotent=True,
        )
        url = payload.get("downloadUrl")
        if not url:
            raise ServerError("downloadUrl.missing", "downloadUrl missing in the answer",
                              api="robot/messageFiles/download")
        return str(url)

    async def download_file(
        self, download_code: str, *, max_bytes: int = DEFAULT_DOWNLOAD_MAX_BYTES, chunk_bytes: int = DOWNLOAD_CHUNK_BYTES
    ) -> AsyncIterator[bytes]:
        """Stream a file the user sent to the bot. Raises ``FileTooLarge`` past ``max_bytes``.

        Retries (connection errors, 5xx) happen only before the first chunk is yielded, so a consumer never sees
        bytes twice.
        """
        url = await self.file_download_url(download_code)
        api = "file download"
        attempt = 0
        while True:
            error: DingTalkError | None = None
            try:
                resp = await self.session.get(url, timeout=self._transfer_timeout())
            except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
                error = (Timeout("timeout", "download did not start in time", api=api)
                         if isinstance(exc, asyncio.TimeoutError)
                         else NetworkError("connect.failed", type(exc).__name__, api=api))
            else:
                if resp.status == 200:
                    break
                resp.release()
                # Object storage answers XML/HTML errors: 5xx is worth another try, 4xx (expired URL) is not.
                error = (ServerError if resp.status >= 500 else InvalidRequest)(
                    str(resp.status), "download URL refused", http_status=resp.status, api=api)
            self.stats.errors[type(error).__name__] += 1
            delay = self._retry.delay_for(error, attempt)
            if delay is None:
                raise error
            attempt += 1
            self.stats.retries += 1
            self.stats.retries_by_api[api] += 1
            await asyncio.sleep(delay)
        async with resp:
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise FileTooLarge("file.tooLarge", f"{resp.content_length} bytes exceeds {max_bytes}", api=api)
            received = 0
            try:
                async for chunk in resp.content.iter_chunked(chunk_bytes):
                    received += len(chunk)
                    if received > max_bytes:
                        raise FileTooLarge("file.tooLarge", f"more than {max_bytes} bytes", api=api)
                    yield chunk
            except asyncio.TimeoutError:
                raise Timeout("timeout", "download stalled", api=api) from None
            except aiohttp.ClientError as exc:
                raise NetworkError("connection.broken", type(exc).__name__, api=api) from None

    async def save_file(
        self, download_code: str, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_DOWNLOAD_MAX_BYTES
    ) -> int:
        """Download to ``path`` (via a temporary sibling, renamed at the end); return the size in bytes."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        handle = await asyncio.to_thread(open, partial, "wb")
        size = 0
        try:
            async for chunk in self.download_file(download_code, max_bytes=max_bytes):
                await asyncio.to_thread(handle.write, chunk)
                size += len(chunk)
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, partial, target)
        except BaseException:
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(_unlink_quietly, partial)
            raise
        return size

    # ---- workflow (approvals) --------------------------------------------------------------------------------

    async def create_form(
        self,
        name: str,
        form_components: Sequence[Mapping[str, Any]],
        *,
        description: str | None = None,
        process_code: str | None = None,
        **extra: Any,
    ) -> str:
        """Create (or, with ``process_code``, update) an approval form template; return its processCode."""
        body: dict[str, Any] = {"name": name, "formComponents": [dict(c) for c in form_components], **extra}
        if description is not None:
            body["description"] = description
        if process_code:
            body["processCode"] = process_code
        payload = await self._call("workflow/forms", "POST", f"{self._api}/v1.0/workflow/forms",
                                   json_body=body, idempotent=False)
        code = (payload.get("result") or {}).get("processCode") or payload.get("processCode")
        if not code:
            raise ServerError("processCode.missing", "processCode missing in the answer", api="workflow/forms")
        return str(code)

    async def process_code_by_name(self, name: str) -> str | None:
        """The processCode of the form named ``name``, or ``None`` if there is none."""
        try:
            payload = await self._call(
                "workflow/processCodes", "GET", f"{self._api}/v1.0/workflow/processCentres/schemaNames/processCodes",
                params={"name": name}, idempotent=True,
            )
        except InvalidRequest as exc:
            # The by-name lookup answers processCodeError when no form has that name.
            if exc.http_status == 404 or exc.code == "processCodeError":
                return None
            raise
        # The documented body is nested; a flat one was also seen (§8.1), so accept both.
        result = payload.get("result")
        code = result.get("processCode") if isinstance(result, dict) else payload.get("processCode")
        return str(code) if code else None

    async def get_form_schema(self, process_code: str) -> dict[str, Any]:
        payload = await self._call(
            "workflow/forms/schemas", "GET", f"{self._api}/v1.0/workflow/forms/schemas/processCodes",
            params={"processCode": process_code}, idempotent=True,
        )
        return dict(payload.get("result") or {})

    async def create_process_instance(
        self,
        process_code: str,
        originator_user_id: str,
        form_values: Mapping[str, str] | Sequence[Mapping[str, Any]],
        *,
        dept_id: int | None = None,
        approvers: Sequence[str | Mapping[str, Any]] | None = None,
        cc_list: Sequence[str] = (),
        cc_position: str | None = None,
        microapp_agent_id: int | None = None,
        **extra: Any,
    ) -> str:
        """Start an approval; return the instanceId.

        ``form_values``: ``{label: value}`` or the raw ``formComponentValues`` list (values must be strings, §8.3).
        ``approvers``: user ids approving one after the other, or raw ``{"actionType","userIds"}`` entries.
        """
        if isinstance(form_values, Mapping):
            components = [{"name": k, "value": v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}
                          for k, v in form_values.items()]
        else:
            components = [dict(c) for c in form_values]
        body: dict[str, Any] = {
            "originatorUserId": originator_user_id,
            "processCode": process_code,
            "formComponentValues": components,
            **extra,
        }
        if approvers:
            body["approvers"] = [a if isinstance(a, Mapping) else {"actionType": "NONE", "userIds": [a]}
                                 for a in approvers]
        if dept_id is not None or not approvers:
            body["deptId"] = -1 if dept_id is None else dept_id  # required without approvers; -1 = root dept
        if cc_list:
            body["ccList"] = list(cc_list)
            body["ccPosition"] = cc_position or "FINISH"
        if microapp_agent_id is not None:
            body["microappAgentId"] = microapp_agent_id
        payload = await self._call("workflow/processInstances", "POST", f"{self._api}/v1.0/workflow/processInstances",
                                   json_body=body, idempotent=False)
        instance_id = payload.get("instanceId") or (payload.get("result") or {}).get("instanceId")
        if not instance_id:
            raise ServerError("instanceId.missing", "instanceId missing in the answer", api="workflow/processInstances")
        return str(instance_id)

    async def get_process_instance(self, instance_id: str) -> dict[str, Any]:
        """The instance detail (``result`` of §8.2: status, result, tasks, operationRecords, …)."""
        payload = await self._call(
            "workflow/processInstances.get", "GET", f"{self._api}/v1.0/workflow/processInstances",
            params={"processInstanceId": instance_id}, idempotent=True,
        )
        return dict(payload.get("result") or {})

    async def terminate_process_instance(
        self, instance_id: str, *, operating_user_id: str | None = None, is_system: bool = True, remark: str = ""
    ) -> bool:
        body: dict[str, Any] = {"processInstanceId": instance_id, "isSystem": is_system}
        if operating_user_id:
            body["operatingUserId"] = operating_user_id
        if remark:
            body["remark"] = remark[:1024]
        payload = await self._call(
            "workflow/processInstances/terminate", "POST", f"{self._api}/v1.0/workflow/processInstances/terminate",
            json_body=body, idempotent=False,
        )
        return bool(payload.get("result", True))

    async def execute_task(
        self, instance_id: str, task_id: str | int, actioner_user_id: str, result: Literal["agree", "refuse"],
        remark: str = "",
    ) -> bool:
        """Approve or refuse a task on behalf of ``actioner_user_id``."""
        body: dict[str, Any] = {"processInstanceId": instance_id, "taskId": int(task_id),
                                "actionerUserId": actioner_user_id, "result": result}
        if remark:
            body["remark"] = remark
        payload = await self._call(
            "workflow/processInstances/execute", "POST", f"{self._api}/v1.0/workflow/processInstances/execute",
            json_body=body, idempotent=False,
        )
        return bool(payload.get("result", True))

    async def list_instance_ids(
        self,
        process_code: str,
        start_time_ms: int,
        end_time_ms: int | None = None,
        *,
        next_token: str | int = 0,
        max_results: int = 20,
        user_ids: Sequence[str] = (),
        statuses: Sequence[str] = (),
    ) -> InstanceIdPage:
        """One page of instance ids started in ``[start, end]`` (ms epoch)."""
        body: dict[str, Any] = {"processCode": process_code, "startTime": int(start_time_ms),
                                "nextToken": int(next_token), "maxResults": min(max(1, max_results), 20)}
        if end_time_ms is not None:
            body["endTime"] = int(end_time_ms)
        if user_ids:
            body["userIds"] = list(user_ids)
        if statuses:
            body["statuses"] = list(statuses)
        payload = await self._call(
            "workflow/instanceIds/query", "POST", f"{self._api}/v1.0/workflow/processes/instanceIds/query",
            json_body=body, idempotent=True,
        )
        result = payload.get("result") or {}
        ids = tuple(str(i) for i in result.get("list") or ())
        token = result.get("nextToken")
        return InstanceIdPage(ids=ids, next_token=str(token) if token not in (None, "", 0, "0") and ids else None)

    async def iter_instance_ids(self, process_code: str, start_time_ms: int, end_time_ms: int | None = None,
                                **filters: Any) -> AsyncIterator[str]:
        """All instance ids, page after page."""
        token: str | int = 0
        while True:
            page = await self.list_instance_ids(process_code, start_time_ms, end_time_ms, next_token=token, **filters)
            for instance_id in page.ids:
                yield instance_id
            if page.next_token is None:
                return
            token = page.next_token

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


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
