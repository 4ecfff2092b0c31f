"""立项 facts (合同编号, 合同金额, 项目背景, 项目目标, 项目范围): given at 新建项目 or with 项目 设置, they fill the
项目立项申请表 and its approval form; once approved, the filed document shows who approved, how, with what remark
and when, instead of blank 审批意见 and signature lines."""

from __future__ import annotations

import re

import aiohttp
import pytest

from handlers import projects
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.models import AuditLog, Deliverable, DeliverableStatus, DeliverableVersion
from tests.docx_text import docx_text

from .conftest import Chat
from .test_approvals_support import ApprovalWorld, add_project, approvals_config, make_world, only_instance

FACTS = ("项目 设置 项目背景:客户三个车间仍靠纸质工单，质量问题无法追溯到工位 "
         "项目目标:冲压、焊接、总装三个车间上线MES，质量追溯到工位 项目范围:生产执行、质量追溯、设备联网")


async def test_facts_at_creation_and_later_fill_the_document(chat: Chat) -> None:
    said = await chat.say("pm", "新建项目 智慧工厂MES 客户:某某制造 类型:软件 经理:@张经理 合同编号:HT-2026-018 "
                                "合同金额:128万", mentions=["pm"])
    assert said.outcome == "ok"
    assert "- 合同编号：HT-2026-018" in said.text and "- 合同金额：1,280,000.00 元" in said.text
    assert "3. 补充立项信息（项目背景、项目目标、项目范围）" in said.text
    assert (await chat.say("pm", "绑定 XM-2026-001 内部群")).outcome == "ok"

    bad = await chat.say("pm", "项目 设置 合同金额:一百万")
    assert bad.outcome == "usage_error" and "合同金额「一百万」不是金额" in bad.text
    assert (await chat.project()).contract_amount == "1280000"
    refused = await chat.say("engineer", "项目 设置 合同编号:HT-X")
    assert refused.outcome in ("denied", "user_error")
    nothing = await chat.say("pm", "项目 设置")
    assert nothing.outcome == "usage_error" and "请写出要设置的立项信息" in nothing.text

    done = await chat.say("pm", FACTS)
    assert done.outcome == "ok" and "- 项目范围：生产执行、质量追溯、设备联网" in done.text
    assert "尚未填写" not in done.text and "发送「立项」时会填入立项申请表和立项审批单" in done.text
    project = await chat.project()
    assert (project.contract_no, project.objectives) == ("HT-2026-018", "冲压、焊接、总装三个车间上线MES，质量追溯到工位")
    [update] = await chat.rows(AuditLog, AuditLog.action == "project.update")
    assert update.after["scope"] == "生产执行、质量追溯、设备联网"

    document = await chat.say("pm", "文档 项目立项申请表")
    text = docx_text(document.files[0].data)
    for expected in ("HT-2026-018", "1,280,000.00 元", "客户三个车间仍靠纸质工单", "质量追溯到工位", "设备联网"):
        assert expected in text, expected


@pytest.fixture
async def sandbox():
    async with Sandbox(config=EmulatorConfig.for_tests(), seed=11) as sb:
        yield sb


async def test_the_approved_form_shows_approvers_results_remarks_and_times(sandbox, sqlite_db, tmp_path) -> None:
    async with aiohttp.ClientSession() as http:
        world: ApprovalWorld = await make_world(sandbox, sqlite_db, http, tmp_path,
                                                approvals_config(sandbox, approvers=()), routers=[projects.router])
        await add_project(world)
        assert (await world.say("pm", "项目 设置 合同编号:HT-2026-018 合同金额:¥1,280,000.00")).outcome == "ok"
        assert (await world.say("pm", FACTS)).outcome == "ok"
        submitted = await world.say("pm", "立项 内部启动会已开")
        assert submitted.outcome == "ok" and "尚未填写" not in submitted.text
        await world.feed()
        instance_id = only_instance(await sandbox.instance_ids())
        values = {v["name"]: v["value"] for v in (await sandbox.instance(instance_id))["formComponentValues"]}
        assert values["合同编号"] == "HT-2026-018" and values["合同金额"] == "1280000"
        assert values["项目背景"].startswith("客户三个车间") and values["项目范围"] == "生产执行、质量追溯、设备联网"
        assert values["项目目标"].startswith("冲压、焊接") and values["立项说明"] == "内部启动会已开"

        await sandbox.approve(instance_id, "刘强", "范围清楚，同意")
        await world.feed()
        await sandbox.approve(instance_id, "周敏", "预算内，同意")
        await world.feed()

        [form] = await world.rows(Deliverable, Deliverable.name == "项目立项申请表")
        assert form.status == DeliverableStatus.SUBMITTED
        [version] = await world.rows(DeliverableVersion, DeliverableVersion.deliverable_id == form.id)
        assert version.link and f"procInstId={instance_id}" in version.link
        assert version.original_name == "项目立项申请表_XM-2026-001.docx"
        text = docx_text((tmp_path / "files" / version.file_path).read_bytes())
    assert "已通过（钉钉审批，编号" in text
    steps = text[text.index("四、审批意见"):]
    for expected in ("王建国", "发起", "刘强", "范围清楚，同意", "周敏", "预算内，同意"):
        assert expected in steps, expected
    assert steps.count("同意") >= 4  # two verdicts and two remarks
    assert "签字：" not in text and "日期：______" not in text
    assert "以上为钉钉审批记录（审批人、结果、意见与时间），无需另行签字。" in text
    # Times, not only dates: the submission and the two approvals.
    assert len(re.findall(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", steps)) == 3
