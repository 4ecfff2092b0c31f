"""The chat load generator, reply-latency tracking and the RSS sampler.

The generator runs **on the emulator's own loop** (``Sandbox.run``): a message is one synchronous
``emulator.user_message`` call there, with no hop between threads. Latency is measured with the emulator's recorder
timestamps: a ``ReceivedMessage`` is stamped when the emulator pushes the frame, a ``SentMessage`` when the bot's
webhook call is handled (after the injected latency). A small middleware names the session of each
``/robot/sendBySession`` call, so every answer is matched to the message it answers, even when a group has several
messages in flight.

The message mix (per message): 项目 15 %, 交付物 20 %, 日志 35 %, 问题 新增 20 %, a small file 5 % followed later by
「提交 #n」 from the same person in the same group 5 % (the pair submits that file as a deliverable version).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import random
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bench.seed import BenchProject

CURRENT_SESSION: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_session", default=None)

MIX = (("项目", 0.15), ("交付物", 0.20), ("日志", 0.35), ("问题", 0.20), ("文件", 0.05), ("提交", 0.05))
FILE_BYTES = b"PK\x03\x04" + bytes(range(256)) * 12  # ~3 KB "docx"
LOG_TEXTS = ("完成3号楼AP安装调试，培训操作员12人", "完成接口联调第一轮测试，发现3个问题已登记", "完成服务器部署与数据库初始化")
ISSUE_TEXTS = ("打印机驱动与系统不兼容", "历史数据导入格式不一致", "车间网络不通导致终端无法登录")


def latency_extension(app: web.Application, emulator: Any) -> None:
    """Sandbox extension: tell the recorder listener which session a webhook answer belongs to."""

    @web.middleware
    async def name_session(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/robot/sendBySession":
            return await handler(request)
        token = CURRENT_SESSION.set(request.query.get("session"))
        try:
            return await handler(request)
        finally:
            CURRENT_SESSION.reset(token)

    app.middlewares.append(name_session)


@dataclass
class Sample:
    kind: str
    sent_ms: int
    session: str
    reply_ms: int | None = None
    waiter: asyncio.Future[None] | None = None


def session_of(record: Any) -> str:
    url = record.payload.get("sessionWebhook", "")
    return url.rsplit("session=", 1)[-1]


class ChatLoad:
    """Sends the mix to the groups of ``projects`` and matches answers. Use only on the emulator's loop."""

    def __init__(self, emulator: Any, projects: list[BenchProject], *, seed: int = 1) -> None:
        self.emulator = emulator
        self.rng = random.Random(seed)
        self.projects = [p for p in projects if p.internal_cid]
        self.groups = {p.internal_cid: emulator.world.group(p.internal_cid) for p in self.projects}
        self.samples: list[Sample] = []
        self.by_session: dict[str, Sample] = {}
        self.waiting_files: deque[tuple[BenchProject, str]] = deque()
        self.extra_replies = 0
        self.errors: list[str] = []
        emulator.recorder.add_listener(self._on_record)

    # ---- answers ---------------------------------------------------------------------------------------------

    def _on_record(self, record: Any) -> None:
        if getattr(record, "direction", "") != "out" or record.via != "webhook":
            return
        session = CURRENT_SESSION.get()
        sample = self.by_session.get(session or "")
        if sample is None:
            return
        if sample.reply_ms is not None:
            self.extra_replies += 1
            return
        sample.reply_ms = record.created_at
        if sample.waiter is not None and not sample.waiter.done():
            sample.waiter.set_result(None)

    # ---- messages --------------------------------------------------------------------------------------------

    def _choose(self) -> str:
        roll, total = self.rng.random(), 0.0
        for kind, weight in MIX:
            total += weight
            if roll < total:
                return kind
        return MIX[-1][0]

    def send(self, kind: str | None = None, project: BenchProject | None = None, user: str | None = None,
             waiter: bool = False, queue_file: bool = True) -> Sample | None:
        kind = kind or self._choose()
        if kind == "提交" and project is None:
            if not self.waiting_files:
                kind = "日志"
            else:
                project, user = self.waiting_files.popleft()
        project = project or self.rng.choice(self.projects)
        user = user or self.rng.choice(project.team)
        group = self.groups[project.internal_cid]
        em = self.emulator
        try:
            if kind == "文件":
                record = em.user_file(user, group, FILE_BYTES, f"接口说明文档_v{self.rng.randint(1, 99)}.docx")
                if queue_file:
                    self.waiting_files.append((project, user))
            else:
                text = {
                    "项目": "项目",
                    "交付物": "交付物",
                    "日志": "日志 " + self.rng.choice(LOG_TEXTS),
                    "问题": "问题 新增 " + self.rng.choice(ISSUE_TEXTS),
                    "提交": f"提交 #{self.rng.randint(1, 42)} 第{self.rng.randint(2, 9)}版",
                }[kind]
                record = em.user_message(user, group, text=text)
        except Exception as exc:  # noqa: BLE001 - counted, the run goes on
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return None
        sample = Sample(kind, record.created_at, session_of(record))
        if waiter:
            sample.waiter = asyncio.get_running_loop().create_future()
        self.samples.append(sample)
        self.by_session[sample.session] = sample
        return sample

    # ---- load shapes -----------------------------------------------------------------------------------------

    async def open_loop(self, rate: float, seconds: float) -> tuple[int, int]:
        """Poisson arrivals at ``rate`` messages/s for ``seconds``; returns (first, last) send time in ms."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        due = start
        end = start + seconds
        first = self.emulator.clock.now_ms()
        while True:
            due += self.rng.expovariate(rate)
            if due >= end:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.send()
        return first, self.emulator.clock.now_ms()

    async def closed_loop(self, users: int, seconds: float, timeout: float = 30.0) -> tuple[int, int]:
        """``users`` virtual users, each sending its next message when its last one was answered (a file is
        followed by its 「提交」 from the same person)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        first = self.emulator.clock.now_ms()

        async def user_loop(index: int) -> None:
            rng = random.Random(index)
            while loop.time() < end:
                project = self.projects[rng.randrange(len(self.projects))]
                member = project.team[rng.randrange(len(project.team))]
                kind = self._choose()
                steps = ("文件", "提交") if kind == "文件" else ("日志",) if kind == "提交" else (kind,)
                for step in steps:
                    sample = self.send(step, project, member, waiter=True, queue_file=False)
                    if sample is None or sample.waiter is None:
                        await asyncio.sleep(0.01)
                        break
                    try:
                        await asyncio.wait_for(asyncio.shield(sample.waiter),
                                               max(0.01, min(timeout, end - loop.time())))
                    except asyncio.TimeoutError:
                        break

        await asyncio.gather(*(user_loop(i) for i in range(users)))
        return first, self.emulator.clock.now_ms()

    async def drain(self, after_ms: int, timeout: float) -> None:
        """Wait until every message sent since ``after_ms`` has its answer, at most ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if all(s.reply_ms is not None for s in self.samples if s.sent_ms >= after_ms):
                return
            await asyncio.sleep(0.1)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


# DingTalk round trips on a message's way to its answer: a file is the download API, the file itself and the answer.
ROUND_TRIPS = {"文件": 3}


def summarize(samples: list[Sample], window: tuple[int, int], latency_ms: float = 0.0) -> dict[str, Any]:
    """Throughput = answers received within the window / its length; latency of messages sent within it. With the
    emulator's ``latency_ms``, also the bot's own share: each latency less the emulator's latency on its path."""
    start, end = window
    seconds = max(0.001, (end - start) / 1000)
    sent = [s for s in samples if start <= s.sent_ms < end]
    answered = [s for s in sent if s.reply_ms is not None]
    replies_in_window = sum(1 for s in samples if s.reply_ms is not None and start <= s.reply_ms < end)
    latencies = [float(s.reply_ms - s.sent_ms) for s in answered]  # type: ignore[operator]
    own = [float(s.reply_ms - s.sent_ms) - ROUND_TRIPS.get(s.kind, 1) * latency_ms  # type: ignore[operator]
           for s in answered]
    by_kind: dict[str, Any] = {}
    for kind, _ in MIX:
        values = [float(s.reply_ms - s.sent_ms) for s in answered if s.kind == kind]  # type: ignore[operator]
        by_kind[kind] = {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}
    return {
        "window_s": seconds,
        "sent": len(sent),
        "offered_per_s": len(sent) / seconds,
        "answered": len(answered),
        "unanswered": len(sent) - len(answered),
        "throughput_per_s": replies_in_window / seconds,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "p99_over_emulator_ms": percentile(own, 99),
        "max_ms": max(latencies) if latencies else None,
        "mean_ms": statistics.fmean(latencies) if latencies else None,
        "by_kind": by_kind,
    }


# ---- memory and CPU of the process under test ---------------------------------------------------------------------


@dataclass
class RssSampler:
    pid: int
    interval: float = 0.25
    samples: list[tuple[float, float, float]] = field(default_factory=list)  # (t, main MB, children MB)
    cpu_marks: dict[str, float] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    def start(self) -> "RssSampler":
        import psutil

        self._process = psutil.Process(self.pid)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its children so far."""
        try:
            times = self._process.cpu_times()
            total = times.user + times.system
            for child in self._process.children(recursive=True):
                try:
                    t = child.cpu_times()
                    total += t.user + t.system
                except Exception:  # noqa: BLE001 - a child may exit between the two calls
                    pass
            return total
        except Exception:  # noqa: BLE001
            return float("nan")

    def mark(self, name: str) -> None:
        self.cpu_marks[name] = self.cpu_seconds()

    async def _run(self) -> None:
        import psutil

        while True:
            try:
                main = self._process.memory_info().rss / 2**20
                children = 0.0
                for child in self._process.children(recursive=True):
                    try:
                        children += child.memory_info().rss / 2**20
                    except psutil.Error:
                        pass
                self.samples.append((time.monotonic(), main, children))
            except psutil.Error:
                return
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def summary(self, steady_from: float | None = None) -> dict[str, Any]:
        """Peak over the run; steady = median over samples after ``steady_from`` (monotonic), else the last half."""
        if not self.samples:
            return {"peak_mb": None, "steady_mb": None, "samples": 0}
        mains = [m for _, m, _ in self.samples]
        tail = [m for t, m, _ in self.samples if steady_from is not None and t >= steady_from]
        tail = tail or mains[len(mains) // 2:]
        return {"peak_mb": max(mains), "steady_mb": statistics.median(tail), "start_mb": mains[0],
                "children_peak_mb": max(c for _, _, c in self.samples),
                "total_peak_mb": max(m + c for _, m, c in self.samples), "samples": len(self.samples)}
