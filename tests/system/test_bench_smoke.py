"""The benchmark harness at tiny sizes (``make bench-smoke``): every scenario must
produce its figures, and the counts that do not depend on timing must be exact.

No timing is asserted. The SQLite and PostgreSQL runs go at once, each in its own
process tree, to keep the test short.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.scenarios import PATTERNS, SCENARIOS, SMOKE, graphql_login, pages_for
from gistcache.github.graphql import BATCHES_AT_ONCE, GistAsked, plan_batches
from gistcache.testing.fake_github import bulk_gist_files

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def _start(out: Path, *options: str) -> subprocess.Popen[bytes]:
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "GISTCACHE_BENCH_DATABASE_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(out), *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _finish(process: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 0, output.decode(errors="replace")[-4000:]
    (found,) = out.glob("*-*.json")
    result: dict[str, Any] = json.loads(found.read_text())
    result["_markdown"] = next(out.glob("*.md")).read_text()
    return result


@pytest.fixture(scope="module")
def smoke_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any] | str]:
    """Results by database; a str instead says why PostgreSQL was not run."""
    before = sorted(RESULTS.iterdir()) if RESULTS.exists() else []
    root = tmp_path_factory.mktemp("bench-smoke")
    sqlite = _start(root / "sqlite")
    runs: dict[str, dict[str, Any] | str] = {}
    try:
        try:
            server = request.getfixturevalue("postgres_server")
        except pytest.skip.Exception as exc:
            runs["postgres"] = str(exc)
        else:
            postgres = _start(root / "postgres", "--no-sqlite", "--database-url", server)
            runs["postgres"] = _finish(postgres, root / "postgres")
        runs["sqlite"] = _finish(sqlite, root / "sqlite")
    finally:
        if sqlite.poll() is None:
            sqlite.kill()
            sqlite.wait()
    assert (sorted(RESULTS.iterdir()) if RESULTS.exists() else []) == before
    return runs


@pytest.fixture(params=["sqlite", "postgres"])
def result(request: pytest.FixtureRequest, smoke_runs: dict[str, Any]) -> dict[str, Any]:
    found = smoke_runs[request.param]
    if isinstance(found, str):
        pytest.skip(found)
    assert isinstance(found, dict)
    return found


def test_every_scenario_reports_figures_targets_and_the_machine(result: dict[str, Any]) -> None:
    assert result["mode"] == "smoke"
    assert list(result["scenarios"]) == list(SCENARIOS)
    for name, scenario in result["scenarios"].items():
        assert scenario["figures"], name
        assert scenario["rows"], name
        for t in scenario["targets"]:
            assert isinstance(t["met"], bool), (name, t)
        assert scenario["title"] in result["_markdown"]
    machine = result["machine"]
    assert machine["cpu_model"]
    assert machine["cores"] >= 1
    assert machine["python"]
    assert result["database_version"].startswith(("SQLite", "PostgreSQL"))
    summary = result["summary"]
    assert summary["targets"] == sum(len(s["targets"]) for s in result["scenarios"].values())


def test_cached_list_is_measured_beside_its_ceiling(result: dict[str, Any]) -> None:
    figures = result["scenarios"]["cached_list"]["figures"]
    assert [run["concurrency"] for run in figures["runs"]] == list(SMOKE.concurrency)
    for run in figures["runs"]:
        for side in ("service", "ceiling"):
            assert run[side]["requests"] > 0
            assert run[side]["latency_ms"]["p99"] >= run[side]["latency_ms"]["p50"] > 0
    assert figures["items"] == SMOKE.list_gists
    assert figures["upstream_during_load"] == {"api": 0, "raw": 0}


def test_the_herd_costs_one_upstream_request(result: dict[str, Any]) -> None:
    figures = result["scenarios"]["thundering_herd"]["figures"]
    assert figures["upstream_api_requests"] == 1
    assert figures["upstream_raw_requests"] == 0
    assert figures["herd"]["requests"] == SMOKE.herd
    assert figures["baseline_lone_x_cache"] == "REVALIDATED"
    assert set(figures["herd"]["header_values"]) <= {"REVALIDATED", "HIT"}


def test_search_economy(result: dict[str, Any]) -> None:
    scenarios = result["scenarios"]
    pages = pages_for(SMOKE.search_gists)
    files = SMOKE.search_gists * SMOKE.files_per_gist
    cold = scenarios["cold_search"]["figures"]
    # the raw path (GISTCACHE_GRAPHQL=off): each file from its raw URL
    assert (cold["api_requests"], cold["raw_fetches"], cold["graphql_requests"]) == (
        pages,
        files,
        0,
    )
    assert cold["x_cache"] == "MISS"
    for point in cold["by_fetch_concurrency"]:
        assert (point["raw_fetches"], point["graphql_requests"]) == (
            SMOKE.fetch_gists * SMOKE.files_per_gist,
            0,
        )
    # the GraphQL path: the list pages, then the planner's batches (one point each), and
    # not one raw download for these small text files
    via = cold["graphql"]
    batches = _planned_batches(graphql_login(SMOKE.search_gists))
    assert 1 < batches <= BATCHES_AT_ONCE
    assert (via["api_requests"], via["graphql_requests"], via["raw_fetches"]) == (
        pages,
        batches,
        0,
    )
    assert via["graphql_points"] == batches
    assert via["planned_batches"] == batches
    assert via["raw_refused"] == cold["raw_refused"] == 0
    assert via["files"] == files
    assert via["x_cache"] == "MISS"
    streamed = via["streamed"]
    assert streamed["first_match_seconds"] is not None
    assert 0 < streamed["first_match_seconds"] <= streamed["done_seconds"]
    # the streamed cold search told a first match before it was done
    streamed = cold["streamed"]
    assert streamed["first_match_seconds"] is not None
    assert 0 < streamed["first_match_seconds"] <= streamed["done_seconds"]
    warm = scenarios["warm_search"]["figures"]
    assert warm["fresh"]["upstream"] == {"api": 0, "raw": 0}
    # stale: each known page is asked for again with If-None-Match, and answers 304
    assert warm["stale"]["upstream"] == {"api": pages, "raw": 0}
    assert warm["stale"]["x_cache"] == "REVALIDATED"
    # each stale search has its fresh one beside it, on the same server
    assert len(warm["stale"]["all_fresh_seconds"]) == len(warm["stale"]["all_seconds"]) >= 1
    assert warm["stale"]["fresh_seconds"] > 0
    for point in scenarios["growth"]["figures"]["points"]:
        listed_before = point["cold_x_cache"] == "HIT"  # the cached-list scenario's user
        assert point["cold_api_requests"] == (0 if listed_before else pages_for(point["gists"]))
        assert point["cold_raw_fetches"] == point["gists"] * SMOKE.files_per_gist
    huge = scenarios["huge_file"]["figures"]
    assert huge["upstream"] == {"api": 1, "raw": 1}
    assert isinstance(huge["peak_growth_mb"], int | float)


def _planned_batches(login: str) -> int:
    """The GraphQL batches of a bulk user's files, planned from what the fake serves."""
    asked = []
    for g in range(SMOKE.search_gists):
        texts = bulk_gist_files(login, g, SMOKE.files_per_gist, SMOKE.file_bytes)
        sizes = tuple((name, len(data)) for name, data in texts.items())
        asked.append(
            GistAsked(f"node{g}", f"gist{g}", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), sizes)
        )
    plan = plan_batches(asked)
    assert plan.left == []
    return len(plan.batches)


def test_search_answers_agree_with_grep(result: dict[str, Any]) -> None:
    patterns = result["scenarios"]["pattern_throughput"]["figures"]["patterns"]
    assert set(patterns) == set(PATTERNS)
    for figures in patterns.values():
        assert figures["matching_gists_agree_with_grep"], figures
        assert figures["matching_gists"] > 0
        assert figures["ratio"] > 0
