"""Overdue and due-soon reminder texts (DingTalk markdown), from the gentlest to the escalation.

Ladder, as the scheduler is expected to use it:

1. ``render_due_soon_reminder``: 1:1 to the owner on the working day before the due date.
2. ``render_owner_reminder``: 1:1 to the owner once a deliverable is overdue.
3. ``render_overdue_digest``: one message per project to the internal group, all overdue items.
4. ``render_pm_escalation``: 1:1 to the project manager when items stay overdue.
5. ``render_leader_escalation``: to leaders, once a day, every project with items overdue beyond the escalation
   threshold.

Every function returns ``(title, markdown)``; the title is what DingTalk shows in the chat list.
Who gets which message and when (working days, thresholds, de-duplication) is the scheduler's
business: these functions only word it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from .formatting import fmt_date, fmt_short_date, or_blank, truncated
from .model import DeliverableInfo, ProjectSummary
from .user_text import md_literal

DEFAULT_SUBMIT_HINT = "请在项目群上传文件并提交，机器人会自动登记。"
MAX_ITEMS = 15
ITEMS_PER_PROJECT = 5  # in the leaders' daily escalation, which lists every late project


def _by_lateness(items: Sequence[DeliverableInfo]) -> list[DeliverableInfo]:
    return sorted(items, key=lambda d: (-d.overdue_working_days, d.due or date.max, d.name))


def _days(d: DeliverableInfo) -> str:
    return f"逾期 {d.overdue_working_days} 个工作日" if d.overdue_working_days else "已逾期"


def render_overdue_digest(project: ProjectSummary, deliverables: Sequence[DeliverableInfo], *, today: date,
                          max_items: int = MAX_ITEMS) -> tuple[str, str]:
    """Per-project digest for the internal group: every overdue deliverable with owner and lateness."""
    items = _by_lateness([d for d in deliverables if d.is_overdue])
    title = f"逾期提醒｜{project.name}"
    if not items:
        return title, f"### 交付物逾期提醒\n**{md_literal(project.name)}**\n\n截至 {fmt_date(today)}，没有逾期的交付物，辛苦大家 👍"
    lines = [
        "### 交付物逾期提醒",
        f"**{md_literal(project.name)}**（{project.code}）",
        "",
        f"截至 {fmt_date(today)}，共有 **{len(items)}** 项交付物已过截止日期：",
        "",
    ]
    rows = [f"- 《{md_literal(d.name)}》｜{d.phase}｜{md_literal(or_blank(d.owner_name, '未指定负责人'))}｜截止 {fmt_short_date(d.due)}｜"
            f"**{_days(d)}**" for d in items]
    lines += truncated(rows, max_items)
    owners = sorted({d.owner_name for d in items if d.owner_name})
    lines += ["", f"请{'、'.join(map(md_literal, owners)) or '相关负责人'}尽快提交；如有困难请及时告知项目经理{md_literal(project.pm_name)}。"]
    return title, "\n".join(lines)


def render_owner_reminder(project: ProjectSummary, owner_name: str, deliverables: Sequence[DeliverableInfo], *,
                          today: date, submit_hint: str = DEFAULT_SUBMIT_HINT) -> tuple[str, str]:
    """1:1 to an owner about their own overdue deliverables: friendly, specific, with what to do."""
    items = _by_lateness([d for d in deliverables if d.is_overdue])
    title = f"交付物逾期提醒｜{project.name}"
    lines = [f"### {md_literal(owner_name)}，您好", ""]
    if len(items) == 1:
        d = items[0]
        lines.append(f"您负责的交付物《{md_literal(d.name)}》（{md_literal(project.name)}·{d.phase}阶段）截止日期是 {fmt_date(d.due)}，"
                     f"目前还未提交，已**{_days(d)}**。")
    else:
        lines.append(f"您在「{md_literal(project.name)}」负责的 **{len(items)}** 项交付物已过截止日期，尚未提交：")
        lines.append("")
        lines += truncated([f"- 《{md_literal(d.name)}》（{d.phase}）截止 {fmt_short_date(d.due)}，{_days(d)}" for d in items], MAX_ITEMS)
    lines += ["", "麻烦抽空尽快处理，完成后" + submit_hint,
              f"如果遇到阻碍或需要调整时间，请直接联系项目经理{md_literal(project.pm_name)}。谢谢！"]
    return title, "\n".join(lines)


def render_due_soon_reminder(project: ProjectSummary, owner_name: str, deliverables: Sequence[DeliverableInfo], *,
                             due: date, submit_hint: str = DEFAULT_SUBMIT_HINT) -> tuple[str, str]:
    """The heads-up on the working day before ``due``: gentle, no pressure."""
    items = sorted(deliverables, key=lambda d: d.name)
    title = f"交付物明日到期｜{project.name}"
    lines = [f"### {md_literal(owner_name)}，您好", ""]
    if len(items) == 1:
        lines.append(f"温馨提醒：您负责的交付物《{md_literal(items[0].name)}》（{md_literal(project.name)}·{items[0].phase}阶段）"
                     f"将于 **{fmt_date(due)}** 到期。")
    else:
        lines.append(f"温馨提醒：您在「{md_literal(project.name)}」负责的以下交付物将于 **{fmt_date(due)}** 到期：")
        lines.append("")
        lines += truncated([f"- 《{md_literal(d.name)}》（{d.phase}）" for d in items], MAX_ITEMS)
    lines += ["", "如已完成，" + submit_hint, "如需延期，请提前与项目经理" + f"{md_literal(project.pm_name)}沟通。"]
    return title, "\n".join(lines)


def render_pm_escalation(project: ProjectSummary, deliverables: Sequence[DeliverableInfo], *,
                         today: date) -> tuple[str, str]:
    """1:1 to the PM: the items that stayed overdue after the owners were reminded."""
    items = _by_lateness([d for d in deliverables if d.is_overdue])
    title = f"逾期升级提醒｜{project.name}"
    lines = [
        f"### {md_literal(project.pm_name)}，您好",
        "",
        f"「{md_literal(project.name)}」有 **{len(items)}** 项交付物在提醒负责人后仍未提交（截至 {fmt_date(today)}）：",
        "",
    ]
    lines += truncated([f"- 《{md_literal(d.name)}》｜{d.phase}｜负责人 {md_literal(or_blank(d.owner_name, '未指定'))}｜截止 {fmt_short_date(d.due)}｜"
                        f"**{_days(d)}**" for d in items], MAX_ITEMS)
    lines += ["", "请跟进原因并协调资源；如确需调整计划，可发起项目进度变更或对交付物申请豁免。"]
    return title, "\n".join(lines)


def render_leader_escalation(projects: Sequence[tuple[ProjectSummary, Sequence[DeliverableInfo]]], *, today: date,
                             threshold_working_days: int = 5, max_chars: int = 3500) -> tuple[str, str]:
    """To leaders, once a day: every project with deliverables overdue at least ``threshold_working_days``, the most
    overdue first, each with its PM as the contact.

    One message however many projects are late: a message per project was dozens of 1:1 messages a day for a leader
    of a busy company. Projects that do not fit in ``max_chars`` are counted at the end instead of listed (the worst
    one is always listed: a block is at most ``ITEMS_PER_PROJECT`` lines)."""
    late: list[tuple[ProjectSummary, list[DeliverableInfo]]] = []
    for project, deliverables in projects:
        items = _by_lateness([d for d in deliverables
                              if d.is_overdue and d.overdue_working_days >= threshold_working_days])
        if items:
            late.append((project, items))
    if not late:
        return "项目逾期上报", (f"### 项目逾期上报\n\n截至 {fmt_date(today)}，没有逾期达 {threshold_working_days} 个"
                               "工作日以上的交付物。")
    late.sort(key=lambda entry: (-entry[1][0].overdue_working_days, -len(entry[1]), entry[0].code))
    title = f"项目逾期上报｜{late[0][0].name}" if len(late) == 1 else f"项目逾期上报｜{len(late)} 个项目"
    total = sum(len(items) for _, items in late)
    lines = [
        "### 项目逾期上报",
        "",
        f"截至 {fmt_date(today)}，{len(late)} 个项目共 **{total}** 项交付物逾期已达 {threshold_working_days} 个工作日"
        "以上：",
    ]
    closing = ["", "各项目经理已收到提醒，如需了解详情请联系对应的项目经理。"]
    budget = max_chars - len("\n".join(closing)) - 40  # room for the "另有 N 个项目" line
    length = len("\n".join(lines))
    for shown, (project, items) in enumerate(late):
        block = ["", f"**{md_literal(project.name)}**（{project.code}）｜客户 {md_literal(or_blank(project.customer))}｜"
                     f"项目经理 {md_literal(or_blank(project.pm_name))}｜当前阶段 {or_blank(project.phase)}",
                 *truncated([f"- 《{md_literal(d.name)}》｜负责人 {md_literal(or_blank(d.owner_name, '未指定'))}｜**{_days(d)}**"
                             for d in items], ITEMS_PER_PROJECT)]
        size = len("\n".join(block)) + 1
        if shown and length + size > budget:
            lines += ["", f"…另有 {len(late) - shown} 个项目逾期较轻，未逐一列出（每周一的「项目周览」列出全部在建项目）。"]
            break
        lines += block
        length += size
    return title, "\n".join(lines + closing)
