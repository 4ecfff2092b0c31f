"""Unit tests of the outbound transport pieces that need no emulator: error classification, retry policy, pacing,
message bodies, token single-flight."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from bot.config import parse_config
from bot.dingtalk import (
    AuthError,
    Button,
    DingTalkClient,
    InvalidRequest,
    IpBanned,
    NetworkError,
    PermissionDenied,
    QuotaExhausted,
    RetryPolicy,
    RobotMessage,
    ServerError,
    SessionWebhookExpired,
    Throttled,
    Timeout,
)
from bot.dingtalk.errors import classify_new_api, classify_old_api
from bot.dingtalk.messages import (
    check_webhook_body_size,
    robot_action_card,
    robot_file,
    robot_markdown,
    robot_message_from_webhook,
    robot_text,
    webhook_body,
)
from bot.dingtalk.pacing import Pacer, SlidingWindow, TokenBucket


def _new(status: int, code: str, message: str = "m") -> bytes:
    return json.dumps({"code": code, "message": message, "requestid": "RID-1"}).encode()


# ---- classification ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, code, cls, retryable", [
    (403, "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi", Throttled, True),
    (403, "Forbidden.AccessDenied.QpsLimitForApi", Throttled, True),
    (403, "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi", Throttled, True),
    (403, "Forbidden.AccessDenied.ApiCountLimitForOrg", QuotaExhausted, False),
    (400, "InvalidAuthentication", AuthError, False),
    (400, "invalidClientIdOrSecret", AuthError, False),
    (403, "Forbidden.AccessDenied.AccessTokenPermissionDenied", PermissionDenied, False),
    (400, "invalidParameter.msgParam.invalid", InvalidRequest, False),
    (400, "invalid.openConversationId", InvalidRequest, False),
    (500, "systemError", ServerError, True),
    (503, "ServiceUnavailable", ServerError, True),
])
def test_new_api_errors_are_classified_by_code(status, code, cls, retryable):
    error = classify_new_api(status, _new(status, code), api="x")
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.code == code and error.http_status == status and error.request_id == "RID-1"


def test_new_api_success_and_token_rejection():
    assert classify_new_api(200, b'{"processQueryKey":"k"}') is None
    assert classify_new_api(200, b"") is None
    rejected = classify_new_api(400, _new(400, "InvalidAuthentication"))
    assert isinstance(rejected, AuthError) and rejected.token_rejected
    bad_secret = classify_new_api(400, _new(400, "invalidClientIdOrSecret"))
    assert isinstance(bad_secret, AuthError) and not bad_secret.token_rejected


@pytest.mark.parametrize("status", [200, 403])
def test_html_body_is_an_ip_ban_with_long_backoff(status):
    error = classify_new_api(status, b"<html><body>denied</body></html>")
    assert isinstance(error, IpBanned) and error.retryable and error.retry_after >= 300
    plain_429 = classify_new_api(429, b"<html>Too Many Requests</html>")
    assert type(plain_429) is Throttled and plain_429.retry_after is None


def test_json_deny_page_is_an_ip_ban():
    body = json.dumps({"status": 1111, "wait": 5, "source": "x5", "punish": "deny"}).encode()
    assert isinstance(classify_new_api(200, body), IpBanned)
    assert isinstance(classify_old_api(body), IpBanned)


def test_html_5xx_page_is_a_server_error_not_a_ban():
    assert isinstance(classify_new_api(502, b"<html>502 Bad Gateway</html>"), ServerError)
    assert isinstance(classify_old_api(b"<html>502</html>", http_status=502), ServerError)


@pytest.mark.parametrize("body, cls, retryable", [
    ({"errcode": 90018, "errmsg": "qps"}, Throttled, True),
    ({"errcode": 90002, "errmsg": "qps"}, Throttled, True),
    ({"errcode": 90020, "errmsg": "quota"}, QuotaExhausted, False),
    ({"errcode": 88, "sub_code": "40014", "errmsg": "auth", "sub_msg": "不合法的access_token"}, AuthError, False),
    ({"errcode": 88, "sub_code": "", "errmsg": "auth timeout"}, ServerError, True),
    ({"errcode": 15, "errmsg": "isp.top-remote-connection-timeout"}, ServerError, True),
    ({"errcode": 40096, "errmsg": "不合法的appKey或appSecret"}, AuthError, False),
    ({"errcode": 300001, "errmsg": "session 不存在"}, SessionWebhookExpired, False),
    ({"errcode": 40005, "errmsg": "invalid file type"}, InvalidRequest, False),
])
def test_old_api_errors_are_classified_by_errcode(body, cls, retryable):
    error = classify_old_api(json.dumps(body).encode())
    assert type(error) is cls
    assert error.retryable is retryable


def test_old_api_success_and_token_rejection():
    assert classify_old_api(b'{"errcode":0,"errmsg":"ok","media_id":"@x"}') is None
    error = classify_old_api({"errcode": 88, "sub_code": "40014"})
    assert isinstance(error, AuthError) and error.token_rejected


def test_robot_throttle_codes_carry_their_wait():
    error = classify_old_api({"errcode": 410100, "errmsg": "send too fast"})
    assert isinstance(error, Throttled) and error.retry_after == 600


def test_error_text_never_contains_a_url_or_token():
    error = Timeout("timeout", "no answer", api="media/upload", maybe_sent=True)
    assert "access_token" not in str(error) and "http" not in str(error)
    assert error.maybe_sent and error.retryable


# ---- retry policy --------------------------------------------------------------------------------------------

def test_full_jitter_backoff_is_bounded_and_grows():
    policy = RetryPolicy(base_delay=0.5, max_delay=8, rng=random.Random(7))
    for attempt in range(8):
        samples = [policy.backoff(attempt) for _ in range(200)]
        cap = min(8, 0.5 * 2 ** attempt)
        assert all(0 <= s <= cap for s in samples)
        assert max(samples) > cap * 0.8  # spread over the whole range (full jitter)


def test_retry_decisions():
    policy = RetryPolicy(max_attempts=3, rng=random.Random(1))
    throttle = Throttled("90018", "qps")
    assert policy.delay_for(throttle, 0) is not None
    assert policy.delay_for(throttle, 2) is None  # attempts exhausted
    assert policy.delay_for(InvalidRequest("x", "bad"), 0) is None  # permanent
    assert policy.delay_for(QuotaExhausted("90020", "quota"), 0) is None
    timeout = Timeout("timeout", "t", maybe_sent=True)
    assert policy.delay_for(timeout, 0, idempotent=True) is not None
    assert policy.delay_for(timeout, 0, idempotent=False) is None  # a send may have been delivered
    refused = NetworkError("connect.failed", "refused", maybe_sent=False)
    assert policy.delay_for(refused, 0, idempotent=False) is not None  # nothing left: safe to resend
    assert policy.delay_for(IpBanned(), 0) is None  # 5 minutes is for the outbox, not an inline sleep
    slow = Throttled("660026", "per minute", retry_after=20)
    assert policy.delay_for(slow, 0) >= 20


# ---- pacing --------------------------------------------------------------------------------------------------

class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_token_bucket_spaces_calls_evenly():
    t = FakeTime()
    bucket = TokenBucket(10, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(5):
        await bucket.acquire()
        starts.append(t.now)
    assert starts == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_bucket_never_exceeds_the_window_limit():
    # With rate r and burst b at most b + r calls fit into any 1-second window.
    t = FakeTime()
    bucket = TokenBucket(15, burst=1, clock=t.clock)
    times = []
    for _ in range(200):
        t.now += bucket.reserve()
        times.append(t.now)
    for i, start in enumerate(times):
        in_window = sum(1 for x in times[i:] if x < start + 1.0)
        assert in_window <= 16 < 20


async def test_pacer_is_fair_first_come_first_served():
    pacer = Pacer(200)
    order: list[int] = []

    async def caller(i: int) -> None:
        await pacer.acquire("robot/groupMessages/send")
        order.append(i)

    await asyncio.gather(*(caller(i) for i in range(20)))
    assert order == list(range(20))
    assert pacer.waits["robot/groupMessages/send"] == 19


async def test_pacer_keeps_apis_apart_and_penalizes_after_throttle():
    t = FakeTime()
    pacer = Pacer(10, clock=t.clock, sleep=t.sleep)
    await pacer.acquire("a")
    await pacer.acquire("b")
    assert t.now == 0.0  # different APIs have different buckets
    pacer.penalize("a", 2.0)
    await pacer.acquire("a")
    assert t.now == pytest.approx(2.0)


async def test_window_lets_a_call_to_a_quiet_api_start_at_once():
    # 18 calls/s in bursts of 5: five calls start together, the sixth when the first is 5/18 s old.
    t = FakeTime()
    pacer = Pacer(18, burst=5, sliding=True, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(6):
        await pacer.acquire("robot/messageFiles/download")
        starts.append(t.now)
    assert starts[:5] == [0.0] * 5 and starts[5] == pytest.approx(5 / 18)
    assert pacer.waits["robot/messageFiles/download"] == 1
    t.now = 10.0  # quiet again: no wait, whatever happened before
    await pacer.acquire("robot/messageFiles/download")
    assert t.now == 10.0


async def test_window_keeps_every_second_within_the_platform_limit():
    t = FakeTime()
    window = SlidingWindow(5, 5 / 18, clock=t.clock, sleep=t.sleep)
    rng = random.Random(7)
    starts = []
    for _ in range(400):
        t.now += rng.choice((0.0, 0.0, 0.01, 0.2, 1.5))  # bursts, a steady trickle and pauses
        await window.acquire()
        starts.append(t.now)

    def most_in(seconds: float) -> int:
        return max(sum(1 for x in starts[i:] if x < first + seconds - 1e-9) for i, first in enumerate(starts))

    assert most_in(5 / 18) <= 5
    assert most_in(1.11) <= 20  # 21 calls in one of DingTalk's seconds would need one delayed by 0.11 s
    # Sustained, it keeps 18 calls/s: 400 calls sent as fast as allowed take 79 windows after the first burst.
    t2 = FakeTime()
    busy = SlidingWindow(5, 5 / 18, clock=t2.clock, sleep=t2.sleep)
    for _ in range(400):
        await busy.acquire()
    assert t2.now == pytest.approx(79 * 5 / 18)


async def test_window_serves_waiters_in_order_and_honours_a_throttle():
    window = SlidingWindow(2, 0.05)
    order: list[int] = []

    async def caller(i: int) -> None:
        await window.acquire()
        order.append(i)

    await asyncio.gather(*(caller(i) for i in range(6)))
    assert order == list(range(6)) and window.waits == 4
    t = FakeTime()
    throttled = SlidingWindow(5, 5 / 18, clock=t.clock, sleep=t.sleep)
    throttled.penalize(2.0)
    await throttled.acquire()
    assert t.now == pytest.approx(2.0)


async def test_window_waiters_keep_their_turn_through_cancels_and_throttles():
    loop = asyncio.get_running_loop()
    now, naps = [0.0], []

    async def sleep(seconds: float) -> None:  # wakes only when the test says so
        nap = loop.create_future()
        naps.append(nap)
        await nap

    def wake() -> None:
        naps.pop(0).set_result(None)

    window = SlidingWindow(1, 1.0, clock=lambda: now[0], sleep=sleep)
    await window.acquire()  # starts at 0: the window is full until 1.0
    first = asyncio.create_task(window.acquire())
    await asyncio.sleep(0)
    gone = asyncio.create_task(window.acquire())
    await asyncio.sleep(0)
    gone.cancel()  # cancelled while it waits for its turn
    await asyncio.sleep(0)
    now[0] = 1.0
    late = asyncio.create_task(window.acquire())
    await asyncio.sleep(0)
    assert not late.done()  # there is room at 1.0, but ``first`` came earlier
    window.penalize(0.5)  # a throttle until 1.5, before ``first`` wakes
    wake()
    await asyncio.sleep(0)
    assert not first.done()  # re-checked after its sleep: still throttled
    now[0] = 1.5
    wake()
    await first
    assert not late.done() and window.peek() == pytest.approx(1.0 + 1.0)  # full until 2.5, one caller waiting
    now[0] = 2.5
    wake()
    await late
    assert gone.cancelled() and window.peek() == pytest.approx(1.0)  # nobody waiting any more
    assert window.waits == 3


# ---- message bodies ------------------------------------------------------------------------------------------

def test_robot_and_webhook_bodies():
    text = robot_text("你好")
    assert text == RobotMessage("sampleText", {"content": "你好"})
    assert json.loads(text.msg_param()) == {"content": "你好"}
    body = webhook_body(text, at_user_ids=["u1"])
    assert body == {"msgtype": "text", "text": {"content": "你好 @u1"},
                    "at": {"atUserIds": ["u1"], "atMobiles": [], "isAtAll": False}}
    md = webhook_body(robot_markdown("周报", "## 本周"))
    assert md["msgtype"] == "markdown" and md["markdown"] == {"title": "周报", "text": "## 本周"}
    card = robot_action_card("t", "x", [Button("A", "https://a"), Button("B", "https://b")])
    assert card.msg_key == "sampleActionCard2"
    assert card.params["actionTitle2"] == "B" and card.params["actionURL1"] == "https://a"
    wh = webhook_body(card)
    assert wh["actionCard"]["btns"] == [{"title": "A", "actionURL": "https://a"},
                                        {"title": "B", "actionURL": "https://b"}]
    single = robot_action_card("t", "x", [Button("查看", "https://c")])
    assert single.msg_key == "sampleActionCard" and webhook_body(single)["actionCard"]["singleURL"] == "https://c"


def test_files_and_images_have_no_webhook_form_and_round_trip():
    assert webhook_body(robot_file("@m", "周报.docx")) is None
    assert robot_file("@m", "周报.docx").params == {"mediaId": "@m", "fileName": "周报.docx", "fileType": "docx"}
    with pytest.raises(InvalidRequest):
        robot_file("@m", "notes.txt")
    for message in (robot_text("hi"), robot_markdown("t", "x"),
                    robot_action_card("t", "x", [Button("A", "u"), Button("B", "v"), Button("C", "w")])):
        assert robot_message_from_webhook(webhook_body(message)) == message


def test_size_limits_are_checked_before_sending():
    with pytest.raises(InvalidRequest):
        robot_text("字" * 6000).msg_param()  # 18 000 bytes of UTF-8
    with pytest.raises(InvalidRequest):
        check_webhook_body_size(webhook_body(robot_text("x" * 20_001)))


# ---- token single-flight (the fetch itself is tested against the emulator) ------------------------------------

def _config():
    return parse_config({"dingtalk": {"client_id": "ding-app", "client_secret": "s3cret-value"}}, environ={})


async def test_concurrent_callers_share_one_token_fetch():
    now = [1000.0]
    client = DingTalkClient(_config(), clock=lambda: now[0])
    fetches = 0

    async def fake_call(api, method, url, **kw):
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.01)
        return {"accessToken": f"tok{fetches}", "expireIn": 7200}

    client._call = fake_call  # type: ignore[method-assign]
    tokens = await asyncio.gather(*(client.access_token() for _ in range(50)))
    assert set(tokens) == {"tok1"} and fetches == 1
    now[0] += 7200 - 301  # still 1 s before the 5-minute refresh margin
    assert await client.access_token() == "tok1"
    now[0] += 2  # inside the margin: refreshed ahead of expiry
    assert await client.access_token() == "tok2" and fetches == 2
    client.invalidate_token("some-older-token")  # a stale rejection does not drop the fresh token
    assert await client.access_token() == "tok2"
    client.invalidate_token("tok2")
    assert await client.access_token() == "tok3"


def test_reply_values_map_to_both_apis():
    from domain import replies
    from bot.dingtalk.messages import robot_message_for_reply, webhook_body_for_reply

    assert robot_message_for_reply("你好") == robot_text("你好")
    md = replies.Markdown("周报", "## 本周", at_user_ids=("liming",))
    assert robot_message_for_reply(md) == robot_markdown("周报", "## 本周")  # the OpenAPI cannot @
    assert webhook_body_for_reply(md)["at"]["atUserIds"] == ["liming"]
    card = replies.ActionCard("审批", "请处理", (replies.Button("同意", "u1"), replies.Button("拒绝", "u2")),
                              horizontal=True)
    assert robot_message_for_reply(card).msg_key == "sampleActionCard6"
    assert webhook_body_for_reply(card)["actionCard"]["btnOrientation"] == "1"
    image = replies.Image(media_id="@img")
    assert robot_message_for_reply(image).params == {"photoURL": "@img"}
    assert webhook_body_for_reply(image) is None
    doc = replies.File("周报.docx", data=b"x")
    assert robot_message_for_reply(doc, media_id="@f").params["fileType"] == "docx"
    with pytest.raises(InvalidRequest):
        robot_message_for_reply(doc)  # not uploaded yet
