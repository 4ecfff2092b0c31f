"""Configuration: config.toml -> a validated, immutable model, passed down from the app lifecycle.

Nothing here is created at import. ``load_config`` is the only entry point; a wrong or missing key raises
``ConfigError`` whose message is one line naming the key and what is wrong, so the start fails legibly.
Secrets may come from the environment (``DINGPM_CLIENT_ID``, ``DINGPM_CLIENT_SECRET``, ``DINGPM_DATABASE_URL``)
so that the TOML file can be committed to a deployment repository without them.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_CONFIG_PATH = Path("config.toml")
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "your-app-secret", "xxx", "secret"})
SECRET_FIELDS = frozenset({"client_secret", "secret", "webhook", "session_secret"})
ENV_OVERRIDES: Mapping[str, tuple[str, str]] = {
    "DINGPM_CLIENT_ID": ("dingtalk", "client_id"),
    "DINGPM_CLIENT_SECRET": ("dingtalk", "client_secret"),
    "DINGPM_DATABASE_URL": ("database", "url"),
    "DINGPM_DASHBOARD_SECRET": ("dashboard", "session_secret"),
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(Exception):
    """A configuration problem, worded as one line for the operator."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DingTalkConfig(_Section):
    client_id: str = Field(min_length=1, description="AppKey / clientId of the internal app")
    client_secret: str = Field(min_length=1, description="AppSecret / clientSecret")
    robot_code: str = ""  # the robot's code; equals the AppKey for an internal-app robot
    corp_id: str = ""
    agent_id: int = 0
    api_base_url: str = "https://api.dingtalk.com"
    oapi_base_url: str = "https://oapi.dingtalk.com"

    @field_validator("api_base_url", "oapi_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"应为 http(s):// 开头的地址，实际为 {value!r}")
        return value.rstrip("/")

    @property
    def effective_robot_code(self) -> str:
        return self.robot_code or self.client_id


class ApprovalsConfig(_Section):
    # auto: find forms by name or create them; configured: only use the codes below; off: no OA approvals
    mode: Literal["auto", "configured", "off"] = "auto"
    process_codes: dict[Literal["立项", "进度变更", "变更申请"], str] = Field(default_factory=dict)
    approvers: list[str] = Field(default_factory=list)  # userIds, approving in this order; empty = leaders
    reconcile_after_minutes: int = Field(default=30, ge=1)


class OrganizationConfig(_Section):
    leaders: list[str] = Field(default_factory=list)  # userIds receiving the digest and escalations
    project_admins: list[str] = Field(default_factory=list)  # 项目管理员: archive keepers
    timezone: str = "Asia/Shanghai"
    company_name: str = Field(default="", max_length=100)  # 实施方: the header of client reports and forms

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"未知时区 {value!r}，例如 Asia/Shanghai") from None
        return value


class ScheduleConfig(_Section):
    weekly_report_day: str = "fri"
    weekly_report_time: time = time(17, 0)
    leaders_digest_day: str = "mon"
    leaders_digest_time: time = time(9, 0)
    reminder_time: time = time(9, 30)
    escalate_to_pm_after_days: int = Field(default=2, ge=1)
    escalate_to_leaders_after_days: int = Field(default=5, ge=1)
    # Render every due project's weekly report this many minutes before weekly_report_time, so the push is bounded by
    # the rate limit rather than by rendering; 0 renders at the push. At most a day ahead: the data must stay current.
    weekly_report_prerender_minutes: int = Field(default=60, ge=0, le=24 * 60)

    @field_validator("weekly_report_day", "leaders_digest_day")
    @classmethod
    def _weekday(cls, value: str) -> str:
        value = value.strip().lower()[:3]
        if value not in WEEKDAYS:
            raise ValueError(f"应为 {'/'.join(WEEKDAYS)} 之一")
        return value

    @field_validator("weekly_report_time", "leaders_digest_time", "reminder_time", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError(f"应为 HH:MM 格式（如 17:00），实际为 {value!r}")
        return value

    @property
    def weekly_prerender_at(self) -> tuple[str, time]:
        """Weekday and local time of the weekly pre-render: ``weekly_report_prerender_minutes`` before the push, on the
        day before when that crosses midnight. Wall-clock arithmetic (the configured zones of interest keep no DST)."""
        day = WEEKDAYS.index(self.weekly_report_day)
        fire = datetime.combine(date(2024, 1, 1) + timedelta(days=day), self.weekly_report_time)  # 2024-01-01: Monday
        fire -= timedelta(minutes=self.weekly_report_prerender_minutes)
        return WEEKDAYS[fire.weekday()], fire.time()

    @model_validator(mode="after")
    def _escalation_order(self) -> "ScheduleConfig":
        if self.escalate_to_leaders_after_days < self.escalate_to_pm_after_days:
            raise ValueError("escalate_to_leaders_after_days 不能小于 escalate_to_pm_after_days")
        return self


class CalendarConfig(_Section):
    extra_holidays: list[date] = Field(default_factory=list)  # company holidays (and beyond the package's data)
    extra_workdays: list[date] = Field(default_factory=list)  # company make-up workdays (调休)
    data_file: Path | None = None  # TOML with holidays = [...], workdays = [...]
    # How often each process looks for a schedule imported with ``dingpm calendar import`` (kept in the database).
    refresh_seconds: int = Field(default=300, ge=5, le=86400)


class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///data/dingpm.db"

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg|mysql\+asyncmy|mysql\+aiomysql)://", value):
            raise ValueError(
                "需要异步驱动的 SQLAlchemy URL，例如 sqlite+aiosqlite:///data/dingpm.db、"
                "postgresql+asyncpg://user@host/db 或 mysql+asyncmy://user@host/db"
            )
        return value


class StorageConfig(_Section):
    files_dir: Path = Path("data/files")  # submitted deliverables, generated reports, archives
    templates_dir: Path | None = None  # a company's own process templates (*.toml)


BURSTS = (1, 2, 4, 5, 10)  # pacing.burst: the divisors of DingTalk's 20 calls/s below it


class PacingConfig(_Section):
    # Per API, below DingTalk's 20 calls/s per app per API (a 1-s window counted where the calls arrive): at most
    # ``burst`` calls start in any burst/calls_per_second seconds (5 in 0.28 s), so 20 in any 1.11 s; 21 arrivals in
    # one platform window need a call delayed 111 ms more than a later one (a GC pause, network jitter), as with calls
    # spaced 1/18 s apart (``burst = 1``), but a call to a quiet API never waits (``bot.dingtalk.pacing``).
    calls_per_second: float = Field(default=18, gt=0)  # sustained; a second may see up to 20 at the defaults
    burst: int = Field(default=5, ge=1)
    http_timeout_seconds: float = Field(default=10, gt=0)
    max_concurrent_messages: int = Field(default=32, ge=1)
    outbox_max_attempts: int = Field(default=8, ge=1)
    outbox_batch: int = Field(default=20, ge=1)

    @field_validator("burst")
    @classmethod
    def _burst_divides_the_limit(cls, value: int) -> int:
        # 21 starts span floor(20 / burst) windows of burst/calls_per_second: only a divisor of 20 (and so of the
        # larger editions' 40 and 60) keeps the 111 ms margin; at 18/s a burst of 3 or 6 leaves none, and 7, 8 or
        # 11-17 let 21 calls into one second without any delay at all.
        if value not in BURSTS:
            raise ValueError(f"应为 {'、'.join(map(str, BURSTS))} 之一（20 的约数，保证任一秒不超过钉钉的限制），例如 5")
        return value


class ServerConfig(_Section):
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8089, ge=0, le=65535)  # 0 = chosen by the OS
    # Where people reach this server from outside (a reverse proxy in front of health_host:health_port): the base of
    # the signed download links a client group's custom robot posts. Empty: http://health_host:health_port.
    public_base_url: str = ""
    download_link_hours: int = Field(default=7 * 24, ge=1, le=90 * 24)  # how long such a link works

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"应为 http(s):// 开头的地址，实际为 {value!r}")
        return value.rstrip("/")


class DirectoryConfig(_Section):
    # The contacts walk (departments, employees, members of client groups) runs every day at this time, and at start
    # when today's has not run yet; only the scheduler's leader runs it.
    sync: bool = True
    sync_time: time = time(3, 0)

    @field_validator("sync_time", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError(f"应为 HH:MM 格式（如 03:00），实际为 {value!r}")
        return value


class ClientRobotConfig(_Section):
    """A client group's custom robot, given in the config (``dingpm client-robot`` stores one in the database)."""

    project: str = Field(min_length=1)  # the project's code, XM-2026-001
    webhook: str = Field(min_length=1, repr=False)  # carries the robot's access token: never printed
    secret: str = Field(min_length=1, repr=False)  # SEC…: signs every send

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+/\S*access_token=", value):
            raise ValueError("应为自定义机器人的 webhook 地址（含 access_token=）")
        return value

    @field_validator("project")
    @classmethod
    def _code(cls, value: str) -> str:
        return value.strip().upper()


class DashboardConfig(_Section):
    """项目看板: the H5 workbench app served by the bot process, behind the company's HTTPS reverse proxy."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)  # 0 = chosen by the OS
    # What browsers see (https://pm.example.com/board); its path prefixes every route. Empty: http://host:port.
    public_base_url: str = ""
    cookie_secure: bool = True  # the session cookie is sent over HTTPS only (the proxy terminates TLS)
    session_hours: float = Field(default=8, gt=0, le=24 * 30)
    session_secret: str = ""  # signs the session cookie; empty: derived from dingtalk.client_secret
    # DingTalk's JSAPI (dingtalk.open.js), the one script not shipped with dingpm; the sandbox points at its stand-in.
    jsapi_url: str = Field(default="https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js",
                           min_length=1)
    page_size: int = Field(default=50, ge=10, le=200)  # projects per portfolio page
    # Only ``dingpm sandbox`` sets it: ?user=<userId> picks who is looking, without 免登. Never in production.
    sandbox_identity: bool = False

    @field_validator("public_base_url", "jsapi_url")
    @classmethod
    def _web_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError(f"应为 http(s):// 开头的完整地址，实际为 {value!r}")
        return value

    @property
    def base_path(self) -> str:
        """The path every route lives under ("" or "/board"), from ``public_base_url``."""
        path = self.public_base_url.split("://", 1)[-1].partition("/")[2].split("?")[0].strip("/")
        return f"/{path}" if path else ""


class CardsConfig(_Section):
    """互动卡片 (interactive cards): the templates built in DingTalk's card builder, by the names of the shipped
    definitions (``bot/cards/*.json``). Off, or a card without a template id: the markdown / actionCard messages."""

    enabled: bool = False
    # The environment whose ``templateIds`` entry of each definition is used; ``template_ids`` overrides per card.
    template_env: str = "production"
    template_ids: dict[str, str] = Field(default_factory=dict)  # card name -> template id (xxx.schema)
    definitions_dir: Path | None = None  # None: the definitions shipped in bot/cards
    pin_days: int = Field(default=30, ge=1, le=365)  # a pinned status card's expiry, renewed by every re-pin
    # A burst of changes within this window makes one status-card update.
    coalesce_seconds: float = Field(default=1.0, ge=0, le=60)
    # The client has not acknowledged a weekly report after this many working days: the PM is reminded.
    ack_remind_after_days: int = Field(default=2, ge=1, le=20)


class TodoConfig(_Section):
    """DingTalk 待办 for deliverable owners (``handlers.todos``)."""

    enabled: bool = True
    # A deliverable of the current phase gets its owner's 待办 this many working days before it is due (and keeps it
    # while overdue).
    window_working_days: int = Field(default=5, ge=0, le=60)
    due_time: time = time(18, 0)  # the 待办's due time on the deliverable's due date
    # The daily run: rolls the window forward and checks every open 待办 against DingTalk.
    reconcile_time: time = time(6, 30)
    # Where a 待办 opens when the 看板 is off: the chat with the bot (DingTalk's link to the robot's 单聊).
    chat_url: str = "dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fapplink.dingtalk.com%2Fclient%2Fchat"

    @field_validator("due_time", "reconcile_time", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError(f"应为 HH:MM 格式（如 18:00），实际为 {value!r}")
        return value


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Config(_Section):
    dingtalk: DingTalkConfig
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    organization: OrganizationConfig = Field(default_factory=OrganizationConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    pacing: PacingConfig = Field(default_factory=PacingConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    cards: CardsConfig = Field(default_factory=CardsConfig)
    directory: DirectoryConfig = Field(default_factory=DirectoryConfig)
    todo: TodoConfig = Field(default_factory=TodoConfig)
    client_robots: list[ClientRobotConfig] = Field(default_factory=list)

    def client_robot(self, project_code: str) -> ClientRobotConfig | None:
        return next((r for r in self.client_robots if r.project == project_code.upper()), None)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.organization.timezone)


_MESSAGES = {
    "missing": "缺少必填项",
    "extra_forbidden": "未知配置项（请检查拼写，参见 config.example.toml）",
    "string_too_short": "不能为空",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "date_from_datetime_parsing": "应为日期，如 2026-10-01",
    "date_parsing": "应为日期，如 2026-10-01",
    "date_type": "应为日期，如 2026-10-01",
    "time_parsing": "应为时间，如 17:00",
    "list_type": "应为列表，如 [\"a\", \"b\"]",
    "dict_type": "应为表（[section]）",
    "model_type": "应为表（[section]）",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "必须不小于 {ge}",
    "less_than_equal": "必须不大于 {le}",
}


def _one_line(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(根)"
    kind = first["type"]
    if kind == "value_error":
        what = str(first.get("ctx", {}).get("error", first["msg"]))
    elif kind == "literal_error":
        what = f"应为 {first.get('ctx', {}).get('expected', '')} 之一"
    else:
        what = _MESSAGES.get(kind, first["msg"]).format(**first.get("ctx", {}))
    return f"配置错误（{source}）: {key}: {what}"


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for env_name, (section, key) in ENV_OVERRIDES.items():
        if environ.get(env_name):
            merged.setdefault(section, {})
            if isinstance(merged[section], dict):
                merged[section][key] = environ[env_name]
    return merged


def parse_config(raw: dict[str, Any], *, source: str = "config", environ: Mapping[str, str] | None = None,
                 require_real_secret: bool = True) -> Config:
    """Validate a decoded TOML document (plus environment overrides) into a ``Config``."""
    merged = _apply_env(raw, os.environ if environ is None else environ)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, source)) from None
    if require_real_secret and config.dingtalk.client_secret.strip().lower() in PLACEHOLDER_SECRETS:
        raise ConfigError(
            f"配置错误（{source}）: dingtalk.client_secret: 仍是占位值，请填入应用的 AppSecret 或设置环境变量 DINGPM_CLIENT_SECRET"
        )
    return config


def load_config(path: Path | str = DEFAULT_CONFIG_PATH, *, environ: Mapping[str, str] | None = None,
                require_real_secret: bool = True) -> Config:
    """Read and validate a TOML config file."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"配置错误: 找不到配置文件 {path}（可复制 config.example.toml 为 config.toml 后修改）") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"配置错误（{path}）: TOML 语法错误: {exc}") from None
    return parse_config(raw, source=str(path), environ=environ, require_real_secret=require_real_secret)


def mask_secret(value: str) -> str:
    if not value:
        return ""
    return value[:2] + "*" * 6 if len(value) > 6 else "*" * 6


def _masked_url(url: str) -> str:
    # postgresql+asyncpg://user:password@host/db -> password hidden
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1******@", url)


def effective_config_text(config: Config) -> str:
    """The effective configuration as TOML-like text with every secret masked (``dingpm check-config``)."""
    lines: list[str] = []
    for section_name, section in config.model_dump(mode="json").items():
        tables = section if isinstance(section, list) else [section]
        for table in tables:
            lines.append(f"[[{section_name}]]" if isinstance(section, list) else f"[{section_name}]")
            for key, value in table.items():
                if key in SECRET_FIELDS:
                    value = mask_secret(value)
                elif section_name == "database" and key == "url":
                    value = _masked_url(value)
                lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if value is None:
        return '""  # 未设置'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, str) and re.fullmatch(r"\d\d:\d\d:00", value):
        return f'"{value[:5]}"'  # clock times as written in the file
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
