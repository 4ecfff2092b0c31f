"""Custom robots against the emulator's signed ``/robot/send``: the signature DingTalk checks, our pacing asking the
outbox to come back later instead of waiting minutes, the 20-a-minute throttle (410100) pushing every sender of
the robot back, refusals an operator must fix (310000, 300005) worded for them and never carrying a credential;
and the download links: valid as signed, refused when altered or expired, never outside the generated reports."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from bot.config import effective_config_text, parse_config
from bot.dingtalk.custom_robot import (
    PACED_HERE,
    CustomRobot,
    CustomRobotRejected,
    CustomRobotSender,
    sign,
)
from bot.dingtalk.errors import Throttled
from bot.dingtalk.pacing import Pacer
from bot.downloads import DownloadLinks
from sandbox.config import EmulatorConfig
from sandbox.custom_robots import sign as emulator_sign

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("loop_watch")]
CLIENT = "【智慧工厂MES项目】客户沟通群"
BODY = {"msgtype": "markdown", "markdown": {"title": "周报", "text": "本周周报"}}


@pytest.fixture
def sandbox_config() -> EmulatorConfig:
    return EmulatorConfig.for_tests(custom_robot_per_minute=3)


async def robot_of(sandbox, key: str = "XM-2026-001") -> CustomRobot:
    added = await sandbox.add_custom_robot(CLIENT, "项目周报")
    return CustomRobot(key, added.webhook, added.secret)


def test_the_signature_is_the_documented_one() -> None:
    # P1 §10: Base64(HmacSHA256(secret, timestamp + "\n" + secret)), URL-encoded; the emulator checks it the same way.
    assert sign("SECabc", 1700000000000) == emulator_sign("SECabc", 1700000000000).replace("+", "%2B").replace(
        "/", "%2F").replace("=", "%3D")
    assert "secret" not in repr(CustomRobot("XM-1", "https://x/robot/send?access_token=t0ken", "SECsecret"))
    assert "t0ken" not in repr(CustomRobot("XM-1", "https://x/robot/send?access_token=t0ken", "SECsecret"))


async def test_a_signed_send_posts_as_the_robot(sandbox, client) -> None:
    sender = CustomRobotSender(client)
    await sender.send(await robot_of(sandbox), BODY)
    [message] = [m for m in sandbox.sent(CLIENT) if m.via == "custom_robot"]
    assert message.msgtype == "markdown" and message.text == "本周周报"


async def test_a_wrong_secret_or_a_removed_robot_is_for_the_operator(sandbox, client) -> None:
    robot = await robot_of(sandbox)
    sender = CustomRobotSender(client)
    with pytest.raises(CustomRobotRejected) as wrong:
        await sender.send(CustomRobot(robot.key, robot.webhook, "SECnot-the-one"), BODY)
    assert wrong.value.code == "310000" and "加签密钥" in wrong.value.message and not wrong.value.retryable
    removed = await sandbox.call(lambda: next(iter(sandbox.emulator.custom_robots.values())))
    await sandbox.remove_custom_robot(removed.robot_id)
    with pytest.raises(CustomRobotRejected) as gone:
        await sender.send(robot, BODY)
    assert gone.value.code == "300005" and "dingpm client-robot set XM-2026-001" in gone.value.message
    for error in (wrong.value, gone.value):
        assert removed.token not in str(error) and removed.secret not in str(error)


async def test_the_throttle_pushes_every_sender_of_the_robot_back(sandbox, client) -> None:
    robot = await robot_of(sandbox)
    # Paced far faster than this emulator's robot allows (3 a minute).
    sender = CustomRobotSender(client, pacer=Pacer(1000.0))
    for _ in range(3):
        await sender.send(robot, BODY)
    with pytest.raises(Throttled) as throttled:
        await sender.send(robot, BODY)
    assert throttled.value.code == "410100" and throttled.value.retry_after == 600
    with pytest.raises(Throttled) as later:  # the next one is not even tried: our pacing says when
        await sender.send(robot, BODY)
    assert later.value.code == PACED_HERE and later.value.retry_after > 500
    assert sandbox.calls("robot.send") == 4


async def test_a_full_minute_is_a_retry_later_not_a_long_wait(sandbox, client) -> None:
    now = [0.0]
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)
        now[0] += seconds

    pacer = Pacer(18 / 60, clock=lambda: now[0], sleep=sleep)
    sender = CustomRobotSender(client, max_wait_seconds=9, pacer=pacer)
    robot = await robot_of(sandbox)
    await sender.send(robot, BODY)
    # Two more reserved meanwhile (other send tasks of the same robot): the next slot is 10 s away.
    pacer.bucket(robot.key).reserve()
    pacer.bucket(robot.key).reserve()
    with pytest.raises(Throttled) as later:
        await sender.send(robot, BODY)
    assert later.value.code == PACED_HERE and later.value.retry_after == pytest.approx(10.0, abs=0.01)
    assert sandbox.calls("robot.send") == 1 and waited == []


def make_links(tmp_path: Path, now: float) -> DownloadLinks:
    config = parse_config({"dingtalk": {"client_id": "id", "client_secret": "a-real-secret"},
                           "storage": {"files_dir": str(tmp_path)},
                           "server": {"public_base_url": "https://pm.example.com/", "download_link_hours": 24}},
                          environ={})
    return DownloadLinks(config, clock=lambda: now)


def test_links_are_signed_expire_and_stay_inside_the_reports(tmp_path: Path) -> None:
    links = make_links(tmp_path, 1_000_000)
    url = links.url(tmp_path / "reports" / "weekly" / "XM-2026-001" / "客户项目周报 第48周.docx")
    assert url.startswith("https://pm.example.com/files/reports/weekly/XM-2026-001/")
    path, query = url.removeprefix("https://pm.example.com/files/").split("?")
    fields = dict(part.split("=") for part in query.split("&"))
    path = unquote(path)
    assert fields["exp"] == str(1_000_000 + 24 * 3600)
    assert links.check(path, fields["exp"], fields["sig"]) == "ok"
    assert links.check(path.replace("001", "002"), fields["exp"], fields["sig"]) == "invalid"
    assert links.check(path, str(int(fields["exp"]) + 1), fields["sig"]) == "invalid"
    assert links.check(path, "soon", fields["sig"]) == "invalid"
    assert make_links(tmp_path, 1_000_000 + 24 * 3600 + 1).check(path, fields["exp"], fields["sig"]) == "expired"
    for outside in (tmp_path / "deliverables" / "合同.pdf", Path("reports/../secrets.txt"), Path("/etc/passwd")):
        with pytest.raises(ValueError):
            links.url(outside)


def test_client_robots_in_the_config_are_never_shown() -> None:
    config = parse_config({"dingtalk": {"client_id": "id", "client_secret": "a-real-secret"}, "client_robots": [
        {"project": "xm-2026-001", "webhook": "https://oapi.dingtalk.com/robot/send?access_token=abcdef123456",
         "secret": "SECabcdef123456"}]}, environ={})
    assert config.client_robot("XM-2026-001") is not None
    shown = effective_config_text(config) + repr(config.client_robots)
    assert "abcdef123456" not in shown and "[[client_robots]]" in effective_config_text(config)
