"""Retry policy: full-jitter exponential backoff for retryable DingTalk errors.

Full jitter (``uniform(0, min(cap, base * 2**attempt))``) spreads replicas and concurrent callers apart after a shared
throttle, which a fixed or equal-jitter delay does not. A platform-imposed wait (``retry_after``: IP ban, robot
throttle) is a lower bound; when it is longer than the policy is willing to wait inline, the error is raised so that
a durable queue (the outbox) reschedules instead of holding a coroutine for minutes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bot.dingtalk.errors import DingTalkError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4  # total tries, the first one included
    base_delay: float = 0.5
    max_delay: float = 20.0
    # Largest platform-imposed wait we sit out inline; beyond it the caller (outbox) reschedules.
    max_inline_wait: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        cap = min(self.max_delay, self.base_delay * (2 ** attempt))
        return self.rng.uniform(0, cap)

    def delay_for(self, error: DingTalkError, attempt: int, *, idempotent: bool = True) -> float | None:
        """Seconds to wait before retrying after ``error`` on try ``attempt`` (0-based), or ``None``: give up."""
        if not error.retryable or attempt + 1 >= self.max_attempts:
            return None
        if not idempotent and error.maybe_sent:
            # The first try may have been delivered; a blind resend could post twice (§11.2). The outbox decides.
            return None
        delay = self.backoff(attempt)
        if error.retry_after is not None:
            if error.retry_after > self.max_inline_wait:
                return None
            delay = max(delay, error.retry_after)
        return delay
