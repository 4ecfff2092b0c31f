"""Robot OpenAPI sends (§5.1–5.4), media upload (§7) and received-file download (§5.5)."""

from __future__ import annotations

import json

import pytest
from sandbox_helpers import CLIENT_GROUP, INTERNAL_GROUP, new_api, new_token, upload

from sandbox.config import EmulatorConfig


GROUP_SEND = "/v1.0/robot/groupMessages/send"
BATCH_SEND = "/v1.0/robot/oToMessages/batchSend"
DOWNLOAD = "/v1.0/robot/messageFiles/download"


@pytest.fixture
async def token(sandbox, http) -> str:
    return await new_token(http, sandbox)


def group_body(sb, msg_key: str, params, group: str = INTERNAL_GROUP) -> dict:
    return {"msgKey": msg_key, "msgParam": params if isinstance(params, str) else json.dumps(params, ensure_ascii=False),
            "openConversationId": sb.conversation_id(group), "robotCode": sb.robot_code}


ACTION_CARD_3 = {"title": "审批", "text": "请处理", "actionTitle1": "同意", "actionURL1": "https://e.com/1",
                 "actionTitle2": "拒绝", "actionURL2": "https://e.com/2", "actionTitle3": "详情",
                 "actionURL3": "https://e.com/3"}


@pytest.mark.parametrize("msg_key, params, msgtype, title, text", [
    ("sampleText", {"content": "钉钉，让进步发生"}, "text", None, "钉钉，让进步发生"),
    ("sampleMarkdown", {"title": "周报", "text": "## 本周完成\n- 上线"}, "markdown", "周报", "## 本周完成\n- 上线"),
    ("sampleImageMsg", {"photoURL": "https://example.com/a.png"}, "image", None, None),
    ("sampleLink", {"text": "正文", "title": "标题", "picUrl": "", "messageUrl": "https://e.com"}, "link", "标题", "正文"),
    ("sampleActionCard", {"title": "t", "text": "x", "singleTitle": "看", "singleURL": "https://e.com"},
     "actionCard", "t", "x"),
    ("sampleActionCard3", ACTION_CARD_3, "actionCard", "审批", "请处理"),
    ("sampleActionCard6", {"title": "t", "text": "x", "buttonTitle1": "a", "buttonUrl1": "https://e.com/a",
                           "buttonTitle2": "b", "buttonUrl2": "https://e.com/b"}, "actionCard", "t", "x"),
])
async def test_group_send_msg_keys(sandbox, http, token, msg_key, params, msgtype, title, text):
    status, body = await new_api(http, sandbox, "POST", GROUP_SEND, token,
                                 json_body=group_body(sandbox, msg_key, params))
    assert status == 200 and set(body) == {"processQueryKey"}
    message = await sandbox.next_message(INTERNAL_GROUP)
    assert (message.via, message.msg_key, message.msgtype, message.title, message.text) == \
        ("openapi", msg_key, msgtype, title, text)
    assert message.params == params and message.at_user_ids == ()


@pytest.mark.parametrize("msg_key, params, code", [
    ("sampleNope", {"content": "x"}, "invalidParameter.msgKey.invalid"),
    ("sampleText", "not json", "invalidParameter.msgParam.invalid"),
    ("sampleText", "[1, 2]", "invalidParameter.msgParam.invalid"),
    ("sampleText", {"text": "wrong field"}, "invalidParameter.msgParam.invalid"),
    ("sampleMarkdown", {"text": "no title"}, "miss.param.markdownTotitle"),
    ("sampleActionCard2", {"title": "t", "text": "x", "actionTitle1": "a", "actionURL1": "u"},
     "invalidParameter.msgParam.invalid"),
    ("sampleFile", {"mediaId": "@unknown", "fileName": "a.docx", "fileType": "docx"}, "resource.unavailable"),
    ("sampleImageMsg", {"photoURL": "ftp://x"}, "invalidParameter.msgParam.invalid"),
])
async def test_group_send_validation(sandbox, http, token, msg_key, params, code):
    status, body = await new_api(http, sandbox, "POST", GROUP_SEND, token,
                                 json_body=group_body(sandbox, msg_key, params))
    assert (status, body["code"]) == (400, code)
    assert set(body) == {"code", "message", "requestid"}
    assert sandbox.sent() == []


async def test_group_send_checks_robot_code_group_and_size(sandbox, http, token):
    body = group_body(sandbox, "sampleText", {"content": "x"})
    status, answer = await new_api(http, sandbox, "POST", GROUP_SEND, token,
                                   json_body={**body, "robotCode": sandbox.world.app("考勤助手").robot_code})
    assert (status, answer["code"]) == (400, "invalidParameter.robotCode.auth")
    status, answer = await new_api(http, sandbox, "POST", GROUP_SEND, token,
                                   json_body={**body, "openConversationId": "cidNoSuchGroup=="})
    assert (status, answer["code"]) == (400, "invalid.openConversationId")
    big = group_body(sandbox, "sampleText", {"content": "字" * 5001})
    status, answer = await new_api(http, sandbox, "POST", GROUP_SEND, token, json_body=big)
    assert (status, answer["code"]) == (400, "invalidParameter.msgParam.invalid")
    missing = dict(body)
    del missing["msgKey"]
    status, answer = await new_api(http, sandbox, "POST", GROUP_SEND, token, json_body=missing)
    assert (status, answer["code"]) == (400, "MissingmsgKey")


async def test_other_app_bot_is_not_in_the_group(sandbox, http):
    other = sandbox.world.app("考勤助手")
    token = await new_token(http, sandbox, other.client_id, other.client_secret)
    body = {**group_body(sandbox, "sampleText", {"content": "x"}), "robotCode": other.robot_code}
    status, answer = await new_api(http, sandbox, "POST", GROUP_SEND, token, json_body=body)
    assert (status, answer["code"]) == (400, "invalid.openConversationId")


async def test_batch_send(sandbox, http, token):
    body = {"robotCode": sandbox.robot_code, "userIds": ["liming", "zhaolei", "nobody", "huanglei"],
            "msgKey": "sampleMarkdown", "msgParam": json.dumps({"title": "提醒", "text": "交付物逾期"})}
    status, answer = await new_api(http, sandbox, "POST", BATCH_SEND, token, json_body=body)
    assert status == 200
    assert answer["invalidStaffIdList"] == ["nobody", "huanglei"]
    assert answer["flowControlledStaffIdList"] == [] and answer["processQueryKey"]
    for name in ("李明", "赵磊"):
        message = await sandbox.next_message(name)
        assert (message.conversation_type, message.msgtype, message.title) == ("1", "markdown", "提醒")
    assert sandbox.sent("王建国") == []


async def test_batch_send_limits(sandbox, http, token):
    body = {"robotCode": sandbox.robot_code, "userIds": ["liming"] * 21, "msgKey": "sampleText",
            "msgParam": '{"content":"x"}'}
    status, answer = await new_api(http, sandbox, "POST", BATCH_SEND, token, json_body=body)
    assert (status, answer["code"]) == (400, "invalidParameter.userIds.overMax")


async def test_upload_then_send_file_to_group(sandbox, http, token):
    docx = b"PK\x03\x04" + "周报内容".encode() * 100
    uploaded = await upload(http, sandbox, token, "file", "周报.docx", docx)
    assert uploaded["errcode"] == 0 and uploaded["type"] == "file"
    assert uploaded["media_id"].startswith("@") and isinstance(uploaded["created_at"], int)
    params = {"mediaId": uploaded["media_id"], "fileName": "第12周周报.docx", "fileType": "docx"}
    status, _ = await new_api(http, sandbox, "POST", GROUP_SEND, token,
                              json_body=group_body(sandbox, "sampleFile", params, CLIENT_GROUP))
    assert status == 200
    message = await sandbox.next_message(CLIENT_GROUP)
    assert message.msgtype == "file" and message.file_name == "第12周周报.docx"
    assert message.file_bytes == docx


async def test_upload_type_in_form_field_and_image_message(sandbox, http, token):
    png = b"\x89PNG" + b"1" * 100
    uploaded = await upload(http, sandbox, token, "image", "chart.png", png, type_in="form")
    assert uploaded["errcode"] == 0
    status, _ = await new_api(http, sandbox, "POST", GROUP_SEND, token,
                              json_body=group_body(sandbox, "sampleImageMsg", {"photoURL": uploaded["media_id"]}))
    assert status == 200
    assert (await sandbox.next_message(INTERNAL_GROUP)).file_bytes == png


@pytest.mark.parametrize("kind, name, size, errcode", [
    ("image", "a.png", 20 * 1024 * 1024 + 1, 40006),
    ("voice", "a.amr", 2 * 1024 * 1024 + 1, 40006),
    ("file", "a.exe", 10, 40005),
    ("image", "a.docx", 10, 40005),
    ("sticker", "a.png", 10, 40004),
    ("file", "empty.pdf", 0, 40006),
])
async def test_upload_limits(sandbox, http, token, kind, name, size, errcode):
    answer = await upload(http, sandbox, token, kind, name, b"x" * size)
    assert answer["errcode"] == errcode and answer["errmsg"]


async def test_upload_sizes_at_the_limit_pass(sandbox, http, token):
    answer = await upload(http, sandbox, token, "voice", "a.mp3", b"x" * (2 * 1024 * 1024))
    assert answer["errcode"] == 0


async def test_file_message_needs_a_file_media(sandbox, http, token):
    png = await upload(http, sandbox, token, "image", "a.png", b"png")
    params = {"mediaId": png["media_id"], "fileName": "a.docx", "fileType": "docx"}
    status, answer = await new_api(http, sandbox, "POST", GROUP_SEND, token,
                                   json_body=group_body(sandbox, "sampleFile", params))
    assert (status, answer["code"]) == (400, "resource.unavailable")
    doc = await upload(http, sandbox, token, "file", "a.pptx", b"ppt")
    params = {"mediaId": doc["media_id"], "fileName": "a.pptx", "fileType": "pptx"}
    status, answer = await new_api(http, sandbox, "POST", GROUP_SEND, token,
                                   json_body=group_body(sandbox, "sampleFile", params))
    assert (status, answer["code"]) == (400, "invalidParameter.msgParam.invalid")    # fileType list of §5.4


async def test_user_file_download(sandbox, http, token):
    data = "验收报告".encode() * 50
    received = await sandbox.send_file("王建国", None, data, "验收报告.pdf")
    content = received.payload["content"]
    assert received.payload["msgtype"] == "file"
    assert set(content) == {"spaceId", "fileName", "downloadCode", "fileId"} and content["fileName"] == "验收报告.pdf"
    status, answer = await new_api(http, sandbox, "POST", DOWNLOAD, token,
                                   json_body={"downloadCode": content["downloadCode"], "robotCode": sandbox.robot_code})
    assert status == 200 and set(answer) == {"downloadUrl"}
    async with http.get(answer["downloadUrl"]) as r:
        assert r.status == 200 and await r.read() == data
    status, answer = await new_api(http, sandbox, "POST", DOWNLOAD, token,
                                   json_body={"downloadCode": "nope", "robotCode": sandbox.robot_code})
    assert status == 400


async def test_files_cannot_be_sent_to_the_bot_in_a_group_by_default(sandbox):
    from sandbox.emulator import SandboxError
    with pytest.raises(SandboxError):
        await sandbox.send_file("王建国", INTERNAL_GROUP, b"x", "a.pdf")


@pytest.mark.parametrize("sandbox_config", [EmulatorConfig.for_tests(allow_group_files=True)])
async def test_group_files_when_allowed(sandbox):
    received = await sandbox.send_file("李明", INTERNAL_GROUP, b"x", "需求说明书.docx")
    assert received.payload["conversationType"] == "2" and received.payload["msgtype"] == "file"


async def test_other_user_message_types(sandbox):
    picture = await sandbox.send_picture("李明", INTERNAL_GROUP, b"png")
    assert set(picture.payload["content"]) == {"pictureDownloadCode", "downloadCode"}
    rich = await sandbox.send_rich_text("李明", INTERNAL_GROUP, ["现场问题：", ("p.png", b"png"), "请处理"])
    elements = rich.payload["content"]["richText"]
    assert elements[0] == {"text": "@项目管家"} and elements[1] == {"text": "现场问题："}
    assert elements[2]["type"] == "picture" and elements[3] == {"text": "请处理"}
    audio = await sandbox.send_audio("李明", b"amr", recognition="明天上午开会")
    assert audio.payload["content"]["recognition"] == "明天上午开会"
    video = await sandbox.send_video("李明", b"mp4")
    assert video.payload["content"]["videoType"] == "mp4"
    unknown = await sandbox.send_unsupported("李明")
    assert unknown.payload["content"] == {"unknownMsgType": "用户发送了一条消息，机器人暂不支持接收。"}
