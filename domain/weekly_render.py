"""Rendering weekly bundles for the weekly-report jobs, off the event loop, and the renders kept ahead of the push.

``BundleRenderer`` renders a batch of projects: a few in a thread (a process would take longer to start than they
take to render), more in a process pool opened on first need, so a push whose reports were all rendered ahead
starts no process at all. Its workers are lean: ``reports.pool.init_render_worker`` imports only the renderers and
each render's garbage is collected at once (~100 MB a worker). A spawned worker also re-imports the parent's main
module: ``dingpm`` (``bot.cli``) keeps its heavy imports inside functions, so that costs little; an entry point that
imports the whole app at the top adds ~55 MB to every worker.

The pre-render job stores each bundle with the fingerprint of what it was rendered from (``store_renders``); the
push and ``周报 发送`` take a stored bundle only when the data they gather now has the same fingerprint
(``reusable_bundles``), and render the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from reports.archive import safe_component
from reports.model import ProjectReportData, WeeklyPeriod
from reports.pool import (
    WeeklyBundle,
    init_render_worker,
    render_off_loop,
    render_weekly_bundle,
    render_weekly_bundle_in_worker,
)
from storage.models import WeeklyReportRender
from storage.repo import delete_weekly_renders_before, store_weekly_render

POOL_MIN_PROJECTS = 4  # fewer projects render faster in one thread than it takes to start worker processes
PRERENDER_FOLDER = ".prerender/weekly"  # under storage.files_dir, one folder per ISO week

RenderItem = tuple[ProjectReportData, bool]  # the project's data, and whether its internal variant is wanted
Wanted = dict[int, tuple[ProjectReportData, str]]  # by project id: its report data now, and that data's fingerprint


# ---- rendering off the loop ---------------------------------------------------------------------------------------


def _start_pool(workers: int, niceness: int) -> ProcessPoolExecutor:
    # spawn, not fork: this process has threads (the database driver's, the default executor's), and a forked child
    # of a threaded process can inherit a held lock and hang.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_render_worker, initargs=(niceness,))
    try:
        # Start every worker here, in a worker thread: submitting from the loop would start processes on the loop.
        concurrent.futures.wait([pool.submit(os.getpid) for _ in range(workers)])
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool


class BundleRenderer:
    """Renders weekly bundles for one job run; ``close()`` (or ``async with``) shuts its process pool down, so the app
    never keeps idle worker processes between runs.

    ``max_workers``: the pool's size (the push: every core, it is racing the clock; the pre-render: one, spread over
    its lead time). ``niceness``: how much lower the workers' CPU priority is than the bot's."""

    def __init__(self, *, max_workers: int, niceness: int = 0) -> None:
        self.max_workers = max(1, max_workers)
        self.niceness = niceness
        self._pool: Executor | None = None

    async def render(self, items: Sequence[RenderItem]) -> list[WeeklyBundle | BaseException]:
        """Each item's bundle, or the exception that one project's render raised (it does not sink the others)."""
        if len(items) >= POOL_MIN_PROJECTS and self._pool is None:
            self._pool = await asyncio.to_thread(_start_pool, self.max_workers, self.niceness)
        if self._pool is not None:
            tasks = [render_off_loop(render_weekly_bundle_in_worker, data, internal, executor=self._pool)
                     for data, internal in items]
            return list(await asyncio.gather(*tasks, return_exceptions=True))
        # One after the other in a thread: matplotlib is not meant for concurrent threads.
        results: list[WeeklyBundle | BaseException] = []
        for data, internal in items:
            try:
                results.append(await render_off_loop(render_weekly_bundle, data, internal))
            except Exception as exc:
                results.append(exc)
        return results

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    async def __aenter__(self) -> "BundleRenderer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# ---- renders kept ahead of the push -------------------------------------------------------------------------------


def _week_folder(root: Path, period: WeeklyPeriod) -> Path:
    return root / PRERENDER_FOLDER / period.key


def _write_render(root: Path, period: WeeklyPeriod, fingerprint: str, bundle: WeeklyBundle) -> tuple[str, str | None]:
    # Named by fingerprint and never rewritten: a reader holding an older row still finds the files that row names.
    folder = _week_folder(root, period) / safe_component(bundle.project_code)
    folder.mkdir(parents=True, exist_ok=True)
    client = folder / f"{fingerprint[:16]}.docx"
    client.write_bytes(bundle.docx)
    internal = None
    if bundle.internal_docx is not None:
        internal = folder / f"{fingerprint[:16]}-internal.docx"
        internal.write_bytes(bundle.internal_docx)
    return str(client.relative_to(root)), str(internal.relative_to(root)) if internal else None


async def store_renders(database: Any, *, root: Path, period: WeeklyPeriod, now_utc: datetime,
                        renders: Iterable[tuple[int, str, WeeklyBundle]]) -> int:
    """Keep ``(project id, fingerprint, bundle)`` renders for the push: the files first, then the rows in one short
    write. Returns how many were stored."""
    renders = list(renders)
    if not renders:
        return 0
    paths = await asyncio.to_thread(lambda: [_write_render(root, period, fp, b) for _, fp, b in renders])
    async with database.write() as session:
        for (project_id, fingerprint, bundle), (client, internal) in zip(renders, paths):
            await store_weekly_render(session=session, render=WeeklyReportRender(
                project_id=project_id, iso_year=period.iso_year, iso_week=period.iso_week, fingerprint=fingerprint,
                title=bundle.title, content_md=bundle.markdown, file_path=client,
                internal_title=bundle.internal_title or None, internal_content_md=bundle.internal_markdown or None,
                internal_file_path=internal, rendered_at=now_utc,
            ))
    return len(renders)


def _read_render(root: Path, row: WeeklyReportRender, data: ProjectReportData) -> WeeklyBundle | None:
    try:
        docx = (root / row.file_path).read_bytes()
        internal = (root / row.internal_file_path).read_bytes() if row.internal_file_path else None
    except OSError:  # removed meanwhile (the week's push is over): render it again
        return None
    return WeeklyBundle(
        project_code=data.project.code, iso_week=data.week.key, title=row.title, markdown=row.content_md, docx=docx,
        internal_title=row.internal_title or "", internal_markdown=row.internal_content_md or "",
        internal_docx=internal,
    )


async def reusable_bundles(root: Path, stored: dict[int, WeeklyReportRender],
                           wanted: Wanted) -> dict[int, WeeklyBundle]:
    """The stored renders still current: project id -> bundle, for every project in ``wanted`` whose stored render has
    the same fingerprint and whose files are still there."""
    current = [(pid, stored[pid], data) for pid, (data, fp) in wanted.items()
               if pid in stored and stored[pid].fingerprint == fp]
    if not current:
        return {}
    loaded = await asyncio.to_thread(lambda: [(pid, _read_render(root, row, data)) for pid, row, data in current])
    return {pid: bundle for pid, bundle in loaded if bundle is not None}


async def forget_renders_before(database: Any, *, root: Path, period: WeeklyPeriod) -> int:
    """Drop the renders of the weeks before ``period``: their pushes are over. Returns how many rows went."""
    async with database.write() as session:
        count = await delete_weekly_renders_before(session=session, iso_year=period.iso_year,
                                                   iso_week=period.iso_week)

    def remove_folders() -> None:
        base = root / PRERENDER_FOLDER
        for folder in base.iterdir() if base.is_dir() else ():
            if folder.name < period.key:  # "2026-W09" < "2026-W48" < "2027-W01": keys sort by week
                shutil.rmtree(folder, ignore_errors=True)

    await asyncio.to_thread(remove_folders)
    return count


__all__ = [
    "BundleRenderer",
    "POOL_MIN_PROJECTS",
    "PRERENDER_FOLDER",
    "RenderItem",
    "Wanted",
    "forget_renders_before",
    "reusable_bundles",
    "store_renders",
]
