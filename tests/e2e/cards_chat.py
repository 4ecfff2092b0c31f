"""The lifecycle conversation with interactive cards on: the emulator loads the bot's own card definitions
(``bot/cards``) and the bot sends them under their sandbox template ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.app import App
from bot.card_catalog import SHIPPED
from bot.context import FrozenClock
from handlers import approval_cards, directory, documents, overdue_cards, report_acks, status_card, weekly_reports
from e2e_support import FAST, kernel_config, wait_emulator
from lifecycle_chat import APPROVING_FEATURES, LIFECYCLE_FEATURES, MONDAY, Answer, LifecycleChat
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

CARD_FEATURES = (*LIFECYCLE_FEATURES, status_card.feature, weekly_reports.feature, report_acks.feature,
                 overdue_cards.feature, directory.feature, documents.feature)
CARD_APPROVING_FEATURES = (*APPROVING_FEATURES, status_card.feature, approval_cards.feature, report_acks.feature,
                           directory.feature)

CARDS_ON = {"enabled": True, "template_env": "sandbox", "coalesce_seconds": 0.2}


def cards_emulator_config(**switches: Any) -> EmulatorConfig:
    return EmulatorConfig.for_tests(timeout_fault_max_hold=1.0, allow_group_files=True, card_templates_dir=SHIPPED,
                                    **switches)


async def start_cards_app(sandbox: Sandbox, tmp_path: Path, *, cards: dict[str, Any] | None = None,
                          approvals: bool = False) -> App:
    config = kernel_config(
        sandbox, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", tmp_path / "files",
        approvals={"mode": "auto", "approvers": ["liuqiang", "zhoumin"]} if approvals else {"mode": "off"},
        organization={"leaders": ["liuqiang", "zhoumin"] if approvals else ["liuqiang"], "project_admins": ["sunli"],
                      "company_name": "示例数智科技有限公司"},
        dingtalk={"corp_id": sandbox.world.corp_id},
        cards=CARDS_ON if cards is None else cards,
    )
    app = App(config, options=FAST, clock=FrozenClock(MONDAY, tz=config.tz),
              features=CARD_APPROVING_FEATURES if approvals else CARD_FEATURES)
    await app.start()
    if app.stream is not None:
        await app.stream.wait_for_status(lambda s: s.connected, timeout=10)
    return app


async def settled(app: App) -> None:
    """The refresher has run for every commit so far and the outbox has sent what it queued."""
    if app.card_refresher is not None:
        await app.card_refresher.wait_idle(15)
    await app.relay.wait_idle(15)


class CardsChat(LifecycleChat):
    """A command's answers, without the cards the bot posts on its own time meanwhile (a status card that a group
    would not pin arrives in the chat whenever the refresher runs): the tests look at those through the emulator."""

    def since(self, where: str, after: int) -> list:
        return [m for m in super().since(where, after) if m.msgtype != "interactiveCard"]

    async def answers(self, where: str, after: int, count: int, what: str) -> Answer:
        cid = self.sandbox.conversation_id(where)
        await wait_emulator(self.sandbox, lambda em: len([m for m in em.recorder.sent(cid) if m.seq > after
                                                          and m.msgtype != "interactiveCard"]) >= count, timeout=15)
        await self.app.relay.wait_idle(15)
        messages = self.since(where, after)
        assert len(messages) == count, f"{what!r}: expected {count} answers, got {[m.text for m in messages]}"
        return Answer(messages)
