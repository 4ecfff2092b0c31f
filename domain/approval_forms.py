"""The three OA approval forms the standard asks for, and making sure they exist in DingTalk.

项目立项申请 (the 项目立项申请表, approved by company leaders before work starts), 项目进度变更单 (applying to pause
a blocked project) and 项目变更申请 (a change's purpose, impact, time and resources, approved before it is done).

Where a form's processCode comes from, in order:

1. ``[approvals] process_codes`` in the config (an administrator's own form);
2. ``mode = "auto"``: the form of that name in DingTalk (``process_code_by_name``), else one the bot creates through
   the forms API (``create_form``).

Codes found or created are remembered per process, next to the process's DingTalk client. Several processes need no
coordination: the by-name lookup makes them all converge on the same form, and when two of them create it at the same
moment DingTalk refuses the second name (``formName.error``), which then looks the first one up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from domain.errors import RemoteError, RemoteRefusal, UserError
from domain.ports import Settings, WorkflowClient
from storage.models import ApprovalKind

log = logging.getLogger("dingpm.approvals")


# ---- the forms ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormField:
    label: str  # what DingTalk matches formComponentValues[].name against
    component: str  # TextField, TextareaField, MoneyField, DDDateField, DDAttachment …
    slug: str  # ASCII part of the componentId
    required: bool = False
    placeholder: str = ""


@dataclass(frozen=True, slots=True)
class FormSpec:
    kind: ApprovalKind
    name: str  # the form's name in DingTalk (also how it is found again), at most 64 characters for the lookup
    description: str
    fields: tuple[FormField, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(f.label for f in self.fields)

    def components(self) -> list[dict[str, Any]]:
        """``formComponents`` of ``POST /v1.0/workflow/forms``."""
        result = []
        for f in self.fields:
            props: dict[str, Any] = {"componentId": f"{f.component}-{f.slug}", "label": f.label, "required": f.required}
            if f.placeholder:
                props["placeholder"] = f.placeholder
            result.append({"componentType": f.component, "props": props})
        return result


_PROJECT_FIELDS = (
    FormField("项目名称", "TextField", "name", required=True),
    FormField("项目编号", "TextField", "code", required=True),
)

INITIATION_FORM = FormSpec(
    ApprovalKind.INITIATION,
    "项目立项申请",
    "项目经理在内部启动会后填写项目立项申请表，提交公司领导审批；审批通过后项目正式开展实施。由项目管家机器人发起。",
    (
        *_PROJECT_FIELDS,
        FormField("客户", "TextField", "customer"),
        FormField("项目类型", "TextField", "type", required=True),
        FormField("项目经理", "TextField", "pm", required=True),
        FormField("合同编号", "TextField", "contract"),
        FormField("合同金额", "MoneyField", "amount", placeholder="元"),
        FormField("计划开始", "DDDateField", "start", required=True),
        FormField("计划结束", "DDDateField", "end", required=True),
        FormField("项目背景", "TextareaField", "background"),
        FormField("项目目标", "TextareaField", "objectives"),
        FormField("项目范围", "TextareaField", "scope"),
        FormField("主要风险", "TextareaField", "risks"),
        FormField("立项说明", "TextareaField", "note"),
        # DingTalk only takes files already in a DingTalk space here; the bot sends the .docx to the group instead.
        FormField("附件", "DDAttachment", "files"),
    ),
)

SCHEDULE_CHANGE_FORM = FormSpec(
    ApprovalKind.SCHEDULE_CHANGE,
    "项目进度变更单",
    "项目受阻需要暂停时由项目经理申请；审批通过后项目暂停，恢复后未完成的交付物顺延。由项目管家机器人发起。",
    (
        *_PROJECT_FIELDS,
        FormField("原因", "TextareaField", "reason", required=True),
        FormField("预计恢复日期", "DDDateField", "resume"),
        FormField("影响", "TextareaField", "impact"),
    ),
)

CHANGE_REQUEST_FORM = FormSpec(
    ApprovalKind.CHANGE_REQUEST,
    "项目变更申请",
    "变更须说明目的、影响、时间和资源，审批通过后方可实施并跟踪。由项目管家机器人发起。",
    (
        *_PROJECT_FIELDS,
        FormField("变更事项", "TextField", "title", required=True),
        FormField("目的", "TextareaField", "purpose", required=True),
        FormField("影响", "TextareaField", "impact"),
        FormField("时间", "TextareaField", "time"),
        FormField("资源", "TextareaField", "resources"),
    ),
)

FORMS: Mapping[ApprovalKind, FormSpec] = {
    form.kind: form for form in (INITIATION_FORM, SCHEDULE_CHANGE_FORM, CHANGE_REQUEST_FORM)
}


def form_value(value: Any) -> str | None:
    """A value as the API wants it (§8.3: every value a string, dates ``yyyy-MM-dd``); None/empty: leave it out."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, (list, tuple)):
        return json.dumps([str(v) for v in value], ensure_ascii=False)
    text = str(value).strip()
    return text or None


def form_values(values: Mapping[str, Any]) -> dict[str, str]:
    """``{label: value}`` with every value a non-empty string, in the given order."""
    result: dict[str, str] = {}
    for label, value in values.items():
        text = form_value(value)
        if text is not None:
            result[label] = text
    return result


# ---- what the user is told when approvals are not usable ----------------------------------------------------------


class ApprovalsNotConfigured(UserError):
    """No usable form for an approval kind: the message says what to put in config.toml."""


class ApprovalServiceUnavailable(UserError):
    """DingTalk did not answer (after the client's retries): nothing was submitted, try again later."""


def _codes_example(kind: ApprovalKind) -> str:
    return f'process_codes = {{ "{kind.value}" = "PROC-XXXX" }}'


def not_configured_text(kind: ApprovalKind, config: Settings) -> str:
    """What to configure, for a kind whose form the bot may not look for or create."""
    spec = FORMS[kind]
    head = f"尚未配置{kind.value}审批表单"
    if config.approvals.mode == "off":
        return (f"{head}（当前 approvals.mode = \"off\"，未启用钉钉审批）：请在 config.toml 的 [approvals] 中设置 "
                f"mode = \"auto\" 让机器人自动创建表单「{spec.name}」，或填写 process_codes（例如 {_codes_example(kind)}）"
                "并设置 mode = \"configured\"。")
    return (f"{head}：请在 config.toml 的 [approvals] 中填写 process_codes（例如 {_codes_example(kind)}），"
            "或设置 mode = \"auto\" 让机器人自动创建表单。")


def creation_refused_text(kind: ApprovalKind, exc: RemoteError) -> str:
    spec = FORMS[kind]
    return (f"尚未配置{kind.value}审批表单：机器人无法自动创建表单「{spec.name}」（钉钉返回 {exc.code}：{exc.message}）。"
            f"请在钉钉 OA 审批后台创建该表单，并把它的 processCode 填入 config.toml 的 [approvals] process_codes"
            f"（例如 {_codes_example(kind)}），或为应用开通审批表单的管理权限后重试。")


def unavailable_text(exc: RemoteError) -> str:
    return f"暂时无法连接钉钉审批服务（{exc.code}），没有提交任何审批，请稍后重试。"


# ---- remembering codes (per process) ------------------------------------------------------------------------------


@dataclass
class FormCodes:
    """The processCodes (and form labels) this process has resolved, next to its DingTalk client."""

    codes: dict[ApprovalKind, str] = field(default_factory=dict)
    labels: dict[str, frozenset[str]] = field(default_factory=dict)  # processCode -> the form's labels
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one lookup/creation at a time per process

    def forget(self, process_code: str) -> None:
        """A code DingTalk no longer knows (the form was deleted): resolve it afresh next time."""
        self.codes = {k: c for k, c in self.codes.items() if c != process_code}
        self.labels.pop(process_code, None)


# Keyed by the process's DingTalkClient (created and closed by the app lifecycle), weakly, so the cache lives and dies
# with it: ``Services`` has no slot for feature state, and nothing here holds a resource.
_BY_CLIENT: weakref.WeakKeyDictionary[Any, FormCodes] = weakref.WeakKeyDictionary()


def form_codes(client: WorkflowClient) -> FormCodes:
    codes = _BY_CLIENT.get(client)
    if codes is None:
        codes = _BY_CLIENT[client] = FormCodes()
    return codes


def approvals_enabled(config: Settings) -> bool:
    """False with ``mode = "off"``: 立项, 暂停 and 变更 take effect directly (the caller applies them)."""
    return config.approvals.mode != "off"


async def resolve_process_code(config: Settings, client: WorkflowClient, kind: ApprovalKind) -> str:
    """The processCode to start ``kind`` with; raises ``ApprovalsNotConfigured`` (saying what to configure) or
    ``ApprovalServiceUnavailable``."""
    kind = ApprovalKind(kind)
    approvals = config.approvals
    if approvals.mode == "off":
        raise ApprovalsNotConfigured(not_configured_text(kind, config))
    configured = approvals.process_codes.get(kind.value)
    if configured:
        return configured
    if approvals.mode != "auto":
        raise ApprovalsNotConfigured(not_configured_text(kind, config))
    cache = form_codes(client)
    if kind in cache.codes:
        return cache.codes[kind]
    async with cache.lock:
        if kind not in cache.codes:
            cache.codes[kind] = await _find_or_create(client, kind)
        return cache.codes[kind]


async def _find_or_create(client: WorkflowClient, kind: ApprovalKind) -> str:
    spec = FORMS[kind]
    try:
        code = await client.process_code_by_name(spec.name)
        if code:
            return code
        try:
            code = await client.create_form(spec.name, spec.components(), description=spec.description)
            log.info("approval form %s created processCode=%s", spec.name, code)
            return code
        except RemoteRefusal as exc:
            if exc.code == "formName.error":
                # Another process created it a moment ago.
                code = await client.process_code_by_name(spec.name)
                if code:
                    return code
            log.warning("approval form %s could not be created: %s", spec.name, exc)
            raise ApprovalsNotConfigured(creation_refused_text(kind, exc)) from None
    except RemoteRefusal as exc:
        raise ApprovalsNotConfigured(creation_refused_text(kind, exc)) from None
    except RemoteError as exc:
        raise ApprovalServiceUnavailable(unavailable_text(exc)) from None


async def form_labels(client: WorkflowClient, process_code: str) -> frozenset[str] | None:
    """The labels of the form behind ``process_code`` (cached), or None when the schema cannot be read."""
    cache = form_codes(client)
    if process_code in cache.labels:
        return cache.labels[process_code]
    try:
        schema = await client.get_form_schema(process_code)
    except RemoteError as exc:
        log.info("form schema of %s unavailable (%s): sending every value", process_code, exc.code)
        return None
    items = ((schema.get("schemaContent") or {}).get("items")) or []
    labels = frozenset(str((item.get("props") or {}).get("label")) for item in items
                       if isinstance(item, dict) and (item.get("props") or {}).get("label"))
    if labels:
        cache.labels[process_code] = labels
    return labels or None


def fit_values(values: Mapping[str, str], labels: Iterable[str] | None) -> dict[str, str]:
    """Only the values the form has a control for: an administrator's own form may have fewer fields than ours,
    and DingTalk refuses a value whose name matches no label."""
    if labels is None:
        return dict(values)
    known = set(labels)
    return {label: value for label, value in values.items() if label in known}


# ---- provisioning (start-up job and ``dingpm setup-approvals``) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormStatus:
    kind: ApprovalKind
    name: str
    process_code: str | None
    source: str  # 配置 / 钉钉已有或已创建 / 未配置 / 失败
    problem: str = ""

    def line(self) -> str:
        if self.process_code:
            return f"{self.kind.value}：{self.name} → {self.process_code}（{self.source}）"
        return f"{self.kind.value}：{self.name} → 不可用（{self.problem}）"


async def provision_forms(config: Settings, client: WorkflowClient) -> list[FormStatus]:
    """Make sure every form exists (``mode = "auto"``) or is configured; never raises for one form's failure."""
    result: list[FormStatus] = []
    for kind, spec in FORMS.items():
        configured = config.approvals.process_codes.get(kind.value)
        try:
            code = await resolve_process_code(config, client, kind)
        except UserError as exc:
            result.append(FormStatus(kind, spec.name, None, "未配置", exc.message))
            continue
        if configured:
            # An administrator's code: check that it is real, so a typo shows at start and not at the first 立项.
            try:
                await client.get_form_schema(code)
            except RemoteError as exc:
                result.append(FormStatus(kind, spec.name, None, "失败", f"配置的 processCode {code} 无效：{exc.code}"))
                continue
        result.append(FormStatus(kind, spec.name, code, "配置" if configured else "钉钉已有或已创建"))
    return result


__all__ = [
    "CHANGE_REQUEST_FORM",
    "FORMS",
    "INITIATION_FORM",
    "SCHEDULE_CHANGE_FORM",
    "ApprovalServiceUnavailable",
    "ApprovalsNotConfigured",
    "FormCodes",
    "FormField",
    "FormSpec",
    "FormStatus",
    "approvals_enabled",
    "creation_refused_text",
    "fit_values",
    "form_codes",
    "form_labels",
    "form_value",
    "form_values",
    "not_configured_text",
    "provision_forms",
    "resolve_process_code",
]
