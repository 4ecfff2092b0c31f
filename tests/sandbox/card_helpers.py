"""Helpers for the card tests: the example definitions and request bodies as a bot sends them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandbox_helpers import CLIENT_GROUP, INTERNAL_GROUP, new_api

from sandbox.harness import Sandbox

CARDS_DIR = Path(__file__).with_name("cards")
CARD_TOPIC = "/v1.0/card/instances/callback"
STATUS_TEMPLATE = "sandbox-project-status.schema"
REPORT_TEMPLATE = "sandbox-weekly-report.schema"
REMINDER_TEMPLATE = "sandbox-overdue-reminder.schema"
CREATE_AND_DELIVER = "/v1.0/card/instances/createAndDeliver"
INSTANCES = "/v1.0/card/instances"

__all__ = ["CARDS_DIR", "CARD_TOPIC", "CLIENT_GROUP", "INTERNAL_GROUP", "STATUS_TEMPLATE", "REPORT_TEMPLATE",
           "REMINDER_TEMPLATE", "CREATE_AND_DELIVER", "INSTANCES", "status_data", "report_data", "group_card",
           "pin_card", "robot_card", "call"]


def status_data(**changes: str) -> dict[str, str]:
    data = {"projectId": "P-001", "project": "智慧工厂MES", "phase": "实施", "progress": "42", "health": "预警",
            "healthColor": "orange", "overdueCount": "2", "approvalsWaiting": "1",
            "dueItems": json.dumps([{"name": "接口说明文档", "owner": "李明", "due": "04-10"},
                                    {"name": "测试报告", "owner": "赵磊", "due": "04-12"}], ensure_ascii=False)}
    return {**data, **changes}


def report_data(**changes: str) -> dict[str, str]:
    data = {"reportId": "R-2026-15", "project": "智慧工厂MES", "week": "2026-W15",
            "summary": "**本周完成**\n\n- 接口联调\n- 现场培训", "docName": "周报-2026-W15.docx", "docUrl": "",
            "ackStatus": "", "ackLabel": "待确认", "ackColor": "orange", "ackBy": "", "question": ""}
    return {**data, **changes}


def group_card(sb: Sandbox, out_track_id: str, *, template: str = REPORT_TEMPLATE, data: dict | None = None,
               group: str = CLIENT_GROUP, **extra: Any) -> dict[str, Any]:
    """A createAndDeliver body for a group message card with STREAM callbacks."""
    return {"cardTemplateId": template, "outTrackId": out_track_id, "callbackType": "STREAM",
            "cardData": {"cardParamMap": report_data() if data is None else data},
            "openSpaceId": f"dtv1.card//IM_GROUP.{sb.conversation_id(group)}",
            "imGroupOpenSpaceModel": {"supportForward": False, "lastMessageI18n": {"ZH_CN": "智慧工厂MES 周报"}},
            "imGroupOpenDeliverModel": {"robotCode": sb.robot_code}, **extra}


def pin_card(sb: Sandbox, out_track_id: str, *, group: str = INTERNAL_GROUP, seconds: float = 3600,
             data: dict | None = None, **extra: Any) -> dict[str, Any]:
    """A createAndDeliver body pinning the status card in a group's top box (吊顶)."""
    return {"cardTemplateId": STATUS_TEMPLATE, "outTrackId": out_track_id, "callbackType": "STREAM",
            "cardData": {"cardParamMap": status_data() if data is None else data},
            "openSpaceId": f"dtv1.card//ONE_BOX.{sb.conversation_id(group)}",
            "topOpenSpaceModel": {"spaceType": "ONE_BOX"},
            "topOpenDeliverModel": {"expiredTimeMillis": sb.now_ms() + int(seconds * 1000)}, **extra}


def robot_card(sb: Sandbox, out_track_id: str, user_key: str, *, template: str = REMINDER_TEMPLATE,
               data: dict | None = None, **extra: Any) -> dict[str, Any]:
    """A createAndDeliver body for a card in a user's 1:1 chat with the robot."""
    return {"cardTemplateId": template, "outTrackId": out_track_id, "callbackType": "STREAM",
            "cardData": {"cardParamMap": data or {}},
            "openSpaceId": f"dtv1.card//IM_ROBOT.{user_key}", "imRobotOpenSpaceModel": {"supportForward": True},
            "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT"}, **extra}


async def call(http, sb: Sandbox, token: str, method: str, path: str, body: Any = None,
               params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    return await new_api(http, sb, method, path, token, json_body=body, params=params)
