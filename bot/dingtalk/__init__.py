"""DingTalk transport, outbound side: the OpenAPI client, its typed errors, pacing, retries and message bodies.

The inbound side (the Stream connection) lives in ``bot.stream``.
"""

from bot.dingtalk.client import BatchSendResult, ClientStats, DingTalkClient, InstanceIdPage, SendResult
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

__all__ = [
    "AuthError", "BatchSendResult", "Button", "ClientStats", "DingTalkClient", "DingTalkError", "FileTooLarge",
    "InstanceIdPage", "InvalidRequest", "IpBanned", "NetworkError", "Pacer", "PermissionDenied", "QuotaExhausted",
    "RetryPolicy", "RobotMessage", "SendResult", "ServerError", "SessionWebhookExpired", "Throttled", "Timeout",
    "TokenBucket",
]
