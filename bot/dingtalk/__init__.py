"""DingTalk transport, outbound side: the OpenAPI client (transport + robot / media / workflow), its typed errors,
pacing, retries and message bodies; contacts and custom robots beside them.

The inbound side (the Stream connection) lives in ``bot.stream``.
"""

from bot.dingtalk.client import DingTalkClient
from bot.dingtalk.errors import (
    AuthError,
    DingTalkError,
    FileTooLarge,
    InvalidRequest,
    IpBanned,
    NetworkError,
    PermissionDenied,
    QuotaExhausted,
    ServerError,
    SessionWebhookExpired,
    Throttled,
    Timeout,
)
from bot.dingtalk.messages import Button, RobotMessage
from bot.dingtalk.pacing import Pacer, TokenBucket
from bot.dingtalk.retry import RetryPolicy
from bot.dingtalk.robot import BatchSendResult, SendResult
from bot.dingtalk.transport import ClientStats
from bot.dingtalk.workflow import InstanceIdPage

__all__ = [
    "AuthError", "BatchSendResult", "Button", "ClientStats", "DingTalkClient", "DingTalkError", "FileTooLarge",
    "InstanceIdPage", "InvalidRequest", "IpBanned", "NetworkError", "Pacer", "PermissionDenied", "QuotaExhausted",
    "RetryPolicy", "RobotMessage", "SendResult", "ServerError", "SessionWebhookExpired", "Throttled", "Timeout",
    "TokenBucket",
]
