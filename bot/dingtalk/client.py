"""The DingTalk OpenAPI client the app holds: one object on one HTTP session, one pacer and one token, serving
the API families each in its own module (``robot``, ``media``, ``workflow``) over the shared ``transport``. Contacts,
custom robots, cards and 待办 are classes of their own that take this client.
"""

from __future__ import annotations

from bot.dingtalk.media import MediaApi
from bot.dingtalk.robot import RobotApi
from bot.dingtalk.workflow import WorkflowApi


class DingTalkClient(RobotApi, MediaApi, WorkflowApi):
    """Async DingTalk OpenAPI client; see ``bot.dingtalk.transport`` for the call pipeline."""
