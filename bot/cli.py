"""The ``dingpm`` command line.

Each sub-command is a small function set as its parser's ``handler``; heavy imports happen inside the function so that
``dingpm --help`` and ``dingpm check-config`` stay instant and do not need a database or the network.
Exit codes: 0 success, 1 runtime failure, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from bot.config import DEFAULT_CONFIG_PATH, Config, ConfigError, effective_config_text, load_config


def _load(args: argparse.Namespace, *, require_real_secret: bool = True) -> Config:
    return load_config(args.config, require_real_secret=require_real_secret)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    print(f"# 配置有效: {args.config}（密钥已遮盖）")
    print(effective_config_text(config))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.migrations import upgrade_sync

    url = args.url or _load(args, require_real_secret=False).database.url
    upgrade_sync(url)
    print("数据库已升级到最新版本")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dingpm", description="钉钉项目实施管理机器人 (DingTalk project implementation bot)")
    parser.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG_PATH, help="配置文件路径（默认 ./config.toml）")
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    check = sub.add_parser("check-config", help="校验配置并打印生效的配置（密钥已遮盖）")
    check.set_defaults(handler=cmd_check_config)

    db = sub.add_parser("db", help="数据库维护")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="<action>")
    up = db_sub.add_parser("upgrade", help="把数据库迁移到最新版本")
    up.add_argument("--url", help="数据库 URL（默认取配置文件中的 database.url）")
    up.set_defaults(handler=cmd_db_upgrade)

    for extend in _EXTENSIONS:
        extend(sub)
    return parser


# Sub-commands that live with the app (run, sandbox, outbox, archive …) register themselves here, so this module
# stays free of imports of the runtime.
_EXTENSIONS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
