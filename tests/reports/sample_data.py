"""Realistic sample report data for one project of each template (软件系统实施, 设备系统类项目, 技改项目).

All three are "as of" Wednesday 2025-03-12 (ISO week 2025-W11, 03-10 .. 03-16), so the weekly
selections (this week's logs, next week's plans and due dates) are deterministic.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

from reports.model import (
    ApprovalInfo,
    ApprovalStep,
    AuditEntry,
    DeliverableInfo,
    MemberInfo,
    PhaseInfo,
    ProjectReportData,
    ProjectSummary,
    RegisterEntry,
    WeeklyIssueCount,
    WeeklyPeriod,
)

TODAY = date(2025, 3, 12)
WEEK = WeeklyPeriod(2025, 11)
TEMPLATES = ("软件系统实施", "设备系统类项目", "技改项目")
COMPANY = "广州云程信息科技有限公司"

d = date


def dt(m: int, day: int, h: int = 10, minute: int = 0) -> datetime:
    return datetime(2025, m, day, h, minute)


def _deliverable(phase, name, owner, due, status="已提交", days=0, submitted=None, required=True, version=1):
    file_name = None
    if status == "已提交":
        file_name = f"{name}_v{version}.docx"
    return DeliverableInfo(
        phase=phase,
        name=name,
        owner_name=owner,
        due=due,
        status=status,
        required=required,
        overdue=days > 0,
        overdue_working_days=days,
        latest_file_name=file_name,
        latest_version=version if status == "已提交" else None,
        submitted_on=submitted or (due if status == "已提交" else None),
    )


def software_project() -> ProjectReportData:
    project = ProjectSummary(
        code="RJ-2025-012",
        name="广州市第一人民医院医保智能审核系统实施项目",
        customer="广州市第一人民医院",
        template="软件系统实施",
        status="进行中",
        phase="执行",
        pm_name="张伟",
        planned_start=d(2025, 1, 6),
        planned_end=d(2025, 5, 16),
        actual_start=d(2025, 1, 6),
        progress=46,
        sales_name="孙明",
        department="实施交付部",
        contract_no="GZYC-HT-2024-1187",
        contract_amount="¥1,280,000.00",
        customer_contact="周建国（信息科主任）",
        customer_phone="020-8188 6001",
        site="广州市越秀区中山二路 1 号",
        background="医院医保基金监管趋严，人工审核覆盖率不足 10%，需上线智能审核系统实现事前提醒、事中控制、事后审核。",
        objectives="5 月中旬前完成门诊上线并通过验收；刚性规则审核覆盖率 100%，人审工作量下降 60%。",
        scope="门诊、住院医保结算数据的智能审核；医生工作站事前提醒；医保办审核扣款分析；与 HIS、病案系统对接。",
    )
    phases = (
        PhaseInfo("启动", d(2025, 1, 6), d(2025, 1, 24), d(2025, 1, 6), d(2025, 1, 24), True),
        PhaseInfo("规划", d(2025, 1, 27), d(2025, 2, 21), d(2025, 2, 5), d(2025, 2, 28), True),
        PhaseInfo("执行", d(2025, 2, 24), d(2025, 4, 18), d(2025, 3, 3), None, False),
        PhaseInfo("监控", d(2025, 2, 24), d(2025, 5, 16), d(2025, 3, 3), None, False),
        PhaseInfo("收尾", d(2025, 4, 21), d(2025, 5, 16)),
    )
    D = _deliverable
    deliverables = (
        D("启动", "商务合同", "孙明", d(2025, 1, 8)),
        D("启动", "项目启动会记录表", "张伟", d(2025, 1, 10)),
        D("启动", "项目立项申请表", "张伟", d(2025, 1, 10)),
        D("启动", "会议记录表", "张伟", d(2025, 1, 17)),
        D("启动", "需求调研报告", "陈静", d(2025, 1, 22)),
        D("启动", "需求规格说明书", "陈静", d(2025, 1, 24), version=3),
        D("规划", "施工现场调研表", "刘洋", d(2025, 2, 7), status="已豁免"),
        D("规划", "供货设备清单表", "刘洋", d(2025, 2, 10)),
        D("规划", "设备运行环境要求说明书", "刘洋", d(2025, 2, 12)),
        D("规划", "项目实施方案", "张伟", d(2025, 2, 18), version=2),
        D("规划", "项目实施计划表", "张伟", d(2025, 2, 20)),
        D("规划", "上线规则清单", "陈静", d(2025, 3, 6), status="待提交", days=4),
        D("规划", "系统审核业务流程方案", "陈静", d(2025, 3, 12), submitted=d(2025, 3, 11)),
        D("规划", "施工现场交接验收表", "刘洋", d(2025, 2, 21), status="已豁免"),
        D("执行", "接口说明文档", "刘洋", d(2025, 3, 14), status="待提交"),
        D("执行", "数据质量报告", "刘洋", d(2025, 3, 7), status="待提交", days=3),
        D("执行", "服务器档案", "刘洋", d(2025, 3, 10), submitted=d(2025, 3, 10)),
        D("执行", "系统使用文档", "赵磊", d(2025, 3, 21), status="待提交"),
        D("执行", "实施部署记录文档", "刘洋", d(2025, 3, 28), status="待提交"),
        D("执行", "培训方案", "陈静", d(2025, 3, 19), status="待提交"),
        D("执行", "培训PPT", "陈静", d(2025, 4, 2), status="待提交"),
        D("执行", "操作手册", "赵磊", d(2025, 4, 2), status="待提交"),
        D("执行", "培训签到表", "陈静", d(2025, 4, 9), status="待提交"),
        D("执行", "设备试运行报告", "刘洋", d(2025, 4, 14), status="待提交"),
        D("执行", "测评报告", "质控部 吴敏", d(2025, 4, 16), status="待提交"),
        D("执行", "上线确认单", "张伟", d(2025, 4, 18), status="待提交"),
        D("监控", "审核报告", "陈静", d(2025, 3, 31), status="待提交"),
        D("收尾", "验收汇报PPT", "张伟", d(2025, 5, 9), status="待提交"),
        D("收尾", "实施过程文档", "张伟", d(2025, 5, 9), status="待提交"),
        D("收尾", "项目验收确认单", "张伟", d(2025, 5, 16), status="待提交"),
    )
    R = RegisterEntry
    registers = (
        R("问题", 1, "HIS接口返回的门诊结算数据缺少医保目录编码", "刘洋", "处理中", dt(3, 4), None,
          content="门诊结算接口 v1 返回的明细缺少 ylml_bm 字段，规则无法匹配医保目录。",
          reporter_name="周建国", priority="高", due=d(2025, 3, 18), needs_client=True),
        R("问题", 2, "审核规则引擎对中药饮片单复方判断错误", "赵磊", "已解决", dt(3, 5), dt(3, 11, 16),
          resolution="调整规则 R-032 判断条件，v2.3.1 已在测试环境验证通过。", reporter_name="黄丽", priority="中"),
        R("问题", 3, "测试环境服务器内存不足导致批量审核超时", "刘洋", "已解决", dt(3, 6), dt(3, 10, 15),
          resolution="测试服务器内存扩容至 64GB，批量审核 5 万条耗时降至 6 分钟。", priority="中"),
        R("问题", 4, "门诊医生工作站弹窗提示字体过小", "赵磊", "待处理", dt(3, 11), None, reporter_name="黄丽", priority="低"),
        R("问题", 5, "住院病案首页数据每日同步延迟超过2小时", "刘洋", "处理中", dt(2, 27), None,
          reporter_name="周建国", priority="中", needs_client=True, content="需信息科调整病案系统夜间抽取任务时间。"),
        R("需求", 1, "增加按科室统计的审核扣款月报", "陈静", "处理中", dt(3, 3), None, reporter_name="黄丽",
          due=d(2025, 4, 10), priority="中"),
        R("需求", 2, "审核结果推送到医生工作站消息中心", "赵磊", "已完成", dt(2, 20), dt(3, 7),
          resolution="已在 v2.3.0 实现并上线测试环境。", reporter_name="周建国"),
        R("风险", 1, "HIS厂商接口改造排期不确定，可能影响数据对接进度", "张伟", "监控中", dt(2, 26), None,
          probability="高", impact="高", needs_client=True,
          response="减轻：已发函医院信息科协调 HIS 厂商，每周跟进排期；准备离线数据导入方案兜底。"),
        R("风险", 2, "规划阶段延误一周，执行阶段工期被压缩", "张伟", "监控中", dt(2, 28), None,
          probability="中", impact="中", response="接受：增派一名实施工程师，关键路径任务周末加班追赶。"),
        R("风险", 3, "等保测评可能要求对审核系统整改", "刘洋", "已关闭", dt(1, 20), dt(3, 1),
          probability="低", impact="高", response="转移：由医院等保服务商负责测评整改，合同已明确责任。"),
        R("变更", 1, "上线范围调整为先门诊、后住院分两期上线", "张伟", "已批准", dt(3, 3), dt(3, 5),
          content="因 HIS 住院接口改造延期，第一期仅上线门诊审核，住院审核顺延至第二期。",
          resolution="客户医保办与公司领导审批同意，工期不变。", reporter_name="黄丽"),
        R("升级记录", 1, "例行安全补丁升级", "刘洋", "已完成", dt(2, 28, 20), dt(2, 28, 21),
          content="升级操作系统安全补丁与 JDK 11.0.26。", version="v2.3.0", related_to_client=False),
        R("升级记录", 2, "审核引擎升级，修复中药饮片规则误判", "赵磊", "已完成", dt(3, 11, 19), dt(3, 11, 20),
          content="修复问题 #2（中药饮片单复方判断错误）；优化批量审核性能约 30%。", version="v2.3.1",
          related_to_client=True, reporter_name="黄丽",
          extra={"升级方式": "停机升级（19:00-20:00）", "回退方案": "保留 v2.3.0 镜像，5 分钟内可回退"}),
        R("实施日志", 1, "与信息科确认门诊结算接口字段映射", "刘洋", created_at=dt(3, 5, 17)),
        R("实施日志", 2, "完成测试环境服务器扩容并部署审核引擎 v2.3.0", "刘洋", created_at=dt(3, 10, 18)),
        R("实施日志", 3, "与医保办梳理第一批刚性审核规则 42 条", "陈静", created_at=dt(3, 10, 18)),
        R("实施日志", 4, "修复中药饮片单复方规则误判并发布 v2.3.1", "赵磊", created_at=dt(3, 11, 20)),
        R("实施日志", 5, "组织信息科、医保办召开接口对接协调会", "张伟", created_at=dt(3, 11, 17)),
        R("实施日志", 6, "完成门诊结算接口联调约 80%", "刘洋", created_at=dt(3, 12, 18)),
        R("实施日志", 7, "整理系统审核业务流程方案并提交客户确认", "陈静", created_at=dt(3, 12, 18)),
        R("下周计划", 1, "完成门诊结算接口联调并出具数据质量报告", "刘洋", "未开始", dt(3, 12), due=d(2025, 3, 19)),
        R("下周计划", 2, "提交上线规则清单给医保办签字确认", "陈静", "未开始", dt(3, 12), due=d(2025, 3, 18)),
        R("下周计划", 3, "编写系统使用文档初稿", "赵磊", "未开始", dt(3, 12), due=d(2025, 3, 21)),
        R("会议记录", 1, "项目内部启动会", "张伟", "已完成", dt(1, 8, 14), meeting_type="项目内部启动会",
          attendees="张伟、陈静、刘洋、赵磊、孙明（拓展）、何军（部门经理）", location="公司 3 楼会议室",
          content="拓展介绍项目情况及合同约定；明确项目目标与范围；确定 5 月 16 日完成验收；分工：陈静负责规则与培训，刘洋负责接口与部署，赵磊负责研发支持。",
          resolution="识别风险：HIS 厂商接口改造排期不确定；立项申请表由张伟 1 月 10 日前提交钉钉审批。"),
        R("会议记录", 2, "项目外部启动会", "张伟", "已完成", dt(1, 15, 9, 30), meeting_type="项目外部启动会",
          attendees="周建国、黄丽（院方）；张伟、陈静、刘洋（实施方）", location="医院行政楼 5 楼会议室",
          content="介绍建设背景、基本需求、总体规划及团队；院方承诺提供接口与场地支持。"),
        R("会议记录", 3, "接口对接协调会", "张伟", "已完成", dt(3, 11, 15), meeting_type="临时会议",
          attendees="周建国、黄丽、HIS 厂商 钱工；张伟、刘洋", location="医院信息科",
          content="确认门诊结算接口补充医保目录编码字段，HIS 厂商 3 月 18 日前完成。"),
    )
    members = (
        MemberInfo("张伟", "项目经理", "138 0000 1001", COMPANY),
        MemberInfo("陈静", "实施工程师", "138 0000 1002", COMPANY),
        MemberInfo("刘洋", "实施工程师", "138 0000 1003", COMPANY),
        MemberInfo("赵磊", "研发工程师", "138 0000 1004", COMPANY),
        MemberInfo("孙明", "拓展", "138 0000 1005", COMPANY),
        MemberInfo("周建国", "客户（信息科主任）", "020-8188 6001", "广州市第一人民医院"),
        MemberInfo("黄丽", "客户（医保办科长）", "020-8188 6123", "广州市第一人民医院"),
    )
    approvals = (
        ApprovalInfo("项目立项", "医保智能审核系统实施项目立项申请", "已通过", "同意", "张伟", dt(1, 9, 16), dt(1, 10, 11),
                     steps=(ApprovalStep("张伟", "发起", dt(1, 9, 16)), ApprovalStep("何军", "同意", dt(1, 10, 9), "同意立项"),
                            ApprovalStep("刘总", "同意", dt(1, 10, 11), "注意 HIS 接口风险"))),
        ApprovalInfo("阶段评审", "规划阶段完成评审", "已通过", "同意", "张伟", dt(2, 27, 10), dt(2, 28, 15),
                     steps=(ApprovalStep("张伟", "发起", dt(2, 27, 10)), ApprovalStep("何军", "同意", dt(2, 28, 15)))),
        ApprovalInfo("变更", "上线范围调整为分两期", "已通过", "同意", "张伟", dt(3, 4, 9), dt(3, 5, 17),
                     steps=(ApprovalStep("张伟", "发起", dt(3, 4, 9)), ApprovalStep("何军", "同意", dt(3, 5, 17), "工期不变"))),
        ApprovalInfo("项目进度变更", "执行阶段里程碑调整申请", "审批中", "", "张伟", dt(3, 11, 18), None,
                     steps=(ApprovalStep("张伟", "发起", dt(3, 11, 18), "HIS 接口延期，执行阶段计划完成顺延一周"),),
                     current_approver="何军"),
    )
    audit = tuple(
        AuditEntry(at, actor, action, target, detail)
        for at, actor, action, target, detail in (
            (dt(1, 6, 9), "张伟", "创建项目", "RJ-2025-012", "模板：软件系统实施"),
            (dt(1, 10, 11), "系统", "审批通过", "项目立项", "审批人：刘总"),
            (dt(2, 28, 15), "张伟", "阶段推进", "规划 → 执行", ""),
            (dt(3, 10, 18), "刘洋", "提交交付物", "服务器档案", "服务器档案_v1.docx"),
            (dt(3, 11, 16), "赵磊", "关闭问题", "问题 #2", "已解决"),
            (dt(3, 11, 18), "张伟", "发起审批", "项目进度变更", "执行阶段里程碑调整申请"),
            (dt(3, 11, 20), "陈静", "提交交付物", "系统审核业务流程方案", "系统审核业务流程方案_v1.docx"),
        )
    )
    counts = (
        WeeklyIssueCount(2025, 6, 2, 0), WeeklyIssueCount(2025, 7, 3, 2), WeeklyIssueCount(2025, 8, 1, 2),
        WeeklyIssueCount(2025, 9, 4, 1), WeeklyIssueCount(2025, 10, 3, 2), WeeklyIssueCount(2025, 11, 1, 3),
    )
    return ProjectReportData(project, TODAY, phases, deliverables, registers, members, approvals, audit, counts, WEEK,
                             company_name=COMPANY)


def equipment_project() -> ProjectReportData:
    project = ProjectSummary(
        code="SB-2025-003",
        name="深圳宝安智慧仓储中心RFID设备系统项目",
        customer="深圳市宝安区物资储备中心",
        template="设备系统类项目",
        status="进行中",
        phase="项目实施",
        pm_name="李娜",
        planned_start=d(2025, 1, 13),
        planned_end=d(2025, 3, 7),
        actual_start=d(2025, 1, 13),
        progress=72,
        sales_name="郭涛",
        contract_no="GZYC-HT-2024-1302",
        contract_amount="¥865,000.00",
        customer_contact="何春燕（仓储科科长）",
        customer_phone="0755-2799 3100",
        site="深圳市宝安区福永街道物资储备中心 2 号库",
        objectives="完成 2 个库区 RFID 通道门、手持终端与仓储管理系统部署，实现出入库自动盘点。",
        scope="RFID 通道门 6 套、手持终端 20 台、标签 5 万枚的安装调试与系统对接。",
    )
    phases = (
        PhaseInfo("实施前准备", d(2025, 1, 13), d(2025, 1, 31), d(2025, 1, 13), d(2025, 2, 7), True),
        PhaseInfo("项目实施", d(2025, 2, 3), d(2025, 2, 28), d(2025, 2, 10), None),
        PhaseInfo("试运行", d(2025, 3, 3), d(2025, 3, 7)),
        PhaseInfo("验收交接", d(2025, 3, 3), d(2025, 3, 7)),
    )
    D = _deliverable
    deliverables = (
        D("实施前准备", "技术交底记录", "李娜", d(2025, 1, 14)),
        D("实施前准备", "实施辅材清单", "李娜", d(2025, 1, 20)),
        D("实施前准备", "实施方案", "李娜", d(2025, 1, 24), version=2),
        D("实施前准备", "实施进度计划表", "李娜", d(2025, 1, 24)),
        D("实施前准备", "甲乙双方义务和责任", "郭涛", d(2025, 1, 27)),
        D("实施前准备", "供货计划", "李娜", d(2025, 1, 31)),
        D("项目实施", "开工报告", "李娜", d(2025, 2, 10)),
        D("项目实施", "设备验收单", "马超", d(2025, 2, 14)),
        D("项目实施", "实施进度表", "马超", d(2025, 2, 28), status="待提交", days=8),
        D("项目实施", "系统调试完成报告", "马超", d(2025, 3, 5), status="待提交", days=5),
        D("项目实施", "培训签到表", "李娜", d(2025, 3, 14), status="待提交"),
        D("项目实施", "设备移交清单", "李娜", d(2025, 3, 18), status="待提交"),
        D("试运行", "试运行报告", "李娜", d(2025, 4, 11), status="待提交"),
        D("验收交接", "项目验收确认单", "李娜", d(2025, 4, 18), status="待提交"),
    )
    R = RegisterEntry
    registers = (
        R("问题", 1, "2 号库东侧通道门读取率仅 92%", "马超", "处理中", dt(3, 6), None, needs_client=True,
          content="金属货架反射导致漏读，需客户同意调整货架位置。", reporter_name="何春燕", priority="高"),
        R("问题", 2, "手持终端与 WMS 登录偶发超时", "马超", "已解决", dt(3, 3), dt(3, 10), resolution="调整无线 AP 漫游阈值。"),
        R("风险", 1, "客户库区改造未完成，影响试运行开始时间", "李娜", "监控中", dt(2, 20), None, probability="高",
          impact="中", response="减轻：与客户确认改造时间表，先在 1 号库试运行。", needs_client=True),
        R("实施日志", 1, "完成 1 号库 3 套通道门安装调试", "马超", created_at=dt(3, 10, 18)),
        R("实施日志", 2, "2 号库通道门读取率测试与天线角度调整", "马超", created_at=dt(3, 11, 18)),
        R("实施日志", 3, "与客户仓储科确认试运行范围", "李娜", created_at=dt(3, 12, 17)),
        R("下周计划", 1, "完成 2 号库通道门调优并出具系统调试完成报告", "马超", "未开始", dt(3, 12), due=d(2025, 3, 19)),
        R("下周计划", 2, "组织仓储科操作人员培训", "李娜", "未开始", dt(3, 12), due=d(2025, 3, 20)),
        R("升级记录", 1, "通道门固件升级", "马超", "已完成", dt(3, 10, 20), dt(3, 10, 21), version="FW 1.8.2",
          related_to_client=False, content="提升多标签读取性能。"),
        R("会议记录", 1, "技术交底会", "郭涛", "已完成", dt(1, 13, 14), meeting_type="技术交底",
          attendees="郭涛、李娜、技术总监 冯刚、售前 曹丹", content="沟通项目概况、人员、风险预估与客户沟通注意事项。"),
    )
    members = (
        MemberInfo("李娜", "项目经理", "139 0000 2001", COMPANY),
        MemberInfo("马超", "实施工程师", "139 0000 2002", COMPANY),
        MemberInfo("郭涛", "业务负责人", "139 0000 2003", COMPANY),
        MemberInfo("何春燕", "客户（仓储科科长）", "0755-2799 3100", "深圳市宝安区物资储备中心"),
    )
    approvals = (
        ApprovalInfo("项目立项", "宝安智慧仓储 RFID 项目立项", "已通过", "同意", "李娜", dt(1, 13, 10), dt(1, 14, 9),
                     steps=(ApprovalStep("李娜", "发起", dt(1, 13, 10)), ApprovalStep("冯刚", "同意", dt(1, 14, 9)))),
        ApprovalInfo("项目进度变更", "试运行推迟申请", "审批中", "", "李娜", dt(3, 10, 9), None,
                     steps=(ApprovalStep("李娜", "发起", dt(3, 10, 9)),), current_approver="冯刚"),
    )
    counts = (WeeklyIssueCount(2025, 9, 0, 0), WeeklyIssueCount(2025, 10, 2, 0), WeeklyIssueCount(2025, 11, 0, 1))
    return ProjectReportData(project, TODAY, phases, deliverables, registers, members, approvals, (), counts, WEEK,
                             company_name=COMPANY)


def renovation_project() -> ProjectReportData:
    project = ProjectSummary(
        code="JG-2025-007",
        name="华南精密制造热处理生产线技改项目",
        customer="华南精密制造有限公司",
        template="技改项目",
        status="进行中",
        phase="设备制造与预验收",
        pm_name="王强",
        planned_start=d(2025, 1, 2),
        planned_end=d(2025, 6, 30),
        actual_start=d(2025, 1, 2),
        progress=38,
        department="生产科设备办",
        contract_no="HNJM-CG-2025-004",
        contract_amount="¥3,460,000.00",
        customer_contact="欧阳文（热处理车间主任）",
        site="华南精密制造有限公司热处理车间",
        objectives="更换 2 台可控气氛多用炉及配套清洗机，能耗下降 15%。",
    )
    phases = (
        PhaseInfo("合同签订", d(2025, 1, 2), d(2025, 1, 17), d(2025, 1, 2), d(2025, 1, 16), True),
        PhaseInfo("设计与会审", d(2025, 1, 20), d(2025, 2, 21), d(2025, 1, 20), d(2025, 2, 20), True),
        PhaseInfo("设备制造与预验收", d(2025, 2, 24), d(2025, 4, 18), d(2025, 2, 24), None),
        PhaseInfo("发货与开箱验收", d(2025, 4, 21), d(2025, 5, 2)),
        PhaseInfo("安装调试", d(2025, 5, 5), d(2025, 6, 6)),
        PhaseInfo("验收与交付", d(2025, 6, 9), d(2025, 6, 20)),
        PhaseInfo("结算与转固", d(2025, 6, 23), d(2025, 6, 30)),
    )
    D = _deliverable
    deliverables = (
        D("合同签订", "购销合同", "王强", d(2025, 1, 16)),
        D("合同签订", "技术协议", "王强", d(2025, 1, 16)),
        D("设计与会审", "非标设备设计图纸", "设备厂家 林工", d(2025, 2, 14)),
        D("设计与会审", "设计会审纪要", "王强", d(2025, 2, 20)),
        D("设备制造与预验收", "制造进度周报", "设备厂家 林工", d(2025, 3, 14), status="待提交"),
        D("设备制造与预验收", "预验收报告", "王强", d(2025, 4, 18), status="待提交"),
        D("发货与开箱验收", "开箱验收单", "王强", d(2025, 5, 2), status="待提交"),
        D("安装调试", "安装调试记录", "技改队 邓师傅", d(2025, 6, 6), status="待提交"),
        D("验收与交付", "设备验收单", "王强", d(2025, 6, 20), status="待提交"),
        D("验收与交付", "设备启用手续", "王强", d(2025, 6, 20), status="待提交"),
        D("结算与转固", "结算付款单", "财务科 苏红", d(2025, 6, 27), status="待提交"),
        D("结算与转固", "设备转固单", "财务科 苏红", d(2025, 6, 30), status="待提交"),
    )
    R = RegisterEntry
    registers = (
        R("问题", 1, "多用炉淬火油槽容积与会审图纸不一致", "王强", "已解决", dt(3, 3), dt(3, 11),
          resolution="厂家确认按会审图纸 3.2m³ 制造，已出具更正说明。"),
        R("风险", 1, "炉膛耐火材料进口周期可能延长", "王强", "监控中", dt(2, 24), None, probability="中", impact="中",
          response="减轻：要求厂家提供国产替代方案备选。"),
        R("实施日志", 1, "赴厂家检查多用炉炉壳焊接进度", "王强", created_at=dt(3, 11, 17)),
        R("下周计划", 1, "与工艺技术部确认预验收检验项目", "王强", "未开始", dt(3, 12), due=d(2025, 3, 20)),
    )
    members = (
        MemberInfo("王强", "项目经理（设备办）", "137 0000 3001", "华南精密制造有限公司"),
        MemberInfo("林工", "设备厂家", "137 0000 3002", "设备厂家"),
    )
    counts = (WeeklyIssueCount(2025, 10, 1, 0), WeeklyIssueCount(2025, 11, 0, 1))
    return ProjectReportData(project, TODAY, phases, deliverables, registers, members, (), (), counts, WEEK,
                             company_name="华南精密制造有限公司")


FACTORIES = {
    "软件系统实施": software_project,
    "设备系统类项目": equipment_project,
    "技改项目": renovation_project,
}


def sample(template: str) -> ProjectReportData:
    return FACTORIES[template]()


def days_after(day: date, n: int) -> date:
    return day + timedelta(days=n)


def docx_text(payload: bytes) -> tuple[list[str], str]:
    """(headings, all text including table cells) of a .docx."""
    import docx

    doc = docx.Document(io.BytesIO(payload))
    headings = [p.text for p in doc.paragraphs if p.style.name.startswith(("Heading", "Title"))]
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            for cell in row.cells:
                parts.append(cell.text)
    return headings, "\n".join(parts)
