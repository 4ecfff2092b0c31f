"""The lifecycle conversation with interactive cards on: the emulator loads the bot's own card definitions
(``bot/cards``) and the bot sends them under their sandbox template ids."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from bot.app import App
from bot.card_catalog import SHIPPED
from bot.context import FrozenClock
from e2e_support import FAST, kernel_config, wait_emulator
from lifecycle_chat import APPROVING_MODULES, LIFECYCLE_MODULES, MONDAY, Answer, LifecycleChat
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox

CARD_MODULES = (*LIFECYCLE_MODULES, "handlers.status_card", "handlers.weekly_reports", "handlers.report_acks",
                "handlers.overdue_cards",
                "handlers.directory",
                "handlers.documents")
# Imported with the test module, not by App() inside a test's watched event loop (an import is CPU work).
for _module in (*CARD_MODULES, *APPROVING_MODULES, "handlers.approval_cards"):
    importlib.import_module(_module)

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
    modules = (*APPROVING_MODULES, "handlers.status_card", "handlers.approval_cards", "handlers.report_acks",
               "handlers.directory") if approvals else CARD_MODULES
    app = App(config, options=FAST, clock=FrozenClock(MONDAY, tz=config.tz), handler_modules=modules)
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
