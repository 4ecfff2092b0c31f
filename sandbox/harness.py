"""Test harness: the emulator in a background thread, driven from the test's event loop.

The real dingtalk-stream SDK makes blocking `requests` calls on its loop (§2.8 [OBS]),
so the emulator must never share the loop of the code under test. `Sandbox` starts
it in its own thread with its own loop, on a port the OS picks, and exposes async
methods that hop onto that loop (`run_coroutine_threadsafe` + `wrap_future`).

Typical use (errbot-like):

    async with Sandbox() as sb:
        await sb.say("王建国", "【智慧工厂MES项目】内部群", "周报")
        reply = await sb.next_message("【智慧工厂MES项目】内部群", timeout=5)
        assert "周报" in reply.text

Another test folder builds its own fixture the same way:

    @pytest.fixture
    async def sandbox():
        async with Sandbox(config=EmulatorConfig.for_tests()) as sb:
            yield sb
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar

from .cards import CardPress, CardSnapshot, CardWarning
from .config import EmulatorConfig
from .custom_robots import CustomRobot
from .emulator import Emulator, EmittedEvent, Extension, SandboxError
from .faults import Faults
from .gateway import AckRecord, ConnectionInfo, PushedFrame
from .harness_h5 import H5Helpers
from .harness_notices import NoticeHelpers
from .harness_todo import TodoHelpers
from .media import MediaFile
from .recorder import ReceivedMessage, Record, SentMessage
from .throttle import CallRecord
from .web import page_url, setup_web
from .world import App, FlowStep, User, World

T = TypeVar("T")

__all__ = ["Sandbox", "SandboxError", "FrameInfo", "EmulatorConfig"]


@dataclass(frozen=True)
class FrameInfo:
    """A snapshot of one CALLBACK/EVENT push."""

    message_id: str
    type: str
    topic: str
    event_type: str | None
    state: str                  # queued, sent, acked, expired, dropped
    data: dict[str, Any]
    deliveries: list[tuple[str, int]]
    redeliveries: int
    acks: list[AckRecord]

    @classmethod
    def of(cls, frame: PushedFrame) -> "FrameInfo":
        return cls(frame.message_id, frame.type, frame.topic, frame.event_type, frame.state, frame.data_obj,
                   list(frame.deliveries), frame.redeliveries, list(frame.acks))


class Sandbox(TodoHelpers, H5Helpers, NoticeHelpers):
    def __init__(self, world: World | str | Path | None = None, config: EmulatorConfig | None = None, *,
                 seed: int | None = None, host: str = "127.0.0.1", port: int = 0, frozen_clock: bool = False,
                 extensions: Sequence[Extension] = (), web: bool = False):
        """`web=True` also serves the web chat page (`page_url`) and its JSON API."""
        self.config = config or EmulatorConfig.for_tests()
        self.emulator = Emulator(world, self.config, seed=seed)
        if frozen_clock:
            self.emulator.clock.freeze()
        self._host, self._port = host, port
        self._extensions = ((setup_web,) if web else ()) + tuple(extensions)
        self.web = web
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._cursors: dict[str | None, int] = {}
        self.base_url: str = ""

    # ---- lifecycle ----------------------------------------------------------------
    async def start(self) -> "Sandbox":
        ready: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,), name="dingtalk-sandbox",
                                        daemon=True)
        self._thread.start()
        self.base_url = await asyncio.wrap_future(ready)
        return self

    def start_sync(self, timeout: float = 10.0) -> "Sandbox":
        """For code without an event loop (scripts, sync fixtures)."""
        ready: concurrent.futures.Future[str] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,), name="dingtalk-sandbox",
                                        daemon=True)
        self._thread.start()
        self.base_url = ready.result(timeout)
        return self

    def _thread_main(self, ready: concurrent.futures.Future) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            url = loop.run_until_complete(self.emulator.start(self._host, self._port, extensions=self._extensions))
        except BaseException as exc:  # report start failures to the caller instead of dying silently
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(url)
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            await asyncio.to_thread(self._thread.join, 10)
            self._loop = None
            self._thread = None

    def stop_sync(self) -> None:
        if self._loop is None or self._thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None
            self._thread = None

    async def __aenter__(self) -> "Sandbox":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- bridging -----------------------------------------------------------------
    async def run(self, coro_factory: Callable[[Emulator], Awaitable[T]]) -> T:
        """Run `coro_factory(emulator)` on the emulator's loop and await its result here."""
        if self._loop is None:
            raise RuntimeError("the sandbox is not running")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro_factory(self.emulator), self._loop))

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a plain function on the emulator's loop (state is only touched there)."""

        async def invoke(_: Emulator) -> T:
            return fn(*args, **kwargs)

        return await self.run(invoke)

    # ---- identity -----------------------------------------------------------------
    @property
    def world(self) -> World:
        return self.emulator.world

    @property
    def app(self) -> App:
        return self.world.default_app

    @property
    def client_id(self) -> str:
        return self.app.client_id

    @property
    def client_secret(self) -> str:
        return self.app.client_secret

    @property
    def robot_code(self) -> str:
        return self.app.robot_code

    @property
    def faults(self) -> Faults:
        """Thread-safe: `sb.faults.set(api=..., error_rate=...)` works from the test's loop."""
        return self.emulator.faults

    @property
    def page_url(self) -> str:
        """The web chat page (what `dingpm sandbox` prints); needs `Sandbox(web=True)` and a started sandbox."""
        if not self.web:
            raise RuntimeError("the web chat page is not mounted: create the sandbox with Sandbox(web=True)")
        if not self.base_url:
            raise RuntimeError("the sandbox is not running")
        return page_url(self.base_url)

    def env(self) -> dict[str, str]:
        """Environment for a process running the SDK (set before `import dingtalk_stream`)."""
        return {"DINGTALK_OPENAPI_ENDPOINT": self.base_url}

    def conversation_id(self, key: Any, app: App | str | None = None) -> str:
        """A group (id or title) or a user (id or name, meaning their 1:1 with the bot)."""
        return self.emulator.conversation_id(key, app)

    # ---- users speak --------------------------------------------------------------
    async def say(self, user: str, conversation: str | None, text: str, *, mentions: Iterable[str] = (),
                  at_bot: bool = True, app: str | None = None) -> ReceivedMessage:
        """`user` says `text` to the bot: an @ of the bot in a group, or 1:1 when conversation is None."""
        return await self.call(self.emulator.user_message, user, conversation, text=text, mentions=tuple(mentions),
                               at_bot=at_bot, app=app)

    async def dm(self, user: str, text: str, *, app: str | None = None) -> ReceivedMessage:
        return await self.say(user, None, text, app=app)

    async def send_file(self, user: str, conversation: str | None, data: bytes, file_name: str, *,
                        app: str | None = None) -> ReceivedMessage:
        """A file message. Faithful default: 1:1 only; groups need `config.allow_group_files`."""
        return await self.call(self.emulator.user_file, user, conversation, data, file_name, app=app)

    async def send_picture(self, user: str, conversation: str | None, data: bytes, file_name: str = "image.png", *,
                           app: str | None = None) -> ReceivedMessage:
        return await self.call(self.emulator.user_picture, user, conversation, data, file_name, app=app)

    async def send_rich_text(self, user: str, conversation: str | None, parts: Sequence[str | tuple[str, bytes]], *,
                             app: str | None = None) -> ReceivedMessage:
        return await self.call(self.emulator.user_rich_text, user, conversation, parts, app=app)

    async def send_audio(self, user: str, data: bytes, *, recognition: str = "", duration_ms: int = 3000,
                         app: str | None = None) -> ReceivedMessage:
        return await self.call(self.emulator.user_audio, user, data, recognition=recognition,
                               duration_ms=duration_ms, app=app)

    async def send_video(self, user: str, data: bytes, *, app: str | None = None) -> ReceivedMessage:
        return await self.call(self.emulator.user_video, user, data, app=app)

    async def send_unsupported(self, user: str, conversation: str | None = None) -> ReceivedMessage:
        return await self.call(self.emulator.user_unsupported, user, conversation)

    # ---- the bot speaks -----------------------------------------------------------
    async def next_message(self, conversation: str | None = None, timeout: float = 5.0) -> SentMessage:
        """The next bot message in the conversation (None: any) not yet returned here; waits for it."""
        cid = self.conversation_id(conversation) if conversation is not None else None
        after = self._cursors.get(cid, 0)
        try:
            message = await self.run(lambda em: em.recorder.wait_for(cid, after_seq=after, timeout=timeout))
        except (asyncio.TimeoutError, TimeoutError):
            seen = [(m.msgtype, (m.text or m.title or "")[:60]) for m in self.sent(conversation)]
            raise TimeoutError(f"no new bot message in {conversation!r} within {timeout}s; "
                               f"all bot messages there: {seen}") from None
        self._cursors[cid] = message.seq
        return message  # type: ignore[return-value]

    def sent(self, conversation: str | None = None) -> list[SentMessage]:
        """Every bot message so far (in a conversation, or everywhere); any thread."""
        cid = self.conversation_id(conversation) if conversation is not None else None
        return self.emulator.recorder.sent(cid)

    def received(self, conversation: str | None = None) -> list[ReceivedMessage]:
        cid = self.conversation_id(conversation) if conversation is not None else None
        return self.emulator.recorder.received(cid)

    def transcript(self, conversation: str | None = None) -> list[Record]:
        cid = self.conversation_id(conversation) if conversation is not None else None
        return self.emulator.recorder.history(cid)

    def media(self, media_id: str) -> MediaFile | None:
        return self.emulator.media.by_media_id(media_id)

    # ---- the directory ------------------------------------------------------------
    async def update_user(self, user: str, *, name: str | None = None, active: bool | None = None) -> User:
        """An admin renames someone, or someone leaves (active=False) or comes back; returns the new entry.

        A name that two people share is refused (`AmbiguousName`): name them by userId.
        """
        return await self.call(self.emulator.update_user, user, name=name, active=active)

    # ---- external groups and custom robots ----------------------------------------
    async def add_custom_robot(self, conversation: str, name: str) -> CustomRobot:
        """An admin adds a custom robot (加签) to a group: `.webhook` and `.secret` are what the bot is given.

        Sign a send with `sandbox.custom_robots.signed_url(robot.webhook, robot.secret, sb.now_ms())`.
        """
        return await self.call(self.emulator.add_custom_robot, conversation, name)

    async def remove_custom_robot(self, robot_id: str) -> CustomRobot:
        return await self.call(self.emulator.remove_custom_robot, robot_id)

    def refuse_app_robots_in_external_groups(self, refuse: bool = True) -> None:
        """The UNCONFIRMED platform rule as a switch: the app's robot cannot be in a group with outsiders."""
        self.config.app_robots_in_external_groups = not refuse

    # ---- approvals ----------------------------------------------------------------
    async def approve(self, instance_id: str, approver: str, remark: str = "") -> dict[str, Any]:
        """`approver` agrees in the DingTalk client; returns the instance as the get API shows it."""
        return await self._act(instance_id, approver, "agree", remark)

    async def refuse(self, instance_id: str, approver: str, remark: str = "") -> dict[str, Any]:
        return await self._act(instance_id, approver, "refuse", remark)

    async def _act(self, instance_id: str, approver: str, result: str, remark: str) -> dict[str, Any]:
        user = self.world.user(approver)

        def act() -> dict[str, Any]:
            instance = self.emulator.workflow.act(instance_id, user.user_id, result, remark)
            return instance.to_api(self.world.corp_id)

        return await self.call(act)

    async def terminate(self, instance_id: str, user: str | None = None, remark: str = "", *,
                        is_system: bool = False) -> dict[str, Any]:
        """The originator (default) revokes the instance in the client."""

        def revoke() -> dict[str, Any]:
            instance = self.emulator.workflow.get(instance_id)
            operator = self.world.user(user).user_id if user else instance.originator.user_id
            self.emulator.workflow.terminate(instance_id, operating_user_id=operator, is_system=is_system,
                                             remark=remark)
            return instance.to_api(self.world.corp_id)

        return await self.call(revoke)

    async def instance(self, instance_id: str) -> dict[str, Any]:
        return await self.call(lambda: self.emulator.workflow.get(instance_id).to_api(self.world.corp_id))

    async def instance_ids(self) -> list[str]:
        return await self.call(lambda: list(self.emulator.workflow.instances))

    async def set_approvers(self, form: str, steps: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Configure a form's flow like an admin in the console: [("NONE", ["刘强"]), ("OR", [...])]."""
        flow = [FlowStep(kind.upper(), tuple(self.world.user(u).user_id for u in users)) for kind, users in steps]
        await self.call(self.emulator.workflow.set_flow, form, flow)

    def events(self, event_type: str | None = None) -> list[EmittedEvent]:
        return [e for e in list(self.emulator.events) if event_type in (None, e.event_type)]

    # ---- cards --------------------------------------------------------------------
    async def press(self, user: str, out_track_id: str, action: str, params: dict[str, Any] | None = None, *,
                    conversation: str | None = None, pinned: bool | None = None, raw: bool = False) -> CardPress:
        """`user` presses button `action` (typing `params` into the card's inputs); returns what they saw.

        Waits for the bot's ACK (at most `card_callback_timeout` on the emulator clock).
        `raw=True` sends `params` as the callback params, bypassing the card's definition.
        """
        cid = self.conversation_id(conversation) if conversation is not None else None
        return await self.run(lambda em: em.cards.press(user, out_track_id, action, params, conversation=cid,
                                                        pinned=pinned, raw=raw))

    async def card(self, out_track_id: str) -> CardSnapshot:
        cards = self.emulator.cards
        return await self.call(lambda: cards.snapshot(cards.card(out_track_id)))

    async def cards(self, conversation: str | None = None) -> list[CardSnapshot]:
        """Every card (or those posted or pinned in a conversation), oldest first."""
        cards = self.emulator.cards
        cid = self.conversation_id(conversation) if conversation is not None else None
        return await self.call(lambda: [cards.snapshot(c) for c in
                                        (cards.in_conversation(cid) if cid else cards.cards.values())])

    async def top_card(self, conversation: str, user: str | None = None) -> CardSnapshot | None:
        """The card pinned at the top of the conversation now (as `user` sees it, if given), or None."""
        cards = self.emulator.cards
        cid = self.conversation_id(conversation)
        viewer = self.world.user(user) if user else None

        def top() -> CardSnapshot | None:
            card = cards.top_card(cid, viewer)
            return cards.snapshot(card) if card else None

        return await self.call(top)

    async def card_view(self, out_track_id: str, user: str, conversation: str | None = None) -> dict[str, Any]:
        """The card drawn for `user` (title, fields, buttons … with their private data), as the page shows it."""
        cards = self.emulator.cards
        viewer = self.world.user(user)
        cid = self.conversation_id(conversation) if conversation is not None else None
        return await self.call(lambda: cards.view(cards.card(out_track_id), viewer, conversation_id=cid))

    async def wait_for_card(self, out_track_id: str, predicate: Callable[[CardSnapshot], Any] | None = None,
                            timeout: float = 5.0) -> CardSnapshot:
        """Wait until the card exists (and `predicate(snapshot)` holds); no polling."""
        cards = self.emulator.cards

        def ready() -> CardSnapshot | None:
            card = cards.cards.get(out_track_id)
            snap = cards.snapshot(card) if card else None
            return snap if snap and (predicate is None or predicate(snap)) else None

        return await self.run(lambda em: em.wait_until(ready, timeout))

    def card_presses(self) -> list[CardPress]:
        return list(self.emulator.cards.presses)

    def card_warnings(self) -> list[CardWarning]:
        """Data that a real client would silently ignore (undeclared keys, non-strings, wrong types)."""
        return list(self.emulator.cards.warnings)

    # ---- clock --------------------------------------------------------------------
    async def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward; timers that become due fire before this returns."""
        await self.call(self.emulator.clock.advance, seconds)

    async def freeze_clock(self) -> None:
        await self.call(self.emulator.clock.freeze)

    async def unfreeze_clock(self) -> None:
        await self.call(self.emulator.clock.unfreeze)

    def now_ms(self) -> int:
        return self.emulator.clock.now_ms()

    # ---- stream connections -------------------------------------------------------
    async def connections(self, app: str | None = None, *, live: bool = True) -> list[ConnectionInfo]:
        app_id = self.world.app(app).client_id if app else None

        def snapshot() -> list[ConnectionInfo]:
            conns = self.emulator.gateway.live(app_id) if live else [
                c for c in self.emulator.gateway.connections.values() if app_id in (None, c.app.client_id)]
            return [c.info() for c in conns]

        return await self.call(snapshot)

    async def wait_for_connection(self, *, app: str | None = None, count: int = 1, opened: int | None = None,
                                  timeout: float = 10.0) -> ConnectionInfo:
        """Wait until `count` connections are open (or `opened` were ever opened); returns the newest."""
        app_id = self.world.app(app).client_id
        gateway = self.emulator.gateway

        def ready() -> ConnectionInfo | None:
            every = [c for c in gateway.connections.values() if c.app.client_id == app_id]
            open_now = [c for c in every if c.state == "open"]
            if len(open_now) < count or (opened is not None and len(every) < opened):
                return None
            return open_now[-1].info()      # connections are kept in the order they opened

        return await self.run(lambda em: gateway.wait_until(ready, timeout))

    async def wait_for_close(self, connection_id: str, timeout: float = 10.0) -> ConnectionInfo:
        gateway = self.emulator.gateway

        def closed() -> ConnectionInfo | None:
            conn = gateway.connections[connection_id]
            return conn.info() if conn.state == "closed" else None

        return await self.run(lambda em: gateway.wait_until(closed, timeout))

    async def frame(self, message_id: str) -> FrameInfo:
        return await self.call(lambda: FrameInfo.of(self.emulator.gateway.frames[message_id]))

    async def wait_for_ack(self, message_id: str, timeout: float = 10.0) -> FrameInfo:
        """Wait until the push with this messageId was ACKed with success."""
        return await self._wait_for_frame(message_id, lambda frame: frame.acked, timeout)

    async def wait_for_acks(self, message_id: str, count: int, timeout: float = 10.0) -> FrameInfo:
        """Wait until the push with this messageId got ``count`` ACKs (one per delivery, duplicates included)."""
        return await self._wait_for_frame(message_id, lambda frame: len(frame.acks) >= count, timeout)

    async def wait_for_deliveries(self, message_id: str, count: int, timeout: float = 10.0) -> FrameInfo:
        return await self._wait_for_frame(message_id, lambda frame: len(frame.deliveries) >= count, timeout)

    async def _wait_for_frame(self, message_id: str, ready: Callable[[PushedFrame], bool],
                              timeout: float) -> FrameInfo:
        gateway = self.emulator.gateway

        def snapshot() -> FrameInfo | None:
            frame = gateway.frames.get(message_id)
            return FrameInfo.of(frame) if frame is not None and ready(frame) else None

        return await self.run(lambda em: gateway.wait_until(snapshot, timeout))

    async def _resolve_connection(self, connection_id: str | None) -> str:
        if connection_id is not None:
            return connection_id
        live = await self.connections()
        if len(live) != 1:
            raise SandboxError(f"say which connection: {len(live)} are open")
        return live[0].id

    async def ping(self, connection_id: str | None = None, timeout: float = 10.0) -> AckRecord:
        """Send a SYSTEM ping and wait for the client's ACK (which must echo `opaque`)."""
        conn_id = await self._resolve_connection(connection_id)
        gateway = self.emulator.gateway
        frame = await self.call(gateway.ping, conn_id)
        return await self.run(lambda em: gateway.wait_until(lambda: frame.ack, timeout))

    async def disconnect(self, connection_id: str | None = None,
                         reason: str = "persistent connection is timeout") -> str:
        conn_id = await self._resolve_connection(connection_id)
        await self.call(self.emulator.gateway.disconnect, conn_id, reason)
        return conn_id

    async def drop(self, connection_id: str | None = None) -> str:
        """Abort the TCP connection: the client sees no close frame."""
        conn_id = await self._resolve_connection(connection_id)
        await self.call(self.emulator.gateway.drop, conn_id)
        return conn_id

    async def freeze(self, connection_id: str | None = None) -> str:
        """Make the connection silently dead: no frames, no pongs, nothing read."""
        conn_id = await self._resolve_connection(connection_id)
        await self.call(self.emulator.gateway.freeze, conn_id)
        return conn_id

    async def unfreeze(self, connection_id: str) -> None:
        await self.call(self.emulator.gateway.unfreeze, connection_id)

    async def close(self, connection_id: str | None = None, code: int = 1000) -> str:
        """A normal server-initiated close handshake."""
        conn_id = await self._resolve_connection(connection_id)
        await self.run(lambda em: em.gateway.close(conn_id, code))
        return conn_id

    # ---- counters -----------------------------------------------------------------
    def calls(self, api: str | None = None) -> int | dict[str, int]:
        """How many times an API was called (by name, e.g. "robot.groupMessages.send"), or all counts."""
        counters = self.emulator.counters
        return counters.snapshot() if api is None else counters.count(api)

    def call_log(self, api: str | None = None) -> list[CallRecord]:
        return self.emulator.counters.log(api)

    def reset_calls(self) -> None:
        self.emulator.counters.reset()
