"""The aiohttp application: every emulated route of both hosts on one server.

api.dingtalk.com and oapi.dingtalk.com paths do not collide (`/v1.0/...` vs `/gettoken`,
`/media/upload`, `/robot/sendBySession`), so one base URL serves both, plus the
Stream WebSocket at `/connect`.

Add-ons (the web chat page) register their own routes through `extensions`:
callables `(app, emulator) -> None` run before the app is frozen, e.g.

    def setup(app: web.Application, emulator: Emulator) -> None:
        app.router.add_get("/chat", page)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from aiohttp import web

from . import (gateway, openapi_auth, openapi_cards, openapi_contacts, openapi_groups, openapi_h5, openapi_media,
               openapi_robot, openapi_todo, openapi_webhook, openapi_worknotice, openapi_workflow)
from .openapi_common import EMULATOR_KEY, json_response

if TYPE_CHECKING:
    from .emulator import Emulator, Extension

# (method, path, handler): the whole emulated surface in one table.
ROUTES = (
    ("POST", "/v1.0/gateway/connections/open", gateway.open_connection),
    ("GET", "/connect", gateway.websocket_endpoint),
    ("POST", "/v1.0/oauth2/accessToken", openapi_auth.new_access_token),
    ("GET", "/gettoken", openapi_auth.old_get_token),
    ("POST", "/robot/sendBySession", openapi_webhook.send_by_session),
    ("POST", "/robot/send", openapi_webhook.custom_robot_send),
    ("POST", "/v1.0/robot/groupMessages/send", openapi_robot.group_messages_send),
    ("POST", "/v1.0/robot/oToMessages/batchSend", openapi_robot.oto_messages_batch_send),
    ("POST", "/v1.0/robot/messageFiles/download", openapi_robot.message_files_download),
    ("GET", "/file/download/{token}", openapi_robot.file_download),
    ("POST", "/media/upload", openapi_media.media_upload),
    ("POST", "/v1.0/workflow/forms", openapi_workflow.save_form),
    ("GET", "/v1.0/workflow/processCentres/schemaNames/processCodes", openapi_workflow.process_code_by_name),
    ("GET", "/v1.0/workflow/forms/schemas/processCodes", openapi_workflow.form_schema),
    ("POST", "/v1.0/workflow/processInstances", openapi_workflow.create_instance),
    ("GET", "/v1.0/workflow/processInstances", openapi_workflow.get_instance),
    ("POST", "/v1.0/workflow/processInstances/terminate", openapi_workflow.terminate_instance),
    ("POST", "/v1.0/workflow/processInstances/execute", openapi_workflow.execute_task),
    ("POST", "/v1.0/workflow/processes/instanceIds/query", openapi_workflow.query_instance_ids),
    ("POST", "/topapi/v2/user/get", openapi_contacts.user_get),
    ("POST", "/topapi/user/getbyunionid", openapi_contacts.user_get_by_union_id),
    ("POST", "/topapi/v2/user/getbymobile", openapi_contacts.user_get_by_mobile),
    ("POST", "/topapi/v2/user/list", openapi_contacts.user_list),
    ("POST", "/topapi/user/listid", openapi_contacts.user_list_id),
    ("POST", "/topapi/v2/department/listsub", openapi_contacts.department_list_sub),
    ("POST", "/topapi/v2/department/get", openapi_contacts.department_get),
    ("POST", "/topapi/extcontact/list", openapi_contacts.ext_contact_list),
    ("POST", "/topapi/extcontact/get", openapi_contacts.ext_contact_get),
    ("POST", "/v1.0/contact/users/search", openapi_contacts.users_search),
    ("POST", "/v1.0/im/sceneGroups/members/batchQuery", openapi_groups.scene_group_members),
    ("POST", "/v1.0/im/innerGroups/members/query", openapi_groups.inner_group_members),
    ("POST", "/v1.0/im/innerGroups/members/check", openapi_groups.inner_group_member_check),
    ("POST", "/v1.0/im/innerGroups/memberLists/query", openapi_groups.inner_group_member_list),
    ("POST", "/v1.0/robot/groups/query", openapi_robot.robot_groups_query),
    *openapi_todo.ROUTES,
    *openapi_h5.ROUTES,
    *openapi_worknotice.ROUTES,
    *openapi_cards.ROUTES,
)


@web.middleware
async def new_api_not_found(request: web.Request, handler):
    """Unknown `/v1.0/...` routes answer like the new API gateway, not with aiohttp's text page."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        if not request.path.startswith("/v1.0/"):
            raise
        emulator = request.app[EMULATOR_KEY]
        return json_response({"code": "InvalidAction.NotFound",
                              "message": "Specified api is not found, please check your url and method.",
                              "requestid": emulator.ids.request_id()}, status=404)


def build_app(emulator: "Emulator", extensions: Sequence["Extension"] = ()) -> web.Application:
    # Large enough for JSON bodies; media uploads stream their multipart body instead.
    app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[new_api_not_found])
    app[EMULATOR_KEY] = emulator
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    for extension in extensions:
        extension(app, emulator)
    return app
