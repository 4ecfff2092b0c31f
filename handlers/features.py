"""Every feature of the bot, in the order its commands appear in 帮助: what ``App`` builds itself from.

Production runs all of them; tests and the bench pass this tuple or a part of it (``App(config, features=...)``).
"""

from __future__ import annotations

from bot.feature import Feature
from handlers import (
    approval_cards,
    approvals,
    closing,
    deliverables,
    digest,
    directory,
    documents,
    help,
    intake_cleanup,
    members,
    overdue_cards,
    phases,
    projects,
    registers,
    reminders,
    report_acks,
    status_card,
    todos,
    weekly_reports,
)

FEATURES: tuple[Feature, ...] = (
    projects.feature,
    members.feature,
    deliverables.feature,
    intake_cleanup.feature,
    phases.feature,
    registers.feature,
    closing.feature,
    approvals.feature,
    weekly_reports.feature,
    report_acks.feature,
    reminders.feature,
    overdue_cards.feature,
    todos.feature,
    digest.feature,
    directory.feature,
    documents.feature,
    status_card.feature,
    approval_cards.feature,
    help.feature,
)

__all__ = ["FEATURES"]
