"""The approval forms: found, created once (even by two processes at the same time), or configured; and what the
commands answer when approvals cannot be used (nothing configured, DingTalk refusing, DingTalk away)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import aiohttp
import pytest

from bot.cli import main
from bot.dingtalk import DingTalkClient, RetryPolicy
from bot.dingtalk.errors import PermissionDenied as DingTalkPermissionDenied
from domain.approval_flow import request_approval
from domain.approval_forms import (
    FORMS,
    INITIATION_FORM,
    provision_forms,
    resolve_process_code,
)
from sandbox.config import EmulatorConfig
from sandbox.harness import Sandbox
from storage.models import ApprovalKind, ProjectStatus

from .test_approvals_support import add_project, approvals_config, make_world, only_instance

NOT_CONFIGURED = "尚未配置立项审批表单：请在 config.toml 的 [approvals] 中填写 process_codes"


@pytest.fixture
async def sandbox():
    async with Sandbox(config=EmulatorConfig.for_tests(), seed=11) as sb:
        yield sb


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def client_for(config, http) -> DingTalkClient:
    return DingTalkClient(config, session=http, retry_policy=RetryPolicy(max_attempts=2, base_delay=0.01,
                                                                         max_delay=0.05))


async def form_names(sandbox: Sandbox) -> list[str]:
    return await sandbox.call(lambda: sorted(f.name for f in sandbox.emulator.workflow.forms.values()))


async def test_auto_mode_creates_the_three_forms_once_and_other_processes_find_them(sandbox, http) -> None:
    config = approvals_config(sandbox)
    first = await provision_forms(config, client_for(config, http))
    assert [s.kind for s in first] == list(FORMS) and all(s.process_code for s in first)
    assert await form_names(sandbox) == sorted(["项目立项申请", "项目进度变更单", "项目变更申请"])
    schema = await client_for(config, http).get_form_schema(first[0].process_code)
    assert [i["props"]["label"] for i in schema["schemaContent"]["items"]] == list(INITIATION_FORM.labels)

    # Another process (its own client and memory) converges on the same forms by name.
    again = await provision_forms(config, client_for(config, http))
    assert [s.process_code for s in again] == [s.process_code for s in first]
    assert sandbox.calls("workflow.forms.save") == 3


async def test_two_processes_creating_the_same_form_at_once_end_with_one_form(sandbox, http) -> None:
    config = approvals_config(sandbox)
    codes = await asyncio.gather(*(resolve_process_code(config, client_for(config, http), ApprovalKind.INITIATION)
                                   for _ in range(2)))
    assert codes[0] == codes[1]
    assert await form_names(sandbox) == ["项目立项申请"]


async def test_configured_codes_are_used_and_an_administrators_form_gets_only_its_fields(
        sandbox, sqlite_db, http, tmp_path) -> None:
    config = approvals_config(sandbox)
    # An administrator's own, smaller form: the bot fills what it has and leaves out the rest.
    code = await client_for(config, http).create_form("公司立项审批", [
        {"componentType": "TextField", "props": {"componentId": "a", "label": "项目名称", "required": True}},
        {"componentType": "TextField", "props": {"componentId": "b", "label": "项目经理"}},
        {"componentType": "DDDateField", "props": {"componentId": "c", "label": "计划开始"}},
    ])
    world = await make_world(sandbox, sqlite_db, http, tmp_path,
                             approvals_config(sandbox, mode="configured", codes={"立项": code}))
    await add_project(world)
    said = await world.say("pm", "立项")
    assert said.outcome == "ok", said.text
    detail = await sandbox.instance(only_instance(await sandbox.instance_ids()))
    assert {v["name"] for v in detail["formComponentValues"]} == {"项目名称", "项目经理", "计划开始"}
    assert await form_names(sandbox) == ["公司立项审批"]  # configured mode never creates forms


@pytest.mark.parametrize("mode", ["configured", "off"])
async def test_without_configuration_the_answer_says_what_to_configure(sandbox, sqlite_db, http, tmp_path,
                                                                       mode) -> None:
    world = await make_world(sandbox, sqlite_db, http, tmp_path, approvals_config(sandbox, mode=mode))
    await add_project(world)
    said = await world.say("pm", "立项")
    assert said.outcome == "user_error"
    assert "尚未配置立项审批表单" in said.text and 'mode = "auto"' in said.text
    if mode == "configured":
        assert NOT_CONFIGURED in said.text and '例如 process_codes = { "立项" = "PROC-XXXX" }' in said.text
    else:
        assert 'approvals.mode = "off"' in said.text
        listing = await world.say("pm", "审批")
        assert "未启用钉钉审批" in listing.text
    assert (await world.project()).status == ProjectStatus.DRAFT
    assert await sandbox.instance_ids() == [] and await world.approvals() == []


async def test_with_approvals_off_request_approval_leaves_the_change_to_the_caller(sandbox, sqlite_db, http,
                                                                                   tmp_path) -> None:
    world = await make_world(sandbox, sqlite_db, http, tmp_path, approvals_config(sandbox, mode="off"))
    project = await add_project(world)
    async with world.work() as unit:
        ctx = SimpleNamespace(services=world.services, session=unit.session, clock=world.clock,
                              incoming=SimpleNamespace(sender_id="wangjianguo"))
        assert await request_approval(ctx, project, kind="进度变更", form_values={"原因": "停工"}) is None
    assert await sandbox.instance_ids() == []


async def test_form_creation_refused_by_dingtalk(sandbox, sqlite_db, http, tmp_path) -> None:
    world = await make_world(sandbox, sqlite_db, http, tmp_path)
    await add_project(world)

    async def refuse(*args, **kwargs):
        raise DingTalkPermissionDenied("Forbidden.AccessDenied.AccessTokenPermissionDenied", "没有调用该接口的权限",
                                       http_status=403)

    world.services.dingtalk.create_form = refuse
    said = await world.say("pm", "立项")
    assert said.outcome == "user_error"
    assert "尚未配置立项审批表单：机器人无法自动创建表单「项目立项申请」" in said.text
    assert "没有调用该接口的权限" in said.text and "process_codes" in said.text
    statuses = await provision_forms(world.config, world.services.dingtalk)
    assert all(s.process_code is None and "无法自动创建" in s.problem for s in statuses)


async def test_dingtalk_away_nothing_submitted(sandbox, sqlite_db, http, tmp_path) -> None:
    world = await make_world(sandbox, sqlite_db, http, tmp_path)
    await add_project(world)
    sandbox.faults.set("workflow.*", error_rate=1.0, kinds=("5xx",))
    said = await world.say("pm", "立项")
    assert said.outcome == "user_error" and "暂时无法连接钉钉审批服务" in said.text
    sandbox.faults.clear()
    assert (await world.project()).status == ProjectStatus.DRAFT
    assert (await world.say("pm", "立项")).outcome == "ok"  # the next try works


async def test_a_configured_code_dingtalk_does_not_know(sandbox, sqlite_db, http, tmp_path) -> None:
    world = await make_world(sandbox, sqlite_db, http, tmp_path,
                             approvals_config(sandbox, mode="configured", codes={"立项": "PROC-NOPE"}))
    await add_project(world)
    said = await world.say("pm", "立项")
    assert said.outcome == "user_error" and "processCode（PROC-NOPE）在钉钉中不存在" in said.text
    statuses = await provision_forms(world.config, world.services.dingtalk)
    assert "PROC-NOPE 无效" in statuses[0].problem


async def test_no_approvers_and_no_flow_in_dingtalk(sandbox, sqlite_db, http, tmp_path) -> None:
    world = await make_world(sandbox, sqlite_db, http, tmp_path, approvals_config(sandbox, approvers=(), leaders=()))
    await add_project(world)
    said = await world.say("pm", "立项")
    assert said.outcome == "user_error" and "没有审批人" in said.text and "[organization] leaders" in said.text


async def test_without_corp_id_the_answer_says_where_to_look(sandbox, sqlite_db, http, tmp_path) -> None:
    world = await make_world(sandbox, sqlite_db, http, tmp_path, approvals_config(sandbox, corp_id=False))
    await add_project(world)
    said = await world.say("pm", "立项")
    assert said.outcome == "ok" and "工作台 → OA审批 → 我发起的" in said.text


def test_setup_approvals_command(tmp_path, capsys) -> None:
    sandbox = Sandbox(config=EmulatorConfig.for_tests(), seed=3).start_sync()
    try:
        config = tmp_path / "config.toml"
        config.write_text(
            "[dingtalk]\n"
            f'client_id = "{sandbox.client_id}"\nclient_secret = "{sandbox.client_secret}"\n'
            f'api_base_url = "{sandbox.base_url}"\noapi_base_url = "{sandbox.base_url}"\n'
            '[approvals]\nmode = "auto"\n', encoding="utf-8")
        assert main(["-c", str(config), "setup-approvals"]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert [line.split("：")[0] for line in printed] == ["立项", "进度变更", "变更申请"]
        assert all("PROC-" in line or "→" in line for line in printed)
        assert main(["-c", str(config), "setup-approvals"]) == 0  # found again, nothing created twice
        assert sandbox.calls("workflow.forms.save") == 3
    finally:
        sandbox.stop_sync()

