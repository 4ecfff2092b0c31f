"""The standard's forms (.docx) and the `文档 <名称>` registry."""

from __future__ import annotations

import inspect
import io
from dataclasses import replace

import docx
import pytest
import sample_data
from sample_data import docx_text

from reports import documents
from reports.documents import DOCUMENTS, HANDOVER_ITEMS, MissingDocumentData, find_document
from reports.model import RegisterKind


@pytest.mark.parametrize("template", sample_data.TEMPLATES)
@pytest.mark.parametrize("name", [n for n in DOCUMENTS if not n.startswith("系统升级")])
def test_every_document_renders_for_every_template(template, name, samples):
    data = samples[template]
    headings, text = docx_text(DOCUMENTS[name](data))
    assert headings[0] == name
    assert data.project.name in text and data.project.code in text


def test_project_initiation_form(samples):
    data = samples["软件系统实施"]
    headings, text = docx_text(documents.render_project_initiation(data))
    assert headings == ["项目立项申请表", "一、项目团队", "二、阶段计划与里程碑", "三、风险评估", "四、审批意见"]
    for label, value in (("合同编号", "GZYC-HT-2024-1187"), ("合同金额", "¥1,280,000.00"), ("业务负责人", "孙明")):
        assert label in text and value in text
    assert "医院医保基金监管趋严" in text
    assert "施工现场调研表、供货设备清单表" in text  # deliverables of the 规划 phase
    assert "HIS厂商接口改造排期不确定" in text
    assert "同意立项" in text and "刘总" in text  # the DingTalk approval steps
    assert "周建国" not in text.split("一、项目团队")[1].split("二、")[0]  # the client is not on our team
    # Approved in DingTalk: the steps are the signatures, so no blank lines to sign; before that there are.
    assert "公司领导：" not in text and "签字：" not in text and "无需另行签字" in text
    pending = replace(data, approvals=tuple(replace(a, status="审批中") for a in data.approvals))
    _, pending_text = docx_text(documents.render_project_initiation(pending))
    assert "公司领导：" in pending_text and "签字：" in pending_text
    _, blank_text = docx_text(documents.render_project_initiation(replace(data, approvals=())))
    assert "公司领导：" in blank_text and "签字：" in blank_text and "提交钉钉审批后由公司领导审批" in blank_text


def test_kickoff_record_follows_the_meeting(samples):
    data = samples["软件系统实施"]
    headings, text = docx_text(documents.render_kickoff_record(data))
    assert headings[1:] == ["一、项目情况及合同约定", "二、项目目标与范围", "三、项目节点时间与实施周期",
                            "四、项目成员任务分配", "五、项目风险评估", "六、会议内容与决议"]
    assert "公司 3 楼会议室" in text and "何军（部门经理）" in text
    assert "立项申请表由张伟 1 月 10 日前提交钉钉审批" in text
    # task split: each member with the deliverables they own
    assert "接口说明文档" in text and "培训方案" in text
    eq = samples["设备系统类项目"]
    _, eq_text = docx_text(documents.render_kickoff_record(eq))
    assert "技术总监 冯刚" in eq_text  # falls back to the 技术交底 meeting


def test_golive_and_acceptance_have_client_signatures(samples):
    data = samples["软件系统实施"]
    _, golive = docx_text(documents.render_golive_confirmation(data, modules=["门诊事前提醒", ("事后审核", "医保办使用")]))
    assert "门诊事前提醒" in golive and "医保办使用" in golive
    assert "客户方（签字/盖章）" in golive and "实施方（签字/盖章）" in golive
    assert "同意正式上线" in golive
    _, blank = docx_text(documents.render_golive_confirmation(data))
    assert blank.count("□ 正常　□ 异常") == 5  # rows to fill in by hand
    headings, acc = docx_text(documents.render_acceptance_confirmation(data))
    assert headings == ["项目验收确认单", "一、交付成果", "二、遗留问题", "三、验收结论"]
    assert "客户方（签字/盖章）" in acc and "□ 通过验收" in acc
    assert "HIS接口返回的门诊结算数据缺少医保目录编码" in acc  # open issue listed as 遗留问题
    assert "审核规则引擎对中药饮片单复方判断错误" not in acc  # closed


def test_handover_list_marks_what_exists(samples):
    data = samples["软件系统实施"]
    available = {
        "商务合同": ["商务合同_v1.pdf"],
        "服务器档案": "服务器档案_v1.docx",
        "会议记录表": ["内部启动会.docx", "外部启动会.docx"],
        "接口文档": [],
        "培训照片": ["培训现场.zip"],  # not a standard item: still listed
    }
    _, text = docx_text(documents.render_handover_list(data, available, receiver="售后 黄工"))
    doc = docx.Document(io.BytesIO(documents.render_handover_list(data, available, how={"接口文档": "提交 接口说明文档"})))
    table = next(t for t in doc.tables if t.rows[0].cells[1].text == "资料名称")
    rows = {r.cells[1].text: (r.cells[2].text, r.cells[3].text) for r in table.rows[1:]}
    # The project's checklist, in its order: only what it names (a template's package lists what can be provided).
    assert list(rows) == list(available)
    assert rows["商务合同"] == ("✓", "商务合同_v1.pdf")
    assert rows["会议记录表"] == ("✓", "内部启动会.docx\n外部启动会.docx")
    assert rows["接口文档"] == ("✗", "缺失，请补充：提交 接口说明文档")
    assert rows["培训照片"] == ("✓", "培训现场.zip")
    assert "共 5 项，已具备 4 项，缺失 1 项。" in text
    assert "售后 黄工" in text and "移交人（项目经理）" in text
    assert "周建国" in text and "020-8188 6001" in text  # 客户通讯录
    # Without a checklist (the blank form of 「文档 项目交接清单」): the standard's items.
    blank = docx.Document(io.BytesIO(documents.render_handover_list(data)))
    table = next(t for t in blank.tables if t.rows[0].cells[1].text == "资料名称")
    assert [r.cells[1].text for r in table.rows[1:]] == list(HANDOVER_ITEMS)
    assert all(r.cells[2].text == "✗" for r in table.rows[1:])


def test_upgrade_notice_and_confirmation_pick_the_right_record(samples):
    data = samples["软件系统实施"]
    _, notice = docx_text(documents.render_upgrade_notice(data))
    assert "v2.3.0" in notice and "常规升级" in notice and "v2.3.1" not in notice
    _, confirm = docx_text(documents.render_upgrade_confirmation(data))
    assert "v2.3.1" in confirm and "修复问题 #2" in confirm and "回退方案" in confirm
    assert "客户方（签字）" in confirm
    upgrade = data.entries(RegisterKind.UPGRADE)[0]
    _, explicit = docx_text(documents.render_upgrade_confirmation(data, upgrade))
    assert "v2.3.0" in explicit
    # the 技改 sample has no upgrade records: a clear Chinese error for the user
    with pytest.raises(MissingDocumentData, match="还没有升级记录"):
        documents.render_upgrade_notice(samples["技改项目"])


def test_approval_trail(samples):
    headings, text = docx_text(documents.render_approval_trail(samples["软件系统实施"]))
    assert "1. 项目立项：医保智能审核系统实施项目立项申请" in headings
    assert "注意 HIS 接口风险" in text and "审批中" in text
    _, empty = docx_text(documents.render_approval_trail(samples["技改项目"]))
    assert "本项目暂无审批记录" in empty


@pytest.mark.parametrize(
    "query, expected",
    [
        ("立项申请表", "项目立项申请表"),
        ("《项目立项申请表》", "项目立项申请表"),
        (" 立项 ", "项目立项申请表"),
        ("启动会", "项目启动会记录表"),
        ("项目启动会议记录表", "项目启动会记录表"),
        ("上线确认单", "上线确认单"),
        ("验收单", "项目验收确认单"),
        ("交接清单", "项目交接清单"),
        ("升级通知", "系统升级通知单"),
        ("系统升级确认单.docx", "系统升级确认单"),
        ("审批记录", "审批记录"),
    ],
)
def test_registry_finds_documents_by_name_and_alias(query, expected):
    spec = find_document(query)
    assert spec is not None and spec.name == expected


def test_registry_unknown_name_and_listing(samples):
    assert find_document("不存在的文档") is None
    assert find_document("") is None
    assert documents.document_names()[:2] == ["项目立项申请表", "项目启动会记录表"]
    spec = find_document("立项")
    assert spec.file_name(samples["软件系统实施"]) == "项目立项申请表_RJ-2025-012.docx"
    # options documented on the spec are accepted by its renderer
    for spec in DOCUMENTS.values():
        params = inspect.signature(spec.render).parameters
        assert all(o in params for o in spec.options), spec.name
