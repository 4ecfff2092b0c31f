"""The audit trail in Chinese: one label per action code the features write (``record_change`` / ``write_audit``)
and per kind of object, used wherever the trail is shown (the archive's 操作日志.csv, through
``domain.report_data.audit_entry``). A test checks that every code written in the code base has its label."""

from __future__ import annotations

AUDIT_ACTIONS: dict[str, str] = {
    "project.create": "新建项目",
    "project.update": "设置立项信息",
    "project.bind": "绑定项目群",
    "project.initiation_requested": "提交立项审批",
    "project.initiation_approved": "立项通过",
    "project.initiation_rejected": "立项驳回",
    "project.initiation_withdrawn": "撤销立项审批",
    "project.pause_requested": "申请暂停项目",
    "project.pause": "暂停项目",
    "project.resume": "恢复项目",
    "project.accept": "项目验收",
    "project.review": "项目复盘",
    "project.handover": "交接售后",
    "project.archive": "归档并关闭项目",
    "project.archive_built": "生成归档包",
    "phase.advance": "推进阶段",
    "member.add": "添加成员",
    "member.remove": "移除成员",
    "deliverable.submit": "提交交付物",
    "deliverable.generated": "机器人生成交付物",
    "deliverable.waive": "豁免交付物",
    "deliverable.replan": "调整交付物计划",
    "register.add": "新增登记",
    "register.close": "关闭登记",
    "register.decide": "登记变更审批结果",
    "change.schedule_moved": "变更调整工期",
    "approval.submit": "发起审批",
    "approval.decided": "审批结束",
    "weekly_report.send": "发送周报",
}

AUDIT_ENTITIES: dict[str, str] = {
    "project": "项目",
    "phase": "阶段",
    "deliverable": "交付物",
    "register": "登记",
    "approval": "审批",
    "member": "成员",
    "weekly_report": "周报",
}


def action_label(code: str) -> str:
    """``deliverable.submit`` -> ``提交交付物``; an unknown code shows as itself rather than vanish."""
    return AUDIT_ACTIONS.get(code, code)


def entity_label(entity: str | None) -> str:
    return AUDIT_ENTITIES.get(entity or "", entity or "")


__all__ = ["AUDIT_ACTIONS", "AUDIT_ENTITIES", "action_label", "entity_label"]
