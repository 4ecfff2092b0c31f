"""``dingpm sandbox``: the local DingTalk emulator (with its web chat page) and the bot, in one command.

The emulator runs in its own thread with its own event loop (as in the tests: the two must never share a loop), the
bot runs in the main loop exactly as ``dingpm run`` would, against the emulator's URL, on an SQLite file in the data
directory. Nothing here needs a config file or a DingTalk account. Ctrl-C (or SIGTERM) stops the bot gracefully,
then the emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from bot.app import App, StartupError
from bot.config import Config, parse_config
from bot.logging_setup import setup_logging

log = logging.getLogger("dingpm.sandbox")

CONNECT_TIMEOUT_SECONDS = 15.0


def sandbox_config(sb: Any, data_dir: Path) -> Config:
    """The bot's config for the emulator's world: its app's credentials, its URL, files under ``data_dir``."""
    world = sb.world
    management = {d.dept_id for d in world.departments.values() if "管理层" in d.name}
    leaders = [u.user_id for u in world.users.values() if set(u.department_ids) & management and not u.external]
    admins = [u.user_id for u in world.users.values() if u.title == "项目管理员"]
    raw = {
        "dingtalk": {"client_id": sb.client_id, "client_secret": sb.client_secret, "robot_code": sb.robot_code,
                     "corp_id": world.corp_id, "agent_id": sb.app.agent_id,
                     "api_base_url": sb.base_url, "oapi_base_url": sb.base_url},
        "organization": {"leaders": leaders, "project_admins": admins, "company_name": world.corp_name},
        "database": {"url": f"sqlite+aiosqlite:///{(data_dir / 'dingpm.db').resolve()}"},
        "storage": {"files_dir": str((data_dir / "files").resolve())},
        "server": {"health_host": "127.0.0.1", "health_port": 0},  # 0: never clash with a real bot on 8089
        # The 看板 on a free port, over plain http, signing in through the emulator's JSAPI stand-in; only here may
        # ?user=<userId> pick who is looking.
        "dashboard": {"enabled": True, "host": "127.0.0.1", "port": 0, "cookie_secure": False,
                      "jsapi_url": sb.jsapi_url, "sandbox_identity": True},
        # The cards the emulator loaded from the bot's own definitions (bot/cards), under their sandbox ids.
        "cards": {"enabled": True, "template_env": "sandbox"},
    }
    return parse_config(raw, source="dingpm sandbox", environ={}, require_real_secret=False)


def banner(page_url: str, data_dir: Path, health_url: str | None, dashboard_url: str | None = None) -> str:
    rule = "=" * 64
    lines = [
        rule,
        "  dingpm 沙箱已启动（本地钉钉模拟器 + 机器人，无需钉钉账号）",
        "",
        f"  聊天页面：{page_url}",
    ]
    if dashboard_url:
        lines.append(f"  项目看板：{dashboard_url}")
    lines += [
        "",
        "  用浏览器打开上面的地址，选择一个身份，在群里 @机器人 或单聊发送「帮助」。",
        f"  数据保存在 {data_dir}（删除该目录即可从头开始）。",
    ]
    if dashboard_url:
        lines.append(f"  看板在聊天页面的「工作台」里以所选身份免登打开；直接打开时在地址后加 ?user=<userId>，"
                     f"如 {dashboard_url}?user=liuqiang。")
    if health_url:
        lines.append(f"  健康检查：{health_url}")
    lines += ["  按 Ctrl-C 停止。", rule]
    return "\n".join(lines)


async def start_sandbox_app(sb: Any, data_dir: Path) -> App:
    """The bot against a started sandbox, as ``dingpm sandbox`` runs it: connected, and its 看板 registered as the
    org's H5 app homepage, so that the chat page's 工作台 opens it as the chosen person (DingTalk's workbench opens the
    homepage configured in the developer console the same way)."""
    app = App(sandbox_config(sb, data_dir))
    await app.start()
    try:
        if app.stream is not None:
            with contextlib.suppress(TimeoutError):
                await app.stream.wait_for_status(lambda s: s.connected, timeout=CONNECT_TIMEOUT_SECONDS)
        if app.dashboard is not None:
            await sb.set_homepage(None, f"{app.dashboard.url}?corpid=$CORPID$")
    except BaseException:
        await app.stop()
        raise
    return app


async def serve_sandbox(*, port: int, data_dir: Path, stop: asyncio.Event | None = None) -> None:
    from bot.card_catalog import SHIPPED
    from sandbox.config import EmulatorConfig
    from sandbox.harness import Sandbox

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    # Real DingTalk pushes files to a bot only from 1:1 chats; the sandbox lets people drop deliverables in the
    # project group too (the page says so), which is how the 提交 flow is meant to be tried.
    sb = Sandbox(config=EmulatorConfig.for_sandbox_mode(allow_group_files=True, card_templates_dir=SHIPPED),
                 port=port, web=True)
    await sb.start()
    app: App | None = None
    try:
        app = await start_sandbox_app(sb, data_dir)
        health = app.health_server.url if app.health_server is not None else None
        dashboard = app.dashboard.url if app.dashboard is not None else None
        print(banner(sb.page_url, data_dir, health, dashboard), flush=True)
        await stop.wait()
        print("正在停止……", flush=True)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        if app is not None:
            await app.stop()
        await sb.stop()


def run_sandbox(*, port: int = 0, data_dir: Path = Path("data/sandbox"), verbose: bool = False) -> int:
    setup_logging(level="INFO" if verbose else "WARNING")
    try:
        asyncio.run(serve_sandbox(port=port, data_dir=data_dir))
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
    print("沙箱已停止。", flush=True)
    return 0
