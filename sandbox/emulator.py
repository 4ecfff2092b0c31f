"""The emulator: one object holding the world and every piece of emulated DingTalk state.

It runs an aiohttp server (OpenAPI of both hosts + the Stream WebSocket on one port)
and offers the user-side actions that a DingTalk client would perform: speaking to
the bot, sending files, approving. Every method here runs on the emulator's own event
loop; `sandbox.harness.Sandbox` runs it in a background thread and bridges calls.

State a web page (or any add-on) can use:
  emulator.wait_until(predicate, timeout)   wake on any state change, no polling
  emulator.recorder   transcript per conversation; `subscribe()`, `wait_for()`, `history()`
  emulator.gateway    stream connections; `add_listener()`, `wait_until()`
  emulator.workflow   forms and approval instances
  emulator.todos      待办 tasks; emulator.h5   workbench homepages and 免登 codes
  emulator.work_notices   工作通知 sent by apps
  emulator.cards      interactive cards (instances, pins, presses, warnings)
  emulator.user_message(...) / approve(...)   act as a user
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from aiohttp import web

from .card_templates import CardCatalog
from .cards import CardPlatform
from .clock import Clock
from .config import EmulatorConfig
from .custom_robots import CustomRobot
from .errors import SandboxError
from .faults import Faults
from .gateway import BOT_MESSAGE_TOPIC, StreamGateway
from .h5 import H5Apps
from .ids import IdFactory
from .inbound import UNKNOWN_MSG_TEXT, build_payload, parse_mentions
from .media import MediaFile, MediaStore
from .messages import Normalized
from .recorder import ReceivedMessage, Recorder, SentMessage
from .sessions import SessionStore
from .signals import ChangeSignal
from .throttle import CallCounters, Throttle
from .todo import TodoStore
from .worknotice import WorkNotices
from .tokens import TokenStore
from .workflow import WorkflowEngine
from .world import App, Group, User, World

log = logging.getLogger(__name__)

Extension = Callable[[web.Application, "Emulator"], None]


@dataclass
class EmittedEvent:
    event_type: str
    data: dict[str, Any]
    skipped: bool
    message_ids: list[str] = field(default_factory=list)


class Emulator:
    def __init__(self, world: World | str | Path | None = None, config: EmulatorConfig | None = None, *,
                 clock: Clock | None = None, seed: int | None = None):
        self.world = world if isinstance(world, World) else World.load(world)
        self.config = config or EmulatorConfig()
        self.clock = clock or Clock()
        # Separate streams so that, with a seed, dispatch choices do not shift when
        # an unrelated id is generated.
        master = random.Random(seed)
        self.ids = IdFactory(random.Random(master.getrandbits(64)))
        self.rng = random.Random(master.getrandbits(64))
        self.faults = Faults(random.Random(master.getrandbits(64)))
        self.signal = ChangeSignal()
        self.recorder = Recorder(self.signal)
        self.media = MediaStore(self.ids)
        self.tokens = TokenStore(self.world, self.clock, self.ids, self.config.token_ttl)
        self.sessions = SessionStore(self.clock, self.ids)
        self.throttle = Throttle(self.clock, lambda: self.config.qps_limit)
        self.counters = CallCounters()
        self.gateway = StreamGateway(world=self.world, clock=self.clock, ids=self.ids, config=self.config,
                                     faults=self.faults, rng=self.rng, signal=self.signal)
        self.workflow = WorkflowEngine(world=self.world, clock=self.clock, ids=self.ids, config=self.config,
                                       emit=self._emit_event)
        self.todos = TodoStore(world=self.world, clock=self.clock, ids=self.ids, config=self.config,
                               signal=self.signal, emit=self._emit_event)
        self.h5 = H5Apps(world=self.world, clock=self.clock, ids=self.ids, config=self.config)
        self.work_notices = WorkNotices(world=self.world, clock=self.clock, ids=self.ids, config=self.config,
                                        signal=self.signal)
        self.cards = CardPlatform(world=self.world, clock=self.clock, ids=self.ids, config=self.config,
                                  gateway=self.gateway, signal=self.signal, record_message=self.record_bot_message,
                                  catalog=CardCatalog.load(self.config.card_templates_dir, self.config.card_template_env))
        self.events: list[EmittedEvent] = []
        self.custom_robots: dict[str, CustomRobot] = {}
        self.base_url: str | None = None
        self._runner: web.AppRunner | None = None

    # ---- lifecycle ----------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0, *,
                    extensions: Sequence[Extension] = ()) -> str:
        from .app import build_app

        self.clock.start()
        app = build_app(self, extensions)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.base_url = f"http://{shown_host}:{bound_port}"
        log.info("sandbox DingTalk listening on %s", self.base_url)
        return self.base_url

    async def stop(self) -> None:
        await self.gateway.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.clock.stop()

    async def wait_until(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        """Wait until `predicate()` is truthy; re-checked on every change of emulator state."""
        return await self.signal.wait_until(predicate, timeout)

    # ---- conversations ------------------------------------------------------------
    def conversation_id(self, key: str | Group | User, app: App | str | None = None) -> str:
        """A group (id or title), a user (id or name: their 1:1 with the bot) or a conversation id."""
        if isinstance(key, Group):
            return key.conversation_id
        if isinstance(key, User):
            return self.world.private_conversation_id(key, app)
        group = self.world.find_group(key)
        if group is not None:
            return group.conversation_id
        user = self.world.find_user(key)
        if user is not None:
            return self.world.private_conversation_id(user, app)
        if self.world.private_conversation_owner(key) is not None:
            return key
        raise SandboxError(f"no conversation {key!r}")

    def robot_in_group(self, app: App, group: Group) -> bool:
        """Whether the app's robot is in the group (and so hears @'s there and may send there).

        With `config.app_robots_in_external_groups` off, an app's robot cannot be in a
        group that has external members (P2 §4: enterprise robots work in 内部群 only).
        """
        if app.client_id not in group.bot_client_ids:
            return False
        return self.config.app_robots_in_external_groups or not self.world.has_outsiders(group)

    def _group_app(self, group: Group, app: App | str | None) -> App:
        if app is not None:
            chosen = self.world.app(app)
            if chosen.client_id not in group.bot_client_ids:
                raise SandboxError(f"the bot of {chosen.name} is not in {group.title}")
            return chosen
        if not group.bot_client_ids:
            raise SandboxError(f"{group.title} has no bot")
        default = self.world.default_app
        if default.client_id in group.bot_client_ids:
            return default
        return self.world.apps[group.bot_client_ids[0]]

    # ---- user actions -------------------------------------------------------------
    def user_message(self, user: str | User, conversation: str | Group | None = None, *,
                     msgtype: str = "text", text: str = "", content: dict[str, Any] | None = None,
                     mentions: Iterable[str | User] = (), at_bot: bool = True, app: App | str | None = None,
                     media: MediaFile | None = None) -> ReceivedMessage:
        """A user sends something to the bot; returns what was recorded (and pushed, if delivered).

        `conversation` None (or the user's own 1:1 id) means a 1:1 chat with the bot.
        In a group the message @'s the bot unless `at_bot` is False, in which case the
        bot never hears of it (§3.1) but the transcript still shows it.
        """
        sender = self.world.user(user)
        if not sender.active:
            raise SandboxError(f"{sender.name} ({sender.user_id}) has left the organization")
        group: Group | None = None
        private_owner = (self.world.private_conversation_owner(conversation)
                         if isinstance(conversation, str) else None)
        if private_owner is not None:
            owner, owner_app = private_owner
            if owner.user_id != sender.user_id:
                raise SandboxError(f"{conversation} is {owner.name}'s private chat, not {sender.name}'s")
            app = app or owner_app
        elif conversation is not None:
            group = self.world.group(conversation)
        if group is None:
            chosen_app = self.world.app(app)
            if sender.external:
                raise SandboxError(f"{sender.name} is not in the organization and cannot chat 1:1 with the bot")
            conversation_id = self.world.private_conversation_id(sender, chosen_app)
        else:
            if sender.user_id not in group.member_ids:
                raise SandboxError(f"{sender.name} is not a member of {group.title}")
            chosen_app = self._group_app(group, app)
            conversation_id = group.conversation_id
            if msgtype in ("audio", "video") or (msgtype == "file" and not self.config.allow_group_files):
                raise SandboxError(f"users cannot send {msgtype} messages to a bot in a group (§3.1); "
                                   "set config.allow_group_files to allow files")
        now = self.clock.now_ms()
        at_users: list[User] = []
        if msgtype == "text":
            if group is not None:
                members = self.world.present_members(group)
                extra = [self.world.user(m) for m in mentions]
                parsed = parse_mentions(text, chosen_app, members, extra)
                body: dict[str, Any] = {"text": {"content": parsed.content}}
                at_users = parsed.users
            else:
                body = {"text": {"content": text}}
        else:
            body = {"content": content or {}}
        bot_absent = group is not None and not self.robot_in_group(chosen_app, group)
        delivered = (group is None or at_bot) and not bot_absent
        session = None
        if delivered:
            session = self.sessions.create(app_id=chosen_app.client_id, conversation_id=conversation_id,
                                           conversation_type="2" if group else "1", user_id=sender.user_id,
                                           created_at=now, ttl=self.config.session_webhook_ttl)
        session_url = f"{self.base_url}/robot/sendBySession?session={session.key}" if session else ""
        payload = build_payload(app=chosen_app, sender=sender, group=group, conversation_id=conversation_id,
                                msg_id=self.ids.msg_id(), created_at=now, session_url=session_url,
                                session_expires_at=session.expires_at if session else 0, msgtype=msgtype,
                                body=body, at_users=at_users, at_users_union_id=self.config.at_users_union_id)
        record = ReceivedMessage(conversation_id, "2" if group else "1", chosen_app.client_id, sender.user_id,
                                 sender.name, msgtype, text or None, payload, now, delivered=delivered, media=media,
                                 bot_absent=bot_absent)
        if delivered:
            frame = self.gateway.push_callback(chosen_app, BOT_MESSAGE_TOPIC, payload)
            record.message_id = frame.message_id
        self.recorder.record(record)
        return record

    def user_file(self, user: str | User, conversation: str | Group | None, data: bytes, file_name: str, *,
                  app: App | str | None = None) -> ReceivedMessage:
        sender = self.world.user(user)
        media = self.media.add_user_file(owner_id=sender.user_id, kind="file", file_name=file_name, data=data,
                                         now_ms=self.clock.now_ms())
        content = {"spaceId": media.space_id, "fileName": file_name, "downloadCode": media.download_code,
                   "fileId": media.file_id}
        return self.user_message(sender, conversation, msgtype="file", text=file_name, content=content, app=app,
                                 media=media)

    def user_picture(self, user: str | User, conversation: str | Group | None, data: bytes,
                     file_name: str = "image.png", *, app: App | str | None = None) -> ReceivedMessage:
        sender = self.world.user(user)
        media = self.media.add_user_file(owner_id=sender.user_id, kind="image", file_name=file_name, data=data,
                                         now_ms=self.clock.now_ms())
        content = {"pictureDownloadCode": media.picture_download_code, "downloadCode": media.download_code}
        return self.user_message(sender, conversation, msgtype="picture", content=content, app=app, media=media)

    def user_rich_text(self, user: str | User, conversation: str | Group | None,
                       parts: Sequence[str | tuple[str, bytes]], *, app: App | str | None = None) -> ReceivedMessage:
        """Text pieces and (file name, bytes) pictures, in order."""
        sender = self.world.user(user)
        elements: list[dict[str, Any]] = []
        texts: list[str] = []
        if conversation is not None and self.world.find_group(conversation if isinstance(conversation, str)
                                                             else conversation.conversation_id):
            group = self.world.group(conversation)
            # richText keeps the bot's @-name ([DP-FAQ §8] sample).
            elements.append({"text": f"@{self._group_app(group, app).robot_name}"})
        for part in parts:
            if isinstance(part, str):
                elements.append({"text": part})
                texts.append(part)
            else:
                name, data = part
                media = self.media.add_user_file(owner_id=sender.user_id, kind="image", file_name=name, data=data,
                                                 now_ms=self.clock.now_ms())
                elements.append({"pictureDownloadCode": media.picture_download_code,
                                 "downloadCode": media.download_code, "type": "picture"})
        return self.user_message(sender, conversation, msgtype="richText", text="".join(texts),
                                 content={"richText": elements}, app=app)

    def user_audio(self, user: str | User, data: bytes, *, recognition: str = "", duration_ms: int = 3000,
                   file_name: str = "voice.amr", app: App | str | None = None) -> ReceivedMessage:
        sender = self.world.user(user)
        media = self.media.add_user_file(owner_id=sender.user_id, kind="voice", file_name=file_name, data=data,
                                         now_ms=self.clock.now_ms())
        content = {"downloadCode": media.download_code, "recognition": recognition, "duration": duration_ms}
        return self.user_message(sender, None, msgtype="audio", text=recognition, content=content, app=app,
                                 media=media)

    def user_video(self, user: str | User, data: bytes, *, duration: str = "5", file_name: str = "video.mp4",
                   app: App | str | None = None) -> ReceivedMessage:
        sender = self.world.user(user)
        media = self.media.add_user_file(owner_id=sender.user_id, kind="video", file_name=file_name, data=data,
                                         now_ms=self.clock.now_ms())
        content = {"duration": duration, "videoType": "mp4", "downloadCode": media.download_code}
        return self.user_message(sender, None, msgtype="video", content=content, app=app, media=media)

    def user_unsupported(self, user: str | User, conversation: str | Group | None = None, *,
                         app: App | str | None = None) -> ReceivedMessage:
        return self.user_message(user, conversation, msgtype="unknownMsgType",
                                 content={"unknownMsgType": UNKNOWN_MSG_TEXT}, app=app)

    # ---- the directory ------------------------------------------------------------
    def update_user(self, user: str | User, *, name: str | None = None, active: bool | None = None) -> User:
        """An admin renames someone, or someone leaves (active=False) or comes back: what directory sync sees."""
        current = self.world.user(user)
        if active is not None and current.external:
            raise SandboxError(f"{current.name} is not in the organization: only employees can leave it")
        updated = self.world.update_user(current, name=name, active=active, now_ms=self.clock.now_ms())
        self.signal.bump()
        return updated

    # ---- custom robots ------------------------------------------------------------
    def add_custom_robot(self, conversation: str | Group, name: str) -> CustomRobot:
        """An admin adds a custom robot (加签) to a group; its webhook and secret are shown once, to them."""
        group = self.world.find_group(conversation) if isinstance(conversation, str) else conversation
        if group is None:
            raise SandboxError(f"no group {conversation!r}: custom robots post into groups only")
        if not name.strip():
            raise SandboxError("a custom robot needs a name")
        if self.base_url is None:
            raise SandboxError("start the emulator first: the webhook is a URL of it")
        token = self.ids.custom_robot_token()
        robot = CustomRobot(self.ids.custom_robot_id(), name.strip(), group.conversation_id, token,
                            self.ids.custom_robot_secret(), f"{self.base_url}/robot/send?access_token={token}",
                            self.clock.now_ms())
        self.custom_robots[robot.robot_id] = robot
        self.signal.bump()
        return robot

    def remove_custom_robot(self, robot_id: str) -> CustomRobot:
        """The admin removes it: its webhook stops working; its messages stay in the transcript."""
        robot = self.custom_robots.get(robot_id)
        if robot is None or robot.removed:
            raise SandboxError(f"no custom robot {robot_id!r}")
        robot.removed = True
        self.signal.bump()
        return robot

    def custom_robot_by_token(self, token: str | None) -> CustomRobot | None:
        return next((r for r in self.custom_robots.values() if r.token == token and not r.removed), None)

    def live_custom_robots(self, group: Group | None = None) -> list[CustomRobot]:
        """The custom robots not removed (of one group, or all)."""
        return [r for r in self.custom_robots.values()
                if not r.removed and group in (None, self.world.groups.get(r.conversation_id))]

    # ---- bot output ---------------------------------------------------------------
    def record_bot_message(self, *, conversation_id: str, app: App | None, via: str, api: str,
                           normalized: Normalized, raw: dict[str, Any], msg_key: str | None = None,
                           at_user_ids: Sequence[str] = (), at_mobiles: Sequence[str] = (), is_at_all: bool = False,
                           to_user_id: str | None = None, custom_robot: CustomRobot | None = None) -> SentMessage:
        """What a robot posted: the app's bot (`app`), or a custom robot (`custom_robot`, no app)."""
        group = self.world.groups.get(conversation_id)
        if group is not None:
            # Only members of the group can be @'d; other ids are silently ignored.
            members = {uid: self.world.users[uid] for uid in group.member_ids}
            at_user_ids = tuple(u for u in at_user_ids if u in members and not members[u].external)
            mobiles = {m.mobile for m in members.values()}
            at_mobiles = tuple(m for m in at_mobiles if m in mobiles)
        else:
            at_user_ids, at_mobiles, is_at_all = (), (), False
        message = SentMessage(
            conversation_id=conversation_id, conversation_type="2" if group else "1",
            app_id=app.client_id if app else "", via=via, api=api, msgtype=normalized.msgtype, msg_key=msg_key,
            title=normalized.title, text=normalized.text, params=normalized.params, created_at=self.clock.now_ms(),
            at_user_ids=tuple(at_user_ids), at_mobiles=tuple(at_mobiles), is_at_all=is_at_all,
            media=normalized.media, to_user_id=to_user_id, raw=raw, custom_robot=custom_robot)
        self.recorder.record(message)
        return message

    # ---- events -------------------------------------------------------------------
    def _emit_event(self, event_type: str, data: dict[str, Any], app: App | None = None) -> None:
        """Push an event to every app subscribed to its type (approvals), or only to `app` (its own todos)."""
        if self.faults.take_skipped_event(event_type):
            self.events.append(EmittedEvent(event_type, data, skipped=True))
            self.signal.bump()
            return
        emitted = EmittedEvent(event_type, data, skipped=False)
        for target in (app,) if app is not None else self.world.apps.values():
            if event_type in target.events:
                frame = self.gateway.push_event(target, event_type, data)
                emitted.message_ids.append(frame.message_id)
        self.events.append(emitted)
        self.signal.bump()
