"""How a project's client group is reached: by the app's robot (the group is bound with ``绑定 … 客户群``), or by a
custom robot an administrator registered for it (the config's ``[[client_robots]]``, else ``dingpm client-robot``).

When a custom robot is registered, the client group's pushes (the weekly report) go through it, as markdown with a
signed download link to the .docx: a custom robot can neither send files nor hear anyone. The outbox names the robot
by the project's code (``Target(custom_robot, (code,))``) and looks its webhook and secret up when it sends, so no
credential is ever stored in a queued message.
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Config
from bot.dingtalk.custom_robot import CustomRobot
from storage.models import Project
from storage.repo import get_project_by_code
from storage.repo.directory import client_robot_projects, delete_client_robot, get_client_robot, set_client_robot

APP_ROBOT, CUSTOM_ROBOT, UNREACHED = "app", "custom", "none"


async def client_robot(session: AsyncSession, config: Config, project: Project) -> CustomRobot | None:
    """The project's client-group custom robot, if one is registered (the config's first)."""
    configured = config.client_robot(project.code)
    if configured is not None:
        return CustomRobot(project.code, configured.webhook, configured.secret)
    row = await get_client_robot(session=session, project_id=project.id)
    return CustomRobot(project.code, row.webhook, row.secret) if row is not None else None


async def client_robot_by_code(session: AsyncSession, config: Config, code: str) -> CustomRobot | None:
    project = await get_project_by_code(session=session, code=code)
    return await client_robot(session, config, project) if project is not None else None


async def with_client_robots(session: AsyncSession, config: Config, projects: list[Project]) -> set[int]:
    """Ids of the projects whose client group has a custom robot (config or database), in one query."""
    found = {p.id for p in projects if config.client_robot(p.code) is not None}
    rest = [p.id for p in projects if p.id not in found]
    return found | (await client_robot_projects(session=session, project_ids=rest) if rest else set())


async def client_reach(session: AsyncSession, config: Config, project: Project) -> str:
    """``custom`` (a custom robot pushes), ``app`` (the bound group, the app's robot) or ``none``."""
    if await client_robot(session, config, project) is not None:
        return CUSTOM_ROBOT
    return APP_ROBOT if project.client_conversation_id else UNREACHED


# ---- administration (``dingpm client-robot``) -----------------------------------------------------------------------

WEBHOOK_FORM = re.compile(r"^https?://[^/\s]+/\S*access_token=[^&\s]+")


class ClientRobotError(ValueError):
    """A refused registration; the message is one Chinese line for the operator."""


async def register_client_robot(database: Any, code: str, webhook: str, secret: str) -> str:
    """Store (or replace) the custom robot of a project's client group; returns the line to print."""
    if not WEBHOOK_FORM.match(webhook.strip()):
        raise ClientRobotError("webhook 应为自定义机器人的地址，形如 https://oapi.dingtalk.com/robot/send?access_token=…")
    if not secret.strip().startswith("SEC"):
        raise ClientRobotError("加签密钥应以 SEC 开头（机器人安全设置里选择「加签」后显示）")
    async with database.write() as session:
        project = await get_project_by_code(session=session, code=code)
        if project is None:
            raise ClientRobotError(f"未找到项目 {code}")
        new = await set_client_robot(session=session, project_id=project.id, webhook=webhook.strip(),
                                     secret=secret.strip())
    return (f"已{'登记' if new else '更新'}项目 {project.code} 客户群的自定义机器人；此后客户项目周报经它推送（附 Word 下载链接）。"
            "webhook 与密钥已保存，不会显示或写入日志。")


async def remove_client_robot(database: Any, code: str) -> str:
    async with database.write() as session:
        project = await get_project_by_code(session=session, code=code)
        if project is None:
            raise ClientRobotError(f"未找到项目 {code}")
        removed = await delete_client_robot(session=session, project_id=project.id)
    return (f"已删除项目 {project.code} 客户群的自定义机器人。" if removed
            else f"项目 {project.code} 没有登记（数据库中的）自定义机器人。")


REACH_TEXT = {
    CUSTOM_ROBOT: "客户群由自定义机器人单向推送（周报以消息加 Word 下载链接发出；客户在群里无法 @我）",
    APP_ROBOT: "客户群由本机器人送达（客户联系人可在群里 @我 查看项目概况和客户版周报）",
    UNREACHED: "客户群未绑定（在客户群里 @我 发送「绑定 项目编号 客户群」，或由管理员登记客户群的自定义机器人）",
}


__all__ = ["APP_ROBOT", "CUSTOM_ROBOT", "REACH_TEXT", "UNREACHED", "ClientRobotError", "client_reach", "client_robot",
           "client_robot_by_code", "register_client_robot", "remove_client_robot", "with_client_robots"]
