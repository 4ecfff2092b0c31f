"""OA approvals (workflow, reference part 1 §8): forms, process instances, their tasks, and the instance ids a
reconciliation walks. What ``domain.ports.WorkflowClient`` names is served here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.dingtalk.errors import InvalidRequest, ServerError
from bot.dingtalk.transport import Transport


@dataclass(frozen=True)
class InstanceIdPage:
    ids: tuple[str, ...]
    next_token: str | None  # None when there is no further page


class WorkflowApi(Transport):
    # ---- workflow (approvals) --------------------------------------------------------------------------------

    async def create_form(
        self,
        name: str,
        form_components: Sequence[Mapping[str, Any]],
        *,
        description: str | None = None,
        process_code: str | None = None,
        **extra: Any,
    ) -> str:
        """Create (or, with ``process_code``, update) an approval form template; return its processCode."""
        body: dict[str, Any] = {"name": name, "formComponents": [dict(c) for c in form_components], **extra}
        if description is not None:
            body["description"] = description
        if process_code:
            body["processCode"] = process_code
        payload = await self._call("workflow/forms", "POST", f"{self._api}/v1.0/workflow/forms",
                                   json_body=body, idempotent=False)
        code = (payload.get("result") or {}).get("processCode") or payload.get("processCode")
        if not code:
            raise ServerError("processCode.missing", "processCode missing in the answer", api="workflow/forms")
        return str(code)

    async def process_code_by_name(self, name: str) -> str | None:
        """The processCode of the form named ``name``, or ``None`` if there is none."""
        try:
            payload = await self._call(
                "workflow/processCodes", "GET", f"{self._api}/v1.0/workflow/processCentres/schemaNames/processCodes",
                params={"name": name}, idempotent=True,
            )
        except InvalidRequest as exc:
            # The by-name lookup answers processCodeError when no form has that name.
            if exc.http_status == 404 or exc.code == "processCodeError":
                return None
            raise
        # The documented body is nested; a flat one was also seen (§8.1), so accept both.
        result = payload.get("result")
        code = result.get("processCode") if isinstance(result, dict) else payload.get("processCode")
        return str(code) if code else None

    async def get_form_schema(self, process_code: str) -> dict[str, Any]:
        payload = await self._call(
            "workflow/forms/schemas", "GET", f"{self._api}/v1.0/workflow/forms/schemas/processCodes",
            params={"processCode": process_code}, idempotent=True,
        )
        return dict(payload.get("result") or {})

    async def create_process_instance(
        self,
        process_code: str,
        originator_user_id: str,
        form_values: Mapping[str, str] | Sequence[Mapping[str, Any]],
        *,
        dept_id: int | None = None,
        approvers: Sequence[str | Mapping[str, Any]] | None = None,
        cc_list: Sequence[str] = (),
        cc_position: str | None = None,
        microapp_agent_id: int | None = None,
        **extra: Any,
    ) -> str:
        """Start an approval; return the instanceId.

        ``form_values``: ``{label: value}`` or the raw ``formComponentValues`` list (values must be strings, §8.3).
        ``approvers``: user ids approving one after the other, or raw ``{"actionType","userIds"}`` entries.
        """
        if isinstance(form_values, Mapping):
            components = [{"name": k, "value": v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}
                          for k, v in form_values.items()]
        else:
            components = [dict(c) for c in form_values]
        body: dict[str, Any] = {
            "originatorUserId": originator_user_id,
            "processCode": process_code,
            "formComponentValues": components,
            **extra,
        }
        if approvers:
            body["approvers"] = [a if isinstance(a, Mapping) else {"actionType": "NONE", "userIds": [a]}
                                 for a in approvers]
        if dept_id is not None or not approvers:
            body["deptId"] = -1 if dept_id is None else dept_id  # required without approvers; -1 = root dept
        if cc_list:
            body["ccList"] = list(cc_list)
            body["ccPosition"] = cc_position or "FINISH"
        if microapp_agent_id is not None:
            body["microappAgentId"] = microapp_agent_id
        payload = await self._call("workflow/processInstances", "POST", f"{self._api}/v1.0/workflow/processInstances",
                                   json_body=body, idempotent=False)
        instance_id = payload.get("instanceId") or (payload.get("result") or {}).get("instanceId")
        if not instance_id:
            raise ServerError("instanceId.missing", "instanceId missing in the answer", api="workflow/processInstances")
        return str(instance_id)

    async def get_process_instance(self, instance_id: str) -> dict[str, Any]:
        """The instance detail (``result`` of §8.2: status, result, tasks, operationRecords, …)."""
        payload = await self._call(
            "workflow/processInstances.get", "GET", f"{self._api}/v1.0/workflow/processInstances",
            params={"processInstanceId": instance_id}, idempotent=True,
        )
        return dict(payload.get("result") or {})

    async def terminate_process_instance(
        self, instance_id: str, *, operating_user_id: str | None = None, is_system: bool = True, remark: str = ""
    ) -> bool:
        body: dict[str, Any] = {"processInstanceId": instance_id, "isSystem": is_system}
        if operating_user_id:
            body["operatingUserId"] = operating_user_id
        if remark:
            body["remark"] = remark[:1024]
        payload = await self._call(
            "workflow/processInstances/terminate", "POST", f"{self._api}/v1.0/workflow/processInstances/terminate",
            json_body=body, idempotent=False,
        )
        return bool(payload.get("result", True))

    async def execute_task(
        self, instance_id: str, task_id: str | int, actioner_user_id: str, result: Literal["agree", "refuse"],
        remark: str = "",
    ) -> bool:
        """Approve or refuse a task on behalf of ``actioner_user_id``."""
        body: dict[str, Any] = {"processInstanceId": instance_id, "taskId": int(task_id),
                                "actionerUserId": actioner_user_id, "result": result}
        if remark:
            body["remark"] = remark
        payload = await self._call(
            "workflow/processInstances/execute", "POST", f"{self._api}/v1.0/workflow/processInstances/execute",
            json_body=body, idempotent=False,
        )
        return bool(payload.get("result", True))

    async def list_instance_ids(
        self,
        process_code: str,
        start_time_ms: int,
        end_time_ms: int | None = None,
        *,
        next_token: str | int = 0,
        max_results: int = 20,
        user_ids: Sequence[str] = (),
        statuses: Sequence[str] = (),
    ) -> InstanceIdPage:
        """One page of instance ids started in ``[start, end]`` (ms epoch)."""
        body: dict[str, Any] = {"processCode": process_code, "startTime": int(start_time_ms),
                                "nextToken": int(next_token), "maxResults": min(max(1, max_results), 20)}
        if end_time_ms is not None:
            body["endTime"] = int(end_time_ms)
        if user_ids:
            body["userIds"] = list(user_ids)
        if statuses:
            body["statuses"] = list(statuses)
        payload = await self._call(
            "workflow/instanceIds/query", "POST", f"{self._api}/v1.0/workflow/processes/instanceIds/query",
            json_body=body, idempotent=True,
        )
        result = payload.get("result") or {}
        ids = tuple(str(i) for i in result.get("list") or ())
        token = result.get("nextToken")
        return InstanceIdPage(ids=ids, next_token=str(token) if token not in (None, "", 0, "0") and ids else None)

    async def iter_instance_ids(self, process_code: str, start_time_ms: int, end_time_ms: int | None = None,
                                **filters: Any) -> AsyncIterator[str]:
        """All instance ids, page after page."""
        token: str | int = 0
        while True:
            page = await self.list_instance_ids(process_code, start_time_ms, end_time_ms, next_token=token, **filters)
            for instance_id in page.ids:
                yield instance_id
            if page.next_token is None:
                return
            token = page.next_token
