"""The standard's forms as .docx, filled from project data, and a registry for the `文档 <名称>` command.

Titles and wording follow 《项目实施规范》: 项目立项申请表 (1.2, approved in DingTalk by company
leaders), 项目启动会记录表 (1.1), 上线确认单 (3.4, signed), 项目验收确认单 (5.2, signed and stamped by the
client), the handover list of 5.4.1 (需要交接的项目资料), and 系统升级确认单 / 系统升级通知单 (4: a
confirmation the client signs when an upgrade solved their issue or need, a notice otherwise).

Every renderer is a top-level function ``(data, **options) -> bytes`` so it can run in a process pool.

python-docx (``docx_style``) is imported inside the functions that build a document: handlers import this module
for its catalogue when the bot starts, on the event loop, while the documents themselves are rendered in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from .docx_fonts import DEFAULT_FONTS, DocxFonts
from .formatting import fmt_chinese_date, fmt_date, fmt_period, or_blank
from .model import (
    DeliverableStatus,
    ProjectReportData,
    RegisterEntry,
    RegisterKind,
)


class MissingDocumentData(ValueError):
    """The project lacks what a document needs; the message is Chinese and fit to show to the user."""


CLIENT_SIGN = "客户方（签字/盖章）"
VENDOR_SIGN = "实施方（签字/盖章）"

# 《项目实施规范》5.4.1 需要交接的项目资料, in the standard's order.
HANDOVER_ITEMS = (
    "会议记录表",
    "商务合同",
    "项目验收确认单",
    "系统/设备上线功能模块清单",
    "服务器档案",
    "问题跟踪表",
    "需求跟踪表",
    "审核流程表",
    "接口文档",
    "系统使用文档",
    "实施部署记录文档",
    "客户通讯录",
    "系统升级记录表",
)


def _project_fields(data: ProjectReportData, *extra: tuple[str, object]) -> list[tuple[str, object]]:
    p = data.project
    return [("项目名称", p.name), ("项目编号", p.code), ("客户单位", p.customer), ("项目经理", p.pm_name), *extra]


def _document(data: ProjectReportData, title: str, fonts: DocxFonts):
    from . import docx_style as dx
    doc = dx.new_document(fonts=fonts, header_text=f"{data.project.name} · {title}")
    dx.add_title(doc, title)
    return doc


def _our_members(data: ProjectReportData):
    """Members of the delivering side (everyone not tagged with the customer's organisation)."""
    return [m for m in data.members if m.organization != data.project.customer]


def _client_members(data: ProjectReportData):
    return [m for m in data.members if m.organization == data.project.customer]


def _meeting(data: ProjectReportData, *keywords: str) -> RegisterEntry | None:
    meetings = data.entries(RegisterKind.MEETING)
    for kw in keywords:
        for m in meetings:
            if kw in m.meeting_type or kw in m.title:
                return m
    return None


# ------------------------------------------------------------------------------------------- 立项申请表


def render_project_initiation(data: ProjectReportData, *, fonts: DocxFonts = DEFAULT_FONTS) -> bytes:
    """项目立项申请表: filled by the PM after the internal kick-off and approved in DingTalk."""
    from . import docx_style as dx
    p = data.project
    doc = _document(data, "项目立项申请表", fonts)
    dx.add_form_table(doc, [
        *_project_fields(data, ("项目类型", p.template), ("业务负责人", p.sales_name)),
        ("合同编号", p.contract_no), ("合同金额", p.contract_amount),
        ("所属部门", p.department), ("实施地点", p.site),
        ("计划开始", fmt_date(p.planned_start)), ("计划完成", fmt_date(p.planned_end)),
        ("客户联系人", p.customer_contact), ("联系电话", p.customer_phone),
        ("项目背景", p.background), ("项目目标", p.objectives), ("项目范围", p.scope),
    ], wide_labels=("项目背景", "项目目标", "项目范围"))

    doc.add_heading("一、项目团队", level=1)
    dx.add_table(doc, ["姓名", "角色", "联系电话"], [(m.name, m.role, m.phone) for m in _our_members(data)],
                 widths_cm=[4, 6, 5.8], empty="待定")
    doc.add_heading("二、阶段计划与里程碑", level=1)
    dx.add_table(doc, ["阶段", "计划开始", "计划完成", "主要交付物"],
                 [(ph.name, fmt_date(ph.planned_start), fmt_date(ph.planned_end),
                   "、".join(d.name for d in data.deliverables if d.phase == ph.name) or "—") for ph in data.phases],
                 widths_cm=[2.8, 2.6, 2.6, 7.8], empty="待制定")
    doc.add_heading("三、风险评估", level=1)
    dx.add_table(doc, ["风险", "概率", "影响", "应对措施"],
                 [(e.title, e.probability, e.impact, e.response) for e in data.entries(RegisterKind.RISK)],
                 widths_cm=[5.6, 1.4, 1.4, 7.4], empty="暂未识别风险")
    doc.add_heading("四、审批意见", level=1)
    approval = next((a for a in reversed(data.approvals) if "立项" in a.kind), None)
    if approval is not None:
        number = f"，编号 {approval.instance_id}" if approval.instance_id else ""
        dx.add_paragraph(doc, f"{approval.status}（钉钉审批{number}）", bold_prefix="审批状态：")
        _approval_steps_table(doc, approval.steps)
    if approval is not None and not approval.is_pending:
        # Decided in DingTalk: the steps above are the signatures; blank lines to sign would contradict them.
        dx.add_paragraph(doc, "以上为钉钉审批记录（审批人、结果、意见与时间），无需另行签字。")
    else:
        if approval is None:
            dx.add_paragraph(doc, "提交钉钉审批后由公司领导审批，审批通过后正式开展项目实施工作。")
        dx.add_signature_block(doc, ["申请人（项目经理）", "部门经理", "公司领导"])
    return dx.to_bytes(doc)


def _approval_steps_table(doc, steps) -> None:
    from . import docx_style as dx
    dx.add_table(doc, ["序号", "处理人", "操作", "时间", "意见"],
                 [(j, s.actor_name, s.action, fmt_date(s.at), s.remark or "—") for j, s in enumerate(steps, 1)],
                 widths_cm=[1.4, 2.6, 2, 3.8, 6], empty="无审批步骤")


# ---------------------------------------------------------------------------------------- 启动会记录表


def render_kickoff_record(data: ProjectReportData, meeting: RegisterEntry | None = None, *,
                          fonts: DocxFonts = DEFAULT_FONTS) -> bytes:
    """项目启动会记录表 of the internal kick-off (项目内部启动会 / 立项会).

    The standard lists what the meeting settles: project situation and contract terms, goals and scope,
    milestone dates and cycle, task split among members, and the risk assessment.
    """
    from . import docx_style as dx
    p = data.project
    meeting = meeting or _meeting(data, "内部启动会", "立项会", "启动会", "技术交底")
    doc = _document(data, "项目启动会记录表", fonts)
    dx.add_form_table(doc, [
        *_project_fields(data),
        ("会议时间", fmt_date(meeting.created_at) if meeting else ""),
        ("会议地点", meeting.location if meeting else ""),
        ("主持人", p.pm_name), ("记录人", meeting.owner_name if meeting else ""),
        ("参会人员", meeting.attendees if meeting else ""),
    ], wide_labels=("参会人员",))
    doc.add_heading("一、项目情况及合同约定", level=1)
    dx.add_paragraph(doc, or_blank(p.background, "（由拓展介绍项目情况及合同约定）"))
    dx.add_paragraph(doc, f"合同编号 {or_blank(p.contract_no)}，合同金额 {or_blank(p.contract_amount)}。")
    doc.add_heading("二、项目目标与范围", level=1)
    dx.add_paragraph(doc, or_blank(p.objectives), bold_prefix="项目目标：")
    dx.add_paragraph(doc, or_blank(p.scope), bold_prefix="项目范围：")
    doc.add_heading("三、项目节点时间与实施周期", level=1)
    dx.add_paragraph(doc, fmt_period(p.planned_start, p.planned_end), bold_prefix="实施周期：")
    dx.add_table(doc, ["阶段", "计划开始", "计划完成"],
                 [(ph.name, fmt_date(ph.planned_start), fmt_date(ph.planned_end)) for ph in data.phases],
                 widths_cm=[6, 4.9, 4.9], empty="待制定")
    doc.add_heading("四、项目成员任务分配", level=1)
    dx.add_table(doc, ["成员", "角色", "负责交付物"],
                 [(m.name, m.role, "、".join(d.name for d in data.deliverables if d.owner_name == m.name) or "—")
                  for m in _our_members(data)], widths_cm=[2.6, 3.4, 9.8], empty="待定")
    doc.add_heading("五、项目风险评估", level=1)
    dx.add_table(doc, ["风险", "概率", "影响", "应对措施"],
                 [(e.title, e.probability, e.impact, e.response) for e in data.entries(RegisterKind.RISK)],
                 widths_cm=[5.6, 1.4, 1.4, 7.4], empty="暂未识别风险")
    doc.add_heading("六、会议内容与决议", level=1)
    dx.add_paragraph(doc, or_blank(meeting.content if meeting else ""), bold_prefix="会议内容：")
    dx.add_paragraph(doc, or_blank(meeting.resolution if meeting else ""), bold_prefix="会议决议：")
    dx.add_signature_block(doc, ["主持人", "记录人"])
    return dx.to_bytes(doc)


# ------------------------------------------------------------------------------------------ 上线确认单


def render_golive_confirmation(data: ProjectReportData, modules: Sequence[str | tuple[str, str]] = (), *,
                               golive_date: date | None = None, fonts: DocxFonts = DEFAULT_FONTS) -> bytes:
    """上线确认单, signed after the trial run. ``modules`` is the 系统/设备上线功能模块清单: names, or
    (name, description) pairs; without them the table has blank rows to fill in by hand."""
    from . import docx_style as dx
    p = data.project
    doc = _document(data, "上线确认单", fonts)
    dx.add_form_table(doc, [
        *_project_fields(data, ("客户负责人", p.customer_contact), ("上线日期", fmt_chinese_date(golive_date))),
        ("实施地点", p.site), ("合同编号", p.contract_no),
    ])
    doc.add_heading("一、上线功能模块清单", level=1)
    rows = []
    for i, m in enumerate(modules, 1):
        name, desc = (m, "") if isinstance(m, str) else m
        rows.append((i, name, desc, "□ 正常　□ 异常"))
    if not rows:
        rows = [(i, "", "", "□ 正常　□ 异常") for i in range(1, 6)]
    dx.add_table(doc, ["序号", "功能模块 / 设备", "说明", "运行情况"], rows, widths_cm=[1.4, 5.4, 5.6, 3.4])
    doc.add_heading("二、试运行与测评", level=1)
    related = [d for d in data.deliverables if d.name in ("设备试运行报告", "试运行报告", "测评报告", "培训签到表")]
    dx.add_table(doc, ["资料", "状态", "文件"],
                 [(d.name, d.status, d.latest_file_name or "—") for d in related], widths_cm=[5, 3, 7.8],
                 empty="试运行报告、测评报告见附件")
    doc.add_heading("三、确认意见", level=1)
    dx.add_paragraph(doc, "经双方确认，上述系统/设备功能模块已完成部署、培训与试运行，运行正常，同意正式上线。")
    dx.add_paragraph(doc, "客户意见：")
    dx.add_paragraph(doc, "")
    dx.add_signature_block(doc, [CLIENT_SIGN, VENDOR_SIGN])
    return dx.to_bytes(doc)


# ---------------------------------------------------------------------------------------- 项目验收确认单


def render_acceptance_confirmation(data: ProjectReportData, *, acceptance_date: date | None = None,
                                   fonts: DocxFonts = DEFAULT_FONTS) -> bytes:
    """项目验收确认单: once the client signs and stamps it, the project formally ends."""
    from . import docx_style as dx
    p = data.project
    doc = _document(data, "项目验收确认单", fonts)
    end = p.actual_end or acceptance_date
    dx.add_form_table(doc, [
        *_project_fields(data, ("合同编号", p.contract_no), ("合同金额", p.contract_amount)),
        ("实施周期", fmt_period(p.actual_start or p.planned_start, end)), ("验收日期", fmt_chinese_date(acceptance_date)),
        ("项目范围", p.scope),
    ], wide_labels=("项目范围",))
    doc.add_heading("一、交付成果", level=1)
    rows = []
    for name in data.phase_names():
        items = [d for d in data.deliverables if d.phase == name]
        if not items:
            continue
        done = [d.name for d in items if d.status == DeliverableStatus.SUBMITTED]
        waived = [d.name for d in items if d.status == DeliverableStatus.WAIVED]
        rows.append((name, f"{len(done)}/{len(items)}", "、".join(done) or "—", "、".join(waived) or "—"))
    dx.add_table(doc, ["阶段", "已交付", "交付物", "豁免"], rows, widths_cm=[2.8, 1.8, 8.4, 2.8], empty="无")
    doc.add_heading("二、遗留问题", level=1)
    open_items = [e for e in data.registers if e.kind in (RegisterKind.ISSUE, RegisterKind.REQUIREMENT) and e.is_open]
    dx.add_table(doc, ["编号", "内容", "状态", "处理计划"],
                 [(f"{e.kind}#{e.seq}", e.title, e.status, fmt_date(e.due) if e.due else "转售后跟进")
                  for e in open_items], widths_cm=[2, 8.6, 2, 3.2], empty="无遗留问题")
    doc.add_heading("三、验收结论", level=1)
    dx.add_paragraph(doc, "□ 通过验收　　□ 有条件通过（遗留问题按上表处理）　　□ 不通过")
    dx.add_paragraph(doc, "经双方确认，项目已按合同约定完成实施，交付成果符合要求，同意验收。本确认单经客户签字、盖章后，项目正式结束。")
    dx.add_paragraph(doc, "客户意见：")
    dx.add_paragraph(doc, "")
    dx.add_signature_block(doc, [CLIENT_SIGN, VENDOR_SIGN])
    return dx.to_bytes(doc)


# ----------------------------------------------------------------------------------------------- 交接清单


def render_handover_list(data: ProjectReportData, available: Mapping[str, Sequence[str] | str | None] | None = None, *,
                         receiver: str = "", handover_date: date | None = None,
                         how: Mapping[str, str] | None = None, fonts: DocxFonts = DEFAULT_FONTS) -> bytes:
    """项目交接清单 of 5.4.1: each item of the checklist marked ✓ (with its files) or ✗ (with ``how`` to provide it).

    ``available`` is the project's checklist: item name -> the file name(s) that exist for it (``None`` or an
    empty list: ✗), in the order to print. Without it (a blank form) the standard's ``HANDOVER_ITEMS`` are listed.
    """
    from . import docx_style as dx
    available = dict(available) if available is not None else dict.fromkeys(HANDOVER_ITEMS)
    how = how or {}
    doc = _document(data, "项目交接清单", fonts)
    dx.add_form_table(doc, [
        *_project_fields(data, ("移交人", data.project.pm_name), ("接收人", receiver or "售后服务组")),
        ("交接日期", fmt_chinese_date(handover_date)), ("项目状态", data.project.status),
    ])
    doc.add_heading("一、需要交接的项目资料", level=1)
    rows = []
    present = 0
    for i, name in enumerate(available, 1):
        files = available.get(name)
        files = [files] if isinstance(files, str) else list(files or [])
        ok = bool(files)
        present += ok
        missing = f"缺失，请补充：{how[name]}" if how.get(name) else "缺失，请补充"
        rows.append((i, name, "✓" if ok else "✗", "\n".join(files) if files else missing))
    dx.add_table(doc, ["序号", "资料名称", "是否具备", "文件名称 / 备注"], rows, widths_cm=[1.4, 5.2, 2.0, 7.2])
    dx.add_paragraph(doc, f"共 {len(available)} 项，已具备 {present} 项，缺失 {len(available) - present} 项。")
    doc.add_heading("二、实施遗留事项", level=1)
    open_items = [e for e in data.registers if e.kind in (RegisterKind.ISSUE, RegisterKind.REQUIREMENT) and e.is_open]
    dx.add_table(doc, ["编号", "内容", "状态", "负责人"], [(f"{e.kind}#{e.seq}", e.title, e.status, e.owner_name)
                                                     for e in open_items], widths_cm=[2, 9, 2.4, 2.4], empty="无")
    doc.add_heading("三、客户通讯录", level=1)
    dx.add_table(doc, ["姓名", "职务/角色", "联系电话"], [(m.name, m.role, m.phone) for m in _client_members(data)],
                 widths_cm=[4, 6, 5.8], empty="见客户通讯录附件")
    dx.add_paragraph(doc, "电子资料由项目经理整理后移交公司项目管理员备份保存；纸质资料（阶段性成果、关键会议资料、"
                          "项目验收单等）移交项目管理员封存。")
    dx.add_signature_block(doc, ["移交人（项目经理）", "接收人（售后服务组）", "项目管理员"])
    return dx.to_bytes(doc)


# ------------------------------------------------------------------------------------- 系统升级通知单/确认单


def _pick_upgrade(data: ProjectReportData, upgrade: RegisterEntry | None, related: bool, title: str) -> RegisterEntry:
    if upgrade is not None:
        return upgrade
    upgrades = data.entries(RegisterKind.UPGRADE)
    if not upgrades:
        raise MissingDocumentData(f"项目「{data.project.name}」还没有升级记录，无法生成《{title}》。请先登记升级记录。")
    matching = [u for u in upgrades if u.related_to_client == related]
    return (matching or upgrades)[-1]


def _upgrade_form(doc, data: ProjectReportData, u: RegisterEntry, kind: str) -> None:
    from . import docx_style as dx
    dx.add_form_table(doc, [
        ("项目名称", data.project.name), ("客户单位", data.project.customer),
        ("升级版本", u.version), ("升级类型", kind),
        ("升级时间", fmt_date(u.created_at)), ("完成时间", fmt_date(u.closed_at)),
        ("升级负责人", u.owner_name), ("记录编号", f"升级记录#{u.seq}"),
        ("升级内容", u.title + (f"\n{u.content}" if u.content else "")),
        *[(k, v) for k, v in u.extra.items()],
    ], wide_labels=("升级内容", *u.extra.keys()))


def render_upgrade_notice(data: ProjectReportData, upgrade: RegisterEntry | None = None, *,
                          fonts: DocxFonts = DEFAULT_FONTS) -> bytes:
    """系统升级通知单: a routine upgrade unrelated to the client's issues, to inform the client."""
    from . import docx_style as dx
    u = _pick_upgrade(data, upgrade, False, "系统升级通知单")
    doc = _document(data, "系统升级通知单", fonts)
    dx.add_paragraph(doc, f"{data.project.customer}：")
    dx.add_paragraph(doc, f"我方将于/已于 {fmt_date(u.created_at)} 对贵单位使用的系统进行常规升级（{or_blank(u.version)}），"
                          "本次升级与项目问题、需求无关，不影响现有业务使用。特此通知。")
    _upgrade_form(doc, data, u, "常规升级")
    dx.add_paragraph(doc, "如升级后发现任何异常，请及时联系项目经理" + f"{data.project.pm_name}。")
    dx.add_signature_block(doc, [VENDOR_SIGN])
    return dx.to_bytes(doc)


def render_upgrade_confirmation(data: ProjectReportData, upgrade: RegisterEntry | None = None, *,
                                fonts: DocxFonts = DEFAULT_FONTS) -> bytes:
    """系统升级确认单: the upgrade solved a client issue or need; the client signs to confirm."""
    from . import docx_style as dx
    u = _pick_upgrade(data, upgrade, True, "系统升级确认单")
    doc = _document(data, "系统升级确认单", fonts)
    _upgrade_form(doc, data, u, "问题修复 / 需求实现")
    doc.add_heading("验证结果", level=1)
    dx.add_paragraph(doc, "□ 已解决，功能运行正常　　□ 未完全解决（说明如下）")
    dx.add_paragraph(doc, "说明：")
    dx.add_paragraph(doc, "")
    dx.add_paragraph(doc, "经客户验证，本次升级已解决上述问题/需求，确认升级完成。")
    dx.add_signature_block(doc, ["客户方（签字）", VENDOR_SIGN])
    return dx.to_bytes(doc)


# ------------------------------------------------------------------------------------------------ 审批记录


def render_approval_trail(data: ProjectReportData, *, fonts: DocxFonts = DEFAULT_FONTS) -> bytes:
    """审批记录: every approval of the project with its steps, for the archive."""
    from . import docx_style as dx
    doc = _document(data, "审批记录", fonts)
    dx.add_form_table(doc, _project_fields(data, ("审批总数", len(data.approvals)),
                                           ("审批中", sum(1 for a in data.approvals if a.is_pending))))
    if not data.approvals:
        dx.add_paragraph(doc, "本项目暂无审批记录。")
    for i, a in enumerate(sorted(data.approvals, key=lambda a: str(a.created_at or "")), 1):
        doc.add_heading(f"{i}. {a.kind}：{a.title}", level=2)
        dx.add_form_table(doc, [
            ("状态", a.status), ("结果", a.result), ("发起人", a.requester_name), ("发起时间", fmt_date(a.created_at)),
            ("完成时间", fmt_date(a.finished_at)), ("当前审批人", a.current_approver), ("审批编号", a.instance_id),
            ("备注", a.remarks),
        ])
        _approval_steps_table(doc, a.steps)
    return dx.to_bytes(doc)


# ------------------------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class DocumentSpec:
    """One document the `文档 <名称>` command can produce. Calling the spec renders it."""

    name: str
    render: Callable[..., bytes]
    aliases: tuple[str, ...] = ()
    description: str = ""
    options: tuple[str, ...] = field(default=())  # keyword options the handler may pass

    def __call__(self, data: ProjectReportData, **options) -> bytes:
        return self.render(data, **options)

    def file_name(self, data: ProjectReportData) -> str:
        return f"{self.name}_{data.project.code}.docx"


DOCUMENTS: dict[str, DocumentSpec] = {
    spec.name: spec
    for spec in (
        DocumentSpec("项目立项申请表", render_project_initiation, ("立项申请表", "立项", "立项申请", "立项表"),
                     "启动阶段：内部启动会后由项目经理填写，提钉钉审批"),
        DocumentSpec("项目启动会记录表", render_kickoff_record,
                     ("启动会记录表", "启动会", "启动会记录", "项目启动会议记录表", "启动会议记录表", "立项会记录"),
                     "启动阶段：项目内部启动会记录", ("meeting",)),
        DocumentSpec("上线确认单", render_golive_confirmation, ("上线", "上线确认", "系统上线确认单", "设备上线确认单"),
                     "执行阶段：系统/设备上线，客户签字", ("modules", "golive_date")),
        DocumentSpec("项目验收确认单", render_acceptance_confirmation,
                     ("验收确认单", "验收单", "验收", "项目验收单", "项目验收"), "收尾阶段：客户签字、盖章，项目正式结束",
                     ("acceptance_date",)),
        DocumentSpec("项目交接清单", render_handover_list, ("交接清单", "交接", "项目交接", "交接资料清单"),
                     "收尾阶段：移交售后服务组的项目资料清单", ("available", "receiver", "handover_date", "how")),
        DocumentSpec("系统升级通知单", render_upgrade_notice, ("升级通知单", "升级通知"),
                     "监控阶段：常规升级告知客户", ("upgrade",)),
        DocumentSpec("系统升级确认单", render_upgrade_confirmation, ("升级确认单", "升级确认"),
                     "监控阶段：升级解决客户问题/需求后由客户签字", ("upgrade",)),
        DocumentSpec("审批记录", render_approval_trail, ("审批", "审批记录表", "审批流程"), "项目全部审批及处理过程"),
    )
}

_ALIASES: dict[str, str] = {}
for _spec in DOCUMENTS.values():
    for _alias in (_spec.name, *_spec.aliases):
        _ALIASES[_alias] = _spec.name
del _spec, _alias


def _normalise(name: str) -> str:
    return re.sub(r"[\s《》<>「」\"'“”]", "", name or "").removesuffix(".docx")


def find_document(name: str) -> DocumentSpec | None:
    """Look a document up by its name or an alias, ignoring spaces and 《》 (``文档 《立项申请表》``)."""
    key = _normalise(name)
    canonical = _ALIASES.get(key)
    return DOCUMENTS[canonical] if canonical else None


def document_names() -> list[str]:
    return list(DOCUMENTS)
