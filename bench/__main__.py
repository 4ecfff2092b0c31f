"""``python -m bench <scenario> [options]``: run one benchmark scenario, write ``bench/results/<name>.json|.md``.

Scenarios: ``chat`` (1: throughput and latency of commands against our bot, the SDK-style baseline and the null
bot), ``weekly`` (2: the weekly push under the 20 calls/s limit), ``scans`` (3: overdue scan and digest reads),
``memory`` (4: the bot's RSS, collected from the latest chat and weekly results). ``--help`` after a scenario lists
its options. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys

SCENARIOS = {
    "chat": "bench.scenario_chat",
    "weekly": "bench.scenario_weekly",
    "scans": "bench.scenario_scans",
    "memory": "bench.scenario_memory",
    "dashboard": "bench.scenario_dashboard",
    "cards": "bench.scenario_cards",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="scenario", required=True)
    modules = {}
    for name, module_name in SCENARIOS.items():
        module = importlib.import_module(module_name)
        modules[name] = module
        scenario_parser = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(scenario_parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = asyncio.run(modules[args.scenario].run(args))
    return 0 if result is not None else 1


if __name__ == "__main__":
    sys.exit(main())
