"""The nightly clean-up of the file intake: staged files nobody will submit any more.

A file sent without a command waits a day in ``<files_dir>/.incoming`` with a ``pending_files`` row
(``handlers._files``, ``domain.submissions``). Once the row has expired it can no longer be taken, and a file that was
submitted has been linked (or copied) to its versioned place, so the row and its staged copy can go. Files in the
staging area that no row points to (a file carried by the command message itself, a crash between the download and
the commit) are removed once they are well past the longest wait.

Only files inside the staging directory are ever deleted: every path is resolved (symbolic links included) and
checked to be in it first, whatever a row says. File-system work runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.feature import Feature
from bot.jobs import JobRegistry, JobRunContext, daily
from domain.file_store import PENDING_FILE_TTL, STAGING_DIR
from storage.repo import delete_expired_pending, pending_file_paths

log = logging.getLogger(__name__)

jobs = JobRegistry()

BATCH_ROWS = 500
# A staged file no row points to is kept this long after it was written: longer than any row lives, so a file whose
# row is still being written (the command's transaction not yet committed) is never taken for an orphan.
ORPHAN_AGE = PENDING_FILE_TTL + timedelta(days=1)


def staging_dir(files_dir: Path | str) -> Path:
    return (Path(files_dir) / STAGING_DIR).resolve()


def _inside_staging(staging: Path, files_dir: Path, relative: str) -> Path | None:
    """The staged file ``relative`` (to files_dir) points at, or None if it resolves anywhere outside staging."""
    path = (files_dir / relative).resolve()
    return path if path != staging and path.is_relative_to(staging) else None


def delete_staged(files_dir: Path | str, relatives: Iterable[str]) -> int:
    """Delete these staged files (a blocking call: run it in a thread); returns how many were removed."""
    root = Path(files_dir).resolve()
    staging = staging_dir(root)
    removed = 0
    for relative in relatives:
        path = _inside_staging(staging, root, relative)
        if path is None:
            log.warning("not deleting %r: it is not in the staging directory %s", relative, staging)
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError:
            log.warning("could not delete the staged file %s", path, exc_info=True)
    return removed


def delete_orphans(files_dir: Path | str, referenced: set[str], older_than: datetime) -> int:
    """Delete files directly in the staging directory that no row points to and that were last written before
    ``older_than`` (aware). Blocking: run it in a thread."""
    root = Path(files_dir).resolve()
    staging = staging_dir(root)
    keep = {path for relative in referenced if (path := _inside_staging(staging, root, relative)) is not None}
    cutoff = older_than.timestamp()
    removed = 0
    try:
        entries = list(os.scandir(staging))
    except FileNotFoundError:
        return 0
    for entry in entries:
        # Regular files only, not followed through links: the staging area holds nothing else of ours.
        if not entry.is_file(follow_symlinks=False):
            continue
        path = Path(entry.path)
        try:
            if path in keep or entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError:
            log.warning("could not delete the staged file %s", path, exc_info=True)
    return removed


@jobs.scheduled("staged_files_cleanup", daily(at="03:30"), timeout=1800)
async def staged_files_cleanup_job(run: JobRunContext) -> None:
    """Delete expired pending-file rows and their staged files, then staged files nobody points to."""
    database = run.database
    files_dir = Path(run.config.storage.files_dir)
    rows = files = 0
    while True:
        # One short transaction per batch; the files go after its commit, so a rollback never leaves a row pointing
        # at a deleted file (a failed delete leaves an orphan, which the sweep below removes on a later night).
        async with database.write() as session:
            batch_rows, paths = await delete_expired_pending(session=session, now=run.now_utc, limit=BATCH_ROWS)
        if paths:
            files += await asyncio.to_thread(delete_staged, files_dir, paths)
        rows += batch_rows
        if batch_rows < BATCH_ROWS:
            break
    async with database.read() as session:
        referenced = await pending_file_paths(session=session)
    orphans = await asyncio.to_thread(delete_orphans, files_dir, referenced, run.now.astimezone(UTC) - ORPHAN_AGE)
    run.log.info("removed %d expired pending files, %d staged files and %d orphans", rows, files, orphans)


feature = Feature("intake_cleanup", jobs=jobs)

__all__ = ["feature", "delete_orphans", "delete_staged", "jobs", "staged_files_cleanup_job", "staging_dir"]
