"""The sender cache that spares a colleague's every message a directory read: it knows a sender only while they say
the same about themselves (nick, unionId, corpId, dingtalkId), and only for its time to live."""

from __future__ import annotations

import dataclasses

from bot.people import KnownSenders
from bot.testing import make_incoming


def test_a_sender_is_known_while_they_say_the_same_and_for_a_while() -> None:
    now = [0.0]
    known = KnownSenders(ttl=600, size=2, clock=lambda: now[0])
    message = dataclasses.replace(make_incoming("帮助", sender_id="liming", sender_nick="李明"),
                                  sender_union_id="u-liming", sender_corp_id="ding-ours")
    assert not known.knows(message)
    known.remember(message)
    assert known.knows(message)
    assert not known.knows(dataclasses.replace(message, sender_nick="李明远"))  # renamed: learn it
    assert not known.knows(dataclasses.replace(message, sender_union_id="u-other"))
    now[0] = 601
    assert not known.knows(message)  # a change made elsewhere is picked up within the time to live
    known.remember(message)
    for other in ("a", "b"):
        known.remember(dataclasses.replace(message, sender_id=other))
    assert not known.knows(message)  # bounded: full, it starts over
