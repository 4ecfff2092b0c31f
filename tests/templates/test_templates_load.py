"""Built-in templates follow the standard; broken files give one clear line; company templates override/extend."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.templates import (
    ROLES,
    DeliverableFlag,
    ProcessTemplate,
    Recurrence,
    TemplateError,
    TemplateRegistry,
    UnknownTemplateError,
    builtin_templates_dir,
    load_template_file,
    load_templates,
)

SOFTWARE = "软件系统实施"
EQUIPMENT = "设备系统类项目"
RENOVATION = "技改项目"

# The 《项目实施规范》 table: phase -> activity -> documents, by the standard's names.
SOFTWARE_STANDARD = {
    "启动": {
        "项目内部启动会": ["商务合同", "项目启动会记录表"],
        "项目立项": ["项目立项申请表"],
        "项目外部启动会": ["会议记录表"],
        "需求调研": ["需求调研报告", "需求规格说明书"],
    },
    "规划": {
        "实施方案": ["施工现场调研表", "供货设备清单表", "设备运行环境要求说明书", "项目实施方案"],
        "实施计划": ["项目实施计划表"],
        "审核规则": ["上线规则清单"],
        "系统流程": ["系统审核业务流程方案", "施工现场交接验收表"],
    },
    "执行": {
        "数据接口对接": ["接口说明文档", "数据质量报告"],
        "项目建设": ["服务器档案", "系统使用文档", "实施部署记录文档"],
        "系统培训": ["培训方案", "培训PPT", "操作手册", "培训签到表"],
        "系统/设备上线": ["设备试运行报告", "测评报告", "上线确认单"],
    },
    "收尾": {
        "项目验收会": ["验收汇报PPT", "实施过程文档"],
        "项目验收": ["项目验收确认单"],
        "项目复盘": ["复盘记录"],
        "项目交接": ["内部交接会议记录", "外部交接会议记录", "电子资料存档", "纸质资料存档"],
    },
}
SOFTWARE_MONITORING = [
    "问题记录表",
    "需求跟踪表",
    "客户项目周报",
    "审核报告",
    "项目进度变更单",
    "升级记录表",
    "系统升级确认单",
    "系统升级通知单",
]
HANDOVER_PACKAGE = [
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
]


def activities(template: ProcessTemplate, phase: str) -> dict[str, list[str]]:
    return {a.name: [d.name for d in a.deliverables] for a in template.phase(phase).activities}


def all_deliverables(template: ProcessTemplate) -> list[str]:
    return [d.name for _, _, d in template.iter_deliverables()]


# -- built-ins -------------------------------------------------------------------------------------------------------


def test_builtins_load(registry: TemplateRegistry) -> None:
    assert sorted(registry.names()) == sorted([SOFTWARE, EQUIPMENT, RENOVATION])
    assert len(registry) == 3
    assert {p.name for p in builtin_templates_dir().glob("*.toml")} == {
        "software.toml",
        "equipment.toml",
        "renovation.toml",
    }


@pytest.mark.parametrize(
    ("wanted", "name"),
    [
        ("软件", SOFTWARE),
        (SOFTWARE, SOFTWARE),
        ("  Software ", SOFTWARE),
        ("设备", EQUIPMENT),
        ("设备系统类", EQUIPMENT),
        ("技改", RENOVATION),
        ("技改项目", RENOVATION),
    ],
)
def test_lookup_by_name_or_alias(registry: TemplateRegistry, wanted: str, name: str) -> None:
    assert registry.get(wanted).name == name
    assert wanted in registry


def test_unknown_template_lists_the_choices(registry: TemplateRegistry) -> None:
    assert registry.find("装修") is None
    with pytest.raises(UnknownTemplateError) as caught:
        registry.get("装修")
    assert str(caught.value).startswith('未知的项目模板 "装修" (可选: ')
    assert SOFTWARE in str(caught.value)


def test_software_template_follows_the_standard_table(registry: TemplateRegistry) -> None:
    software = registry.get(SOFTWARE)
    assert [p.name for p in software.phases] == ["启动", "规划", "执行", "监控", "收尾"]
    for phase, expected in SOFTWARE_STANDARD.items():
        assert activities(software, phase) == expected, phase
    monitoring = software.phase("监控")
    assert monitoring.parallel_with == "执行"
    assert monitoring.duration_days is None
    assert [d.name for a in monitoring.activities for d in a.deliverables] == SOFTWARE_MONITORING
    assert all(role in ROLES for role in (d.owner_role for _, _, d in software.iter_deliverables()))


def test_software_template_marks_what_features_look_for(registry: TemplateRegistry) -> None:
    software = registry.get(SOFTWARE)
    approval = software.flagged_one(DeliverableFlag.PROJECT_APPROVAL)
    assert approval is not None and approval.name == "项目立项申请表"
    assert approval.has_flag("leader_approval")
    assert "需领导审批" in approval.notes
    acceptance = software.flagged_one("acceptance")
    assert acceptance is not None and acceptance.name == "项目验收确认单"
    assert acceptance.has_flag("client_signature")
    assert software.flagged_one("handover").name == "内部交接会议记录"  # type: ignore[union-attr]
    assert software.flagged_one("go_live").name == "上线确认单"  # type: ignore[union-attr]
    weekly = software.flagged_one("weekly_report")
    assert weekly is not None and weekly.name == "客户项目周报" and weekly.recurrence is Recurrence.WEEKLY
    assert software.deliverable("审核报告").recurrence is Recurrence.PER_CYCLE
    pause = software.flagged_one("pause_request")
    assert pause is not None and pause.name == "项目进度变更单" and not pause.required
    assert {d.name for d in software.flagged("archive")} == {"电子资料存档", "纸质资料存档"}
    assert software.deliverable("测评报告").owner_role == "质控"
    assert software.deliverable("商务合同").owner_role == "拓展/业务负责人"


def test_software_handover_package(registry: TemplateRegistry) -> None:
    software = registry.get(SOFTWARE)
    package = software.handover_package
    assert [item.item for item in package] == HANDOVER_PACKAGE
    names = set(all_deliverables(software))
    for item in package:
        assert set(item.deliverables) <= names
        if item.item != "客户通讯录":
            assert item.deliverables or item.registers, item.item
    by_item = {item.item: item for item in package}
    assert by_item["问题跟踪表"].deliverables == ("问题记录表",)
    assert [r.value for r in by_item["系统升级记录表"].registers] == ["升级记录"]
    assert "商务合同" in by_item["商务合同"].deliverables


def test_equipment_template_has_the_standards_documents(registry: TemplateRegistry) -> None:
    equipment = registry.get(EQUIPMENT)
    names = all_deliverables(equipment)
    for document in [
        "实施辅材清单",
        "实施方案",
        "实施进度计划表",
        "开工报告",
        "设备验收单",
        "实施日志",
        "实施进度表",
        "系统调试完成报告",
        "设备移交清单",
        "试运行报告",
    ]:
        assert document in names
    # The standard's order: 开工报告 -> 设备验收单 -> 实施日志 -> 调试 -> 移交 -> 试运行.
    order = [names.index(n) for n in ["开工报告", "设备验收单", "实施日志", "系统调试完成报告", "设备移交清单", "试运行报告"]]
    assert order == sorted(order)
    assert equipment.deliverable("实施日志").recurrence is Recurrence.DAILY
    assert equipment.flagged_one("handover").name == "设备移交清单"  # type: ignore[union-attr]
    assert equipment.flagged_one("acceptance").name == "试运行报告"  # type: ignore[union-attr]
    assert "30天" in equipment.deliverable("试运行报告").notes
    steps = [a.name for p in equipment.phases for a in p.activities]
    assert steps[:2] == ["技术交底", "初次进场"]


def test_renovation_template_follows_the_flow(registry: TemplateRegistry) -> None:
    renovation = registry.get(RENOVATION)
    steps = [a.name for p in renovation.phases for a in p.activities]
    assert steps == [
        "合同签订",
        "非标设备设计",
        "设计会审",
        "设备制造",
        "预验收",
        "设备发货",
        "开箱验收",
        "组织安装",
        "安装调试",
        "组织验收",
        "交付使用",
        "结算付款",
        "设备转固",
    ]
    assert renovation.flagged_one("acceptance").name == "设备验收单"  # type: ignore[union-attr]
    assert "使用单位" in renovation.deliverable("开箱验收单").notes


def test_builtins_parse_standalone() -> None:
    for path in builtin_templates_dir().glob("*.toml"):
        assert isinstance(load_template_file(path), ProcessTemplate)


# -- broken files ------------------------------------------------------------------------------------------------------

MINIMAL = """\
name = "测试模板"
aliases = ["测试"]

[[phases]]
name = "启动"
duration_days = 5

[[phases.activities]]
name = "立项"

[[phases.activities.deliverables]]
name = "项目立项申请表"
owner_role = "项目经理"
due_offset_days = 2
flags = ["project_approval"]

[[phases]]
name = "收尾"
duration_days = 3

[[phases.activities]]
name = "验收"

[[phases.activities.deliverables]]
name = "项目验收确认单"
owner_role = "客户"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('owner_role = "项目经理"', 'owner_role = "经理"'),
            'phases[0](启动).activities[0](立项).deliverables[0](项目立项申请表).owner_role: 未知角色 "经理" '
            "(可选: 项目经理, 实施工程师, 拓展/业务负责人, 领导, 客户, 售后, 项目管理员, 质控)",
        ),
        (
            ('name = "项目验收确认单"', 'name = "项目立项申请表"'),
            'phases[1](收尾).activities[0](验收).deliverables[0](项目立项申请表).name: 交付物名称重复 "项目立项申请表"',
        ),
        (('name = "收尾"', 'name = "启动"'), 'phases[1](启动).name: 阶段名称重复 "启动"'),
        (
            ("duration_days = 3", "duration = 3"),
            'phases[1](收尾).duration: 未知字段 "duration" (可用字段: name, description, duration_days',
        ),
        (('aliases = ["测试"]', 'aliases = ["测试"]\ncolour = "red"'), 'colour: 未知字段 "colour"'),
        (("duration_days = 5", "duration_days = = 5"), "TOML 语法错误: "),
        (
            ("due_offset_days = 2", "due_offset_days = 5"),
            "due_offset_days: 5 超出阶段工期 (阶段共 5 个工作日, 可选 0..4)",
        ),
        (("due_offset_days = 2", "due_offset_days = -1"), "due_offset_days: 不能小于 0"),
        (("due_offset_days = 2", 'due_offset_days = "两天"'), "due_offset_days: 应为整数"),
        (("duration_days = 3", 'parallel_with = "执行"'), 'phases[1](收尾).parallel_with: "执行" 不是在它之前的阶段'),
        (('flags = ["project_approval"]', 'flags = ["approval"]'), '未知标记 "approval"'),
        (('owner_role = "客户"', 'owner_role = "客户"\nrecurrence = "monthly"'), '未知周期 "monthly"'),
        (
            ('owner_role = "客户"', 'owner_role = "客户"\nflags = ["project_approval"]'),
            '标记 "project_approval" 在一个模板中只能出现一次 (已用于 "项目立项申请表")',
        ),
        (("duration_days = 3\n", ""), "phases[1](收尾): 缺少 duration_days"),
        (('name = "测试模板"\n', ""), "name: 缺少必填项"),
    ],
)
def test_broken_template_is_refused_with_one_clear_line(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in MINIMAL
    path = write(tmp_path, "foo.toml", MINIMAL.replace(old, new, 1))
    with pytest.raises(TemplateError) as caught:
        load_template_file(path)
    message = str(caught.value)
    assert message.startswith("模板 foo.toml 无效: ")
    assert expected in message
    assert "\n" not in message
    assert caught.value.file == "foo.toml"
    # The same error surfaces when the file sits in a company template directory.
    with pytest.raises(TemplateError) as again:
        load_templates(tmp_path)
    assert str(again.value) == message


def test_minimal_template_is_valid(tmp_path: Path) -> None:
    template = load_template_file(write(tmp_path, "foo.toml", MINIMAL))
    assert template.name == "测试模板"
    assert template.deliverable("项目验收确认单").due_offset_days is None


def test_role_synonyms_are_stored_canonically(tmp_path: Path) -> None:
    text = MINIMAL.replace('owner_role = "客户"', 'owner_role = "拓展"')
    template = load_template_file(write(tmp_path, "foo.toml", text))
    assert template.deliverable("项目验收确认单").owner_role == "拓展/业务负责人"


def test_handover_item_must_name_a_real_deliverable(tmp_path: Path) -> None:
    text = MINIMAL + '\n[[handover_package]]\nitem = "商务合同"\ndeliverables = ["合同"]\n'
    with pytest.raises(TemplateError, match=r'handover_package\[0\]\(商务合同\)\.deliverables: 模板中没有交付物 "合同"'):
        load_template_file(write(tmp_path, "foo.toml", text))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes(MINIMAL.encode("gbk"))
    with pytest.raises(TemplateError, match="模板 gbk.toml 无效: 不是 UTF-8 编码"):
        load_template_file(path)


# -- company templates ------------------------------------------------------------------------------------------------


def test_company_directory_extends_and_overrides(tmp_path: Path) -> None:
    # Same template name, different file name: replaces the built-in one, and takes its aliases.
    own_software = MINIMAL.replace('name = "测试模板"', f'name = "{SOFTWARE}"').replace(
        'aliases = ["测试"]', 'aliases = ["软件", "我们的软件"]'
    )
    write(tmp_path, "our_software.toml", own_software)
    # A new project type, claiming a built-in alias: the company's choice wins.
    write(tmp_path, "network.toml", MINIMAL.replace("测试模板", "网络工程").replace('["测试"]', '["网络", "设备"]'))
    write(tmp_path, "README.txt", "not a template")
    registry = load_templates(tmp_path)
    assert sorted(registry.names()) == sorted([SOFTWARE, EQUIPMENT, RENOVATION, "网络工程"])
    assert [p.name for p in registry.get("软件").phases] == ["启动", "收尾"]
    assert registry.get("我们的软件").name == SOFTWARE
    assert registry.find("software") is None  # the replaced built-in took its aliases with it
    assert registry.get("网络").name == "网络工程"
    assert registry.get("设备").name == "网络工程"
    assert registry.get(EQUIPMENT).name == EQUIPMENT  # exact names always win over aliases
    # The built-ins are untouched for other callers (cached models are shared and frozen).
    assert [p.name for p in load_templates().get("软件").phases] == ["启动", "规划", "执行", "监控", "收尾"]


def test_company_file_with_a_builtin_file_name_replaces_it(tmp_path: Path) -> None:
    write(tmp_path, "renovation.toml", MINIMAL)
    registry = load_templates(tmp_path)
    assert RENOVATION not in registry.names()
    assert "测试模板" in registry.names()


def test_two_company_templates_with_one_name_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", MINIMAL)
    write(tmp_path, "b.toml", MINIMAL.replace('["测试"]', '["测试2"]'))
    with pytest.raises(TemplateError, match='模板 b.toml 无效: 模板名称 "测试模板" 与 a.toml 重复'):
        load_templates(tmp_path)


def test_two_company_templates_with_one_alias_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", MINIMAL)
    write(tmp_path, "b.toml", MINIMAL.replace("测试模板", "另一个"))
    with pytest.raises(TemplateError, match='模板 b.toml 无效: 别名 "测试" 已被 a.toml 使用'):
        load_templates(tmp_path)


def test_missing_company_directory(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="模板目录不存在"):
        load_templates(tmp_path / "nope")
