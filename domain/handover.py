"""The handover checklist (需要交接的项目资料): the template's package, item by item, with what covers each item in
the project (files, register entries, client contacts) or the command that provides it. 交接 shows and prints it;
the archive's 项目交接清单 is rendered from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.labels import names_of, who
from reports.user_text import md_literal
from storage.models import DeliverableStatus, MemberRole, Project, RegisterKind
from storage.repo import (
    latest_versions,
    list_deliverables,
    list_members,
    list_register_entries,
)
from storage.templates import Register

# What provides a register-backed item when the register is still empty.
REGISTER_COMMANDS = {
    Register.MEETINGS: "会议 交接会 …", Register.ISSUES: "问题 新增 …", Register.REQUIREMENTS: "需求 新增 …",
    Register.UPGRADES: "升级 〈版本〉 …", Register.RISKS: "风险 新增 …", Register.CHANGES: "变更 申请 …",
    Register.LOGS: "日志 …", Register.PLANS: "下周计划 …",
}


@dataclass(frozen=True, slots=True)
class HandoverLine:
    """One item of the handover checklist: what covers it, and the commands that would provide it if nothing does."""

    item: str
    found: tuple[str, ...]
    how: tuple[str, ...]

    @property
    def missing(self) -> bool:
        return not self.found

    def markdown(self) -> str:
        if self.found:  # file names, links and people: the users'
            return f"- ✓ **{self.item}**：{'；'.join(map(md_literal, self.found))}"
        return f"- ✗ **{self.item}**：缺失，请补充：{'或'.join(f'「{c}」' for c in self.how)}"


async def handover_checklist(session: AsyncSession, templates: Any, project: Project) -> list[HandoverLine]:
    """The template's handover package (需要交接的项目资料), item by item: the files, records and people that cover
    it, or the commands that provide it. An item nothing in this project can provide is left out."""
    template = templates.find(project.template) if templates is not None else None
    package = template.handover_package if template is not None else ()
    deliverables = await list_deliverables(session=session, project_id=project.id)
    versions = await latest_versions(session=session, deliverable_ids=[d.id for d in deliverables])
    members = await list_members(session=session, project_id=project.id)
    names = await names_of(session, [m.user_id for m in members])
    by_name = {d.name: d for d in deliverables}
    lines: list[HandoverLine] = []
    for item in package:
        present = [by_name[name] for name in item.deliverables if name in by_name]
        if not (present or item.registers or item.members):
            continue
        found: list[str] = []
        how: list[str] = []
        for deliverable in present:
            version = versions.get(deliverable.id)
            if deliverable.status == DeliverableStatus.WAIVED:
                found.append(f"{deliverable.name}：已豁免")
            elif deliverable.status == DeliverableStatus.SUBMITTED and version is not None:
                found.append(f"{deliverable.name}：{version.original_name or version.link or '文字说明'}"
                             f"（第{version.version}版）")
            else:
                how.append(f"提交 {deliverable.name}")
        for register in item.registers:
            entries = await list_register_entries(session=session, project_id=project.id,
                                                  kind=RegisterKind(register.value))
            if entries:
                found.append(f"{register.value}登记 {len(entries)} 条（随归档导出）")
            else:
                how.append(REGISTER_COMMANDS[register])
        for role in item.members:
            people = sorted({who(names, m.user_id) for m in members if m.role == role})
            if people:
                found.append(f"{'客户联系人' if role == MemberRole.CLIENT else role}：{'、'.join(people)}")
            else:
                how.append(f"成员 添加 @某人 {role}")
        lines.append(HandoverLine(item.item, tuple(found), tuple(how)))
    return lines


__all__ = ["REGISTER_COMMANDS", "HandoverLine", "handover_checklist"]
