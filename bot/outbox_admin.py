"""``dingpm outbox``: what the relay has not delivered, and putting dead letters back in the queue.

Works on the database alone (no DingTalk connection): a running bot picks replayed rows up at its next poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.models import OutboxState
from storage.repo import replay_dead
from storage.repo.kernel import inbox_counts, list_outbox, outbox_counts


@dataclass(frozen=True)
class DeadLetter:
    id: int
    key: str
    target: str
    kind: str
    attempts: int
    error: str
    created_at: datetime


@dataclass(frozen=True)
class OutboxSummary:
    counts: dict[str, int]  # outbox rows per state
    inbox: dict[str, int]  # inbox rows per state (a backlog means commands waiting)
    dead: list[DeadLetter]


def _target_text(kind: Any, ids: Sequence[str]) -> str:
    kind = str(getattr(kind, "value", kind))
    if kind == "webhook":
        return "回复（会话 webhook）"  # the URL carries a credential: never shown
    label = {"group": "群", "user": "单聊"}.get(kind, kind)
    shown = ",".join(ids[:3]) + (f" 等 {len(ids)} 人" if len(ids) > 3 else "")
    return f"{label}:{shown}"


async def outbox_summary(database: Any, *, limit: int = 50) -> OutboxSummary:
    async with database.read() as session:
        counts = await outbox_counts(session=session)
        inbox = await inbox_counts(session=session)
        rows = await list_outbox(session=session, states=[OutboxState.DEAD], limit=limit)
    dead = [
        DeadLetter(id=int(r.id), key=r.idempotency_key, target=_target_text(r.target_kind, list(r.target_ids)),
                   kind=str(getattr(r.msg_kind, "value", r.msg_kind)), attempts=r.attempts,
                   error=(r.last_error or "").replace("\n", " ")[:300], created_at=r.created_at)
        for r in rows
    ]
    return OutboxSummary(counts=counts, inbox=inbox, dead=dead)


async def replay_dead_letters(database: Any, *, ids: Sequence[int] | None) -> int:
    """Put dead rows (``ids``, or all with ``None``) back in the queue, due now; returns how many."""
    async with database.write() as session:
        return await replay_dead(session=session, ids=ids)


def format_summary(summary: OutboxSummary) -> str:
    c, i = summary.counts, summary.inbox
    lines = [
        f"发件箱：待发送 {c.get('pending', 0)}，发送中 {c.get('sending', 0)}，已发送 {c.get('sent', 0)}，"
        f"死信 {c.get('dead', 0)}",
        f"收件箱：待处理 {i.get('pending', 0) + i.get('processing', 0)}，失败 {i.get('failed', 0)}",
    ]
    if not summary.dead:
        lines.append("没有死信。")
        return "\n".join(lines)
    lines.append("")
    lines.append("死信（最近的在前）：")
    for d in summary.dead:
        lines.append(f"  #{d.id}  {d.created_at:%Y-%m-%d %H:%M} UTC  {d.kind}  {d.target}  尝试 {d.attempts} 次  "
                     f"键 {d.key}")
        lines.append(f"        错误：{d.error}")
    lines.append("")
    lines.append("重新投递：dingpm outbox replay <编号…> 或 dingpm outbox replay --all")
    return "\n".join(lines)
