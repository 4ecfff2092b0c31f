"""The app lifecycle without DingTalk: schema handling at start, handler modules, /healthz, the outbox CLI, and
secrets kept out of the logs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from bot.app import App, KernelOptions, StartupError
from bot.cli import main
from bot.config import parse_config
from bot.feature import Feature
from bot.logging_setup import SecretFilter, secrets_of
from bot.outbox import enqueue, group_target
from bot.router import Router
from handlers import help
from handlers.features import FEATURES
from storage.db import Database
from storage.models import OutboxState
from storage.repo import mark_dead

pytestmark = pytest.mark.timeout(60)

NO_STREAM = KernelOptions(connect_stream=False, scheduler_sweep_seconds=None)
# The kernel alone: production handler modules bring jobs that talk to DingTalk at start.
KERNEL_ONLY = (help.feature,)
NOWHERE = "http://127.0.0.1:9"  # nothing listens: a test must never reach the real DingTalk


def make_config(tmp_path: Path, url: str, **server):
    return parse_config({"dingtalk": {"client_id": "ding-test", "client_secret": "s3cret-value-123",
                                      "api_base_url": NOWHERE, "oapi_base_url": NOWHERE},
                         "database": {"url": url}, "storage": {"files_dir": str(tmp_path / "files")},
                         "server": {"health_port": 0, **server}}, environ={}, require_real_secret=False)


async def test_an_empty_sqlite_file_is_migrated_at_start_and_health_answers(tmp_path):
    app = App(make_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'bot.db'}"), options=NO_STREAM,
              features=KERNEL_ONLY)
    async with app:
        assert "帮助" in {c.name for c in app.dispatcher.commands.commands}
        async with aiohttp.ClientSession() as http, http.get(app.health_server.url) as resp:
            report = await resp.json()
        assert resp.status == 200 and report["database"]["ok"] and report["stream"] is None
        assert report["scheduler"] == {"leader": True, "running": True, "jobs": []}
        assert report["outbox"]["pending"] == 0 and report["inbox"]["backlog"] == 0
    await app.stop()  # twice is fine


async def test_features_bring_their_router_and_event_handlers(tmp_path):
    router = Router("feature", title="功能")

    @router.command("试试", summary="试一下", examples=["试试"])
    async def try_it(incoming, ctx):
        return "好"

    seen = []
    feature = Feature("feature", router=router, on_event=(seen.append,))
    app = App(make_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"), options=NO_STREAM,
              features=(*KERNEL_ONLY, feature))
    async with app:
        assert {"帮助", "试试"} <= {c.name for c in app.dispatcher.commands.commands}
        assert app.inbox.event_handlers == (seen.append,)


def test_every_production_handler_module_loads_without_clashes(tmp_path):
    app = App(make_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"))  # imports every feature
    assert app.features == FEATURES
    from bot.router import CommandTable

    # refuses a name or alias used twice across modules
    CommandTable().include(*(f.router for f in app.features if f.router is not None))


def test_loading_the_handler_modules_leaves_the_rendering_libraries_to_the_render_threads():
    # App() imports every handler module, on the caller's event loop in tests; python-docx, matplotlib and
    # openpyxl take long enough to import to block it, so only the render functions (run in threads) load them.
    probe = ("import sys; from handlers.features import FEATURES; "
             "print(sorted(m for m in ('docx', 'matplotlib', 'openpyxl', 'PIL') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def postgres_server() -> str | None:
    for raw in os.environ.get("DINGPM_TEST_DATABASE_URLS", "").split(","):
        if raw.strip().startswith("postgresql"):
            return raw.strip()
    return None


async def test_a_server_database_behind_the_code_stops_the_start_with_one_line(tmp_path):
    url = postgres_server()
    if url is None:
        pytest.skip("needs PostgreSQL in DINGPM_TEST_DATABASE_URLS")
    import asyncpg

    server = make_url(url)
    name = f"dingpm_app_{uuid.uuid4().hex[:8]}"
    admin_dsn = server.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        app = App(make_config(tmp_path, server.set(database=name).render_as_string(hide_password=False)),
                  options=NO_STREAM, features=KERNEL_ONLY)
        with pytest.raises(StartupError) as raised:
            await app.start()
        assert "dingpm db upgrade" in str(raised.value) and "\n" not in str(raised.value)
        await app.stop()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_an_unreachable_server_database_is_named_in_the_error(tmp_path):
    app = App(make_config(tmp_path, "postgresql+asyncpg://dingpm:pw@127.0.0.1:1/dingpm"), options=NO_STREAM,
              features=KERNEL_ONLY)
    with pytest.raises(StartupError, match="无法连接数据库"):
        await app.start()


def test_dingpm_outbox_lists_dead_letters_and_replays_them(tmp_path, capsys):
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"

    async def prepare() -> None:
        from storage.migrations import upgrade

        await upgrade(url)
        database = Database(url)
        try:
            async with database.write() as session:
                await enqueue(session, "weekly:XM-2026-001:2026-W10", group_target("cid-1"), "周报")
            async with database.write() as session:
                await mark_dead(session=session, outbox_id=1, error="InvalidRequest: invalid.openConversationId")
        finally:
            await database.close()

    asyncio.run(prepare())
    assert main(["outbox", "--url", url]) == 0
    listing = capsys.readouterr().out
    assert "死信 1" in listing and "weekly:XM-2026-001:2026-W10" in listing and "invalid.openConversationId" in listing
    assert main(["outbox", "--url", url, "replay"]) == 2  # neither ids nor --all
    assert main(["outbox", "--url", url, "replay", "--all"]) == 0
    assert "已重新排队 1 条" in capsys.readouterr().out

    async def state() -> OutboxState:
        from storage.repo.kernel import get_outbox

        database = Database(url)
        try:
            async with database.read() as session:
                return (await get_outbox(session=session, outbox_id=1)).state
        finally:
            await database.close()

    assert asyncio.run(state()) == OutboxState.PENDING


def test_secrets_never_reach_a_log_line(tmp_path):
    config = make_config(tmp_path, "postgresql+asyncpg://dingpm:db-pass-42@127.0.0.1/dingpm")
    scrub = SecretFilter(secrets_of(config))
    record = logging.LogRecord("x", logging.ERROR, __file__, 1,
                               "token %s at http://h/robot/sendBySession?session=abc123&x=1 pw=%s secret=%s",
                               ("x-acs-dingtalk-access-token: tok-999", "db-pass-42", "s3cret-value-123"), None)
    scrub.filter(record)
    text = record.getMessage()
    for secret in ("tok-999", "abc123", "db-pass-42", "s3cret-value-123"):
        assert secret not in text


@pytest.mark.parametrize(
    "argv",
    [
        ["check-config"], ["run"], ["db", "upgrade"], ["outbox"], ["outbox", "list"], ["outbox", "replay", "--all"],
        ["archive", "XM-2026-001"], ["setup-approvals"], ["calendar", "show", "2027"], ["calendar", "import", "a.csv"],
    ],
)
def test_the_config_option_goes_before_or_after_any_sub_command(argv: list[str]) -> None:
    from bot.cli import _parser

    parser = _parser()
    assert parser.parse_args(["-c", "before.toml", *argv]).config == Path("before.toml")
    assert parser.parse_args([*argv, "-c", "after.toml"]).config == Path("after.toml")
    assert parser.parse_args([*argv, "--config", "after.toml"]).config == Path("after.toml")
    assert parser.parse_args(argv).config == Path("config.toml")


def test_check_config_with_the_option_after_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    config = tmp_path / "prod.toml"
    example = (Path(__file__).parents[2] / "config.example.toml").read_text(encoding="utf-8")
    config.write_text(example, encoding="utf-8")
    assert main(["check-config", "-c", str(config)]) == 2  # the example's placeholder secret is refused...
    assert f"配置错误（{config}）" in capsys.readouterr().err  # ...naming the file given after the sub-command
