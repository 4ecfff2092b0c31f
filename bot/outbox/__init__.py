"""The outbox: every message the bot sends is first a row, written in the transaction of the change that causes it,
then delivered by the relay.

* ``targets``: where a message goes (a group, users, a custom robot, a sessionWebhook with its fallback);
* ``enqueue``: a message queued under its business key in the caller's transaction;
* ``relay``: claiming due rows (``bot.claim_loop``, shared with the inbox) and sending them, paced and retried.
"""

# A card write is one more outbox message (the domain builds them, the relay sends them through the card APIs).
from bot.dingtalk.cards import CardWrite, card_values
from bot.outbox.enqueue import Message, enqueue, enqueue_row
from bot.outbox.relay import OutboxRelay, RelayOptions, RelayStats
from bot.outbox.targets import (
    Target,
    conversation_target,
    custom_robot_target,
    group_target,
    reply_target,
    target_from_params,
    target_params,
    users_target,
)

__all__ = [
    "CardWrite",
    "Message",
    "OutboxRelay",
    "RelayOptions",
    "RelayStats",
    "Target",
    "conversation_target",
    "custom_robot_target",
    "card_values",
    "enqueue",
    "enqueue_row",
    "group_target",
    "reply_target",
    "target_from_params",
    "target_params",
    "users_target",
]
