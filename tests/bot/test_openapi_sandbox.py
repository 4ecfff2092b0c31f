"""The OpenAPI client against the sandbox emulator: what DingTalk records is what the client meant to send."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from bot.dingtalk import (
    AuthError,
    DingTalkClient,
    FileTooLarge,
    InvalidRequest,
    NetworkError,
    RetryPolicy,
    SessionWebhookExpired,
    Timeout,
)
from bot.dingtalk.messages import Button, robot_action_card, robot_file, robot_markdown, robot_text
from bot.incoming import parse_bot_message
from domain import replies

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("loop_watch")]

GROUP = "【智慧工厂MES项目】内部群"  # the default sandbox world's project group (also the `group` fixture)


# ---- tokens --------------------------------------------------------------------------------------------------

async def test_token_is_fetched_once_and_cached(sandbox, client):
    tokens = await asyncio.gather(*(client.access_token() for _ in range(10)))
    assert len(set(tokens)) == 1
    await client.send_group(sandbox.conversation_id(GROUP), robot_text("一"))
    await client.send_group(sandbox.conversation_id(GROUP), robot_text("二"))
    assert sandbox.calls("oauth2.accessToken") == 1
    assert client.stats.token_fetches == 1


async def test_rejected_token_is_refreshed_and_the_call_retried_once(sandbox, client):
    cid = sandbox.conversation_id(GROUP)
    await client.send_group(cid, robot_text("before"))
    await sandbox.call(sandbox.emulator.tokens.revoke_all)  # every issued token becomes invalid server-side

    await client.send_group(cid, robot_text("after revoke"))  # new API: 400 InvalidAuthentication
    assert client.stats.token_refreshes_after_auth_error == 1
    await sandbox.call(sandbox.emulator.tokens.revoke_all)
    media_id = await client.upload_media("image", "a.png", data=b"\x89PNG....")  # old API: errcode 88/40014
    assert media_id.startswith("@")
    assert client.stats.token_refreshes_after_auth_error == 2
    assert sandbox.calls("oauth2.accessToken") == 3
    assert [m.text for m in sandbox.sent(GROUP)] == ["before", "after revoke"]


async def test_wrong_secret_is_a_permanent_auth_error(sandbox, http, fast_retries, make_config):
    config = make_config()
    bad = config.model_copy(update={"dingtalk": config.dingtalk.model_copy(update={"client_secret": "nope"})})
    client = DingTalkClient(bad, session=http, retry_policy=fast_retries)
    with pytest.raises(AuthError) as caught:
        await client.send_group(sandbox.conversation_id(GROUP), robot_text("x"))
    assert caught.value.code == "invalidClientIdOrSecret" and not caught.value.retryable
    assert sandbox.calls("oauth2.accessToken") == 1 and client.stats.retries == 0
    assert "nope" not in str(caught.value)


# ---- session webhook -----------------------------------------------------------------------------------------

async def test_reply_via_webhook_and_its_expiry(sandbox, client):
    said = await sandbox.say("王建国", GROUP, "周报")
    incoming = parse_bot_message({"messageId": said.message_id}, said.payload)
    await client.reply_via_webhook(incoming.session_webhook, robot_markdown("周报", "## 本周完成"),
                                   expires_at=incoming.session_webhook_expires_at, at_user_ids=["wangjianguo"])
    reply = await sandbox.next_message(GROUP)
    assert reply.via == "webhook" and reply.msgtype == "markdown"
    assert reply.title == "周报" and reply.at_user_ids == ("wangjianguo",)
    await client.reply_via_webhook(incoming.session_webhook, replies.Text("好的", at_user_ids=("liming",)))
    reply = await sandbox.next_message(GROUP)
    assert reply.msgtype == "text" and reply.text.startswith("好的") and reply.at_user_ids == ("liming",)

    await sandbox.advance(5401)  # sessionWebhook lives 90 minutes
    with pytest.raises(SessionWebhookExpired) as caught:
        await client.reply_via_webhook(incoming.session_webhook, robot_text("too late"))
    assert caught.value.code == "300001" and not caught.value.retryable
    calls = sandbox.calls("robot.sendBySession")
    # Knowing the expiry, the client does not even try.
    with pytest.raises(SessionWebhookExpired):
        await client.reply_via_webhook(incoming.session_webhook, robot_text("x"),
                                       expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert sandbox.calls("robot.sendBySession") == calls


async def test_webhook_cannot_carry_files(sandbox, client):
    said = await sandbox.say("王建国", GROUP, "归档")
    with pytest.raises(InvalidRequest):
        await client.reply_via_webhook(said.session_webhook, robot_file("@x", "a.docx"))
    assert sandbox.calls("robot.sendBySession") == 0


# ---- robot sends ---------------------------------------------------------------------------------------------

async def test_group_send_records_msg_key_and_params(sandbox, client):
    cid = sandbox.conversation_id(GROUP)
    result = await client.send_group(cid, "sampleMarkdown", {"title": "逾期提醒", "text": "**3** 项交付物逾期"})
    assert result.process_query_key
    sent = await sandbox.next_message(GROUP)
    assert sent.via == "openapi" and sent.msg_key == "sampleMarkdown"
    assert sent.params == {"title": "逾期提醒", "text": "**3** 项交付物逾期"}
    card = robot_action_card("审批", "请处理", [Button("同意", "https://a.example"), Button("查看", "https://b.example")])
    await client.send_group(cid, card)
    sent = await sandbox.next_message(GROUP)
    assert sent.msg_key == "sampleActionCard2" and sent.params["actionURL2"] == "https://b.example"


async def test_one_to_one_sends_in_chunks_and_reports_invalid_ids(sandbox, client):
    ghosts = [f"ghost{i:02d}" for i in range(41)]
    result = await client.send_to_users(["liming", "zhaolei", *ghosts, "liming"], robot_text("请提交周报"))
    assert sandbox.calls("robot.oToMessages.batchSend") == 3  # 43 distinct ids -> 20 + 20 + 3
    assert set(result.invalid_staff_ids) == set(ghosts)
    assert result.sent_user_ids == ("liming", "zhaolei") and result.ok
    assert len(result.process_query_keys) == 3
    for user in ("李明", "赵磊"):
        message = await sandbox.next_message(user)
        assert message.msg_key == "sampleText" and message.text == "请提交周报"


async def test_permanent_error_is_not_retried(sandbox, client):
    with pytest.raises(InvalidRequest) as caught:
        await client.send_group("cidUnknownGroup==", robot_text("x"))
    assert caught.value.code == "invalid.openConversationId"
    assert sandbox.calls("robot.groupMessages.send") == 1 and client.stats.retries == 0


# ---- media -----------------------------------------------------------------------------------------------------

async def test_upload_a_file_and_send_it_to_a_group(sandbox, client, tmp_path):
    document = b"PK\x03\x04" + bytes(range(256)) * 400  # ~100 KB "docx"
    path = tmp_path / "周报.docx"
    path.write_bytes(document)
    media_id = await client.upload_media("file", "周报.docx", path=path)  # streamed from disk
    await client.send_group(sandbox.conversation_id(GROUP), robot_file(media_id, "周报.docx"))
    sent = await sandbox.next_message(GROUP)
    assert sent.msg_key == "sampleFile" and sent.file_name == "周报.docx"
    assert sent.file_bytes == document

    message = await client.robot_message_for(replies.Image(png=b"\x89PNG\r\n\x1a\nfake"))
    await client.send_to_users(["liming"], message)
    sent = await sandbox.next_message("李明")
    assert sent.msg_key == "sampleImageMsg" and sent.file_bytes == b"\x89PNG\r\n\x1a\nfake"


async def test_upload_limits_are_checked_locally(sandbox, client):
    with pytest.raises(InvalidRequest):
        await client.upload_media("file", "notes.txt", data=b"x")
    with pytest.raises(FileTooLarge):
        await client.upload_media("voice", "a.amr", data=b"0" * (2 * 1024 * 1024 + 1))
    assert sandbox.calls("media.upload") == 0


async def test_download_a_received_file(sandbox, client, tmp_path):
    content = bytes(range(256)) * 1000
    said = await sandbox.send_file("李明", None, content, "需求说明.pdf")
    incoming = parse_bot_message({"messageId": said.message_id}, said.payload)
    code = incoming.files[0].download_code

    chunks = [chunk async for chunk in client.download_file(code)]
    assert b"".join(chunks) == content
    size = await client.save_file(code, tmp_path / "需求说明.pdf")
    assert size == len(content) and (tmp_path / "需求说明.pdf").read_bytes() == content

    sandbox.faults.set("file.download", error_rate=1.0, kinds="5xx", count=1)  # storage hiccup: retried
    assert b"".join([c async for c in client.download_file(code)]) == content
    assert sandbox.calls("file.download") == 4

    with pytest.raises(FileTooLarge):
        await client.save_file(code, tmp_path / "big.pdf", max_bytes=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["需求说明.pdf"]  # no partial file left behind

    # Its folder is made when missing; a file of several write batches arrives whole.
    big = bytes(range(251)) * 9000  # ~2.2 MB: more than two batches
    said = await sandbox.send_file("李明", None, big, "现场照片.zip")
    big_code = parse_bot_message({"messageId": said.message_id}, said.payload).files[0].download_code
    assert await client.save_file(big_code, tmp_path / "staging" / "现场照片.zip") == len(big)
    assert (tmp_path / "staging" / "现场照片.zip").read_bytes() == big
    assert [p.name for p in (tmp_path / "staging").iterdir()] == ["现场照片.zip"]


async def test_files_arriving_together_are_fetched_without_waiting(sandbox, client, tmp_path):
    # The download-link API is quiet: five files sent in the same moment are fetched at once, none of them held back
    # behind another's call (the pacer lets a burst of five through; a sixth would wait for its turn).
    codes = []
    for i in range(5):
        said = await sandbox.send_file("李明", None, bytes([i]) * 2048, f"现场记录{i}.pdf")
        codes.append(parse_bot_message({"messageId": said.message_id}, said.payload).files[0].download_code)
    sizes = await asyncio.gather(*(client.save_file(code, tmp_path / f"{i}.pdf") for i, code in enumerate(codes)))
    assert sizes == [2048] * 5
    assert client.pacer.waits.get("robot/messageFiles/download", 0) == 0


# ---- workflow --------------------------------------------------------------------------------------------------

FORM = [
    {"componentType": "TextField", "props": {"componentId": "TextField_1", "label": "项目名称", "required": True}},
    {"componentType": "TextareaField", "props": {"componentId": "TextareaField_1", "label": "变更说明"}},
]


async def test_workflow_round_trip(sandbox, client):
    process_code = await client.create_form("项目变更申请（测试）", FORM, description="dingpm")
    assert await client.process_code_by_name("项目变更申请（测试）") == process_code
    assert await client.process_code_by_name("不存在的表单") is None
    start_ms = sandbox.now_ms() - 1000

    instance_id = await client.create_process_instance(
        process_code, "wangjianguo", {"项目名称": "智慧工厂MES", "变更说明": "延期两周"}, approvers=["liuqiang"])
    detail = await client.get_process_instance(instance_id)
    assert detail["status"] == "RUNNING"
    task = next(t for t in detail["tasks"] if t["status"] == "RUNNING")
    assert await client.execute_task(instance_id, task["taskId"], task["userId"], "agree", remark="同意")
    detail = await client.get_process_instance(instance_id)
    assert (detail["status"], detail["result"]) == ("COMPLETED", "agree")

    second = await client.create_process_instance(process_code, "wangjianguo", {"项目名称": "二期"},
                                                  approvers=[task["userId"]])
    await sandbox.advance(16)  # no revoking within 15 s of the start
    assert await client.terminate_process_instance(second, operating_user_id="wangjianguo", is_system=False,
                                                   remark="撤回")
    assert (await client.get_process_instance(second))["status"] == "TERMINATED"

    ids = [i async for i in client.iter_instance_ids(process_code, start_ms, sandbox.now_ms() + 1000)]
    assert set(ids) == {instance_id, second}
    schema = await client.get_form_schema(process_code)
    assert schema


# ---- throttling, server errors, timeouts ----------------------------------------------------------------------

async def test_pacing_stays_below_the_server_limit(sandbox, client):
    # 30 sends at once at 15 calls/s in bursts of 5: 5 start together, the other 25 wait their turn.
    cid = sandbox.conversation_id(GROUP)
    await asyncio.gather(*(client.send_group(cid, robot_text(f"#{i}")) for i in range(30)))
    log = sandbox.call_log("robot.groupMessages.send")
    assert len(log) == 30 and all(r.error is None for r in log)  # DingTalk's 20 calls/s is never met
    arrivals = sorted(r.at for r in log)
    assert max(sum(1 for t in arrivals if first <= t < first + 1000) for first in arrivals) <= 20
    assert client.stats.retries == 0 and client.pacer.waits["robot/groupMessages/send"] == 25


async def test_throttling_is_absorbed_by_retries(sandbox, client):
    sandbox.faults.set("robot.groupMessages.send", error_rate=0.5, kinds="throttle", count=6)
    cid = sandbox.conversation_id(GROUP)
    await asyncio.gather(*(client.send_group(cid, robot_text(f"消息{i}")) for i in range(12)))
    errors = [r.error for r in sandbox.call_log("robot.groupMessages.send") if r.error]
    assert errors == ["Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"] * 6
    assert client.stats.retries == 6 and client.stats.errors["Throttled"] == 6
    texts = sorted(m.text for m in sandbox.sent(GROUP))
    assert texts == sorted(f"消息{i}" for i in range(12))  # nothing lost, nothing doubled


async def test_webhook_replies_are_not_held_back_by_openapi_pacing(sandbox, http, fast_retries, make_config):
    # DingTalk's per-API QPS limit meters OpenAPI calls, not session-webhook replies: a busy bot answering many
    # groups must not queue its replies behind a 1-call-per-second budget.
    client = DingTalkClient(make_config(calls_per_second=1, burst=1), session=http, retry_policy=fast_retries)
    said = [await sandbox.say("王建国", GROUP, f"第{i}条") for i in range(4)]
    await asyncio.gather(*(client.reply_via_webhook(s.session_webhook, robot_text(f"回复{i}"))
                           for i, s in enumerate(said)))
    assert "robot/sendBySession" not in client.pacer.waits
    assert sorted(m.text for m in sandbox.sent(GROUP)) == [f"回复{i}" for i in range(4)]
    await client.send_group(sandbox.conversation_id(GROUP), robot_text("a"))
    await client.send_group(sandbox.conversation_id(GROUP), robot_text("b"))
    assert client.pacer.waits["robot/groupMessages/send"] >= 1  # the OpenAPI send is still paced


async def test_real_qps_limit_is_absorbed(sandbox, http, fast_retries, make_config, eventually):
    sandbox.emulator.config.qps_limit = 3  # read by the emulator at each call
    # The emulator's 1-s throttle window follows its clock: frozen, the window cannot roll over between our calls
    # however slow the machine is, so the 4th call in it is throttled for sure; advancing the clock opens the next.
    await sandbox.freeze_clock()
    client = DingTalkClient(make_config(calls_per_second=20), session=http,
                            retry_policy=RetryPolicy(max_attempts=10, base_delay=0.2, max_delay=1.0))
    cid = sandbox.conversation_id(GROUP)
    sends = asyncio.ensure_future(asyncio.gather(*(client.send_group(cid, robot_text(f"q{i}")) for i in range(6))))
    await eventually(lambda: client.stats.errors["Throttled"] >= 1)
    for _ in range(5):  # 6 calls at 3 per window: two more windows are plenty
        if sends.done():
            break
        await sandbox.advance(1.0)
        await asyncio.wait({sends}, timeout=3)
    await sends
    assert client.stats.errors["Throttled"] >= 1 and client.stats.retries >= 1
    assert sorted(m.text for m in sandbox.sent(GROUP)) == sorted(f"q{i}" for i in range(6))


async def test_server_errors_are_retried_for_sends(sandbox, client):
    sandbox.faults.set("robot.groupMessages.send", error_rate=1.0, kinds="5xx", count=2)
    await client.send_group(sandbox.conversation_id(GROUP), robot_text("经过两次 503"))
    assert sandbox.calls("robot.groupMessages.send") == 3 and client.stats.retries == 2
    assert [m.text for m in sandbox.sent(GROUP)] == ["经过两次 503"]
    said = await sandbox.say("王建国", GROUP, "hi")
    sandbox.faults.set("robot.sendBySession", error_rate=1.0, kinds="5xx", count=1)  # 502 HTML from the proxy
    await client.reply_via_webhook(said.session_webhook, robot_text("webhook after 502"))
    assert sandbox.calls("robot.sendBySession") == 2


async def test_timeouts_are_retried_for_reads_but_reported_maybe_sent_for_sends(sandbox, http, fast_retries,
                                                                                 make_config, eventually):
    client = DingTalkClient(make_config(http_timeout_seconds=0.3), session=http, retry_policy=fast_retries)
    process_code = await client.create_form("超时测试表单", FORM)
    sandbox.faults.set("workflow.processCodes.byName", error_rate=1.0, kinds="timeout", count=1)
    assert await client.process_code_by_name("超时测试表单") == process_code
    await eventually(lambda: sandbox.calls("workflow.processCodes.byName") >= 2)
    assert sandbox.calls("workflow.processCodes.byName") == 2 and client.stats.errors["Timeout"] == 1

    sandbox.faults.set("robot.groupMessages.send", error_rate=1.0, kinds="timeout", count=1)
    with pytest.raises(Timeout) as caught:
        await client.send_group(sandbox.conversation_id(GROUP), robot_text("也许已发送"))
    assert caught.value.maybe_sent and caught.value.retryable
    # The emulator logs a held call when it ends; then exactly one try is on record: not resent blindly.
    await eventually(lambda: sandbox.calls("robot.groupMessages.send") >= 1)
    assert sandbox.calls("robot.groupMessages.send") == 1 and client.stats.retries == 1


async def test_connection_reset(sandbox, client):
    sandbox.faults.set("workflow.forms.schema", error_rate=1.0, kinds="reset", count=1)
    process_code = await client.create_form("重置测试表单", FORM)
    assert await client.get_form_schema(process_code)  # idempotent read: retried
    sandbox.faults.set("robot.groupMessages.send", error_rate=1.0, kinds="reset", count=1)
    with pytest.raises(NetworkError) as caught:
        await client.send_group(sandbox.conversation_id(GROUP), robot_text("reset"))
    assert caught.value.maybe_sent


async def test_owned_session_lifecycle(sandbox, fast_retries, make_config):
    async with DingTalkClient(make_config(), retry_policy=fast_retries) as client:
        await client.send_group(sandbox.conversation_id(GROUP), robot_text("own session"))
        session = client.session
    assert session.closed


async def test_no_token_or_secret_in_logs(sandbox, client, caplog):
    caplog.set_level("DEBUG")
    sandbox.faults.set("media.upload", error_rate=1.0, kinds="5xx", count=1)
    await client.upload_media("file", "a.pdf", data=b"%PDF-1.4")
    token = await client.access_token()
    assert token not in caplog.text and sandbox.client_secret not in caplog.text
    assert json.dumps(token) not in caplog.text
