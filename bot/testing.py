"""Helpers for dispatcher-level tests of handlers: build a message, record the replies (push a message, pop a reply).

Imported only by tests; nothing here touches the network or a database.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from bot.incoming import Incoming, Mention
from domain.replies import Reply


def make_incoming(
    text: str,
    *,
    sender_id: str = "user-1",
    sender_nick: str = "测试用户",
    conversation_id: str = "cid-group-1",
    group: bool = True,
    mentions: Sequence[str] = (),
    message_id: str | None = None,
) -> Incoming:
    """A text message as the Stream edge would parse it; ``mentions`` are the staff ids of @-mentioned users."""
    message_id = message_id or f"msg-{uuid.uuid4().hex[:12]}"
    at_users = tuple(Mention(dingtalk_id=f"$:{staff_id}", staff_id=staff_id) for staff_id in mentions)
    if group:
        at_users = (Mention(dingtalk_id="$:bot"), *at_users)  # in groups the bot itself is @-mentioned first
    return Incoming(
        message_id=message_id,
        msg_id=message_id,
        msgtype="text",
        conversation_id=conversation_id,
        conversation_type="2" if group else "1",
        sender_id=sender_id,
        sender_nick=sender_nick,
        text=text.strip(),
        mentions=at_users,
    )


class ReplyRecorder:
    """A reply sender that keeps what was sent, for assertions."""

    def __init__(self) -> None:
        self.sent: list[tuple[Incoming, Reply]] = []

    async def __call__(self, incoming: Incoming, reply: Reply) -> None:
        self.sent.append((incoming, reply))

    @property
    def replies(self) -> list[Reply]:
        return [reply for _, reply in self.sent]

    def pop(self) -> Reply:
        """The one reply sent since the last pop; fails if there were none or several."""
        replies, self.sent = self.replies, []
        assert len(replies) == 1, f"expected exactly one reply, got {len(replies)}: {replies!r}"
        return replies[0]
