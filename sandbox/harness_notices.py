"""The harness's 工作通知 helpers (mixed into `Sandbox`).

    await sb.work_notices("李明")        # what apps sent him, newest first (the page's views)
    await sb.read_work_notices("李明")   # he opens the pane: getsendresult then lists him as read
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .web_notices import notices_answer

if TYPE_CHECKING:
    from .emulator import Emulator


class NoticeHelpers:
    emulator: "Emulator"
    call: Callable[..., Awaitable[Any]]

    async def work_notices(self, user: str) -> list[dict[str, Any]]:
        person = self.emulator.world.user(user)
        return (await self.call(notices_answer, self.emulator, person))["notices"]

    async def read_work_notices(self, user: str) -> int:
        """The person opens their 工作通知; returns how many were unread."""
        person = self.emulator.world.user(user)
        return await self.call(self.emulator.work_notices.mark_read, person)
