"""Smoke test of the benchmark harness (not a benchmark: no timing goal). The bench code imports, a seeded toy world
is consistent with the emulator's, and the scans scenario runs end to end at toy size on SQLite."""

from __future__ import annotations

import argparse
import json
from datetime import date

import pytest

from bench import report, scenario_dashboard, scenario_scans
from bench.__main__ import SCENARIOS, main
from bench.load import MIX, percentile, summarize, Sample
from bench.seed import build_world


def test_every_scenario_module_imports_and_declares_its_options() -> None:
    for name in SCENARIOS:
        parser = argparse.ArgumentParser()
        module = __import__(SCENARIOS[name], fromlist=["add_arguments"])
        module.add_arguments(parser)
        assert callable(module.run)


def test_world_people_and_groups_match_the_projects() -> None:
    world = build_world(12, internal_groups=True, client_groups=True)
    assert len(world.projects) == 12
    for project in world.projects:
        group = world.world.group(project.internal_cid)
        assert set(project.team) <= set(group.member_ids)
        assert project.client in world.world.group(project.client_cid).member_ids
    assert abs(sum(weight for _, weight in MIX) - 1.0) < 1e-9


def test_latency_summary_counts_answers_in_the_window() -> None:
    samples = [Sample("日志", 1000 + i * 10, f"s{i}", reply_ms=1000 + i * 10 + 60) for i in range(100)]
    samples.append(Sample("项目", 1500, "late"))  # never answered
    stats = summarize(samples, (1000, 2000))
    assert stats["sent"] == 101 and stats["unanswered"] == 1
    assert stats["p50_ms"] == 60 and percentile([1.0, 2.0, 3.0], 99) == 3.0
    # The bot's own share: a text answer crosses the emulator once, a file three times (download API, file, answer).
    files = [Sample("文件", 1000 + i * 10, f"f{i}", reply_ms=1000 + i * 10 + 170) for i in range(10)]
    assert summarize(samples, (1000, 2000), latency_ms=50)["p99_over_emulator_ms"] == 10
    assert summarize(files, (1000, 2000), latency_ms=50)["p99_over_emulator_ms"] == 20


def test_scans_scenario_runs_at_toy_size(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path / "results")
    assert main(["scans", "--sizes", "3,6", "--db", "sqlite", "--runs", "1", "--workdir", str(tmp_path),
                 "--name", "scans-toy"]) == 0
    data = json.loads((tmp_path / "results" / "scans-toy.json").read_text(encoding="utf-8"))
    assert data["runs"]["sqlite:6"]["rows"]["deliverables"] == 6 * 42
    assert set(data["runs"]["sqlite:6"]["timings"]) == set(scenario_scans.TIMED)
    assert date.fromisoformat(data["today"])
    assert "Scenario 3" in (tmp_path / "results" / "scans-toy.md").read_text(encoding="utf-8")


def test_dashboard_scenario_runs_at_toy_size(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every page of scenario 5 answers 200 for its viewer (the scenario asserts it), charts included."""
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path / "results")
    assert main(["dashboard", "--sizes", "6", "--db", "sqlite", "--runs", "1", "--workdir", str(tmp_path),
                 "--name", "dashboard-toy"]) == 0
    timings = json.loads((tmp_path / "results" / "dashboard-toy.json").read_text(encoding="utf-8"))["runs"][
        "sqlite:6"]["timings"]
    assert set(timings) == {name for name, *_ in scenario_dashboard.PAGES} | {
        "chart: projects by status", "chart: Gantt of a project"}
    assert all(t["statements"] >= 1 for name, t in timings.items() if not name.startswith("chart: projects"))
    assert "Scenario 5" in (tmp_path / "results" / "dashboard-toy.md").read_text(encoding="utf-8")


def test_weekly_scenario_runs_both_variants_at_toy_size(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pre-render then the push, and the push alone: every client group gets its report once in both."""
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path / "results")
    assert main(["weekly", "--projects", "3", "--workdir", str(tmp_path), "--name", "weekly-toy",
                 "--timeout", "120"]) == 0
    data = json.loads((tmp_path / "results" / "weekly-toy.json").read_text(encoding="utf-8"))
    prerendered, cold = data["variants"]["prerendered"], data["variants"]["cold"]
    assert prerendered["prerender"]["state"] == "done" and prerendered["jobs"]["prerendered"] == 3
    assert prerendered["jobs"]["reused"] == 3 and cold["jobs"]["rendered_in_push"] == 3
    for variant in (prerendered, cold):
        assert (variant["lost"], variant["duplicates_total"], variant["charts_in_docx"]) == (0, 0, 3)
    assert "Scenario 2" in (tmp_path / "results" / "weekly-toy.md").read_text(encoding="utf-8")
