"""Fault injection, switchable at run time (from the test's thread too).

HTTP faults are rules keyed by API: `"*"`, an API name (`"robot.groupMessages.send"`),
a glob over names (`"workflow.*"`) or a path (`"/v1.0/robot/groupMessages/send"`).
The most specific rule wins: exact name or path, then a glob, then `"*"`.

Kinds of injected HTTP errors:
  "5xx"      new APIs: 503 with a JSON error; old APIs and webhooks: a 502 HTML page
             from the front proxy (clients must cope with non-JSON bodies)
  "timeout"  the request hangs until the client gives up (bounded by
             `timeout_fault_max_hold`, then 504 / errcode 15)
  "throttle" the real QPS error of that API family (403 QpsLimit… / errcode 90018)
  "busy"     a backend failure: old APIs HTTP 200 errcode -1 系统繁忙, new APIs 500 with
             the API's systemError code (`systemError`, `todo.taskCreate.systemError`, …)
  "reset"    the TCP connection is aborted without any response

Stream faults are budgets consumed by the gateway and the workflow engine:
duplicate delivery of ACKed frames, lost ACKs, skipped approval events. Connection
faults (abrupt drop, silent freeze) are actions on the gateway (`Sandbox.drop()`,
`Sandbox.freeze()`).
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass, field

HTTP_FAULT_KINDS = frozenset({"5xx", "timeout", "throttle", "reset", "busy"})


@dataclass
class FaultRule:
    api: str = "*"
    latency: float = 0.0            # seconds added before the request is handled
    error_rate: float = 0.0         # probability that a call gets an injected error
    kinds: tuple[str, ...] = ("5xx",)
    count: int | None = None        # errors to inject before the rule retires; None = forever
    injected: int = 0


@dataclass
class FaultDecision:
    latency: float = 0.0
    kind: str | None = None


@dataclass
class _Budget:
    remaining: int = 0
    filter: str | None = None
    used: int = 0


@dataclass
class FaultStats:
    http: dict[str, int] = field(default_factory=dict)  # kind -> injected count
    duplicated_frames: int = 0
    ignored_acks: int = 0
    skipped_events: int = 0


class Faults:
    def __init__(self, rng: random.Random | None = None):
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._rules: dict[str, FaultRule] = {}
        self._duplicates = _Budget()
        self._ignored_acks = _Budget()
        self._skipped_events = _Budget()
        self.stats = FaultStats()

    # ---- HTTP ---------------------------------------------------------------------
    def set(self, api: str = "*", *, latency: float = 0.0, error_rate: float = 0.0,
            kinds: tuple[str, ...] | list[str] | str = ("5xx",), count: int | None = None) -> FaultRule:
        """Install (or replace) the rule for `api`. `count` bounds the injected errors."""
        if isinstance(kinds, str):
            kinds = (kinds,)
        unknown = set(kinds) - HTTP_FAULT_KINDS
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {sorted(HTTP_FAULT_KINDS)}")
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError("error_rate must be within [0, 1]")
        rule = FaultRule(api=api, latency=latency, error_rate=error_rate, kinds=tuple(kinds), count=count)
        with self._lock:
            self._rules[api] = rule
        return rule

    def clear(self, api: str | None = None) -> None:
        """Remove one HTTP rule, or (api=None) every HTTP rule and every stream budget."""
        with self._lock:
            if api is not None:
                self._rules.pop(api, None)
                return
            self._rules.clear()
            self._duplicates = _Budget()
            self._ignored_acks = _Budget()
            self._skipped_events = _Budget()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules.values())

    def _match(self, name: str, path: str) -> FaultRule | None:
        exact = self._rules.get(name) or self._rules.get(path)
        if exact:
            return exact
        for key, rule in self._rules.items():
            if key != "*" and any(ch in key for ch in "*?[") and (
                    fnmatch.fnmatchcase(name, key) or fnmatch.fnmatchcase(path, key)):
                return rule
        return self._rules.get("*")

    def decide(self, name: str, path: str) -> FaultDecision:
        """What to do to this call (emulator loop)."""
        with self._lock:
            rule = self._match(name, path)
            if rule is None:
                return FaultDecision()
            decision = FaultDecision(latency=rule.latency)
            if rule.error_rate > 0 and self._rng.random() < rule.error_rate:
                decision.kind = self._rng.choice(rule.kinds)
                rule.injected += 1
                self.stats.http[decision.kind] = self.stats.http.get(decision.kind, 0) + 1
                if rule.count is not None and rule.injected >= rule.count:
                    self._rules.pop(rule.api, None)
            return decision

    # ---- Stream -------------------------------------------------------------------
    def duplicate_frames(self, count: int = 1, *, topic: str | None = None) -> None:
        """The next `count` ACKed CALLBACK/EVENT frames are pushed once more, same messageId."""
        with self._lock:
            self._duplicates = _Budget(count, topic)

    def ignore_acks(self, count: int = 1) -> None:
        """The next `count` ACKs are lost on the way: the frames are redelivered after the timeout."""
        with self._lock:
            self._ignored_acks = _Budget(count)

    def skip_approval_events(self, count: int = 1, *, event_type: str | None = None) -> None:
        """The next `count` approval events (optionally of one eventType) are never pushed."""
        with self._lock:
            self._skipped_events = _Budget(count, event_type)

    @staticmethod
    def _take(budget: _Budget, key: str | None) -> bool:
        if budget.remaining <= 0:
            return False
        if budget.filter is not None and budget.filter != key:
            return False
        budget.remaining -= 1
        budget.used += 1
        return True

    def take_duplicate(self, topic: str) -> bool:
        with self._lock:
            taken = self._take(self._duplicates, topic)
            self.stats.duplicated_frames += taken
            return taken

    def take_ignored_ack(self) -> bool:
        with self._lock:
            taken = self._take(self._ignored_acks, None)
            self.stats.ignored_acks += taken
            return taken

    def take_skipped_event(self, event_type: str) -> bool:
        with self._lock:
            taken = self._take(self._skipped_events, event_type)
            self.stats.skipped_events += taken
            return taken
