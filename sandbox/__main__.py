"""`python -m sandbox`: run the emulator alone and print how to point a bot at it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from .config import EmulatorConfig
from .emulator import Emulator


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
    parser.add_argument("--allow-group-files", action="store_true",
                        help="let users send files to the bot in groups (the real DingTalk does not)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def describe(emulator: Emulator) -> str:
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
    return "\n".join(lines)


async def serve(args: argparse.Namespace) -> None:
    config = EmulatorConfig.for_sandbox_mode(
        ping_interval=args.ping_interval, periodic_disconnect=args.periodic_disconnect,
        redelivery_timeout=args.redelivery_timeout, qps_limit=args.qps_limit,
        allow_group_files=args.allow_group_files)
    emulator = Emulator(args.world, config, seed=args.seed)
    await emulator.start(args.host, args.port)
    print(describe(emulator), flush=True)
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
