"""The kernel's real objects provide what the domain's Protocols (``domain.ports``) ask for.

The services are written against the Protocols and run with the real objects; nothing else would notice a method
renamed on one side only until the approval flow or a command hit it.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from bot.args import Args
from bot.config import Config
from bot.context import Context, Services
from bot.dingtalk import DingTalkClient
from bot.incoming import Incoming
from domain.ports import CommandArgs, CommandScope, MessageOrigin, ServiceSet, Settings, WorkflowClient


def _members(protocol: type) -> dict[str, Any]:
    return {name: value for name, value in vars(protocol).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))}


def _fields(cls: type) -> set[str]:
    names = set(dir(cls))
    for klass in cls.__mro__:
        names |= set(getattr(klass, "__annotations__", {}))
        names |= set(getattr(klass, "model_fields", {}))
    return names


def _accepts(implementation: Any, declared: Any) -> bool:
    """Every parameter the Protocol passes is taken by the implementation (by name for keywords)."""
    real = inspect.signature(implementation).parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in real.values())
    for name, param in inspect.signature(declared).parameters.items():
        if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        if name not in real and not takes_kwargs:
            return False
    return True


@pytest.mark.parametrize(("implementation", "protocol"), [
    (DingTalkClient, WorkflowClient),
    (Context, CommandScope),
    (Services, ServiceSet),
    (Config, Settings),
    (Incoming, MessageOrigin),
    (Args, CommandArgs),
])
def test_the_real_object_has_every_member_the_protocol_names(implementation: type, protocol: type) -> None:
    members = _members(protocol)
    assert members, f"{protocol.__name__} names nothing"
    missing = sorted(set(members) - _fields(implementation))
    assert missing == [], f"{implementation.__name__} lacks {missing} of {protocol.__name__}"
    for name, declared in members.items():
        real = getattr(implementation, name, None)
        if callable(declared) and callable(real) and not isinstance(declared, property):
            assert _accepts(real, declared), f"{implementation.__name__}.{name} does not take what {protocol.__name__} passes"
