"""Process templates (one per project type) as data, their validation, and the pure project planner.

A template is a TOML file: ordered phases (阶段), each with activities (活动) and the documents each activity must
produce (交付物 / 项目文件). The built-in ones live in ``storage/templates/*.toml`` and follow the company standard
(项目实施管理规范); a company adds or replaces templates with its own files in a configured directory.

File layout (every key is checked; unknown keys are refused)::

    name = "软件系统实施"                 # unique template name, shown to users
    aliases = ["软件", "software"]        # other names users may type
    description = "..."

    [[phases]]
    name = "执行"
    duration_days = 40                   # planned working days; a parallel phase (监控) instead has
                                         # parallel_with = "执行" and shares that phase's span

    [[phases.activities]]
    name = "数据接口对接"

    [[phases.activities.deliverables]]
    name = "接口说明文档"
    required = true                      # default true
    owner_role = "实施工程师"              # one of ROLES
    due_offset_days = 9                  # working days from the phase start; omitted = last day of the phase
    recurrence = "none"                  # none | daily | weekly | per_cycle | per_event | continuous
    flags = ["client_signature"]         # see DeliverableFlag
    register = "问题"                     # the register whose export satisfies it (see Register)
    notes = "需客户签字"

    [[handover_package]]                 # 需要交接的项目资料 and what provides each item (at least one of:
    item = "问题跟踪表"                    # deliverables, registers, members = the roles of project members)
    deliverables = ["问题记录表"]
    registers = ["问题"]

Loading errors are one line: ``模板 foo.toml 无效: phases[2](执行).activities[0](数据接口对接).deliverables[0]
(接口说明文档).owner_role: 未知角色 "经理" (可选: 项目经理, …)``, raised as `TemplateError`.

The plan's shape (`ProjectPlan`) lives here because storage persists it; the planner that lays a template out on
working days is `domain.planner.plan_project`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, NoReturn

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError


__all__ = [
    "ROLES",
    "ROLE_SYNONYMS",
    "ActivitySpec",
    "DeliverableFlag",
    "DeliverableSpec",
    "HandoverItem",
    "PhaseSpec",
    "PlannedDeliverable",
    "PlannedPhase",
    "ProcessTemplate",
    "ProjectPlan",
    "Recurrence",
    "Register",
    "Role",
    "TemplateError",
    "TemplateRegistry",
    "UnknownTemplateError",
    "builtin_templates_dir",
    "client_visible",
    "load_template_file",
    "load_templates",
]


# --------------------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------------------


class Role(StrEnum):
    """Who owns a deliverable. Values are what users see and what template files contain."""

    PROJECT_MANAGER = "项目经理"
    IMPLEMENTATION_ENGINEER = "实施工程师"
    SALES = "拓展/业务负责人"
    LEADER = "领导"
    CLIENT = "客户"
    AFTER_SALES = "售后"
    ADMINISTRATOR = "项目管理员"
    QUALITY = "质控"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)


class Recurrence(StrEnum):
    """How often a deliverable is produced. The plan carries the first due date; repeating is the handlers' job."""

    NONE = "none"  # once
    DAILY = "daily"  # e.g. 实施日志, kept every working day
    WEEKLY = "weekly"  # e.g. 客户项目周报, every week to the client
    PER_CYCLE = "per_cycle"  # e.g. 审核报告, once per client audit cycle
    PER_EVENT = "per_event"  # e.g. 升级记录表 after each upgrade; has no planned due date
    CONTINUOUS = "continuous"  # a living register (问题记录表), final version due at the given offset


class DeliverableFlag(StrEnum):
    """Markers other features look deliverables up by (``ProcessTemplate.flagged``)."""

    PROJECT_APPROVAL = "project_approval"  # the 立项 form submitted to leaders for DingTalk approval
    ACCEPTANCE = "acceptance"  # the acceptance form: signing it formally ends the project
    HANDOVER = "handover"  # the handover to after-sales (售后) / the using unit
    GO_LIVE = "go_live"  # the go-live confirmation
    WEEKLY_REPORT = "weekly_report"  # the weekly report to the client
    PAUSE_REQUEST = "pause_request"  # the form used to apply for pausing the project
    CLIENT_SIGNATURE = "client_signature"  # 需客户签字
    LEADER_APPROVAL = "leader_approval"  # 需领导审批
    ARCHIVE = "archive"  # handing documents to the project administrator (项目管理员) for archiving
    INTERNAL = "internal"  # the company's own record (内部启动会, 审核报告, 复盘 …): never shown to the client


# Flags that make a deliverable internal by what it is: approvals to leaders, pause requests, the archive.
INTERNAL_FLAGS = frozenset({DeliverableFlag.INTERNAL, DeliverableFlag.PROJECT_APPROVAL,
                            DeliverableFlag.LEADER_APPROVAL, DeliverableFlag.PAUSE_REQUEST, DeliverableFlag.ARCHIVE})


def client_visible(flags: Sequence[str] | None) -> bool:
    """Whether a deliverable with these flags may be shown to the client (交付物 and 项目 in a client group)."""
    return not any(str(flag) in INTERNAL_FLAGS for flag in flags or ())


# At most one deliverable per template may carry these: features ask for "the" approval form, "the" acceptance form.
UNIQUE_FLAGS = frozenset(
    {
        DeliverableFlag.PROJECT_APPROVAL,
        DeliverableFlag.ACCEPTANCE,
        DeliverableFlag.HANDOVER,
        DeliverableFlag.GO_LIVE,
        DeliverableFlag.WEEKLY_REPORT,
        DeliverableFlag.PAUSE_REQUEST,
    }
)


class Register(StrEnum):
    """The running registers (登记簿) kept by the registers feature; an export of one can satisfy a deliverable.
    Values match ``storage.models.enums.RegisterKind`` so a template's ``register`` can be stored as it is."""

    ISSUES = "问题"  # 问题记录表
    REQUIREMENTS = "需求"  # 需求跟踪表
    RISKS = "风险"
    CHANGES = "变更"  # 项目进度变更单, 实施方案变更单
    UPGRADES = "升级记录"  # 升级记录表
    LOGS = "实施日志"
    PLANS = "下周计划"
    MEETINGS = "会议记录"


# Other words the company standard uses for a role; template files may use them, they are stored canonically.
ROLE_SYNONYMS = {"拓展": Role.SALES, "业务负责人": Role.SALES, "质控部门": Role.QUALITY, "售后服务组": Role.AFTER_SALES}


def _choice(value: Any, enum: type[StrEnum], label: str) -> Any:
    # A friendly Chinese error listing the valid values; pydantic's own enum message is English and long.
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value.strip())
        except ValueError:
            pass
        raise PydanticCustomError(
            "unknown_choice",
            '未知{label} "{value}" (可选: {choices})',
            {"label": label, "value": value, "choices": ", ".join(m.value for m in enum)},
        )
    raise PydanticCustomError("choice_type", "{label}应为字符串", {"label": label})


# --------------------------------------------------------------------------------------------------------------
# Template schema
# --------------------------------------------------------------------------------------------------------------

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
_Name = Field(min_length=1, max_length=64)


class DeliverableSpec(BaseModel):
    """One document (项目文件) an activity must produce."""

    model_config = _MODEL_CONFIG

    name: str = _Name
    required: bool = True
    owner_role: Role
    due_offset_days: int | None = Field(default=None, ge=0)
    recurrence: Recurrence = Recurrence.NONE
    flags: tuple[DeliverableFlag, ...] = ()
    # "register" in the file; the attribute is renamed because BaseModel (an ABC) already has `register`.
    register_name: Register | None = Field(default=None, alias="register")
    notes: str = ""

    @field_validator("owner_role", mode="before")
    @classmethod
    def _known_role(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip() in ROLE_SYNONYMS:
            return ROLE_SYNONYMS[value.strip()]
        return _choice(value, Role, "角色")

    @field_validator("recurrence", mode="before")
    @classmethod
    def _known_recurrence(cls, value: Any) -> Any:
        return _choice(value, Recurrence, "周期")

    @field_validator("register_name", mode="before")
    @classmethod
    def _known_register(cls, value: Any) -> Any:
        return None if value is None else _choice(value, Register, "登记簿")

    @field_validator("flags", mode="before")
    @classmethod
    def _known_flags(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        flags = [_choice(v, DeliverableFlag, "标记") for v in value]
        if len(set(flags)) != len(flags):
            raise PydanticCustomError("duplicate_flag", "标记重复")
        return tuple(flags)

    @model_validator(mode="after")
    def _event_has_no_due(self) -> DeliverableSpec:
        if self.recurrence is Recurrence.PER_EVENT and self.due_offset_days is not None:
            raise PydanticCustomError(
                "event_due", "due_offset_days: 按事件产生 (per_event) 的交付物没有计划日期, 请删除 due_offset_days"
            )
        return self

    def has_flag(self, flag: DeliverableFlag | str) -> bool:
        return DeliverableFlag(flag) in self.flags


class ActivitySpec(BaseModel):
    """A step of a phase (e.g. 项目立项) and the documents it produces."""

    model_config = _MODEL_CONFIG

    name: str = _Name
    description: str = ""
    deliverables: tuple[DeliverableSpec, ...] = ()


class PhaseSpec(BaseModel):
    """A phase (阶段). Sequential phases follow each other; a parallel phase spans the phase it runs alongside."""

    model_config = _MODEL_CONFIG

    name: str = _Name
    description: str = ""
    duration_days: int | None = Field(default=None, ge=1, le=2000)
    parallel_with: str | None = None
    activities: tuple[ActivitySpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _duration_xor_parallel(self) -> PhaseSpec:
        if self.parallel_with is None and self.duration_days is None:
            raise PydanticCustomError("no_duration", "缺少 duration_days (阶段计划工期, 单位: 工作日)")
        if self.parallel_with is not None and self.duration_days is not None:
            raise PydanticCustomError(
                "parallel_duration",
                '并行阶段的工期与 "{host}" 相同, 请删除 duration_days',
                {"host": self.parallel_with},
            )
        return self

    @property
    def is_parallel(self) -> bool:
        return self.parallel_with is not None


class HandoverItem(BaseModel):
    """One item of the handover package (需要交接的项目资料) and what provides it: deliverables, registers, or the
    project members of some roles (客户通讯录: the client contacts). An item must name at least one of them: the
    handover checklist only asks for what a command can provide."""

    model_config = _MODEL_CONFIG

    item: str = _Name
    deliverables: tuple[str, ...] = ()
    registers: tuple[Register, ...] = ()
    members: tuple[Role, ...] = ()
    notes: str = ""

    @field_validator("registers", mode="before")
    @classmethod
    def _known_registers(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return tuple(_choice(v, Register, "登记簿") for v in value)

    @field_validator("members", mode="before")
    @classmethod
    def _known_roles(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return tuple(_choice(ROLE_SYNONYMS.get(v, v), Role, "角色") for v in value)

    @model_validator(mode="after")
    def _providable(self) -> HandoverItem:
        if not (self.deliverables or self.registers or self.members):
            _fail(f'handover_package({self.item}): 没有写明由哪些交付物 (deliverables)、登记簿 (registers) '
                  "或成员角色 (members) 提供")
        return self


class ProcessTemplate(BaseModel):
    """A project type's process: ordered phases, their activities and deliverables, and the handover package."""

    model_config = _MODEL_CONFIG

    name: str = _Name
    aliases: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = ()
    description: str = ""
    phases: tuple[PhaseSpec, ...] = Field(min_length=1)
    handover_package: tuple[HandoverItem, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> ProcessTemplate:
        # Cross-field rules. Messages start with the path so the one-line error points at the culprit.
        seen_phases: dict[str, int] = {}
        seen_deliverables: dict[str, str] = {}
        flag_owner: dict[DeliverableFlag, str] = {}
        for p, phase in enumerate(self.phases):
            where = f"phases[{p}]({phase.name})"
            if phase.name in seen_phases:
                _fail(f'{where}.name: 阶段名称重复 "{phase.name}"')
            if phase.parallel_with is not None:
                host_index = seen_phases.get(phase.parallel_with)
                if host_index is None:
                    _fail(f'{where}.parallel_with: "{phase.parallel_with}" 不是在它之前的阶段')
                if self.phases[host_index].is_parallel:
                    _fail(f'{where}.parallel_with: "{phase.parallel_with}" 本身是并行阶段')
            seen_phases[phase.name] = p
            span = self.phase_duration(phase)
            seen_activities: set[str] = set()
            for a, activity in enumerate(phase.activities):
                a_where = f"{where}.activities[{a}]({activity.name})"
                if activity.name in seen_activities:
                    _fail(f'{a_where}.name: 同一阶段内活动名称重复 "{activity.name}"')
                seen_activities.add(activity.name)
                for d, deliverable in enumerate(activity.deliverables):
                    d_where = f"{a_where}.deliverables[{d}]({deliverable.name})"
                    if deliverable.name in seen_deliverables:
                        _fail(
                            f'{d_where}.name: 交付物名称重复 "{deliverable.name}" '
                            f"(已在 {seen_deliverables[deliverable.name]} 中出现)"
                        )
                    seen_deliverables[deliverable.name] = a_where
                    offset = deliverable.due_offset_days
                    if offset is not None and offset >= span:
                        _fail(
                            f"{d_where}.due_offset_days: {offset} 超出阶段工期 "
                            f"(阶段共 {span} 个工作日, 可选 0..{span - 1})"
                        )
                    for flag in deliverable.flags:
                        if flag in UNIQUE_FLAGS:
                            if flag in flag_owner:
                                _fail(
                                    f'{d_where}.flags: 标记 "{flag.value}" 在一个模板中只能出现一次 '
                                    f'(已用于 "{flag_owner[flag]}")'
                                )
                            flag_owner[flag] = deliverable.name
        names_and_aliases = [self.name, *self.aliases]
        if len({_key(n) for n in names_and_aliases}) != len(names_and_aliases):
            _fail(f"aliases: 别名与模板名称或其他别名重复 ({', '.join(names_and_aliases)})")
        seen_items: set[str] = set()
        for h, item in enumerate(self.handover_package):
            h_where = f"handover_package[{h}]({item.item})"
            if item.item in seen_items:
                _fail(f'{h_where}.item: 交接资料重复 "{item.item}"')
            seen_items.add(item.item)
            for name in item.deliverables:
                if name not in seen_deliverables:
                    _fail(f'{h_where}.deliverables: 模板中没有交付物 "{name}"')
        return self

    # -- queries --------------------------------------------------------------------------------------------------

    def phase(self, name: str) -> PhaseSpec:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    def phase_duration(self, phase: PhaseSpec) -> int:
        """Planned working days of a phase; a parallel phase inherits its host's."""
        if phase.duration_days is not None:
            return phase.duration_days
        host = self.phase(phase.parallel_with or "")
        if host.duration_days is None:  # the validator refuses parallel hosts; guard against misuse anyway
            raise ValueError(f"phase {host.name} has no duration")
        return host.duration_days

    def iter_deliverables(self) -> Iterator[tuple[PhaseSpec, ActivitySpec, DeliverableSpec]]:
        """Every deliverable with its phase and activity, in template order."""
        for phase in self.phases:
            for activity in phase.activities:
                for deliverable in activity.deliverables:
                    yield phase, activity, deliverable

    def deliverable(self, name: str) -> DeliverableSpec:
        for _, _, deliverable in self.iter_deliverables():
            if deliverable.name == name:
                return deliverable
        raise KeyError(name)

    def flagged(self, flag: DeliverableFlag | str) -> list[DeliverableSpec]:
        """Deliverables carrying ``flag``, e.g. ``flagged("project_approval")`` -> [项目立项申请表]."""
        wanted = DeliverableFlag(flag)
        return [d for _, _, d in self.iter_deliverables() if wanted in d.flags]

    def flagged_one(self, flag: DeliverableFlag | str) -> DeliverableSpec | None:
        """The single deliverable carrying a unique flag (approval form, acceptance form, ...), or None."""
        found = self.flagged(flag)
        return found[0] if found else None

    @property
    def total_duration_days(self) -> int:
        """Planned working days from the first phase's start to the last phase's end (parallel phases overlap)."""
        return sum(p.duration_days for p in self.phases if p.duration_days is not None)


def _fail(message: str) -> NoReturn:
    raise PydanticCustomError("template_rule", "{message}", {"message": message})


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------


class TemplateError(Exception):
    """A template file (or the set of them) is unusable. ``str(error)`` is one Chinese line for the operator:
    ``模板 <file> 无效: <problem>``."""

    def __init__(self, file: str, problem: str) -> None:
        self.file = file
        self.problem = problem
        super().__init__(f"模板 {file} 无效: {problem}")


class UnknownTemplateError(LookupError):
    """No template has this name or alias; the message lists the available ones (safe to show users)."""

    def __init__(self, wanted: str, available: Sequence[str]) -> None:
        self.wanted = wanted
        self.available = tuple(available)
        super().__init__(f'未知的项目模板 "{wanted}" (可选: {", ".join(available)})')

    def __str__(self) -> str:  # LookupError would quote the message like a KeyError otherwise
        return str(self.args[0])


_ERROR_TEXT = {
    "missing": "缺少必填项",
    "extra_forbidden": "未知字段",
    "string_type": "应为字符串",
    "string_too_short": "不能为空",
    "string_too_long": "过长",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "tuple_type": "应为列表",
    "model_type": "应为表 (table)",
    "model_attributes_type": "应为表 (table)",
    "dict_type": "应为表 (table)",
    "too_short": "至少需要 {min_length} 项",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
}


def _format_validation_error(exc: ValidationError, raw: Mapping[str, Any]) -> str:
    errors = exc.errors(include_url=False)
    # A child's failure makes pydantic also report its container (a tuple "too short" after dropping the bad
    # item); count only the root causes.
    locs = [tuple(e["loc"]) for e in errors]
    errors = [
        e
        for e in errors
        if not any(len(other) > len(e["loc"]) and other[: len(e["loc"])] == tuple(e["loc"]) for other in locs)
    ] or errors
    first = errors[0]
    path = _format_location(first["loc"], raw)
    kind = first["type"]
    if kind in _ERROR_TEXT:
        message = _ERROR_TEXT[kind].format(**(first.get("ctx") or {}))
        if kind == "extra_forbidden":
            allowed = _allowed_fields(first["loc"])
            message = f'未知字段 "{first["loc"][-1]}"' + (f" (可用字段: {', '.join(allowed)})" if allowed else "")
    else:
        message = first["msg"]
    line = f"{path}: {message}" if path else message
    if len(errors) > 1:
        line += f" (另有 {len(errors) - 1} 处错误)"
    return line


def _format_location(loc: Sequence[int | str], raw: Any) -> str:
    # phases[2](执行).activities[0](数据接口对接).owner_role: indices plus the names found in the raw data so an
    # operator finds the spot without counting tables.
    parts: list[str] = []
    node: Any = raw
    for key in loc:
        if isinstance(key, int):
            label = ""
            if isinstance(node, list) and 0 <= key < len(node):
                node = node[key]
                name = node.get("name", node.get("item")) if isinstance(node, dict) else None
                if isinstance(name, str) and name.strip():
                    label = f"({name.strip()})"
            else:
                node = None
            if parts:
                parts[-1] += f"[{key}]{label}"
            else:
                parts.append(f"[{key}]{label}")
        else:
            node = node.get(key) if isinstance(node, dict) else None
            parts.append(str(key))
    return ".".join(parts)


def _allowed_fields(loc: Sequence[int | str]) -> list[str]:
    model: Any = ProcessTemplate
    for key in loc[:-1]:
        if isinstance(key, int):
            continue
        field = model.model_fields.get(key)
        if field is None:
            return []
        inner = getattr(field.annotation, "__args__", (field.annotation,))[0]
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return []
        model = inner
    return [field.alias or name for name, field in model.model_fields.items()]


def load_template_file(path: Path) -> ProcessTemplate:
    """Parse and validate one template file; raise `TemplateError` naming the file and the first problem."""
    label = path.name
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(label, "文件不存在") from None
    except UnicodeDecodeError:
        raise TemplateError(label, "不是 UTF-8 编码") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(label, f"TOML 语法错误: {exc}") from None
    try:
        return ProcessTemplate.model_validate(raw)
    except ValidationError as exc:
        raise TemplateError(label, _format_validation_error(exc, raw)) from None


def builtin_templates_dir() -> Path:
    """Where the built-in templates ship (inside the ``storage`` package)."""
    return Path(str(resources.files("storage").joinpath("templates")))


@lru_cache(maxsize=1)
def _builtin_templates() -> tuple[tuple[str, ProcessTemplate], ...]:
    # Parsed once per process on first use (models are frozen, so sharing them is safe).
    return tuple((p.name, load_template_file(p)) for p in sorted(builtin_templates_dir().glob("*.toml")))


class TemplateRegistry:
    """The templates in use, looked up by name or alias (case-insensitive, surrounding spaces ignored)."""

    def __init__(self, templates: Sequence[ProcessTemplate], aliases: Mapping[str, str] | None = None) -> None:
        self._templates = {t.name: t for t in templates}
        # Precedence: exact template names first, then the given alias map (already resolved by load_templates).
        lookup: dict[str, str] = {}
        for template in templates:
            for alias in template.aliases:
                lookup.setdefault(_key(alias), template.name)
        if aliases:
            lookup.update({_key(alias): name for alias, name in aliases.items()})
        lookup.update({_key(t.name): t.name for t in templates})
        self._lookup = lookup

    def names(self) -> list[str]:
        """Template names in a stable order (built-ins first, then company templates, each by file name)."""
        return list(self._templates)

    def __iter__(self) -> Iterator[ProcessTemplate]:
        return iter(self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)

    def __contains__(self, name_or_alias: object) -> bool:
        return isinstance(name_or_alias, str) and _key(name_or_alias) in self._lookup

    def find(self, name_or_alias: str) -> ProcessTemplate | None:
        name = self._lookup.get(_key(name_or_alias))
        return None if name is None else self._templates[name]

    def get(self, name_or_alias: str) -> ProcessTemplate:
        template = self.find(name_or_alias)
        if template is None:
            raise UnknownTemplateError(name_or_alias.strip(), self.names())
        return template


def _key(text: str) -> str:
    return text.strip().casefold()


def load_templates(extra_dir: Path | None = None) -> TemplateRegistry:
    """The built-in templates plus a company's own ``*.toml`` files from ``extra_dir``.

    A company file replaces the built-in file of the same file name, and a company template replaces the
    built-in template of the same template name; other company templates are added. Company aliases take
    precedence over built-in aliases. Raises `TemplateError` (one line) for a broken file, a missing directory, or
    two company templates claiming the same name or alias.
    """
    builtin = dict(_builtin_templates())
    company: dict[str, ProcessTemplate] = {}
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise TemplateError(str(extra_dir), "模板目录不存在")
        for path in sorted(extra_dir.glob("*.toml")):
            company[path.name] = load_template_file(path)
            builtin.pop(path.name, None)

    company_names: dict[str, str] = {}
    for file, template in company.items():
        if template.name in company_names:
            raise TemplateError(file, f'模板名称 "{template.name}" 与 {company_names[template.name]} 重复')
        company_names[template.name] = file
    kept_builtin = {f: t for f, t in builtin.items() if t.name not in company_names}

    aliases: dict[str, str] = {}
    for tier in (kept_builtin, company):
        claimed_in_tier: dict[str, str] = {}
        for file, template in tier.items():
            for alias in template.aliases:
                key = _key(alias)
                if key in claimed_in_tier:
                    raise TemplateError(file, f'别名 "{alias}" 已被 {claimed_in_tier[key]} 使用')
                claimed_in_tier[key] = file
                # A later tier (company) silently wins over built-in aliases: the company chose it.
                aliases[key] = template.name
    return TemplateRegistry([*kept_builtin.values(), *company.values()], aliases)


# --------------------------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedPhase:
    """A phase of a planned project.

    name:          phase name from the template (unique within the project), e.g. "执行".
    order:         1-based position in the template; the display and advance order.
    start, end:    first and last planned working day (inclusive; both are working days).
    duration_days: working days in [start, end]; a parallel phase has its host's span.
    parallel_with: name of the phase this one runs alongside (监控 -> 执行), None for sequential phases.
    """

    name: str
    order: int
    start: date
    end: date
    duration_days: int
    parallel_with: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedDeliverable:
    """A deliverable (项目文件) of a planned project, ready to be persisted.

    phase, activity: names of the phase and activity that produce it.
    name:          document name, unique within the project (identifies it together with the project).
    order:         1-based position in the template across all phases; a stable sort key for lists.
    required:      False for optional documents (e.g. 验收汇报PPT, 系统升级通知单).
    owner_role:    a value of `Role` (e.g. "项目经理"); the handlers map it to a person of the project team.
    due:           planned due date, always a working day; None only for per_event deliverables
                   (produced when the event happens: each upgrade, each pause request).
    recurrence:    a value of `Recurrence`; for daily/weekly/per_cycle/continuous ``due`` is the first (or, for a
                   continuous register, the final-version) due date, repeating is up to the scheduler.
    flags:         values of `DeliverableFlag`, e.g. ("project_approval", "leader_approval").
    register:      a value of `Register` whose export satisfies this deliverable, or None.
    notes:         Chinese guidance from the standard (需客户签字, what the document must contain, ...).
    """

    phase: str
    activity: str
    name: str
    order: int
    required: bool
    owner_role: str
    due: date | None
    recurrence: str
    flags: tuple[str, ...] = ()
    register: str | None = None
    notes: str = ""

    def has_flag(self, flag: DeliverableFlag | str) -> bool:
        return str(DeliverableFlag(flag)) in self.flags


@dataclass(frozen=True, slots=True)
class ProjectPlan:
    """The outcome of `domain.planner.plan_project`.

    template:     template name the plan came from.
    start, end:   first working day of the first phase / last working day of the last sequential phase.
    scaled:       True when phase durations were scaled to fit a requested end date.
    phases:       in template order.
    deliverables: in template order.
    """

    template: str
    start: date
    end: date
    scaled: bool
    phases: tuple[PlannedPhase, ...]
    deliverables: tuple[PlannedDeliverable, ...]

    def phase(self, name: str) -> PlannedPhase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    def deliverable(self, name: str) -> PlannedDeliverable:
        for deliverable in self.deliverables:
            if deliverable.name == name:
                return deliverable
        raise KeyError(name)

    def deliverables_of(self, phase: str) -> list[PlannedDeliverable]:
        return [d for d in self.deliverables if d.phase == phase]

    def flagged(self, flag: DeliverableFlag | str) -> list[PlannedDeliverable]:
        return [d for d in self.deliverables if d.has_flag(flag)]
