"""Config: the example file is valid, errors are one line naming the key, secrets never printed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from datetime import date, time
from pathlib import Path

import pytest

from bot.config import ConfigError, effective_config_text, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
SECRET = "s3cret-AppSecret-value"


def example_raw() -> dict:
    return tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))


def test_example_config_is_valid_with_secret_from_environment():
    config = load_config(EXAMPLE, environ={"DINGPM_CLIENT_SECRET": SECRET})
    assert config.dingtalk.client_secret == SECRET
    assert config.organization.timezone == "Asia/Shanghai"
    assert config.schedule.weekly_report_day == "fri"
    assert config.schedule.weekly_report_time == time(17, 0)
    assert config.database.url.startswith("sqlite+aiosqlite:///data/")
    assert config.dingtalk.effective_robot_code == config.dingtalk.client_id


def test_the_weekly_pre_render_runs_its_lead_time_before_the_push_even_across_midnight():
    config = load_config(EXAMPLE, environ={"DINGPM_CLIENT_SECRET": SECRET})
    assert config.schedule.weekly_report_prerender_minutes == 60
    assert config.schedule.weekly_prerender_at == ("fri", time(16, 0))
    raw = example_raw()
    raw["schedule"].update(weekly_report_day="mon", weekly_report_time="00:30", weekly_report_prerender_minutes=90)
    schedule = parse_config(raw, environ={"DINGPM_CLIENT_SECRET": SECRET}).schedule
    assert schedule.weekly_prerender_at == ("sun", time(23, 0))


def test_placeholder_secret_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        load_config(EXAMPLE, environ={})
    assert "dingtalk.client_secret" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("schedule", "weekly_report_time", "25:00", "schedule.weekly_report_time"),
        ("schedule", "weekly_report_day", "someday", "schedule.weekly_report_day"),
        ("organization", "timezone", "Mars/Olympus", "organization.timezone"),
        ("database", "url", "sqlite:///data/dingpm.db", "database.url"),
        ("pacing", "calls_per_second", 0, "pacing.calls_per_second"),
        ("pacing", "burst", 7, "pacing.burst"),  # 21 calls could start within one second at 18/s
        ("dingtalk", "api_base_url", "api.dingtalk.com", "dingtalk.api_base_url"),
        ("approvals", "mode", "sometimes", "approvals.mode"),
        ("schedule", "escalate_to_pm_after_days", "two", "schedule.escalate_to_pm_after_days"),
        ("schedule", "weekly_report_prerender_minutes", -5, "schedule.weekly_report_prerender_minutes"),
        ("schedule", "weekly_report_prerender_minutes", 2000, "schedule.weekly_report_prerender_minutes"),
        ("calendar", "extra_holidays", ["2027-13-01"], "calendar.extra_holidays.0"),
        ("schedule", "typo_key", 1, "schedule.typo_key"),
        ("dashboard", "public_base_url", "pm.example.com/board", "dashboard.public_base_url"),
        ("dashboard", "jsapi_url", "", "dashboard.jsapi_url"),
        ("dashboard", "port", 70000, "dashboard.port"),
        ("dashboard", "page_size", 5, "dashboard.page_size"),
    ],
)
def test_a_wrong_key_stops_with_one_line_naming_it(section, key, value, expected):
    raw = example_raw()
    raw[section][key] = value
    with pytest.raises(ConfigError) as err:
        parse_config(raw, environ={"DINGPM_CLIENT_SECRET": SECRET})
    message = str(err.value)
    assert expected in message
    assert "\n" not in message
    assert message.startswith("配置错误")


def test_missing_required_key_is_named():
    raw = example_raw()
    del raw["dingtalk"]["client_id"]
    with pytest.raises(ConfigError, match=r"dingtalk\.client_id: 缺少必填项"):
        parse_config(raw, environ={"DINGPM_CLIENT_SECRET": SECRET})


def test_escalation_thresholds_must_be_ordered():
    raw = example_raw()
    raw["schedule"]["escalate_to_pm_after_days"] = 5
    raw["schedule"]["escalate_to_leaders_after_days"] = 2
    with pytest.raises(ConfigError, match="escalate_to_leaders_after_days"):
        parse_config(raw, environ={"DINGPM_CLIENT_SECRET": SECRET})


def test_environment_overrides_the_file():
    raw = example_raw()
    env = {"DINGPM_CLIENT_SECRET": SECRET, "DINGPM_CLIENT_ID": "dingOverride",
           "DINGPM_DATABASE_URL": "postgresql+asyncpg://bot:pw@db/dingpm"}
    config = parse_config(raw, environ=env)
    assert config.dingtalk.client_id == "dingOverride"
    assert config.database.url == "postgresql+asyncpg://bot:pw@db/dingpm"


def test_calendar_overrides_are_dates():
    raw = example_raw()
    raw["calendar"]["extra_holidays"] = [date(2027, 2, 8)]
    config = parse_config(raw, environ={"DINGPM_CLIENT_SECRET": SECRET})
    assert config.calendar.extra_holidays == [date(2027, 2, 8)]


def test_effective_config_masks_every_secret():
    raw = example_raw()
    env = {"DINGPM_CLIENT_SECRET": SECRET, "DINGPM_DATABASE_URL": "postgresql+asyncpg://bot:hunter2@db/dingpm"}
    text = effective_config_text(parse_config(raw, environ=env))
    assert SECRET not in text and "hunter2" not in text
    assert "client_secret = \"s3******\"" in text
    assert 'weekly_report_time = "17:00"' in text
    assert "postgresql+asyncpg://bot:******@db/dingpm" in text


def test_the_dashboard_is_off_until_enabled_and_lives_under_its_public_path():
    config = load_config(EXAMPLE, environ={"DINGPM_CLIENT_SECRET": SECRET})
    dashboard = config.dashboard
    assert not dashboard.enabled and dashboard.cookie_secure and not dashboard.sandbox_identity
    assert dashboard.base_path == ""
    raw = example_raw()
    raw["dashboard"].update(enabled=True, public_base_url="https://pm.example.com/board/")
    env = {"DINGPM_CLIENT_SECRET": SECRET, "DINGPM_DASHBOARD_SECRET": "board-signing-key-42"}
    config = parse_config(raw, environ=env)
    assert config.dashboard.base_path == "/board" and config.dashboard.session_secret == "board-signing-key-42"
    text = effective_config_text(config)
    assert "board-signing-key-42" not in text and 'session_secret = "bo******"' in text


def _dingpm(*args: str, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DINGPM_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


def test_check_config_command_prints_masked_config(tmp_path):
    (tmp_path / "config.toml").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    done = _dingpm("check-config", cwd=tmp_path, env_extra={"DINGPM_CLIENT_SECRET": SECRET,
                                                            "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "[dingtalk]" in done.stdout and SECRET not in done.stdout


def test_check_config_command_fails_with_one_line(tmp_path):
    broken = EXAMPLE.read_text(encoding="utf-8").replace('reminder_time = "09:30"', 'reminder_time = "9点半"')
    (tmp_path / "config.toml").write_text(broken, encoding="utf-8")
    done = _dingpm("check-config", cwd=tmp_path, env_extra={"DINGPM_CLIENT_SECRET": SECRET,
                                                            "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "schedule.reminder_time" in lines[0]


def test_bad_toml_syntax_is_one_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[dingtalk\nclient_id = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert "TOML" in str(err.value) and "\n" not in str(err.value)
