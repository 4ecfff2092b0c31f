"""The inbound DingTalk Stream connection (platform reference §2, fix patterns §12.2).

``DingTalkStream`` subclasses the SDK's ``DingTalkStreamClient`` (dingtalk-stream 0.24.3) but replaces everything that
blocks or misbehaves on the event loop:

* ``open_connection()`` is an ``aiohttp`` call with a timeout on the app's shared session, to
  ``{dingtalk.api_base_url}/v1.0/gateway/connections/open``. The SDK's ``DINGTALK_OPENAPI_ENDPOINT`` environment
  variable (read at SDK import time into a class attribute) is therefore irrelevant here: the configured base URL is
  the only thing that decides where we connect, which is what makes sandbox mode work without import-order tricks.
* ``start()`` is our own reconnect loop: full-jitter exponential backoff (1 -> 60 s), a real stop flag, explicit
  WebSocket ping interval/timeout, one log line per reconnect, an immediate new connection after a SYSTEM
  ``disconnect`` (the old socket keeps draining for a grace period instead of being cut, §2.5).
* A watchdog aborts a connection that has received no byte at all (no frame, no pong) for ``watchdog_timeout``
  seconds: a silently dead TCP connection otherwise looks "online" forever (§12.1).
* The SDK's blocking token fetch and reply helpers are disabled; replies go through ``bot.dingtalk.DingTalkClient``.

Frames become typed ``Incoming`` / ``ApprovalEvent`` at the edge and are handed to the app's ``on_frame``. The ACK is
sent **only after on_frame returns**: the app persists the frame to its inbox in ``on_frame`` and processes it later,
so a crash between the two loses nothing and a duplicate is dropped by the inbox's unique key (§2.6, §12.2 item 2).
If ``on_frame`` raises, a bot message is left unacked (DingTalk redelivers it with the same messageId) and an event
is acked ``{"status": "LATER"}`` with code 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Union
from urllib.parse import quote_plus

import aiohttp
from dingtalk_stream import Credential, DingTalkStreamClient
from dingtalk_stream.version import VERSION_STRING
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bot.card_press import CARD_CALLBACK_TOPIC, CardPress, parse_card_callback
from bot.config import Config
from bot.dingtalk.errors import DingTalkError, NetworkError, ServerError, Timeout, classify_new_api
from bot.incoming import BOT_MESSAGE_TOPIC, STREAM_EVENT_TYPES, ApprovalEvent, Incoming, parse_approval_event, \
    parse_bot_message

log = logging.getLogger(__name__)

Frame = Union[Incoming, ApprovalEvent]
OnFrame = Callable[[Frame], Awaitable[None]]
OnCardPress = Callable[[CardPress], Awaitable[Union[dict[str, Any], None]]]  # persist; -> the ACK's response

OPEN_CONNECTION_PATH = "/v1.0/gateway/connections/open"
USER_AGENT = f"dingpm DingTalkStream/1.0 SDK/{VERSION_STRING}"


@dataclass(frozen=True)
class StreamOptions:
    """Connection tuning. The defaults suit production; tests shrink the intervals."""

    ping_interval: float = 30.0  # WebSocket pings (answered by pongs) keep NATs open and prove liveness
    ping_timeout: float = 20.0
    watchdog_timeout: float = 90.0  # no byte received for this long -> abort and reconnect (§12.2 item 4)
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    open_timeout: float | None = None  # connections/open and the WebSocket handshake; None -> pacing.http_timeout
    close_timeout: float = 5.0
    disconnect_drain_seconds: float = 10.0  # after SYSTEM disconnect the old socket may still deliver (§2.5)
    stable_after_seconds: float = 30.0  # a connection this old (or that got a frame) resets the backoff
    max_in_flight: int = 100  # frames being handled at once; beyond, reading pauses (back-pressure, §12.2 item 6)
    stop_grace_seconds: float = 5.0  # on stop, in-flight frames get this long to be persisted and acked
    subscribe_events: bool = True  # EVENT "*" (approvals: bpms_task_change / bpms_instance_change)
    # CALLBACK frames whose on_frame failed: None leaves them unacked (redelivered by DingTalk); a code sends that.
    callback_failure_ack_code: int | None = None
    proxy: str | None = None  # like the aiohttp session, no proxy from the environment unless configured
    max_frame_bytes: int = 2 ** 20


@dataclass
class StreamStatus:
    """Connection health for /healthz. Times are UTC."""

    connected: bool = False
    connected_since: datetime | None = None
    reconnects: int = 0
    last_frame_at: datetime | None = None
    last_error: str | None = None
    watchdog_trips: int = 0
    frames_received: int = 0
    frames_acked: int = 0
    frames_failed: int = 0  # on_frame raised: left unacked / acked LATER
    pings_answered: int = 0
    disconnects: int = 0  # SYSTEM disconnect frames received
    in_flight: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("connected_since", "last_frame_at"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out


class _LivenessConnection(ClientConnection):
    """Records when the last bytes arrived, whatever they were (data frame, pong, close), for the watchdog."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_received = self.loop.time()

    def data_received(self, data: bytes) -> None:
        self.last_received = self.loop.time()
        super().data_received(data)


class _Connection:
    """One WebSocket plus the bookkeeping of its reader."""

    def __init__(self, number: int, ws: _LivenessConnection) -> None:
        self.number = number
        self.ws = ws
        self.opened_at = ws.loop.time()
        self.frames = 0
        self.watchdog_tripped = False
        self.draining = False
        # Resolved with the reason the main loop should move on: "disconnect", "closed", "dropped", "watchdog".
        self.handover: asyncio.Future[str] = ws.loop.create_future()

    def resolve(self, reason: str) -> None:
        if not self.handover.done():
            self.handover.set_result(reason)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DingTalkStream(DingTalkStreamClient):
    """Stream client: ``await stream.start()`` runs until ``await stream.stop()``.

    ``on_frame(item)`` receives an ``Incoming`` (bot message) or an ``ApprovalEvent``; it must persist the item and
    return quickly (it runs concurrently for up to ``max_in_flight`` frames). Returning acks the frame; raising
    does not (see the module docstring).
    """

    def __init__(
        self,
        config: Config,
        on_frame: OnFrame,
        *,
        session: aiohttp.ClientSession,
        options: StreamOptions | None = None,
        rng: random.Random | None = None,
        on_card_press: OnCardPress | None = None,
    ) -> None:
        super().__init__(Credential(config.dingtalk.client_id, config.dingtalk.client_secret), logger=log)
        self._config = config
        self._on_frame = on_frame
        self._on_card_press = on_card_press
        self._session = session
        self.options = options or StreamOptions()
        self._open_url = config.dingtalk.api_base_url.rstrip("/") + OPEN_CONNECTION_PATH
        self._open_timeout = self.options.open_timeout or config.pacing.http_timeout_seconds
        self._rng = rng or random.Random()
        self._status = StreamStatus()
        self._changed = asyncio.Event()
        self._stop: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._frame_tasks: set[asyncio.Task[Any]] = set()  # on_frame + ack, one per frame
        self._aux_tasks: set[asyncio.Task[Any]] = set()  # readers, watchdogs, delayed closes
        self._connections: set[_Connection] = set()
        self._count = 0
        self._is_event_required = self.options.subscribe_events

    # ---- status ----------------------------------------------------------------------------------------------

    @property
    def status(self) -> StreamStatus:
        """A snapshot (copy) of the connection status."""
        return dataclasses.replace(self._status, in_flight=len(self._frame_tasks))

    def _notify(self) -> None:
        # Wake every waiter of wait_for_status, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_status(self, predicate: Callable[[StreamStatus], bool], timeout: float) -> StreamStatus:
        """Wait until ``predicate(status)`` holds (e.g. connected); raise ``TimeoutError`` after ``timeout``."""
        async with asyncio.timeout(timeout):
            while True:
                status = self.status
                if predicate(status):
                    return status
                await self._changed.wait()

    # ---- SDK surface we must not use -------------------------------------------------------------------------

    def get_access_token(self) -> str:  # type: ignore[override]
        raise NotImplementedError("blocking SDK token fetch disabled: use bot.dingtalk.DingTalkClient.access_token()")

    def upload_to_dingtalk(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        raise NotImplementedError("blocking SDK upload disabled: use bot.dingtalk.DingTalkClient.upload_media()")

    def start_forever(self) -> None:  # type: ignore[override]
        raise NotImplementedError("the app runs `await DingTalkStream.start()` inside its own event loop")

    # ---- connections/open ------------------------------------------------------------------------------------

    def subscriptions(self) -> list[dict[str, str]]:
        topics = [{"type": "CALLBACK", "topic": BOT_MESSAGE_TOPIC}]
        if self._on_card_press is not None:
            topics.append({"type": "CALLBACK", "topic": CARD_CALLBACK_TOPIC})
        if self.options.subscribe_events:
            topics.insert(0, {"type": "EVENT", "topic": "*"})
        return topics

    async def open_connection(self) -> dict[str, str]:  # type: ignore[override]
        """Register and get ``{endpoint, ticket}``; raises a ``DingTalkError`` instead of returning ``None``."""
        body = {
            "clientId": self.credential.client_id,
            "clientSecret": self.credential.client_secret,
            "subscriptions": self.subscriptions(),
            "ua": f"dingtalk-sdk-python/v{VERSION_STRING}-union",
            "localIp": "",  # optional; the SDK's UDP probe of 8.8.8.8 is not worth a network dependency
        }
        api = "gateway/connections/open"
        try:
            async with self._session.post(
                self._open_url, json=body, timeout=aiohttp.ClientTimeout(total=self._open_timeout),
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise Timeout("timeout", f"no answer within {self._open_timeout:g}s", api=api) from None
        except aiohttp.ClientError as exc:
            raise NetworkError("connect.failed", type(exc).__name__, api=api) from None
        error = classify_new_api(status, raw, api=api)
        if error is not None:
            raise error
        try:
            payload = json.loads(raw)
            endpoint, ticket = str(payload["endpoint"]), str(payload["ticket"])
        except (ValueError, KeyError, TypeError):
            raise ServerError("body.invalid", "endpoint/ticket missing in the answer", api=api) from None
        if not endpoint or not ticket:
            raise ServerError("body.invalid", "empty endpoint or ticket", api=api)
        return {"endpoint": endpoint, "ticket": ticket}

    # ---- the reconnect loop ----------------------------------------------------------------------------------

    async def start(self) -> None:  # type: ignore[override]
        """Connect and keep connected until ``stop()``. Cancelling the task also stops it (cleanly)."""
        if self._stop is not None:
            raise RuntimeError("DingTalkStream.start() is already running")
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self._slots = asyncio.Semaphore(self.options.max_in_flight)
        failures = 0
        try:
            while not self._stop.is_set():
                reason, stable = await self._run_one_connection()
                if self._stop.is_set():
                    break
                if stable:
                    failures = 0
                if reason == "disconnect":
                    delay = 0.0  # the server asked us to move: the new socket must be up before the old one dies
                else:
                    delay = self._backoff(failures)
                    failures += 1
                self._status.reconnects += 1
                self._notify()
                log.info("dingtalk stream: reconnect #%d in %.2fs (%s)", self._status.reconnects, delay, reason)
                if delay > 0:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
        finally:
            await self._shutdown()
            self._stopped.set()
            self._stop = None

    async def stop(self) -> None:
        """Stop reconnecting, let in-flight frames finish (bounded), close the sockets; wait until start() ends."""
        if self._stop is None or self._stopped is None:
            return
        stopped = self._stopped
        self._stop.set()
        for conn in list(self._connections):
            # Wake the main loop, which is waiting on the current connection's handover.
            conn.resolve("stopped")
        await stopped.wait()

    def _backoff(self, failures: int) -> float:
        cap = min(self.options.backoff_max, self.options.backoff_initial * (2 ** failures))
        return self._rng.uniform(0, cap)

    async def _run_one_connection(self) -> tuple[str, bool]:
        """Open one connection and wait until the main loop should open the next. Returns (reason, was_stable)."""
        assert self._stop is not None
        connecting = asyncio.ensure_future(self._connect())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not connecting.done():
                # stop() (or a cancel) while connecting: do not wait for a handshake timeout.
                connecting.cancel()
        if connecting.cancelled() or not connecting.done():
            await asyncio.gather(connecting, return_exceptions=True)
            return "stopped", False
        try:
            ws = connecting.result()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is retried with backoff
            self._record_error(exc)
            log.warning("dingtalk stream: connect failed: %s", _describe(exc))
            return "connect failed", False
        if self._stop.is_set():
            await ws.close()
            return "stopped", False
        self._count += 1
        conn = _Connection(self._count, ws)  # type: ignore[arg-type]
        self._connections.add(conn)
        self.websocket = ws  # the SDK attribute, for code that inspects it
        self._status.connected = True
        self._status.connected_since = _utcnow()
        self._status.last_error = None
        self._notify()
        log.info("dingtalk stream: connection %d open", conn.number)
        self._spawn_aux(self._read(conn), f"dingtalk-stream-reader-{conn.number}")
        self._spawn_aux(self._watchdog(conn), f"dingtalk-stream-watchdog-{conn.number}")
        try:
            reason = await conn.handover
        finally:
            self._mark_down(conn)
        stable = conn.frames > 0 or ws.loop.time() - conn.opened_at >= self.options.stable_after_seconds
        return reason, stable

    async def _connect(self) -> _LivenessConnection:
        ticket = await self.open_connection()
        uri = f"{ticket['endpoint']}?ticket={quote_plus(ticket['ticket'])}"
        return await connect(  # type: ignore[return-value]
            uri,
            create_connection=_LivenessConnection,
            ping_interval=self.options.ping_interval,
            ping_timeout=self.options.ping_timeout,
            close_timeout=self.options.close_timeout,
            open_timeout=self._open_timeout,
            max_size=self.options.max_frame_bytes,
            proxy=self.options.proxy,
            user_agent_header=USER_AGENT,
        )

    def _spawn_aux(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._aux_tasks.add(task)
        task.add_done_callback(self._aux_tasks.discard)

    def _current_is(self, conn: _Connection) -> bool:
        return self._count == conn.number

    def _mark_down(self, conn: _Connection) -> None:
        """The current connection is gone (or going): /healthz must say so at once, not after the reconnect."""
        if self._current_is(conn) and self._status.connected:
            self._status.connected = False
            self._status.connected_since = None
        self._notify()

    def _record_error(self, exc: BaseException) -> None:
        self._status.last_error = _describe(exc)
        self._notify()

    async def _watchdog(self, conn: _Connection) -> None:
        timeout = self.options.watchdog_timeout
        period = max(0.05, min(timeout / 4, 5.0))
        ws = conn.ws
        while True:
            await asyncio.sleep(period)
            if ws.state.name == "CLOSED":
                return
            silent_for = ws.loop.time() - ws.last_received
            if silent_for > timeout:
                conn.watchdog_tripped = True
                self._status.watchdog_trips += 1
                self._mark_down(conn)
                log.warning("dingtalk stream: connection %d silent for %.1fs; aborting it", conn.number, silent_for)
                # abort(), not close(): a dead peer would never answer the closing handshake.
                if ws.transport is not None:
                    ws.transport.abort()
                conn.resolve("watchdog")
                return

    async def _read(self, conn: _Connection) -> None:
        assert self._slots is not None and self._stop is not None
        ws = conn.ws
        reason = "closed"
        try:
            async for raw in ws:
                frame = _decode_frame(raw)
                if frame is None:
                    continue
                conn.frames += 1
                self._status.frames_received += 1
                self._status.last_frame_at = _utcnow()
                if frame.get("type") == "SYSTEM":
                    await self._handle_system(conn, frame)
                    continue
                if self._stop.is_set():
                    continue  # stopping: leave it unacked, DingTalk redelivers it to the next process
                await self._slots.acquire()
                task = asyncio.create_task(self._handle(conn, frame))
                self._frame_tasks.add(task)
                task.add_done_callback(self._frame_done)
        except ConnectionClosed as exc:
            reason = "dropped"
            if not conn.watchdog_tripped and not conn.draining:
                self._record_error(exc)
        finally:
            self._connections.discard(conn)
            reason = "watchdog" if conn.watchdog_tripped else reason
            if conn.draining:
                log.info("dingtalk stream: old connection %d drained (%s)", conn.number, reason)
            else:
                log.info("dingtalk stream: connection %d ended (%s, close code %s)", conn.number, reason, ws.close_code)
            if not conn.draining:
                self._mark_down(conn)
            conn.resolve(reason)

    def _frame_done(self, task: asyncio.Task[Any]) -> None:
        self._frame_tasks.discard(task)
        if self._slots is not None:
            self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("dingtalk stream: frame handling crashed", exc_info=task.exception())

    async def _handle_system(self, conn: _Connection, frame: dict[str, Any]) -> None:
        headers = frame.get("headers") or {}
        topic = headers.get("topic")
        # Echo the request data verbatim: the ping ACK must carry the same opaque (§2.5).
        await self._ack(conn, headers, 200, "OK", frame.get("data") or "{}")
        if topic == "ping":
            self._status.pings_answered += 1
        elif topic == "disconnect":
            self._status.disconnects += 1
            conn.draining = True
            log.info("dingtalk stream: server asked connection %d to disconnect (%s); reconnecting now",
                     conn.number, _reason_of(frame))
            conn.resolve("disconnect")
            self._spawn_aux(self._close_after(conn, self.options.disconnect_drain_seconds),
                            f"dingtalk-stream-drain-{conn.number}")
        else:
            log.debug("dingtalk stream: SYSTEM topic %s acked", topic)
        self._notify()

    async def _close_after(self, conn: _Connection, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(conn.ws.wait_closed(), seconds)
        await conn.ws.close()

    async def _handle(self, conn: _Connection, frame: dict[str, Any]) -> None:
        headers = frame.get("headers") or {}
        kind = frame.get("type")
        message_id = headers.get("messageId")
        if kind == "CALLBACK" and headers.get("topic") == CARD_CALLBACK_TOPIC and self._on_card_press is not None:
            await self._handle_card_press(conn, headers, frame.get("data"))
        elif kind == "CALLBACK":
            if headers.get("topic") != BOT_MESSAGE_TOPIC:
                await self._ack(conn, headers, 404, "not implement", json.dumps({"response": None}))
                return
            item: Frame = parse_bot_message(headers, frame.get("data"))
            if not await self._deliver(item, message_id):
                code = self.options.callback_failure_ack_code
                if code is not None:
                    await self._ack(conn, headers, code, "LATER", json.dumps({"response": None}))
                return
            await self._ack(conn, headers, 200, "OK", json.dumps({"response": None}))
        elif kind == "EVENT":
            if headers.get("eventType") not in STREAM_EVENT_TYPES:
                # Nobody consumes it; acking SUCCESS stops pointless redeliveries.
                await self._ack(conn, headers, 200, "OK", json.dumps({"status": "SUCCESS", "message": "ignored"}))
                return
            item = parse_approval_event(headers, frame.get("data"))
            if not await self._deliver(item, message_id):
                await self._ack(conn, headers, 500, "LATER",
                                json.dumps({"status": "LATER", "message": "not persisted, retry later"}))
                return
            await self._ack(conn, headers, 200, "OK", json.dumps({"status": "SUCCESS", "message": "OK"}))
        else:
            log.warning("dingtalk stream: unknown frame type %r (messageId=%s) ignored", kind, message_id)

    async def _handle_card_press(self, conn: _Connection, headers: dict[str, Any], data: Any) -> None:
        assert self._on_card_press is not None
        try:
            press = parse_card_callback(headers, data)
            response = await self._on_card_press(press)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - not persisted: no ACK, the press fails visibly and can be repeated
            self._status.frames_failed += 1
            self._notify()
            log.exception("dingtalk stream: card press messageId=%s not persisted", headers.get("messageId"))
            return
        await self._ack(conn, headers, 200, "OK", json.dumps({"response": response}, ensure_ascii=False))

    async def _deliver(self, item: Frame, message_id: str | None) -> bool:
        try:
            await self._on_frame(item)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the frame stays with DingTalk for a redelivery
            self._status.frames_failed += 1
            self._notify()
            log.exception("dingtalk stream: on_frame failed for messageId=%s; not acknowledged as consumed",
                          message_id)
            return False
        return True

    async def _ack(self, conn: _Connection, headers: dict[str, Any], code: int, message: str, data: str) -> None:
        ack = {
            "code": code,
            "headers": {"messageId": str(headers.get("messageId") or ""), "contentType": "application/json"},
            "message": message,
            "data": data if isinstance(data, str) else json.dumps(data),
        }
        try:
            # The ACK goes to the socket the frame came from: DingTalk waits for it there.
            await conn.ws.send(json.dumps(ack, ensure_ascii=False))
        except ConnectionClosed:
            log.warning("dingtalk stream: connection %d closed before the ACK of %s; DingTalk will redeliver",
                        conn.number, headers.get("messageId"))
            return
        if code == 200:
            self._status.frames_acked += 1
            self._notify()

    async def _shutdown(self) -> None:
        """Give in-flight frames a bounded grace to persist and ack, then close every socket."""
        if self._frame_tasks:
            _, pending = await asyncio.wait(set(self._frame_tasks), timeout=self.options.stop_grace_seconds)
            for task in pending:
                task.cancel()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(), self.options.close_timeout)
            if conn.ws.transport is not None:
                conn.ws.transport.abort()
        leftovers = self._frame_tasks | self._aux_tasks
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        self._frame_tasks.clear()
        self._aux_tasks.clear()
        self._connections.clear()
        self._status.connected = False
        self._status.connected_since = None
        self._notify()
        log.info("dingtalk stream: stopped")


def _decode_frame(raw: str | bytes) -> dict[str, Any] | None:
    try:
        frame = json.loads(raw)
    except ValueError:
        log.warning("dingtalk stream: frame is not JSON; ignored")
        return None
    if not isinstance(frame, dict):
        return None
    return frame


def _reason_of(frame: dict[str, Any]) -> str:
    try:
        return str(json.loads(frame.get("data") or "{}").get("reason", ""))
    except (ValueError, AttributeError):
        return ""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DingTalkError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
