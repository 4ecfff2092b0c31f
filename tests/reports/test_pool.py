"""Rendering off the event loop: process pool, thread pool, picklable inputs and outputs."""

from __future__ import annotations

import multiprocessing
import pickle
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import sample_data

from reports import charts, pool, weekly


def test_model_and_bundle_round_trip_through_pickle(samples):
    for data in samples.values():
        assert pickle.loads(pickle.dumps(data)) == data
    bundle = pool.render_weekly_bundle(samples["技改项目"], internal=False)
    again = pickle.loads(pickle.dumps(bundle))
    assert again.markdown == bundle.markdown and again.docx == bundle.docx and again.internal_docx is None


def test_weekly_bundle_holds_everything_for_one_project(samples):
    data = samples["软件系统实施"]
    b = pool.render_weekly_bundle(data)
    assert (b.project_code, b.iso_week) == ("RJ-2025-012", "2025-W11")
    assert b.title.startswith("客户项目周报｜") and b.internal_title.startswith("项目内部周报｜")
    assert b.markdown == weekly.render_weekly_markdown(data)[1]
    assert set(b.charts) == set(charts.CHART_TITLES)
    assert b.docx.startswith(b"PK") and b.internal_docx.startswith(b"PK")
    assert b.docx_name == "客户项目周报_RJ-2025-012_2025-W11.docx"


async def test_many_projects_render_in_a_process_pool(samples):
    # spawn: what an asyncio application should use (fork copies the running loop's threads and locks)
    ctx = multiprocessing.get_context("spawn")
    projects = list(samples.values())
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as executor:
        bundles = await pool.render_weekly_bundles(projects, executor)
    assert [b.project_code for b in bundles] == [p.project.code for p in projects]
    for b, data in zip(bundles, projects):
        assert data.project.name in b.markdown and len(b.charts) == 3


async def test_failures_are_returned_per_project(samples):
    broken = samples["技改项目"].__class__(project=None, today=sample_data.TODAY)  # type: ignore[arg-type]
    with ThreadPoolExecutor(max_workers=2) as executor:
        results = await pool.render_weekly_bundles([samples["技改项目"], broken], executor, internal=False)
    assert isinstance(results[0], pool.WeeklyBundle)
    assert isinstance(results[1], AttributeError)


async def test_render_off_loop_uses_the_default_executor(samples):
    title, md = await pool.render_off_loop(weekly.render_weekly_markdown, samples["软件系统实施"], internal=True)
    assert title.startswith("项目内部周报") and weekly.SECTION_INTERNAL in md


def test_charts_are_thread_safe(samples):
    """Several threads drawing at once get the same pixels as one thread, and no tofu."""
    data = samples["软件系统实施"]
    serial = charts.render_charts(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadPoolExecutor(max_workers=4) as executor:
            parallel = list(executor.map(charts.render_charts, [data] * 6))
    assert all(p == serial for p in parallel)
    assert not [w for w in caught if "Glyph" in str(w.message) or "missing from font" in str(w.message)]
