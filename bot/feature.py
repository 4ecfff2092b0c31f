"""What a feature module declares, once: ``feature = Feature(...)`` at the end of ``handlers/<name>.py``.

The app builds itself from a sequence of features (``App(config, features=...)``): production from
``handlers.features.FEATURES``, tests and the bench from the same list or a part of it. Nothing is discovered by
importing modules and sniffing their attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from bot.card_press import CardAction
from bot.card_refresher import Refresh
from bot.context import ApprovalEventHandler, Services, UnitOfWork
from bot.dispatcher import Middleware, Preparer, Rewrite
from bot.jobs import JobRegistry
from bot.router import Router

# ``around_work(work, services)``: an async context manager entered around the body of every unit of work (a command,
# an event, a job), inside its transaction; what it does after the body commits with it.
WorkWrapper = Callable[[UnitOfWork, Services], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Feature:
    name: str
    router: Router | None = None  # its commands, in the order help lists them
    jobs: JobRegistry | None = None  # its scheduled and on-demand jobs
    middleware: Sequence[Middleware] = ()  # around every command, outermost first (project resolution)
    on_event: Sequence[ApprovalEventHandler] = ()  # Stream events (approval, 待办), each in its unit of work
    rewrites: Sequence[Rewrite] = ()  # Incoming -> Incoming before matching (a bare file -> 「暂存文件」)
    preparers: Sequence[Preparer] = ()  # before the transaction opens (downloading the files a message carries)
    around_work: Sequence[WorkWrapper] = ()  # around every unit of work (the 待办 sync follows every plan change)
    card_actions: Sequence[CardAction] = ()  # card buttons -> the command a press stands for (bot.card_press)
    # ``async (session, services) -> int``, run shortly after commits to bring live cards up to date
    # (bot.card_refresher); only when cards are enabled and have templates
    card_refreshes: Sequence[Refresh] = ()


__all__ = ["Feature", "WorkWrapper"]
