"""Robot messages (reference part 1 §5): the answer through a message's sessionWebhook, and proactive messages to a
group or to users 1:1 through the OpenAPI. Paced, retried and typed by the transport."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bot.dingtalk.errors import DingTalkError, InvalidRequest, SessionWebhookExpired
from bot.dingtalk.messages import RobotMessage, check_webhook_body_size, webhook_body, webhook_body_for_reply
from bot.dingtalk.transport import Transport

log = logging.getLogger("bot.dingtalk.client")

BATCH_SEND_MAX_USERS = 20  # oToMessages/batchSend userIds limit (§5.2)


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


class RobotApi(Transport):
    # ---- session webhook (the answer to a message) -------------------------------------------------------------------------------------

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
            # A RobotMessage, or a reply value from domain.replies (a str counts as Text).
            converted = (webhook_body(body, at_user_ids=at_user_ids) if isinstance(body, RobotMessage)
                         else webhook_body_for_reply(body))
            if converted is None:
                raise InvalidRequest("msgtype.unsupported",
                                     f"{type(body).__name__} cannot go through a sessionWebhook; use the OpenAPI",
                                     api="robot/sendBySession")
            body = converted
        await self.post_webhook("robot/sendBySession", url, check_webhook_body_size(body))

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
