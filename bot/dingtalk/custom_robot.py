"""Custom robots (自定义机器人): one-way pushes into a group through its webhook, where the app's robot cannot be.

DingTalk's robot overview lists enterprise-app robots for internal groups only, while custom robots work in 外部群
too (reference part 2 §4). A client group can therefore be reached by a custom robot an administrator adds to it:
its webhook (``https://oapi.dingtalk.com/robot/send?access_token=…``) and its signing secret (``SEC…``) are given
through ``dingpm client-robot`` or the config, never in a chat.

Each send is signed (P1 §10: ``timestamp`` in ms and ``sign = Base64(HmacSHA256(secret, timestamp + "\\n" +
secret))``, URL-encoded, appended to the webhook) and paced per robot below the custom robot's limit of 20 messages
a minute (P1 §11.2; 18 by default, so a jittered minute never holds 21). A send that would wait longer than
``max_wait_seconds`` is not held in a coroutine: it raises ``Throttled`` with ``code == PACED_HERE`` and the outbox
reschedules it without spending an attempt. The platform's own answers: ``410100`` / ``660026`` (throttled) are
retried after their wait; ``310000`` (signature, keyword or IP check failed) and ``300005`` (token gone) cannot heal
and raise ``CustomRobotRejected``, which dead-letters the message with an operator's explanation.

The webhook URL carries the robot's access token and the secret signs: neither appears in a log line, an error or a
``repr``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from bot.dingtalk.errors import InvalidRequest, Throttled
from bot.dingtalk.messages import check_webhook_body_size
from bot.dingtalk.pacing import Pacer

API = "robot/send"
PER_MINUTE_LIMIT = 20  # P1 §11.2: then throttled for 10 minutes (410100)
DEFAULT_PER_MINUTE = 18
PACED_HERE = "customRobot.pacedHere"  # our own pacing asked the outbox to come back later
# errcode -> what the operator must do; these cannot heal by retrying.
REJECTIONS: Mapping[str, str] = {
    "310000": "签名、关键词或 IP 校验失败：请确认机器人启用了「加签」，且登记的加签密钥（SEC 开头）与机器人设置一致",
    "300005": "webhook 的 access_token 不存在：机器人可能已被移出客户群或删除，请重新添加并登记新的 webhook",
}


class CustomRobotRejected(InvalidRequest):
    """The custom robot refused the message for a reason only an operator can fix (see ``REJECTIONS``)."""


@dataclass(frozen=True)
class CustomRobot:
    """A client group's custom robot. ``key`` names it in pacing and messages (the project's code)."""

    key: str
    webhook: str = field(repr=False)
    secret: str = field(repr=False)


def sign(secret: str, timestamp_ms: int) -> str:
    """``Base64(HmacSHA256(secret, "{timestamp}\\n{secret}"))``, URL-encoded as the webhook query wants it."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


def signed_url(robot: CustomRobot, timestamp_ms: int) -> str:
    separator = "&" if "?" in robot.webhook else "?"
    return f"{robot.webhook}{separator}timestamp={timestamp_ms}&sign={sign(robot.secret, timestamp_ms)}"


class CustomRobotSender:
    """Sends webhook bodies (text, markdown, link, actionCard) through custom robots, on the app's ``DingTalkClient``
    (its one HTTP session, its error classification). One per process."""

    def __init__(self, client: Any, *, per_minute: float = DEFAULT_PER_MINUTE, max_wait_seconds: float = 20.0,
                 wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 pacer: Pacer | None = None) -> None:
        if not 0 < per_minute <= PER_MINUTE_LIMIT:
            raise ValueError(f"per_minute must be in (0, {PER_MINUTE_LIMIT}]")
        self._client = client
        self._pacer = pacer or Pacer(per_minute / 60.0)
        self._max_wait = max_wait_seconds
        self._wall_clock_ms = wall_clock_ms
        self.sent = 0

    async def send(self, robot: CustomRobot, body: Mapping[str, Any]) -> None:
        raw = check_webhook_body_size(body)
        bucket = self._pacer.bucket(robot.key)
        wait = bucket.peek()
        if wait > self._max_wait:
            raise Throttled(PACED_HERE, f"custom robot {robot.key}: next send slot in {wait:.0f}s",
                            retry_after=wait, api=API)
        await bucket.acquire()
        try:
            await self._client.post_webhook(API, signed_url(robot, self._wall_clock_ms()), raw)
        except Throttled as exc:
            # The robot is throttled for every sender of this process: keep them all away as long as it said.
            self._pacer.penalize(robot.key, exc.retry_after or 60.0)
            raise
        except InvalidRequest as exc:
            if exc.code in REJECTIONS:
                raise CustomRobotRejected(
                    exc.code, f"项目 {robot.key} 客户群的自定义机器人拒绝了消息（{exc.code}）：{REJECTIONS[exc.code]}。"
                              f"修正后用 dingpm client-robot set {robot.key} 重新登记，再 dingpm outbox replay 重发",
                    api=API, http_status=exc.http_status) from None
            raise
        self.sent += 1


__all__ = ["API", "CustomRobot", "CustomRobotRejected", "CustomRobotSender", "PACED_HERE", "REJECTIONS",
           "sign", "signed_url"]
