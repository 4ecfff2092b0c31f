"""The Stream gateway: connections/open, the WebSocket endpoint, frames, ACKs, redelivery.

Protocol (§2): `POST /v1.0/gateway/connections/open` checks the app's credentials and
returns `{endpoint, ticket}`; the ticket opens exactly one WebSocket within 90 s.
Downstream frames are `{"specVersion","type","headers","data"}` with string header
values and `data` as a JSON string. Each CALLBACK/EVENT push goes to one randomly
chosen live connection of the app that subscribed to it; an unACKed push is pushed
again with the same messageId after `redelivery_timeout` (§13.2), and pushes made
while the app has no connection wait up to `retention` seconds for one.

Connection faults live here too: `disconnect` (SYSTEM frame, then a TCP close after
the grace delay), `drop` (abort: no close frame), `freeze` (the socket stays open but
nothing moves either way: no frames, no pongs, ACKs unread) and a normal `close`.

All state is touched on the emulator loop only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import WSMsgType, web

from .clock import Clock, TimerHandle
from .config import EmulatorConfig
from .faults import Faults
from .ids import IdFactory
from .openapi_common import EMULATOR_KEY, ApiContext, NewApiError, api, json_response, missing
from .signals import ChangeSignal
from .world import App, World

log = logging.getLogger(__name__)

BOT_MESSAGE_TOPIC = "/v1.0/im/bot/messages/get"
EVENT_TOPIC = "*"
MAX_FRAME_BYTES = 1024 * 1024   # keep below the `websockets` default max_size (§13.1 item 2)


@dataclass(frozen=True)
class Subscriptions:
    callbacks: frozenset[str]
    events: bool

    @classmethod
    def parse(cls, raw: Any) -> "Subscriptions":
        callbacks: set[str] = set()
        events = False
        for item in raw if isinstance(raw, list) else []:
            if not isinstance(item, dict):
                continue
            kind, topic = str(item.get("type", "")).upper(), str(item.get("topic", ""))
            if kind == "CALLBACK" and topic:
                callbacks.add(topic)
            elif kind == "EVENT" and topic == EVENT_TOPIC:
                # Only "*" is supported: event types are chosen in the console (§2.1).
                events = True
            # SYSTEM subscriptions ([GO]) are accepted and implied.
        return cls(frozenset(callbacks), events)


@dataclass
class Ticket:
    value: str
    app_id: str
    subscriptions: Subscriptions
    created_at: float
    ua: str = ""
    local_ip: str = ""


@dataclass
class AckRecord:
    connection_id: str
    message_id: str
    code: int | None
    message: str
    data: Any                   # as sent (usually a JSON string)
    at: int                     # ms
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def data_obj(self) -> Any:
        if isinstance(self.data, str):
            try:
                return json.loads(self.data)
            except json.JSONDecodeError:
                return self.data
        return self.data


@dataclass
class PushedFrame:
    """A CALLBACK or EVENT push, tracked until ACKed, expired or dropped."""

    message_id: str
    app_id: str
    type: str                   # CALLBACK / EVENT
    topic: str
    headers: dict[str, str]     # without connectionId, which depends on the delivery
    data: str
    created_at: int
    event_type: str | None = None
    state: str = "queued"       # queued, sent, acked, expired (never ACKed), dropped
    deliveries: list[tuple[str, int]] = field(default_factory=list)   # (connection id, ms)
    redeliveries: int = 0
    acks: list[AckRecord] = field(default_factory=list)
    timer: TimerHandle | None = field(default=None, repr=False)
    queued_at: float | None = None
    # False: pushed once to a live connection or dropped; never queued, never redelivered
    # (card callbacks, P2 §7.2).
    reliable: bool = True

    @property
    def acked(self) -> bool:
        return self.state == "acked"

    @property
    def data_obj(self) -> Any:
        return json.loads(self.data)

    def render(self, connection_id: str) -> str:
        headers = dict(self.headers)
        if self.type == "CALLBACK":
            # Keep the observed key order: appId, connectionId, contentType, messageId, time, topic.
            headers = {"appId": headers.pop("appId"), "connectionId": connection_id, **headers}
        return json.dumps({"specVersion": "1.0", "type": self.type, "headers": headers, "data": self.data},
                          ensure_ascii=False)


@dataclass
class SystemFrame:
    message_id: str
    topic: str
    data: str
    connection_id: str
    sent_at: int
    ack: AckRecord | None = None


class StreamConnection:
    def __init__(self, conn_id: str, app: App, subscriptions: Subscriptions, ws: web.WebSocketResponse,
                 transport: asyncio.Transport | None, opened_at: int, ua: str):
        self.id = conn_id
        self.app = app
        self.subscriptions = subscriptions
        self.ws = ws
        self.transport = transport
        self.opened_at = opened_at
        self.ua = ua
        self.state = "open"         # open, draining (disconnect sent), closed
        self.frozen = False
        self.close_code: int | None = None
        self.closed_by: str | None = None    # "client", "server", "drop", "freeze-guard", "disconnect-timeout"
        self.outbox: asyncio.Queue[str] = asyncio.Queue()
        self.writer: asyncio.Task | None = None
        self.timers: list[TimerHandle] = []
        self.freeze_guard: asyncio.TimerHandle | None = None
        self.sent_message_ids: list[str] = []
        self.pings_received = 0

    def accepts(self, frame: PushedFrame) -> bool:
        if frame.type == "CALLBACK":
            return frame.topic in self.subscriptions.callbacks
        if frame.type == "EVENT":
            return self.subscriptions.events
        return True

    def info(self) -> "ConnectionInfo":
        return ConnectionInfo(self.id, self.app.client_id, self.opened_at, self.state, self.frozen,
                              sorted(self.subscriptions.callbacks), self.subscriptions.events,
                              list(self.sent_message_ids), self.close_code, self.closed_by, self.ua)


@dataclass(frozen=True)
class ConnectionInfo:
    """A snapshot of a connection, safe to hand to another thread."""

    id: str
    app_id: str
    opened_at: int
    state: str
    frozen: bool
    callback_topics: list[str]
    events: bool
    sent_message_ids: list[str]
    close_code: int | None
    closed_by: str | None
    ua: str


class StreamGateway:
    def __init__(self, *, world: World, clock: Clock, ids: IdFactory, config: EmulatorConfig,
                 faults: Faults, rng: random.Random, signal: ChangeSignal | None = None):
        self.world = world
        self.clock = clock
        self.ids = ids
        self.config = config
        self.faults = faults
        self.rng = rng
        self.tickets: dict[str, Ticket] = {}
        self.connections: dict[str, StreamConnection] = {}       # every connection ever opened
        self.frames: dict[str, PushedFrame] = {}
        self.system_frames: dict[str, SystemFrame] = {}
        self.acks: list[AckRecord] = []
        self.unmatched_acks: list[AckRecord] = []
        self._queued: dict[str, deque[PushedFrame]] = {}
        self._signal = signal or ChangeSignal()
        self._listeners: list[Callable[[str, Any], None]] = []

    # ---- notifications ------------------------------------------------------------
    def _bump(self, what: str, obj: Any = None) -> None:
        for listener in list(self._listeners):
            listener(what, obj)
        self._signal.bump()

    def add_listener(self, listener: Callable[[str, Any], None]) -> Callable[[], None]:
        """Called with ("open"|"close"|"push"|"ack", obj) on the emulator loop."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def wait_until(self, predicate: Callable[[], Any], timeout: float | None) -> Any:
        """Wait (event-driven) until `predicate()` returns something truthy, and return it."""
        return await self._signal.wait_until(predicate, timeout)

    # ---- tickets ------------------------------------------------------------------
    def issue_ticket(self, app: App, subscriptions: Subscriptions, *, ua: str = "", local_ip: str = "") -> Ticket:
        ticket = Ticket(self.ids.ticket(), app.client_id, subscriptions, self.clock.now(), ua, local_ip)
        self.tickets[ticket.value] = ticket
        return ticket

    def _redeem(self, value: str) -> Ticket | None:
        ticket = self.tickets.pop(value, None)     # one ticket opens exactly one connection
        if ticket is None or self.clock.now() - ticket.created_at > self.config.ticket_ttl:
            return None
        return ticket

    # ---- connections --------------------------------------------------------------
    def live(self, app_id: str | None = None) -> list[StreamConnection]:
        return [c for c in self.connections.values()
                if c.state != "closed" and (app_id is None or c.app.client_id == app_id)]

    def _dispatchable(self, frame: PushedFrame) -> list[StreamConnection]:
        # A frozen connection looks alive to the server, so it can still be picked.
        return [c for c in self.connections.values()
                if c.state == "open" and c.app.client_id == frame.app_id and c.accepts(frame)]

    async def serve_websocket(self, request: web.Request) -> web.StreamResponse:
        ticket = self._redeem(request.query.get("ticket", ""))
        if ticket is None:
            return json_response({"code": "invalidTicket", "message": "ticket无效或已过期",
                                  "requestid": self.ids.request_id()}, status=401)
        app = self.world.apps[ticket.app_id]
        if len(self.live(app.client_id)) >= self.config.max_connections_per_app:
            return json_response({"code": "Forbidden.ConnectionLimit", "message": "应用连接数超过上限",
                                  "requestid": self.ids.request_id()}, status=403)
        ws = web.WebSocketResponse(autoping=True, max_msg_size=MAX_FRAME_BYTES)
        if not ws.can_prepare(request).ok:
            return json_response({"code": "invalidRequest", "message": "需要WebSocket升级请求",
                                  "requestid": self.ids.request_id()}, status=400)
        await ws.prepare(request)
        conn = StreamConnection(self.ids.connection_id(), app, ticket.subscriptions, ws, request.transport,
                                self.clock.now_ms(), ticket.ua)
        self.connections[conn.id] = conn
        conn.writer = asyncio.get_running_loop().create_task(self._write_loop(conn), name=f"stream-writer-{conn.id}")
        self._schedule_ping(conn)
        if self.config.periodic_disconnect > 0:
            conn.timers.append(self.clock.call_later(self.config.periodic_disconnect, self.disconnect, conn.id,
                                                     "persistent connection is timeout"))
        log.info("stream connection %s opened for %s", conn.id, app.client_id)
        self._bump("open", conn)
        self._flush_queue(app.client_id)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_client_frame(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._on_client_frame(conn, msg.data.decode("utf-8", "replace"))
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._closed(conn, ws.close_code)
        return ws

    async def _write_loop(self, conn: StreamConnection) -> None:
        try:
            while True:
                text = await conn.outbox.get()
                if conn.frozen:
                    continue        # a dead link: the frame is lost on the way
                await conn.ws.send_str(text)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("stream writer of %s failed", conn.id)

    def _closed(self, conn: StreamConnection, code: int | None) -> None:
        if conn.state == "closed":
            return
        conn.state = "closed"
        conn.close_code = code
        if conn.closed_by is None:
            conn.closed_by = "client"
        for timer in conn.timers:
            timer.cancel()
        if conn.freeze_guard is not None:
            conn.freeze_guard.cancel()
        if conn.writer is not None:
            conn.writer.cancel()
        log.info("stream connection %s closed (%s, code %s)", conn.id, conn.closed_by, code)
        self._bump("close", conn)

    def _send(self, conn: StreamConnection, text: str) -> None:
        if conn.state != "closed":
            conn.outbox.put_nowait(text)

    # ---- pushes -------------------------------------------------------------------
    def push_callback(self, app: App, topic: str, data: dict[str, Any], *, reliable: bool = True) -> PushedFrame:
        now = self.clock.now_ms()
        headers = {"appId": app.unified_app_id, "contentType": "application/json",
                   "messageId": self.ids.frame_message_id(now), "time": str(now), "topic": topic}
        frame = PushedFrame(headers["messageId"], app.client_id, "CALLBACK", topic, headers,
                            json.dumps(data, ensure_ascii=False), now, reliable=reliable)
        return self._push(frame)

    def push_event(self, app: App, event_type: str, data: dict[str, Any], *, born_at: int | None = None) -> PushedFrame:
        now = self.clock.now_ms()
        headers = {"topic": EVENT_TOPIC, "messageId": self.ids.frame_message_id(now), "contentType": "application/json",
                   "time": str(now), "eventType": event_type, "eventId": self.ids.event_id(),
                   "eventCorpId": app.corp_id, "eventBornTime": str(born_at if born_at is not None else now),
                   "eventUnifiedAppId": app.unified_app_id}
        frame = PushedFrame(headers["messageId"], app.client_id, "EVENT", EVENT_TOPIC, headers,
                            json.dumps(data, ensure_ascii=False), now, event_type=event_type)
        return self._push(frame)

    def _push(self, frame: PushedFrame) -> PushedFrame:
        if len(frame.data.encode()) > MAX_FRAME_BYTES:
            raise ValueError("frame data over 1 MiB")
        self.frames[frame.message_id] = frame
        self._deliver(frame)
        self._bump("push", frame)
        return frame

    def _deliver(self, frame: PushedFrame) -> None:
        candidates = self._dispatchable(frame)
        if not candidates:
            if not frame.reliable or (self.live(frame.app_id) and
                                      not any(c.accepts(frame) for c in self.live(frame.app_id))):
                # Not kept for later, or connected but nobody subscribed to this topic.
                frame.state = "dropped"
                return
            self._enqueue(frame)
            return
        conn = self.rng.choice(candidates)
        frame.state = "sent"
        frame.queued_at = None
        frame.deliveries.append((conn.id, self.clock.now_ms()))
        conn.sent_message_ids.append(frame.message_id)
        self._send(conn, frame.render(conn.id))
        if frame.timer is not None:
            frame.timer.cancel()
        if frame.reliable:
            frame.timer = self.clock.call_later(self.config.redelivery_timeout, self._ack_timeout, frame.message_id)

    def _enqueue(self, frame: PushedFrame) -> None:
        frame.state = "queued"
        frame.queued_at = self.clock.now()
        self._queued.setdefault(frame.app_id, deque()).append(frame)
        self.clock.call_later(self.config.retention, self._retention_expired, frame.message_id)

    def _retention_expired(self, message_id: str) -> None:
        frame = self.frames.get(message_id)
        if frame is not None and frame.state == "queued" and \
                frame.queued_at is not None and self.clock.now() - frame.queued_at >= self.config.retention:
            frame.state = "dropped"
            queue = self._queued.get(frame.app_id)
            if queue and frame in queue:
                queue.remove(frame)

    def _flush_queue(self, app_id: str) -> None:
        queue = self._queued.get(app_id)
        if not queue:
            return
        waiting = list(queue)
        queue.clear()
        for frame in waiting:
            if frame.state != "queued":
                continue
            if self._dispatchable(frame):
                self._deliver(frame)
            else:
                queue.append(frame)

    def _ack_timeout(self, message_id: str) -> None:
        frame = self.frames.get(message_id)
        if frame is None or frame.state != "sent":
            return
        if frame.redeliveries < self.config.redelivery_count:
            frame.redeliveries += 1
            log.info("redelivering unacked %s (%d)", message_id, frame.redeliveries)
            self._deliver(frame)
            self._bump("push", frame)
        else:
            frame.state = "expired"
            self._bump("expired", frame)

    # ---- client frames (ACKs) -----------------------------------------------------
    def _on_client_frame(self, conn: StreamConnection, text: str) -> None:
        if conn.frozen:
            return
        try:
            msg = json.loads(text)
        except json.JSONDecodeError:
            log.warning("non-JSON frame from %s: %.200s", conn.id, text)
            return
        if not isinstance(msg, dict):
            return
        headers = msg.get("headers") if isinstance(msg.get("headers"), dict) else {}
        message_id = str(headers.get("messageId", ""))
        code = msg.get("code")
        try:
            code = int(code) if code is not None else None
        except (TypeError, ValueError):
            code = None
        ack = AckRecord(conn.id, message_id, code, str(msg.get("message", "")), msg.get("data"),
                        self.clock.now_ms(), msg)
        system = self.system_frames.get(message_id)
        if system is not None:
            system.ack = ack
            self.acks.append(ack)
            self._bump("ack", ack)
            return
        frame = self.frames.get(message_id)
        if frame is None:
            self.unmatched_acks.append(ack)
            self._bump("ack", ack)
            return
        if self.faults.take_ignored_ack():
            return          # lost on the way: the redelivery timer still runs
        self.acks.append(ack)
        frame.acks.append(ack)
        if self._is_success(frame, ack) and frame.state in ("sent", "expired"):
            frame.state = "acked"
            if frame.timer is not None:
                frame.timer.cancel()
                frame.timer = None
            if self.faults.take_duplicate(frame.topic if frame.type == "CALLBACK" else (frame.event_type or "")):
                self._send_duplicate(frame)
        self._bump("ack", ack)

    @staticmethod
    def _is_success(frame: PushedFrame, ack: AckRecord) -> bool:
        if ack.code != 200:
            return False
        if frame.type == "EVENT":
            # [PY] 0.24.3 echoes the event data instead of {"status": …}: success if code is 200.
            data = ack.data_obj
            if isinstance(data, dict) and data.get("status") == "LATER":
                return False
        return True

    def _send_duplicate(self, frame: PushedFrame) -> None:
        candidates = self._dispatchable(frame)
        if candidates:
            conn = self.rng.choice(candidates)
            frame.deliveries.append((conn.id, self.clock.now_ms()))
            conn.sent_message_ids.append(frame.message_id)
            self._send(conn, frame.render(conn.id))

    # ---- SYSTEM frames ------------------------------------------------------------
    def _system(self, conn: StreamConnection, topic: str, data: dict[str, Any]) -> SystemFrame:
        now = self.clock.now_ms()
        frame = SystemFrame(self.ids.system_message_id(now), topic, json.dumps(data, ensure_ascii=False), conn.id, now)
        self.system_frames[frame.message_id] = frame
        text = json.dumps({"specVersion": "1.0", "type": "SYSTEM",
                           "headers": {"contentType": "application/json", "messageId": frame.message_id,
                                       "time": str(now), "topic": topic},
                           "data": frame.data}, ensure_ascii=False)
        self._send(conn, text)
        return frame

    def _schedule_ping(self, conn: StreamConnection) -> None:
        if self.config.ping_interval > 0:
            conn.timers.append(self.clock.call_later(self.config.ping_interval, self._periodic_ping, conn.id))

    def _periodic_ping(self, conn_id: str) -> None:
        conn = self.connections.get(conn_id)
        if conn is None or conn.state == "closed":
            return
        self.ping(conn_id)
        self._schedule_ping(conn)

    def ping(self, conn_id: str, opaque: str | None = None) -> SystemFrame:
        conn = self._conn(conn_id)
        return self._system(conn, "ping", {"opaque": opaque or self.ids.uuid()})

    def disconnect(self, conn_id: str, reason: str = "persistent connection is timeout") -> SystemFrame | None:
        """Announce a disconnect; close the TCP connection after the grace delay unless the client did."""
        conn = self._conn(conn_id)
        if conn.state != "open":
            return None
        conn.state = "draining"     # no new pushes go to it
        frame = self._system(conn, "disconnect", {"reason": reason})
        conn.timers.append(self.clock.call_later(self.config.disconnect_close_delay, self._close_after_disconnect,
                                                 conn.id))
        self._bump("draining", conn)
        return frame

    def _close_after_disconnect(self, conn_id: str) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None and conn.state != "closed":
            conn.closed_by = "disconnect-timeout"
            if conn.transport is not None:
                conn.transport.close()

    # ---- connection faults --------------------------------------------------------
    def drop(self, conn_id: str) -> None:
        """Abrupt loss: abort the TCP connection, no WebSocket close frame."""
        conn = self._conn(conn_id)
        if conn.state == "closed":
            return
        conn.closed_by = "drop"
        if conn.transport is not None:
            conn.transport.abort()

    async def close(self, conn_id: str, code: int = 1000, message: str = "") -> None:
        """A normal close handshake initiated by the server."""
        conn = self._conn(conn_id)
        if conn.state == "closed":
            return
        conn.closed_by = "server"
        await conn.ws.close(code=code, message=message.encode())

    def freeze(self, conn_id: str) -> None:
        """A silently dead connection: no frames out, nothing read (so no pongs, no ACKs)."""
        conn = self._conn(conn_id)
        if conn.state == "closed" or conn.frozen:
            return
        conn.frozen = True
        if conn.transport is not None:
            conn.transport.pause_reading()
        # Nothing is read any more, so the server would never notice the client leaving:
        # bound the hold in real time so a test run cannot leak sockets.
        conn.freeze_guard = asyncio.get_running_loop().call_later(self.config.freeze_max_hold, self._freeze_guard,
                                                                  conn.id)
        self._bump("freeze", conn)

    def unfreeze(self, conn_id: str) -> None:
        conn = self._conn(conn_id)
        if not conn.frozen:
            return
        conn.frozen = False
        if conn.freeze_guard is not None:
            conn.freeze_guard.cancel()
        if conn.transport is not None and not conn.transport.is_closing():
            conn.transport.resume_reading()

    def _freeze_guard(self, conn_id: str) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None and conn.state != "closed":
            conn.closed_by = "freeze-guard"
            if conn.transport is not None:
                conn.transport.abort()

    def _conn(self, conn_id: str) -> StreamConnection:
        try:
            return self.connections[conn_id]
        except KeyError:
            raise KeyError(f"no stream connection {conn_id!r}") from None

    # ---- lifecycle ----------------------------------------------------------------
    async def shutdown(self) -> None:
        for frame in self.frames.values():
            if frame.timer is not None:
                frame.timer.cancel()
        for conn in list(self.connections.values()):
            if conn.state == "closed":
                continue
            conn.closed_by = conn.closed_by or "shutdown"
            if conn.frozen or conn.transport is None:
                if conn.transport is not None:
                    conn.transport.abort()
                continue
            try:
                await asyncio.wait_for(conn.ws.close(code=1001, message=b"server shutdown"), 2.0)
            except (asyncio.TimeoutError, ConnectionError, RuntimeError):
                if conn.transport is not None:
                    conn.transport.abort()


# ---- HTTP routes ------------------------------------------------------------------------

@api("gateway.connections.open", "new", auth="none")
async def open_connection(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    client_id, client_secret = body.get("clientId"), body.get("clientSecret")
    if not client_id:
        raise missing("clientId")
    if not client_secret:
        raise missing("clientSecret")
    app = ctx.emulator.world.apps.get(str(client_id))
    if app is None or app.client_secret != client_secret:
        raise NewApiError(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
    ctx.throttle(app)
    gateway = ctx.emulator.gateway
    ticket = gateway.issue_ticket(app, Subscriptions.parse(body.get("subscriptions")),
                                  ua=str(body.get("ua", "")), local_ip=str(body.get("localIp", "")))
    # The WebSocket lives on the same server; answer with the host the client used.
    return ctx.ok({"endpoint": f"ws://{request.host}/connect", "ticket": ticket.value})


async def websocket_endpoint(request: web.Request) -> web.StreamResponse:
    return await request.app[EMULATOR_KEY].gateway.serve_websocket(request)
