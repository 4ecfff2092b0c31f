"""The ``dingpm`` command line.

Each sub-command is a small function set as its parser's ``handler``; heavy imports happen inside the function so that
``dingpm --help`` and ``dingpm check-config`` stay instant and do not need a database or the network.
Exit codes: 0 success, 1 runtime failure, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from bot.config import DEFAULT_CONFIG_PATH, Config, ConfigError, effective_config_text, load_config
from storage.workdays import SCHEDULE_EXAMPLE


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


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import StartupError, run_app
    from bot.logging_setup import setup_logging

    config = _load(args)
    setup_logging(config)
    try:
        run_app(config)
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox_mode import run_sandbox

    return run_sandbox(port=args.port, data_dir=args.data_dir, verbose=args.verbose)


def cmd_outbox_list(args: argparse.Namespace) -> int:
    import asyncio

    from bot.outbox_admin import format_summary, outbox_summary

    async def show() -> str:
        database = _database(args)
        try:
            return format_summary(await outbox_summary(database, limit=args.limit))
        finally:
            await database.close()

    try:
        print(asyncio.run(show()))
    except Exception as exc:  # noqa: BLE001 - one line for the operator, not a traceback
        print(f"无法读取数据库（{type(exc).__name__}: {str(exc)[:200]}），请检查 database.url", file=sys.stderr)
        return 1
    return 0


def cmd_outbox_replay(args: argparse.Namespace) -> int:
    import asyncio

    from bot.outbox_admin import replay_dead_letters

    if not args.all and not args.ids:
        print("请给出死信编号，或用 --all 重新投递全部死信（dingpm outbox 查看编号）", file=sys.stderr)
        return 2

    async def replay() -> int:
        database = _database(args)
        try:
            return await replay_dead_letters(database, ids=None if args.all else args.ids)
        finally:
            await database.close()

    try:
        count = asyncio.run(replay())
    except Exception as exc:  # noqa: BLE001
        print(f"无法写入数据库（{type(exc).__name__}: {str(exc)[:200]}），请检查 database.url", file=sys.stderr)
        return 1
    print(f"已重新排队 {count} 条死信；运行中的机器人会在下一次轮询时发送。")
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    import asyncio

    from domain.archive_service import archive_command

    config = _load(args, require_real_secret=False)
    return asyncio.run(archive_command(config, args.project, args.out))


def cmd_setup_approvals(args: argparse.Namespace) -> int:
    import asyncio

    import aiohttp

    from bot.dingtalk import DingTalkClient
    from domain.approval_forms import provision_forms

    config = _load(args)
    if config.approvals.mode == "off":
        print('approvals.mode = "off"：未启用钉钉审批，立项、暂停、变更直接生效，无需审批表单。')
        return 0

    async def provision():  # -> list[FormStatus]
        timeout = aiohttp.ClientTimeout(total=config.pacing.http_timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            return await provision_forms(config, DingTalkClient(config, session=http))

    statuses = asyncio.run(provision())
    for status in statuses:
        print(status.line())
    return 0 if all(status.process_code for status in statuses) else 1


def cmd_calendar_import(args: argparse.Namespace) -> int:
    import asyncio

    from storage.repo import replace_official_years
    from storage.workdays import CalendarError, read_official_schedule

    try:
        days = read_official_schedule(args.file)
    except CalendarError as exc:
        print(exc, file=sys.stderr)
        return 2

    async def store() -> list[int]:
        database = _database(args)
        try:
            async with database.write() as session:
                return await replace_official_years(session=session, days=days)
        finally:
            await database.close()

    try:
        years = asyncio.run(store())
    except Exception as exc:  # noqa: BLE001 - one line for the operator, not a traceback
        print(f"无法写入数据库（{type(exc).__name__}: {str(exc)[:200]}），请检查 database.url 并先运行 dingpm db upgrade",
              file=sys.stderr)
        return 1
    holidays = sum(1 for d in days if not d.working)
    print(f"已导入 {'、'.join(map(str, years))} 年的官方安排：{holidays} 个节假日、{len(days) - holidays} 个调休上班日"
          f"（来自 {args.file.name}，覆盖这些年份以前导入的安排）。")
    print("运行中的机器人会在 calendar.refresh_seconds（默认 5 分钟）内采用；dingpm calendar show 年份 查看。")
    return 0


def cmd_calendar_show(args: argparse.Namespace) -> int:
    import asyncio

    from storage.repo import official_days
    from storage.workdays import CalendarError, WorkCalendar

    config = _load(args, require_real_secret=False)

    async def imported():  # -> list[OfficialDay]
        database = _database(args)
        try:
            async with database.read() as session:
                return await official_days(session=session)
        finally:
            await database.close()

    try:
        cal = config.calendar
        calendar = WorkCalendar(cal.extra_holidays, cal.extra_workdays, cal.data_file)
    except CalendarError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        calendar.set_official(asyncio.run(imported()))
    except Exception as exc:  # noqa: BLE001
        print(f"（无法读取数据库中导入的安排：{type(exc).__name__}: {str(exc)[:200]}；以下不含导入的安排）", file=sys.stderr)
    year = args.year
    print(f"{year} 年的工作日：{calendar.source(year)}")
    if not calendar.is_official(year):
        print(f"注意：{year} 年的官方放假安排尚未导入，节假日为推算、没有调休上班日。"
              "公布后用 dingpm calendar import 文件.csv 导入。")
    first, last = date(year, 1, 1), date(year, 12, 31)
    print(f"全年工作日 {calendar.count_workdays(first, last)} 天。")
    weekdays = "一二三四五六日"
    for day, working, name, source in calendar.known_days(year):
        kind = "上班" if working else "休息"
        print(f"  {day.isoformat()} 周{weekdays[day.weekday()]}  {kind}  {name}（{source}）")
    return 0


def cmd_client_robot(args: argparse.Namespace) -> int:
    """``dingpm client-robot set|remove 〈项目编号〉``: a client group's custom robot, never given in a chat. The secret
    comes from the environment or a hidden prompt, never from the command line (it would stay in the shell's
    history and the process list)."""
    import asyncio
    import getpass
    import os

    from bot.client_robots import ClientRobotError, register_client_robot, remove_client_robot

    if args.action == "set":
        webhook = (args.webhook or os.environ.get("DINGPM_CLIENT_ROBOT_WEBHOOK")
                   or getpass.getpass("自定义机器人的 webhook 地址（输入不显示）："))
        secret = os.environ.get("DINGPM_CLIENT_ROBOT_SECRET") or getpass.getpass("加签密钥（SEC 开头，输入不显示）：")

    async def apply() -> str:
        database = _database(args)
        try:
            if args.action == "set":
                return await register_client_robot(database, args.project.upper(), webhook, secret)
            return await remove_client_robot(database, args.project.upper())
        finally:
            await database.close()

    try:
        print(asyncio.run(apply()))
    except ClientRobotError as exc:
        print(exc, file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line for the operator
        print(f"无法写入数据库（{type(exc).__name__}: {str(exc)[:200]}），请检查 database.url", file=sys.stderr)
        return 1
    return 0


def _database(args: argparse.Namespace):  # -> storage.db.Database
    from storage.db import Database

    url = args.url or _load(args, require_real_secret=False).database.url
    return Database(url)


def _config_option() -> argparse.ArgumentParser:
    """``-c FILE`` for a sub-command, so it may come after it too (``dingpm check-config -c prod.toml``); SUPPRESS
    keeps the value given before the sub-command otherwise."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS, help="配置文件路径（默认 ./config.toml）")
    return parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dingpm", description="钉钉项目实施管理机器人 (DingTalk project implementation bot)")
    parser.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG_PATH, help="配置文件路径（默认 ./config.toml）")
    config = [_config_option()]  # every sub-command that reads the configuration takes -c after its name as well
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")

    check = sub.add_parser("check-config", parents=config, help="校验配置并打印生效的配置（密钥已遮盖）")
    check.set_defaults(handler=cmd_check_config)

    db = sub.add_parser("db", parents=config, help="数据库维护")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="<action>")
    up = db_sub.add_parser("upgrade", parents=config, help="把数据库迁移到最新版本")
    up.add_argument("--url", help="数据库 URL（默认取配置文件中的 database.url）")
    up.set_defaults(handler=cmd_db_upgrade)

    run = sub.add_parser("run", parents=config, help="连接钉钉运行机器人（读取配置文件）")
    run.set_defaults(handler=cmd_run)

    sandbox = sub.add_parser("sandbox", help="在本地钉钉模拟器里运行机器人，并打开网页聊天界面（无需钉钉账号）")
    sandbox.add_argument("--port", type=int, default=0, help="模拟器和聊天网页的端口（默认 0：自动选择空闲端口）")
    sandbox.add_argument("--data-dir", type=Path, default=Path("data/sandbox"),
                         help="沙箱数据目录：SQLite 数据库与文件（默认 ./data/sandbox）")
    sandbox.add_argument("-v", "--verbose", action="store_true", help="输出详细日志")
    sandbox.set_defaults(handler=cmd_sandbox)

    outbox = sub.add_parser("outbox", parents=config, help="查看未送达的消息（死信）并重新投递")
    outbox.add_argument("--url", help="数据库 URL（默认取配置文件中的 database.url）")
    outbox.add_argument("--limit", type=int, default=50, help="最多列出多少条死信（默认 50）")
    outbox.set_defaults(handler=cmd_outbox_list)
    outbox_sub = outbox.add_subparsers(dest="outbox_command", metavar="<action>")
    listing = outbox_sub.add_parser("list", parents=config, help="列出待发送数量与死信（默认）")
    listing.set_defaults(handler=cmd_outbox_list)
    replay = outbox_sub.add_parser("replay", parents=config, help="把死信重新放回发送队列")
    replay.add_argument("ids", nargs="*", type=int, help="死信编号")
    replay.add_argument("--all", action="store_true", help="重新投递全部死信")
    replay.set_defaults(handler=cmd_outbox_replay)

    archive = sub.add_parser("archive", parents=config, help="生成项目归档压缩包（交付物、周报、登记表、审批记录、操作日志），显示进度")
    archive.add_argument("project", metavar="项目编号", help="例如 XM-2026-001")
    archive.add_argument("-o", "--out", type=Path, help="输出文件（默认 <storage.files_dir>/archives/<编号>/…zip）")
    archive.set_defaults(handler=cmd_archive)

    robot = sub.add_parser("client-robot", parents=config,
                           help="登记或删除客户群的自定义机器人（应用机器人进不了外部群时，用它推送周报）")
    robot.add_argument("action", choices=("set", "remove"), help="set 登记或更新；remove 删除")
    robot.add_argument("project", metavar="项目编号", help="例如 XM-2026-001")
    robot.add_argument("--webhook", help="自定义机器人的 webhook 地址（含 access_token，也是凭据：建议改用环境变量 "
                                         "DINGPM_CLIENT_ROBOT_WEBHOOK）；加签密钥从环境变量 DINGPM_CLIENT_ROBOT_SECRET "
                                         "读取。都没有时提示输入（不回显）")
    robot.add_argument("--url", help="数据库 URL（默认取配置文件中的 database.url）")
    robot.set_defaults(handler=cmd_client_robot)

    approvals = sub.add_parser("setup-approvals", parents=config, help="检查或创建钉钉审批表单（立项、进度变更、变更申请）并打印 processCode")
    approvals.set_defaults(handler=cmd_setup_approvals)

    calendar = sub.add_parser("calendar", parents=config, help="工作日日历：导入国务院公布的放假安排，查看某年的节假日")
    calendar_sub = calendar.add_subparsers(dest="calendar_command", required=True, metavar="<action>")
    load = calendar_sub.add_parser(
        "import", parents=config, help="导入官方放假安排（CSV：日期,类型,名称；类型为 休 或 班），所有机器人进程都会采用",
        description="CSV 文件，第一行为表头「日期,类型,名称」，例如：\n" + SCHEDULE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    load.add_argument("file", type=Path, metavar="文件", help="例如 2027.csv")
    load.add_argument("--url", help="数据库 URL（默认取配置文件中的 database.url）")
    load.set_defaults(handler=cmd_calendar_import)
    show = calendar_sub.add_parser("show", parents=config, help="某年的工作日来源与节假日、调休上班日")
    show.add_argument("year", type=int, metavar="年份", help="例如 2027")
    show.add_argument("--url", help="数据库 URL（默认取配置文件中的 database.url）")
    show.set_defaults(handler=cmd_calendar_show)
    return parser


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
