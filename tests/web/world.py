"""The 看板 tests' world: four projects of the default sandbox people, written straight into the database.

* 智慧工厂MES (XM-2026-001): PM 王建国, engineers 李明 and 赵磊, client contact 黄蕾; a required document 16 working
  days overdue (延期), another 2 days overdue, a submitted one with its stored file, a high risk, a running approval,
  registers with text that tries to be markup, a link and a formula, and a stored weekly report in both variants;
* ERP升级 (XM-2026-002): PM 陈静, engineer 赵磊 only: 李明 is the engineer outside it;
* 仓储系统 (XM-2026-003): PM 王建国, paused: its overdue document does not count (its clock is stopped);
* 旧系统改造 (XM-2026-004): PM 王建国, closed: 正常 whatever is left.

Leaders: 刘强, 周敏; 项目管理员: 孙丽 (the sandbox's own organization config).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bot.config import Config, parse_config
from storage.models import (
    Approval,
    ApprovalKind,
    ApprovalResult,
    ApprovalStatus,
    DeliverableStatus,
    MemberRole,
    Project,
    ProjectStatus,
    RegisterKind,
    RegisterStatus,
    ReportVariant,
)
from storage.repo import record_weekly_report, upsert_user, write_audit
from tests.features.reports_world import DeliverableSpec, EntrySpec, ProjectSpec, add_project, utc

# Wednesday 11 November 2026, 10:00 in Shanghai.
NOW = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
TODAY = date(2026, 11, 11)
LEADERS = ("liuqiang", "zhoumin")
ADMINS = ("sunli",)
PEOPLE = {
    "wangjianguo": "王建国", "liming": "李明", "zhaolei": "赵磊", "chenjing": "陈静", "liuqiang": "刘强",
    "zhoumin": "周敏", "huanglei": "黄蕾", "sunli": "孙丽", "wutao": "吴涛",
}
SCRIPT = "<script>alert('x')</script>"
FORMULA = '=HYPERLINK("http://evil.example.com","点我")'
LINK = "https://evil.example.com/phish"
MES, ERP, WAREHOUSE, LEGACY = "XM-2026-001", "XM-2026-002", "XM-2026-003", "XM-2026-004"
KICKOFF_FILE = ("启动会记录-终版.docx", b"PK\x03\x04 kickoff minutes")
WEEKLY_FILE = b"PK\x03\x04 weekly report"


def dashboard_config(files_dir: Path, *, dingtalk: dict[str, Any] | None = None, **dashboard: Any) -> Config:
    raw: dict[str, Any] = {
        "dingtalk": {"client_id": "ding-test", "client_secret": "test-secret-value", **(dingtalk or {})},
        "organization": {"leaders": list(LEADERS), "project_admins": list(ADMINS)},
        "storage": {"files_dir": str(files_dir)},
        "dashboard": {"enabled": True, "host": "127.0.0.1", "port": 0, "cookie_secure": False, **dashboard},
    }
    return parse_config(raw, environ={}, require_real_secret=False)


async def seed(database: Any, files_dir: Path) -> dict[str, Project]:
    """Write the four projects; returns them by code."""
    files_dir.mkdir(parents=True, exist_ok=True)
    async with database.write() as session:
        for user_id, name in PEOPLE.items():
            await upsert_user(session=session, user_id=user_id, name=name)
        mes = await add_project(session, ProjectSpec(
            name="智慧工厂MES", current_phase="执行",
            phases=(("启动", date(2026, 9, 1), date(2026, 9, 15), True),
                    ("规划", date(2026, 9, 16), date(2026, 10, 20), True),
                    ("执行", date(2026, 10, 21), date(2027, 2, 28), False)),
            deliverables=(
                DeliverableSpec("项目启动会记录表", date(2026, 9, 10), owner="wangjianguo", phase="启动",
                                status=DeliverableStatus.SUBMITTED, submitted_at=utc("2026-09-09T16:00"),
                                file=KICKOFF_FILE),
                DeliverableSpec("需求规格说明书", date(2026, 10, 20), owner="liming", phase="规划"),
                DeliverableSpec("接口说明文档", date(2026, 11, 9), owner="zhaolei"),
                DeliverableSpec("上线方案", date(2026, 12, 1), owner="liming"),
            ),
            entries=(
                EntrySpec(RegisterKind.ISSUE, f"报表导出乱码 {SCRIPT}", utc("2026-11-02T10:00")),
                EntrySpec(RegisterKind.ISSUE, FORMULA, utc("2026-11-03T10:00")),
                EntrySpec(RegisterKind.ISSUE, "打印机驱动不兼容", utc("2026-10-20T10:00"), status=RegisterStatus.CLOSED,
                          closed_at=utc("2026-10-22T10:00")),
                EntrySpec(RegisterKind.LOG, f"完成服务器部署，资料见 {LINK}", utc("2026-11-10T17:00")),
                EntrySpec(RegisterKind.RISK, "客户接口文档迟迟未提供", utc("2026-10-01T10:00"), probability="高",
                          impact="高"),
            ),
            running_approvals=1,
        ), files_dir=files_dir)
        mes.contract_no, mes.contract_amount = "HT-2026-018", "1280000"  # 立项 facts, as 项目 设置 stores them
        session.add(mes)
        session.add(Approval(  # its 立项, decided by both leaders, with the steps the approval flow keeps
            project_id=mes.id, kind=ApprovalKind.INITIATION, process_instance_id="proc-mes-initiation",
            process_code="PROC-INIT", status=ApprovalStatus.COMPLETED, result=ApprovalResult.AGREE,
            requester_user_id="wangjianguo", created_at=utc("2026-08-24T09:00"), decided_at=utc("2026-08-25T11:00"),
            steps=[{"user": "wangjianguo", "action": "发起", "remark": "", "at": "2026-08-24T01:00:00"},
                   {"user": "liuqiang", "action": "同意", "remark": "同意立项，注意接口风险", "at": "2026-08-24T06:00:00"},
                   {"user": "zhoumin", "action": "同意", "remark": "", "at": "2026-08-25T03:00:00"}]))
        erp = await add_project(session, ProjectSpec(
            name="ERP升级", pm="chenjing", customer="某某物流", members=(("zhaolei", MemberRole.ENGINEER),),
            deliverables=(DeliverableSpec("需求调研报告", date(2026, 12, 20), owner="zhaolei", phase="规划"),),
        ))
        warehouse = await add_project(session, ProjectSpec(
            name="仓储系统", status=ProjectStatus.PAUSED, members=(("liming", MemberRole.ENGINEER),),
            deliverables=(DeliverableSpec("需求规格说明书", date(2026, 10, 1), owner="liming", phase="规划"),),
        ))
        legacy = await add_project(session, ProjectSpec(
            name="旧系统改造", status=ProjectStatus.CLOSED, members=(),
            deliverables=(DeliverableSpec("验收报告", date(2026, 10, 1), owner="wangjianguo", phase="执行"),),
        ))
        weekly_dir = files_dir / "reports" / MES
        weekly_dir.mkdir(parents=True, exist_ok=True)
        for variant, name in ((ReportVariant.CLIENT, "client.docx"), (ReportVariant.INTERNAL, "internal.docx")):
            (weekly_dir / name).write_bytes(WEEKLY_FILE + name.encode())
            await record_weekly_report(
                session=session, project_id=mes.id, iso_year=2026, iso_week=45,
                content_md=f"### 客户项目周报（{variant}）\n- **本周完成**：服务器部署\n- 备注 {SCRIPT}",
                variant=variant, file_path=f"reports/{MES}/{name}", sent_at=utc("2026-11-06T17:00"))
        for n in range(3):
            await write_audit(session=session, action="deliverable.submit", actor_user_id="wangjianguo",
                              project_id=mes.id, entity="deliverable", entity_id=n + 1, after={"version": 1},
                              at=utc(f"2026-11-0{n + 2}T10:00"))
    return {p.code: p for p in (mes, erp, warehouse, legacy)}


__all__ = ["ADMINS", "ERP", "FORMULA", "KICKOFF_FILE", "LEADERS", "LEGACY", "LINK", "MES", "NOW", "PEOPLE", "SCRIPT",
           "TODAY", "WAREHOUSE", "WEEKLY_FILE", "dashboard_config", "seed"]
