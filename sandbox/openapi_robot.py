"""Robot OpenAPI: proactive sends (§5.1, §5.2) and received-file download (§5.5)."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from .messages import validate_msg_param
from .openapi_common import ApiContext, NewApiError, api, require


def _check_robot_code(ctx: ApiContext, robot_code: str) -> None:
    assert ctx.app is not None
    if robot_code != ctx.app.robot_code:
        raise NewApiError(400, "invalidParameter.robotCode.auth", "robotCode无权限，请确认robotCode与应用一致")


def _validate(ctx: ApiContext, body: dict):
    emulator = ctx.emulator
    return validate_msg_param(str(body["msgKey"]), body["msgParam"],
                              max_bytes=emulator.config.msg_param_max_bytes, media=emulator.media.by_media_id)


@api("robot.groupMessages.send", "new")
async def group_messages_send(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    require(body, "msgParam", "msgKey", "openConversationId", "robotCode")
    _check_robot_code(ctx, str(body["robotCode"]))
    group = ctx.emulator.world.groups.get(str(body["openConversationId"]))
    if group is None or not ctx.emulator.robot_in_group(ctx.app, group):
        raise NewApiError(400, "invalid.openConversationId", "openConversationId不合法或机器人不在该群中")
    normalized = _validate(ctx, body)
    ctx.emulator.record_bot_message(conversation_id=group.conversation_id, app=ctx.app, via="openapi",
                                    api=ctx.name, normalized=normalized, msg_key=str(body["msgKey"]), raw=body)
    return ctx.ok({"processQueryKey": ctx.emulator.ids.process_query_key()})


@api("robot.oToMessages.batchSend", "new")
async def oto_messages_batch_send(request: web.Request, ctx: ApiContext) -> web.Response:
    emulator = ctx.emulator
    body = await ctx.json_body()
    require(body, "robotCode", "userIds", "msgKey", "msgParam")
    user_ids = body["userIds"]
    if not isinstance(user_ids, list):
        raise NewApiError(400, "invalidParameter.userIds.invalid", "userIds必须是数组")
    if len(user_ids) > emulator.config.batch_send_max_users:
        raise NewApiError(400, "invalidParameter.userIds.overMax",
                          f"userIds超过最大数量限制{emulator.config.batch_send_max_users}")
    _check_robot_code(ctx, str(body["robotCode"]))
    normalized = _validate(ctx, body)
    invalid: list[str] = []
    for raw_id in user_ids:
        user = emulator.world.users.get(str(raw_id))
        if user is None or user.external:
            invalid.append(str(raw_id))
            continue
        emulator.record_bot_message(conversation_id=emulator.world.private_conversation_id(user, ctx.app),
                                    app=ctx.app, via="openapi", api=ctx.name, normalized=normalized,
                                    msg_key=str(body["msgKey"]), raw=body, to_user_id=user.user_id)
    return ctx.ok({"processQueryKey": emulator.ids.process_query_key(), "invalidStaffIdList": invalid,
                   "flowControlledStaffIdList": []})


ROBOT_GROUPS_MAX_PAGE_SIZE = 100      # UNCONFIRMED (P2 §3.5: SDK only, no doc page)


@api("robot.groups.query", "new")
async def robot_groups_query(request: web.Request, ctx: ApiContext) -> web.Response:
    """The groups this robot is in, a page at a time (pageNumber from 1)."""
    body = await ctx.json_body()
    require(body, "robotCode", "pageNumber", "pageSize")
    _check_robot_code(ctx, str(body["robotCode"]))
    number, size = body["pageNumber"], body["pageSize"]
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise NewApiError(400, "invalidParameter.pageNumber", "pageNumber必须是正整数")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= ROBOT_GROUPS_MAX_PAGE_SIZE:
        raise NewApiError(400, "invalidParameter.pageSize", f"pageSize必须是1–{ROBOT_GROUPS_MAX_PAGE_SIZE}的整数")
    emulator = ctx.emulator
    cids = [g.conversation_id for g in emulator.world.groups.values() if emulator.robot_in_group(ctx.app, g)]
    start = (number - 1) * size
    return ctx.ok({"openConversationIds": cids[start:start + size], "hasMore": start + size < len(cids)})


@api("robot.messageFiles.download", "new")
async def message_files_download(request: web.Request, ctx: ApiContext) -> web.Response:
    body = await ctx.json_body()
    require(body, "downloadCode", "robotCode")
    _check_robot_code(ctx, str(body["robotCode"]))
    media = ctx.emulator.media.by_download_code(str(body["downloadCode"]))
    if media is None:
        raise NewApiError(400, "invalidParameter.downloadCode.invalid", "downloadCode不合法或已失效")
    token = ctx.emulator.media.issue_download_token(media)
    return ctx.ok({"downloadUrl": f"{request.scheme}://{request.host}/file/download/{token}"})


@api("file.download", "old", auth="none")
async def file_download(request: web.Request, ctx: ApiContext) -> web.Response:
    # Stands in for the object-storage URL that downloadUrl points to: a plain GET.
    media = ctx.emulator.media.by_download_token(request.match_info["token"])
    if media is None:
        ctx.error = "404"
        return web.Response(status=404, content_type="application/xml",
                            text="<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code>"
                                 "<Message>The specified key does not exist.</Message></Error>")
    return web.Response(body=media.data, content_type=media.content_type,
                        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(media.file_name)}"})
