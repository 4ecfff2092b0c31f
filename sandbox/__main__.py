"""`python -m sandbox`: run the emulator alone and print how to point a bot at it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from .config import EmulatorConfig
from .emulator import Emulator
from .web import page_url, setup_web


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="本地钉钉模拟器 (DingTalk emulator)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 lets the OS pick a free port")
    parser.add_argument("--world", default=None, help="world TOML file (default: sandbox/world/default.toml)")
    parser.add_argument("--ping-interval", type=float, default=60.0, help="SYSTEM ping frames, seconds; 0 = off")
    parser.add_argument("--periodic-disconnect", type=float, default=7200.0,
                        help="SYSTEM disconnect after a connection lived this long, seconds; 0 = off")
    parser.add_argument("--redelivery-timeout", type=float, default=60.0)
    parser.add_argument("--qps-limit", type=int, default=20, help="calls/s per app per API; 0 = off")
    # On by default here so the web page can submit deliverables in a project group;
    # the real DingTalk (and EmulatorConfig's default) does not allow it.
    parser.add_argument("--allow-group-files", action=argparse.BooleanOptionalAction, default=True,
                        help="let users send files to the bot in groups (the real DingTalk does not; default: on)")
    parser.add_argument("--app-robots-in-external-groups", action=argparse.BooleanOptionalAction, default=True,
                        help="let the app's robot be in groups with external members (UNCONFIRMED upstream; "
                             "--no-app-robots-in-external-groups refuses it there; default: allowed)")
    parser.add_argument("--web", action=argparse.BooleanOptionalAction, default=True,
                        help="serve the web chat page at /chat (default: on)")
    cards = parser.add_argument_group("interactive cards (互动卡片)")
    cards.add_argument("--card-templates", default=None, metavar="DIR",
                       help="directory of card definitions (*.json); unknown template ids are then refused")
    cards.add_argument("--card-template-env", default="sandbox", metavar="NAME",
                       help="which templateIds entry of the definitions to register (default: sandbox)")
    cards.add_argument("--pin-in-ordinary-groups", action=argparse.BooleanOptionalAction, default=True,
                       help="allow pinned cards (ONE_BOX) in ordinary groups (UNCONFIRMED; default: on)")
    cards.add_argument("--cross-org-card-callbacks", action=argparse.BooleanOptionalAction, default=True,
                       help="card presses by users of another organization reach the bot (UNCONFIRMED; default: on)")
    cards.add_argument("--card-callback-redelivery", action=argparse.BooleanOptionalAction, default=False,
                       help="redeliver unACKed card callbacks like bot messages (default: off)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def describe(emulator: Emulator, *, web: bool = False) -> str:
    lines = [
        f"钉钉模拟器已启动 / DingTalk sandbox running at {emulator.base_url}",
        f"  OpenAPI (api + oapi hosts): {emulator.base_url}",
        f"  Stream WebSocket:           ws{emulator.base_url[4:]}/connect",
        f"  For dingtalk-stream:        export DINGTALK_OPENAPI_ENDPOINT={emulator.base_url}",
        "  Apps:",
    ]
    for app in emulator.world.apps.values():
        mark = " (default)" if app.default else ""
        lines.append(f"    {app.name}{mark}: client_id={app.client_id} client_secret={app.client_secret} "
                     f"robot_code={app.robot_code}")
    lines.append("  Groups:")
    for group in emulator.world.groups.values():
        lines.append(f"    {group.title}: {group.conversation_id}")
    if not emulator.config.app_robots_in_external_groups:
        lines.append("  应用机器人不能在外部群中（--no-app-robots-in-external-groups）/ app robots refused in external groups")
    catalog = emulator.cards.catalog
    if catalog.directory is not None:
        names = ", ".join(f"{t.name}={tid}" for tid, t in catalog.by_id.items()) or "none"
        lines.append(f"  Card templates ({catalog.environment}): {names}")
    if web:
        files = "群内发文件：已允许" if emulator.config.allow_group_files else "群内发文件：不允许（同真实钉钉）"
        lines.append(f"  网页聊天 / Web chat page:    {page_url(emulator.base_url)}  ({files})")
    return "\n".join(lines)


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig.for_sandbox_mode(
        ping_interval=args.ping_interval, periodic_disconnect=args.periodic_disconnect,
        redelivery_timeout=args.redelivery_timeout, qps_limit=args.qps_limit,
        allow_group_files=args.allow_group_files, app_robots_in_external_groups=args.app_robots_in_external_groups,
        card_templates_dir=args.card_templates, card_template_env=args.card_template_env,
        pin_in_ordinary_groups=args.pin_in_ordinary_groups, cross_org_card_callbacks=args.cross_org_card_callbacks,
        card_callback_redelivery=args.card_callback_redelivery)


async def serve(args: argparse.Namespace) -> None:
    emulator = Emulator(args.world, config_from(args), seed=args.seed)
    await emulator.start(args.host, args.port, extensions=[setup_web] if args.web else [])
    print(describe(emulator, web=args.web), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # pragma: no cover - non-Unix
            pass
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
