"""Running renders off the event loop.

Every render function in ``reports`` is CPU-bound and synchronous (matplotlib, python-docx, openpyxl,
zip). Callers on the event loop must not call them directly; they hand them to an executor:

* a thread pool (``await render_off_loop(render_weekly_docx, data)``) is enough for one report at a
  time: the loop stays responsive, though the GIL keeps renders from running truly in parallel;
* a process pool renders many projects in parallel across cores (the Monday weekly-report run). The
  render functions are top-level and take plain frozen dataclasses, so they pickle; use
  ``render_weekly_bundle`` as the unit of work: it draws the charts once and builds every output of a
  project's week in one round trip.

The executor belongs to the application lifecycle (created at start, shut down at stop); this module
never creates one, least of all at import. A process pool's workers should start with ``init_render_worker`` and
run ``render_weekly_bundle_in_worker``, which keep a worker at ~100 MB instead of ~140 MB.

``bundle_fingerprint`` names what a bundle is rendered from, so a bundle rendered ahead of time can be reused exactly
when rendering again would give the same result.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TypeVar

from .model import ProjectReportData

T = TypeVar("T")


@dataclass(frozen=True)
class WeeklyBundle:
    """Everything the weekly job sends for one project."""

    project_code: str
    iso_week: str  # "2025-W11", for the outbox idempotency key
    title: str
    markdown: str
    docx: bytes
    charts: dict[str, bytes] = field(default_factory=dict)
    internal_title: str = ""
    internal_markdown: str = ""
    internal_docx: bytes | None = None

    @property
    def docx_name(self) -> str:
        return f"客户项目周报_{self.project_code}_{self.iso_week}.docx"

    @property
    def internal_docx_name(self) -> str:
        return f"项目内部周报_{self.project_code}_{self.iso_week}.docx"


def render_weekly_bundle(data: ProjectReportData, internal: bool = True) -> WeeklyBundle:
    """Client (and by default internal) weekly report of one project: markdown, .docx and chart PNGs.

    Top-level and argument-only so ``ProcessPoolExecutor.submit(render_weekly_bundle, data)`` works.
    """
    from .charts import render_charts
    from .weekly import render_weekly_docx, render_weekly_markdown

    charts = render_charts(data)
    title, markdown = render_weekly_markdown(data)
    bundle = dict(
        project_code=data.project.code,
        iso_week=data.week.key,
        title=title,
        markdown=markdown,
        docx=render_weekly_docx(data, charts),
        charts=charts,
    )
    if internal:
        ititle, imarkdown = render_weekly_markdown(data, internal=True)
        bundle.update(internal_title=ititle, internal_markdown=imarkdown,
                      internal_docx=render_weekly_docx(data, charts, internal=True))
    return WeeklyBundle(**bundle)


def bundle_fingerprint(data: ProjectReportData, internal: bool) -> str:
    """sha256 (hex) of everything ``render_weekly_bundle(data, internal)`` depends on: the data, the variants and the
    renderers' code. Equal fingerprints mean rendering again would produce the same report.

    The data is hashed through its ``repr``: the model is frozen dataclasses of plain values, whose generated repr
    lists every field by value. (A pickle would also depend on which equal strings happen to be one object, so two
    gathers of unchanged data could differ.)"""
    digest = hashlib.sha256(_renderers_revision())
    digest.update(b"client+internal" if internal else b"client")
    digest.update(repr(data).encode("utf-8"))
    return digest.hexdigest()


@functools.cache
def _renderers_revision() -> bytes:
    # The source of this package: a bundle rendered before an upgrade that changed any renderer is not reused after.
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.digest()


def init_render_worker(niceness: int = 0) -> int:
    """Initializer of a render worker process: lower its priority by ``niceness`` (background work yields the CPU to
    the bot), import the renderers and freeze what the imports made, so that the collection after each render
    (``render_weekly_bundle_in_worker``) only walks that render's objects. Returns the pid."""
    if niceness:
        os.nice(niceness)
    from . import charts, weekly  # noqa: F401  - matplotlib and python-docx: most of a worker's start-up

    gc.collect()
    gc.freeze()
    return os.getpid()


def render_weekly_bundle_in_worker(data: ProjectReportData, internal: bool = True) -> WeeklyBundle:
    """``render_weekly_bundle`` for a worker process: collect the render's garbage at once.

    matplotlib figures are reference cycles; left to the collector's thresholds, a worker's RSS settles around
    140 MB, collected after each render around 100 MB, for ~5 ms per render once the start-up objects are frozen.
    Not for a thread of the bot's own process: there a full collection would walk the whole application's heap."""
    try:
        return render_weekly_bundle(data, internal)
    finally:
        gc.collect()


async def render_off_loop(func: Callable[..., T], /, *args, executor: Executor | None = None, **kwargs) -> T:
    """Run a render function in ``executor`` (the loop's default thread pool when ``None``).

    With a process pool, ``func`` must be a top-level function and the arguments picklable: the
    render functions of this package and the ``model`` dataclasses are.
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(func, *args, **kwargs))


async def render_weekly_bundles(projects: Iterable[ProjectReportData], executor: Executor, *,
                                internal: bool = True) -> list[WeeklyBundle | BaseException]:
    """Render many projects' weekly bundles concurrently; one project's failure does not sink the rest
    (its slot holds the exception, for the caller to log and retry)."""
    tasks = [render_off_loop(render_weekly_bundle, data, internal, executor=executor) for data in projects]
    return list(await asyncio.gather(*tasks, return_exceptions=True))
