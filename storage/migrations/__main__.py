"""Alembic's command line with dingpm's in-code configuration, for developers.

    python -m storage.migrations revision --autogenerate -m "add x"   # against DINGPM_DATABASE_URL
    python -m storage.migrations current
    python -m storage.migrations upgrade head

The database URL comes from ``DINGPM_DATABASE_URL`` (default: the SQLite file under ./data).
"""

from __future__ import annotations

import os
import sys

from alembic.config import CommandLine

from storage.db import DEFAULT_DATABASE_URL
from storage.migrations import alembic_config, upgrade_sync


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    url = os.environ.get("DINGPM_DATABASE_URL", DEFAULT_DATABASE_URL)
    if argv[:1] == ["upgrade"] and len(argv) <= 2 and not any(a.startswith("-") for a in argv):
        # Our upgrade takes the cross-replica migration lock; plain Alembic would not.
        upgrade_sync(url, argv[1] if len(argv) == 2 else "head")
        return 0
    cli = CommandLine(prog="python -m storage.migrations")
    options = cli.parser.parse_args(argv)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(alembic_config(url), options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
