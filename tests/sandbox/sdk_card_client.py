"""The unmodified dingtalk-stream SDK (PyPI 0.24.3) as a bot that sends cards and answers their buttons.

Run in a subprocess by the tests, like `sdk_stream_client.py` (DINGTALK_OPENAPI_ENDPOINT set
by the parent). Arguments: client_id client_secret card_template_id.
Everything the bot sees is printed to stdout as one JSON object per line.

  a group message containing "卡片":  the SDK's own CardReplier.create_and_deliver_card
                                       (createAndDeliver with STREAM callbacks)
  a card callback:                    parsed with the SDK's CardCallbackMessage; answered the way a
                                       CardCallbackHandler does, with a card update as the ACK response
                                       (ackStatus=acked, by key)
"""

from __future__ import annotations

import asyncio
import json
import sys

import dingtalk_stream  # noqa: E402  (after the environment is set by the parent)
from dingtalk_stream import AckMessage
from dingtalk_stream.card_callback import CardCallbackMessage
from dingtalk_stream.card_replier import CardReplier


def emit(**fields) -> None:
    print(json.dumps(fields, ensure_ascii=False), flush=True)


class Chat(dingtalk_stream.ChatbotHandler):
    def __init__(self, template_id: str):
        super().__init__()
        self.template_id = template_id

    async def process(self, callback: dingtalk_stream.CallbackMessage):
        incoming = dingtalk_stream.ChatbotMessage.from_dict(callback.data)
        if "卡片" in (incoming.text.content if incoming.text else ""):
            replier = CardReplier(self.dingtalk_client, incoming)
            out_track_id = replier.create_and_deliver_card(self.template_id, {
                "reportId": "R-SDK", "project": "智慧工厂MES", "week": "2026-W15", "summary": "**本周完成**",
                "docName": "周报.docx", "docUrl": "", "ackStatus": "", "ackLabel": "待确认", "ackColor": "orange",
                "ackBy": "", "question": ""}, support_forward=False)
            emit(kind="card_sent", outTrackId=out_track_id)
        return AckMessage.STATUS_OK, "OK"


class CardButtons(dingtalk_stream.CallbackHandler):
    async def process(self, callback: dingtalk_stream.CallbackMessage):
        message = CardCallbackMessage.from_dict(callback.data)
        action = message.content["cardPrivateData"]["actionIds"][0]
        emit(kind="card_callback", messageId=callback.headers.message_id, outTrackId=message.card_instance_id,
             corpId=message.corp_id, userId=message.user_id, action=action, extension=message.extension,
             params=message.content["cardPrivateData"]["params"])
        # The second element becomes the ACK's {"response": …}.
        return AckMessage.STATUS_OK, {
            "cardUpdateOptions": {"updateCardDataByKey": True},
            "cardData": {"cardParamMap": {"ackStatus": "acked", "ackLabel": "已确认", "ackColor": "green",
                                          "ackBy": message.user_id}}}


def main() -> None:
    client_id, client_secret, template_id = sys.argv[1], sys.argv[2], sys.argv[3]
    client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(client_id, client_secret))
    client.register_callback_handler(dingtalk_stream.ChatbotMessage.TOPIC, Chat(template_id))
    client.register_callback_handler(dingtalk_stream.CallbackHandler.TOPIC_CARD_CALLBACK, CardButtons())
    emit(kind="ready")
    asyncio.run(client.start())


if __name__ == "__main__":
    main()
