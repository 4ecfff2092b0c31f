"""A 软件系统实施 project with OA approvals, through the sandbox, from 新建项目 to 归档; then the archive is opened and
checked file by file against its index: every deliverable's latest version (files in the zip, links in the index
with who and when), every generated document, both weekly report variants, the approvals with their steps, and
the audit log in Chinese."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile

import pytest
from sqlmodel import select

from lifecycle_chat import (
    CLIENT,
    ENGINEER,
    INTERNAL,
    LEADER,
    PM,
    VP,
    LifecycleChat,
    approved_project,
    close_project,
    work_through_phases,
)
from storage.models import Deliverable, DeliverableVersion, Project, User
from tests.docx_text import docx_text

pytestmark = [pytest.mark.timeout(180)]

FACTS = "项目 设置 合同编号:HT-2026-018 合同金额:128万 项目目标:三个车间上线MES 项目范围:生产执行与质量追溯"
_FILE_ROW = re.compile(r"^\| (\d+) \| ([^|]+) \| (.+) \| (\d+) \| ([0-9a-f]{64}) \|$")
_LINK_ROW = re.compile(r"^\| (\d+) \| ([^|]+) \| ([^|]+) \| 第(\d+)版 \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")


def index_of(md: str) -> tuple[dict[str, tuple[str, int, str]], list[tuple[str, ...]]]:
    files, links = {}, []
    for line in md.splitlines():
        if found := _FILE_ROW.match(line):
            files[found.group(3)] = (found.group(2), int(found.group(4)), found.group(5))
        elif found := _LINK_ROW.match(line):
            links.append(found.groups()[1:])
    return files, links


async def test_the_archive_holds_everything_and_matches_its_index(approving_chat: LifecycleChat) -> None:
    chat = approving_chat
    code = await approved_project(chat, facts=FACTS)

    assert "已登记问题#1" in (await chat.ask(ENGINEER, INTERNAL, "问题 新增 报表导出乱码")).text
    assert "实施日志" in (await chat.ask(ENGINEER, INTERNAL, "日志 完成应用服务器部署")).text
    notice = await chat.ask(ENGINEER, INTERNAL, "升级 v2.4.0 常规性能优化", replies=2)
    assert "已作为《系统升级通知单》第 1 版提交" in notice.text
    client_before = chat.last_seq(CLIENT)
    assert "正在生成本周" in (await chat.ask(PM, INTERNAL, "周报 发送", replies=3)).text  # + the internal variant
    await chat.wait_for(CLIENT, "客户项目周报", after=client_before)

    sent = await work_through_phases(chat, code)
    zip_path = await close_project(chat, code, form_first=True)

    async with chat.app.database.read() as session:
        project = (await session.exec(select(Project).where(Project.code == code))).one()
        rows = (await session.exec(select(Deliverable, DeliverableVersion).join(
            DeliverableVersion, DeliverableVersion.deliverable_id == Deliverable.id)
            .where(Deliverable.project_id == project.id))).all()
        names = {u.user_id: u.name for u in (await session.exec(select(User))).all()}
    latest: dict[str, DeliverableVersion] = {}
    for deliverable, version in rows:
        if deliverable.name not in latest or version.version > latest[deliverable.name].version:
            latest[deliverable.name] = version

    with zipfile.ZipFile(zip_path) as bundle:
        members = set(bundle.namelist())
        files, links = index_of(bundle.read("索引.md").decode("utf-8"))
        # File by file: every member but the indexes is listed, with its size and SHA-256, and nothing else is.
        assert set(files) == members - {"索引.md", "索引.docx"}
        for name, (_, size, sha) in files.items():
            payload = bundle.read(name)
            assert (len(payload), hashlib.sha256(payload).hexdigest()) == (size, sha), name
        index_docx = docx_text(bundle.read("索引.docx"))
        assert all(sha in index_docx for _, _, sha in files.values())

        # Every deliverable's latest version: a file in its phase folder, or a link in the index (who, when).
        filed = {name.split("/")[-1] for name, (category, _, _) in files.items() if category == "交付物"}
        linked = {row[1]: row for row in links}
        for name, version in latest.items():
            if name in ("客户项目周报", "电子资料存档"):
                continue  # the reports have their own folder, every week; 电子资料存档 is this zip, filed after it
            if version.file_path:
                assert version.original_name in filed, name
            else:
                # The index shows users' text inert (reports.user_text.md_literal): compare without its marks.
                phase, deliverable, number, where, who, when = (c.replace("\u200b", "") for c in linked[name])
                assert (int(number), where.strip()) == (version.version, version.link or f"（说明）{version.note}")
                assert who.strip() == names.get(version.submitted_by, version.submitted_by)
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", when.strip()), when
        assert sum(1 for v in latest.values() if v.link and not v.file_path) >= 20  # most documents went as links
        for file_name in sent:
            assert file_name in filed

        # Every generated document, both weekly variants.
        generated = {n.split("/", 1)[1] for n in members if n.startswith("生成文档/")}
        for document in ("项目立项申请表", "项目启动会记录表", "上线确认单", "项目验收确认单", "项目交接清单"):
            assert f"{document}_{code}.docx" in generated, document
        assert f"系统升级通知单_{code}_v2.4.0.docx" in generated
        assert any(n.startswith("客户项目周报/") for n in members)
        assert any(n.startswith("项目内部周报/") for n in members)
        approved_form = docx_text(bundle.read(f"生成文档/项目立项申请表_{code}.docx"))
        assert "HT-2026-018" in approved_form and "1,280,000.00 元" in approved_form and "签字：" not in approved_form

        # The approvals with their steps: who, what, the remark and when.
        trail = docx_text(bundle.read("项目管理记录/审批记录.docx"))
        assert "无审批步骤" not in trail
        for expected in (PM, "发起", LEADER, "同意立项", VP, "预算内，同意"):
            assert expected in trail, expected
        assert len(re.findall(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", trail)) >= 3

        # The audit log in Chinese.
        audit = list(csv.reader(io.StringIO(bundle.read("项目管理记录/操作日志.csv").decode("utf-8-sig"))))
        actions = {row[2] for row in audit[1:]}
        assert {"新建项目", "提交交付物", "立项通过", "推进阶段", "交接售后", "归档并关闭项目"} <= actions
        assert not [a for a in actions if re.fullmatch(r"[a-z_]+\.[a-z_]+", a)], actions
