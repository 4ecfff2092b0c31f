"""Approvals (OA 审批): form templates, process instances and their state machine (§8).

An instance walks an approver chain: the request's `approvers` (which override the
console flow) or the flow an administrator configured for the form. Each step is
NONE (one approver), AND (会签: everyone must agree) or OR (或签: the first decision
counts, the other tasks are cancelled). A refusal anywhere decides the instance.

Events follow §13.2: on start, instance `start` then task `start` for each new task;
on a decision, task `finish`, the `cancel` of sibling tasks, then either the next
step's task `start`s or the instance `finish`; on terminate, instance `terminate`
only. The engine hands each event to `emit`; the emulator pushes it as an EVENT frame
to the apps that subscribed to that event type.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .clock import Clock
from .config import EmulatorConfig
from .ids import IdFactory
from .world import App, FlowStep, User, World

COMPONENT_TYPES = frozenset({
    "TextField", "TextareaField", "NumberField", "DDSelectField", "DDMultiSelectField", "DDDateField",
    "DDDateRangeField", "TextNote", "PhoneField", "DDPhotoField", "MoneyField", "TableField", "DDAttachment",
    "InnerContactField", "RelateField", "AddressField", "StarRatingField", "DepartmentField",
})
_NO_VALUE_TYPES = frozenset({"TextNote"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?$")

INSTANCE_EVENT = "bpms_instance_change"
TASK_EVENT = "bpms_task_change"


class WorkflowError(Exception):
    """A rejected workflow call: maps to a new-API error body."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


def iso_minute(ms: int | None) -> str | None:
    # The API shows times like "2022-08-31T11:52Z" (UTC, minute precision).
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(ms / 1000))


@dataclass
class FormComponent:
    component_type: str
    component_id: str
    label: str
    required: bool = False
    options: tuple[str, ...] = ()
    biz_alias: str = ""
    props: dict[str, Any] = field(default_factory=dict)
    children: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FormTemplate:
    process_code: str
    name: str
    description: str
    components: list[FormComponent]
    template_config: dict[str, Any]
    created_at: int
    modified_at: int
    app_id: str | None = None
    flow: tuple[FlowStep, ...] | None = None

    @property
    def revoke_disabled(self) -> bool:
        # "允许提交人撤销审批中的审批单" switched off in the template settings.
        return bool(self.template_config.get("disableStopProcessButton"))

    def component_by_label(self, label: str) -> FormComponent | None:
        return next((c for c in self.components if c.label == label), None)


@dataclass
class Task:
    task_id: int
    user_id: str
    step: int
    activity_id: str
    create_time: int
    status: str = "RUNNING"     # RUNNING, COMPLETED, CANCELED, TERMINATED
    result: str = "NONE"        # NONE, AGREE, REFUSE
    finish_time: int | None = None
    remark: str = ""


@dataclass
class OperationRecord:
    user_id: str
    date: int
    type: str
    result: str
    remark: str = ""
    activity_id: str = ""
    show_name: str = ""


@dataclass
class Instance:
    instance_id: str
    form: FormTemplate
    title: str
    originator: User
    originator_dept_id: int
    originator_dept_name: str
    steps: list[FlowStep]
    create_time: int
    business_id: str
    app_id: str
    form_values: list[dict[str, Any]]
    approver_user_ids: list[str]
    cc_user_ids: list[str]
    status: str = "RUNNING"     # RUNNING, COMPLETED, TERMINATED
    result: str = ""            # "", agree, refuse
    finish_time: int | None = None
    current_step: int = 0
    tasks: list[Task] = field(default_factory=list)
    records: list[OperationRecord] = field(default_factory=list)

    @property
    def process_code(self) -> str:
        return self.form.process_code

    def running_tasks(self, step: int | None = None) -> list[Task]:
        return [t for t in self.tasks if t.status == "RUNNING" and (step is None or t.step == step)]

    def to_api(self, corp_id: str) -> dict[str, Any]:
        """The `result` object of GET /v1.0/workflow/processInstances (§8.2)."""
        data: dict[str, Any] = {
            "title": self.title,
            "createTime": iso_minute(self.create_time),
            "originatorUserId": self.originator.user_id,
            "originatorDeptId": str(self.originator_dept_id),
            "originatorDeptName": self.originator_dept_name,
            "status": self.status,
            "result": self.result,
            "approverUserIds": list(self.approver_user_ids),
            "ccUserIds": list(self.cc_user_ids),
            "businessId": self.business_id,
            "bizAction": "NONE",
            "attachedProcessInstanceIds": [],
            "mainProcessInstanceId": "",
            "operationRecords": [{
                "userId": r.user_id, "date": iso_minute(r.date), "type": r.type, "result": r.result,
                "remark": r.remark, "attachments": [], "activityId": r.activity_id, "showName": r.show_name,
            } for r in self.records],
            "tasks": [{
                "taskId": t.task_id, "userId": t.user_id, "status": t.status, "result": t.result,
                "createTime": iso_minute(t.create_time), "finishTime": iso_minute(t.finish_time),
                "mobileUrl": approval_url(corp_id, self.instance_id, t.task_id),
                "pcUrl": approval_url(corp_id, self.instance_id, t.task_id, pc=True),
                "processInstanceId": self.instance_id, "activityId": t.activity_id,
            } for t in self.tasks],
            "formComponentValues": [dict(v) for v in self.form_values],
        }
        if self.finish_time is not None:
            data["finishTime"] = iso_minute(self.finish_time)
        return data


def approval_url(corp_id: str, instance_id: str, task_id: int | None = None, *, pc: bool = False) -> str:
    page = "pc/query/pchomepage.htm" if pc else "mobile/homepage.htm"
    task = f"&taskId={task_id}" if task_id is not None else ""
    return (f"https://aflow.dingtalk.com/dingtalk/{page}?corpid={corp_id}&dd_share=false&showmenu=true"
            f"&back=native&procInstId={instance_id}{task}&swfrom=isv&dinghash=approval")


Emit = Callable[[str, dict[str, Any]], None]


class WorkflowEngine:
    def __init__(self, *, world: World, clock: Clock, ids: IdFactory, config: EmulatorConfig, emit: Emit):
        self.world = world
        self.clock = clock
        self.ids = ids
        self.config = config
        self.emit = emit
        self.forms: dict[str, FormTemplate] = {}
        self.instances: dict[str, Instance] = {}
        self._serial = 0

    # ---- forms --------------------------------------------------------------------
    def save_form(self, app: App | None, body: dict[str, Any]) -> FormTemplate:
        """Create (no processCode) or update (with processCode) a form template."""
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise WorkflowError("Missingname", "name is mandatory for this action.")
        if len(name) > 200:
            raise WorkflowError("invalidParameter", "name长度不能超过200")
        description = str(body.get("description") or "")
        if len(description) > 300:
            raise WorkflowError("invalidParameter", "description长度不能超过300")
        raw_components = body.get("formComponents")
        if not isinstance(raw_components, list) or not raw_components:
            raise WorkflowError("MissingformComponents", "formComponents is mandatory for this action.")
        components = self._parse_components(raw_components)
        process_code = body.get("processCode")
        now = self.clock.now_ms()
        same_name = self.form_by_name(name)
        if process_code:
            form = self.forms.get(str(process_code))
            if form is None:
                raise WorkflowError("processcode.error", "processCode不存在")
            if same_name is not None and same_name is not form:
                raise WorkflowError("formName.error", "表单名称已存在")
            form.name, form.description, form.components = name, description, components
            form.template_config = dict(body.get("templateConfig") or form.template_config)
            form.modified_at = now
        else:
            if same_name is not None:
                raise WorkflowError("formName.error", "表单名称已存在")
            form = FormTemplate(self.ids.process_code(), name, description, components,
                                dict(body.get("templateConfig") or {}), now, now,
                                app.client_id if app else None)
            self.forms[form.process_code] = form
        configured = self.world.form_flows.get(form.name)
        if configured is not None and form.flow is None:
            form.flow = configured.steps
        return form

    def _parse_components(self, raw_components: list[Any]) -> list[FormComponent]:
        if len(raw_components) > 200:
            raise WorkflowError("formschema.error", "表单控件数量不能超过200")
        components = []
        for index, raw in enumerate(raw_components):
            if not isinstance(raw, dict):
                raise WorkflowError("formschema.error", "表单控件格式不正确")
            ctype = raw.get("componentType")
            props = raw.get("props") if isinstance(raw.get("props"), dict) else {}
            if ctype not in COMPONENT_TYPES:
                raise WorkflowError("formschema.error", f"不支持的控件类型：{ctype}")
            label = props.get("label")
            if not label and ctype not in _NO_VALUE_TYPES:
                raise WorkflowError("formschema.error", f"第{index + 1}个控件缺少label")
            options = tuple(str(o.get("value", o.get("key", ""))) if isinstance(o, dict) else str(o)
                            for o in props.get("options") or [])
            components.append(FormComponent(
                ctype, str(props.get("componentId") or f"{ctype}_{self.ids.numeric(6)}"), str(label or ""),
                bool(props.get("required", False)), options, str(props.get("bizAlias") or ""), dict(props),
                list(raw.get("children") or [])))
        labels = [c.label for c in components if c.label]
        if len(labels) != len(set(labels)):
            raise WorkflowError("formschema.error", "控件label不能重复")
        return components

    def form_by_name(self, name: str) -> FormTemplate | None:
        return next((f for f in self.forms.values() if f.name == name), None)

    def form(self, process_code: str) -> FormTemplate:
        form = self.forms.get(process_code)
        if form is None:
            raise WorkflowError("processCodeError", "processCode不存在")
        return form

    def set_flow(self, form_key: str, steps: list[FlowStep] | tuple[FlowStep, ...]) -> FormTemplate:
        """Configure a form's approver chain, as an admin would in the console."""
        form = self.forms.get(form_key) or self.form_by_name(form_key)
        if form is None:
            raise WorkflowError("processCodeError", f"no form {form_key!r}")
        for step in steps:
            self._check_step(step)
        form.flow = tuple(steps)
        return form

    def schema(self, process_code: str) -> dict[str, Any]:
        form = self.form(process_code)
        return {
            "name": form.name, "processCode": form.process_code, "memo": form.description,
            "gmtModified": iso_minute(form.modified_at), "gmtCreate": iso_minute(form.created_at),
            "schemaContent": {
                "title": form.name, "icon": "timefix",
                "items": [{"componentName": c.component_type,
                           "props": {"id": c.component_id, "label": c.label, "required": c.required,
                                     "options": [{"key": o, "value": o} for o in c.options] or None,
                                     "bizAlias": c.biz_alias or None},
                           "children": c.children} for c in form.components],
            },
        }

    # ---- instances ----------------------------------------------------------------
    def _check_step(self, step: FlowStep) -> None:
        if step.action_type not in ("AND", "OR", "NONE"):
            raise WorkflowError("invalidParameter", f"actionType不合法：{step.action_type}")
        if not step.user_ids:
            raise WorkflowError("invalidParameter", "approvers.userIds不能为空")
        if step.action_type == "NONE" and len(step.user_ids) != 1:
            raise WorkflowError("invalidParameter", "actionType为NONE时只能有一个审批人")
        for uid in step.user_ids:
            user = self.world.users.get(uid)
            if user is None or user.external:
                raise WorkflowError("invalidParameter", f"审批人不存在：{uid}")

    def _internal_user(self, user_id: Any, what: str) -> User:
        user = self.world.users.get(str(user_id)) if user_id else None
        if user is None or user.external:
            raise WorkflowError("invalidParameter", f"{what}不合法：{user_id}")
        return user

    def _check_values(self, form: FormTemplate, values: Any) -> list[dict[str, Any]]:
        if not isinstance(values, list) or not values:
            raise WorkflowError("MissingformComponentValues", "formComponentValues is mandatory for this action.")
        if len(values) > 150:
            raise WorkflowError("invalidParameter", "formComponentValues不能超过150项")
        checked, seen = [], set()
        for item in values:
            if not isinstance(item, dict) or not item.get("name"):
                raise WorkflowError("formConverterError", "表单数据校验失败，失败控件：name")
            name, value = str(item["name"]), item.get("value")
            component = form.component_by_label(name)
            if component is None or component.component_type in _NO_VALUE_TYPES:
                raise WorkflowError("formConverterError", f"表单数据校验失败，失败控件：{name}")
            if not isinstance(value, str) or len(value) > 65535:
                raise WorkflowError("formConverterError", f"表单数据校验失败，失败控件：{name}")
            self._check_value(component, value)
            seen.add(name)
            checked.append({"id": component.component_id, "name": name, "value": value,
                            "extValue": item.get("extValue", ""), "componentType": component.component_type,
                            "bizAlias": component.biz_alias})
        for component in form.components:
            if component.required and component.label not in seen and component.component_type not in _NO_VALUE_TYPES:
                raise WorkflowError("formConverterError", f"表单数据校验失败，失败控件：{component.label}")
        return checked

    @staticmethod
    def _check_value(component: FormComponent, value: str) -> None:
        def bad() -> WorkflowError:
            return WorkflowError("formConverterError", f"表单数据校验失败，失败控件：{component.label}")

        ctype = component.component_type
        if component.required and not value.strip():
            raise bad()
        if ctype in ("NumberField", "MoneyField") and value.strip():
            try:
                float(value)
            except ValueError:
                raise bad() from None
        elif ctype == "DDSelectField" and component.options and value not in component.options:
            raise bad()
        elif ctype == "DDMultiSelectField" and value.strip():
            try:
                chosen = json.loads(value)
            except json.JSONDecodeError:
                raise bad() from None
            if not isinstance(chosen, list) or (component.options and not set(map(str, chosen)) <= set(component.options)):
                raise bad()
        elif ctype == "DDDateField" and value.strip() and not _DATE.match(value):
            raise bad()

    def create_instance(self, app: App, body: dict[str, Any]) -> Instance:
        if not body.get("processCode"):
            raise WorkflowError("MissingprocessCode", "processCode is mandatory for this action.")
        if not body.get("originatorUserId"):
            raise WorkflowError("MissingoriginatorUserId", "originatorUserId is mandatory for this action.")
        form = self.form(str(body["processCode"]))
        originator = self._internal_user(body["originatorUserId"], "originatorUserId")
        raw_approvers = body.get("approvers")
        if raw_approvers:
            if not isinstance(raw_approvers, list) or len(raw_approvers) > 20:
                raise WorkflowError("invalidParameter", "approvers最多20个节点")
            steps = []
            for raw in raw_approvers:
                if not isinstance(raw, dict):
                    raise WorkflowError("invalidParameter", "approvers格式不正确")
                step = FlowStep(str(raw.get("actionType") or "NONE").upper(), tuple(map(str, raw.get("userIds") or ())))
                self._check_step(step)
                steps.append(step)
            dept_id = body.get("deptId", self.world.main_department(originator))
        else:
            if body.get("deptId") in (None, ""):
                raise WorkflowError("invalidParameter", "未指定approvers时deptId必填")
            dept_id = body["deptId"]
            if not form.flow:
                raise WorkflowError("targetSelectApproverMissing", "审批人为空，请在审批流程中设置审批人")
            steps = list(form.flow)
        try:
            dept_id = int(dept_id)
        except (TypeError, ValueError):
            raise WorkflowError("invalidParameter", f"deptId不合法：{dept_id}") from None
        if dept_id != -1 and dept_id not in originator.department_ids:
            raise WorkflowError("invalidParameter", f"发起人不在部门{dept_id}中")
        values = self._check_values(form, body.get("formComponentValues"))
        cc = [str(u) for u in body.get("ccList") or []]
        if len(cc) > 50:
            raise WorkflowError("invalidParameter", "ccList最多50人")
        for uid in cc:
            self._internal_user(uid, "ccList")
        now = self.clock.now_ms()
        self._serial += 1
        instance = Instance(
            instance_id=self.ids.instance_id(now), form=form, title=f"{originator.name}提交的{form.name}",
            originator=originator, originator_dept_id=dept_id,
            originator_dept_name=self.world.department_name(dept_id), steps=steps, create_time=now,
            business_id=time.strftime("%Y%m%d%H%M", time.gmtime(now / 1000)) + f"{self._serial:06d}",
            app_id=app.client_id, form_values=values,
            approver_user_ids=[u for s in steps for u in s.user_ids] if raw_approvers else [],
            cc_user_ids=cc)
        self.instances[instance.instance_id] = instance
        instance.records.append(OperationRecord(originator.user_id, now, "START_PROCESS_INSTANCE", "NONE",
                                                show_name="发起审批"))
        self._emit_instance(instance, "start")
        self._start_step(instance, 0)
        return instance

    def get(self, instance_id: str) -> Instance:
        instance = self.instances.get(instance_id)
        if instance is None:
            raise WorkflowError("processInstanceNotExist", "审批实例不存在")
        return instance

    def _start_step(self, instance: Instance, index: int) -> None:
        instance.current_step = index
        step = instance.steps[index]
        now = self.clock.now_ms()
        activity = f"act_{index + 1}_{self.ids.numeric(4)}"
        for uid in step.user_ids:
            task = Task(self.ids.task_id(), uid, index, activity, now)
            instance.tasks.append(task)
        for task in instance.running_tasks(index):
            self._emit_task(instance, task, "start")

    def execute(self, instance_id: str, *, task_id: Any, actioner_user_id: str, result: str,
                remark: str = "") -> Instance:
        instance = self.get(instance_id)
        if result not in ("agree", "refuse"):
            raise WorkflowError("invalidParameter", f"result不合法：{result}")
        if instance.status != "RUNNING":
            raise WorkflowError("processInstanceInvalidParameter", "审批实例已结束，不能处理任务")
        try:
            task_id = int(task_id)
        except (TypeError, ValueError):
            raise WorkflowError("invalidParameter", f"taskId不合法：{task_id}") from None
        task = next((t for t in instance.tasks if t.task_id == task_id), None)
        if task is None:
            raise WorkflowError("invalidParameter", f"任务不存在：{task_id}")
        if task.user_id != actioner_user_id:
            raise WorkflowError("invalidParameter", "actionerUserId不是该任务的审批人")
        if task.status != "RUNNING":
            raise WorkflowError("invalidParameter", "该任务已处理")
        self._decide(instance, task, result, remark)
        return instance

    def act(self, instance_id: str, user_id: str, result: str, remark: str = "") -> Instance:
        """Approve or refuse as `user_id` would in the DingTalk client (their running task)."""
        instance = self.get(instance_id)
        task = next((t for t in instance.running_tasks() if t.user_id == user_id), None)
        if task is None:
            raise WorkflowError("invalidParameter", f"{user_id} 在该审批中没有待处理的任务")
        return self.execute(instance_id, task_id=task.task_id, actioner_user_id=user_id, result=result,
                            remark=remark)

    def _decide(self, instance: Instance, task: Task, result: str, remark: str) -> None:
        now = self.clock.now_ms()
        task.status, task.result, task.finish_time, task.remark = "COMPLETED", result.upper(), now, remark
        instance.records.append(OperationRecord(task.user_id, now, "EXECUTE_TASK_NORMAL", result.upper(), remark,
                                                task.activity_id, "审批人"))
        self._emit_task(instance, task, "finish", result=result, remark=remark)
        step = instance.steps[task.step]
        step_done = result == "refuse" or step.action_type != "AND" or not instance.running_tasks(task.step)
        if not step_done:
            return
        for other in instance.running_tasks(task.step):
            # OR-sign: the first decision counts; a refusal ends every open task.
            other.status, other.finish_time = "CANCELED", now
            self._emit_task(instance, other, "cancel")
        if result == "agree" and task.step + 1 < len(instance.steps):
            self._start_step(instance, task.step + 1)
            return
        instance.status, instance.result, instance.finish_time = "COMPLETED", result, now
        self._emit_instance(instance, "finish", result=result)

    def terminate(self, instance_id: str, *, operating_user_id: str | None, is_system: bool = False,
                  remark: str = "") -> Instance:
        instance = self.get(instance_id)
        if instance.status != "RUNNING":
            raise WorkflowError("processInstanceInvalidParameter", "审批实例已结束，不能撤销")
        if instance.form.revoke_disabled:
            raise WorkflowError("820008", "该审批模板不允许提交人撤销审批中的审批单")
        if not is_system and operating_user_id != instance.originator.user_id:
            raise WorkflowError("invalidParameter", "operatingUserId必须是审批发起人")
        if len(remark) > 1024:
            raise WorkflowError("invalidParameter", "remark长度不能超过1024")
        now = self.clock.now_ms()
        if now - instance.create_time < self.config.terminate_min_age * 1000:
            raise WorkflowError("processInstanceInvalidParameter", "审批实例发起15秒内不能撤销")
        for task in instance.running_tasks():
            task.status, task.finish_time = "TERMINATED", now
        instance.status, instance.finish_time = "TERMINATED", now
        instance.records.append(OperationRecord(operating_user_id or instance.originator.user_id, now,
                                                "TERMINATE_PROCESS_INSTANCE", "NONE", remark, show_name="撤销"))
        self._emit_instance(instance, "terminate", remark=remark)
        return instance

    def query_ids(self, *, process_code: str, start_time: int, end_time: int | None, next_token: int,
                  max_results: int, user_ids: list[str] | None, statuses: list[str] | None) -> tuple[list[str], int | None]:
        self.form(process_code)
        matching = [i for i in self.instances.values()
                    if i.process_code == process_code and i.create_time >= start_time
                    and (end_time is None or i.create_time <= end_time)
                    and (not user_ids or i.originator.user_id in user_ids)
                    and (not statuses or i.status in statuses)]
        matching.sort(key=lambda i: i.create_time)
        page = matching[next_token:next_token + max_results]
        more = next_token + max_results < len(matching)
        return [i.instance_id for i in page], (next_token + max_results if more else None)

    # ---- events -------------------------------------------------------------------
    def _base_event(self, instance: Instance, kind: str) -> dict[str, Any]:
        return {"processInstanceId": instance.instance_id, "processCode": instance.process_code,
                "bizCategoryId": "", "businessId": instance.business_id, "title": instance.title, "type": kind}

    def _emit_instance(self, instance: Instance, kind: str, *, result: str | None = None, remark: str = "") -> None:
        data = self._base_event(instance, kind)
        if result is not None:
            data["result"] = result
        data.update({"staffId": instance.originator.user_id, "createTime": instance.create_time,
                     "url": approval_url(self.world.corp_id, instance.instance_id), "businessType": ""})
        if kind in ("finish", "terminate"):
            data["finishTime"] = instance.finish_time
        if remark:
            data["remark"] = remark
        self.emit(INSTANCE_EVENT, data)

    def _emit_task(self, instance: Instance, task: Task, kind: str, *, result: str | None = None,
                   remark: str = "") -> None:
        data = self._base_event(instance, kind)
        if result is not None:
            data["result"] = result
        data.update({"staffId": task.user_id, "taskId": task.task_id, "createTime": task.create_time})
        if task.finish_time is not None and kind != "start":
            data["finishTime"] = task.finish_time
        if kind == "finish":
            data["remark"] = remark
        self.emit(TASK_EVENT, data)
