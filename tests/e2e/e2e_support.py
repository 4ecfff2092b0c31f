"""Helpers shared by the end-to-end tests (imported by name: ``conftest`` is ambiguous across test folders)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.app import KernelOptions
from bot.config import Config, parse_config
from bot.dingtalk import RetryPolicy
from bot.inbox import InboxOptions
from bot.outbox import RelayOptions
from bot.stream import StreamOptions
from bot.todo_relay import TodoRelayOptions
from handlers import help
from sandbox.harness import Sandbox

GROUP = "【智慧工厂MES项目】内部群"
# The kernel tests run the kernel with 帮助 and the test commands only: the feature modules' jobs (approval forms,
# reports, reminders) would add their own traffic to every test. `dingpm sandbox`'s test runs the full set.
KERNEL_FEATURES = (help.feature,)

FAST_STREAM = StreamOptions(
    ping_interval=0.5, ping_timeout=2.0, watchdog_timeout=3.0, backoff_initial=0.05, backoff_max=0.5,
    open_timeout=2.0, close_timeout=1.0, disconnect_drain_seconds=0.5, stop_grace_seconds=2.0,
)
FAST = KernelOptions(
    inbox=InboxOptions(lease_seconds=5.0, poll_seconds=0.5, stop_grace_seconds=5.0),
    relay=RelayOptions(lease_seconds=5.0, poll_seconds=0.5, backoff_base_seconds=0.05, backoff_max_seconds=0.5,
                       stop_grace_seconds=5.0),
    stream=FAST_STREAM,
    todo_relay=TodoRelayOptions(poll_seconds=0.5, lease_seconds=5.0, backoff_base_seconds=0.05,
                                backoff_max_seconds=0.5),
    retry=RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.2),
    leader_retry_seconds=0.5,
    leader_check_seconds=0.5,
    scheduler_sweep_seconds=None,
    stream_stop_seconds=5.0,
)


def kernel_config(sb: Sandbox, database_url: str, files_dir: Path, **sections: dict[str, Any]) -> Config:
    """A Config pointed at the emulator; ``sections`` override whole keys per section (``pacing={...}``)."""
    raw: dict[str, Any] = {
        "dingtalk": {"client_id": sb.client_id, "client_secret": sb.client_secret, "robot_code": sb.robot_code,
                     "api_base_url": sb.base_url, "oapi_base_url": sb.base_url},
        "database": {"url": database_url},
        "storage": {"files_dir": str(files_dir)},
        "server": {"health_host": "127.0.0.1", "health_port": 0},
        "pacing": {"calls_per_second": 50, "http_timeout_seconds": 2, "max_concurrent_messages": 16},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return parse_config(raw, environ={}, require_real_secret=False)


async def wait_emulator(sb: Sandbox, predicate: Callable[[Any], Any], timeout: float = 10.0) -> Any:
    """Wait until ``predicate(emulator)`` is truthy; re-checked by the emulator on every state change."""
    return await sb.run(lambda em: em.wait_until(lambda: predicate(em), timeout))


async def wait_sent(sb: Sandbox, count: int, conversation: str | None = None, timeout: float = 10.0) -> list[Any]:
    """Wait until the bot has posted at least ``count`` messages (in ``conversation``, or anywhere)."""
    cid = sb.conversation_id(conversation) if conversation is not None else None
    await wait_emulator(sb, lambda em: len(em.recorder.sent(cid)) >= count or None, timeout)
    return sb.sent(conversation)
