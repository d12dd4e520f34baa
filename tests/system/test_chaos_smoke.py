"""The chaos soak in its smoke mode (``python -m benchmarks.chaos --smoke``): two
replicas on a private PostgreSQL, the fake GitHub, a mixed load and one of each fault
(kill -9, SIGTERM, PostgreSQL stopped, GitHub failing, timing out and rate-limiting,
hostile requests), every zero target asserted from the results it writes.

No timing is asserted. Its length is mostly the replicas' restarts (Python start-up):
about 2.5 minutes on this project's 2-core machine while other suites loaded it (load
average above 10); a quiet machine should take about a minute (not measured).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gistcache.testing.postgres import find_bindir
from tests.support.database import CI

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if find_bindir() is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("chaos")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GISTCACHE_")}
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.chaos", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=600,
        check=False,
    )
    output = (run.stdout + run.stderr).decode(errors="replace")
    (found,) = out.glob("chaos-*.json")
    result: dict[str, Any] = json.loads(found.read_text())
    result["_output"] = output[-4000:]
    result["_status"] = run.returncode
    return result


def test_every_fault_of_the_schedule_ran(smoke: dict[str, Any]) -> None:
    names = [w["window"] for w in smoke["windows"]]
    for fault in (
        "kill -9 replica 0",
        "SIGTERM replica 1 (rolling restart)",
        "PostgreSQL stopped",
        "GitHub answers 500",
        "GitHub times out",
        "GitHub primary rate limit",
        "GitHub secondary rate limit",
        "hostile burst",
    ):
        assert any(name.startswith(fault) for name in names), (fault, names)
    assert smoke["requests"] > 0
    assert smoke["jobs"]["submitted"] >= 4  # the ones sent to the replica that is killed


def test_no_5xx_outside_the_windows_that_document_one(smoke: dict[str, Any]) -> None:
    assert smoke["unexpected_5xx"] == {"count": 0, "examples": []}, smoke["_output"]


def test_no_answer_breaks_the_contract(smoke: dict[str, Any]) -> None:
    assert smoke["contract_breaks"]["count"] == 0, smoke["contract_breaks"]


def test_no_job_is_lost_failed_undocumented_or_recorded_twice(smoke: dict[str, Any]) -> None:
    jobs = smoke["jobs"]
    assert jobs["lost"] == []
    assert jobs["unfinished_in_db"] == []
    assert jobs["failed_undocumented"] == []
    assert jobs["recorded_twice"] == []
    assert jobs["succeeded"] + jobs["failed"] == jobs["submitted"]


def test_nothing_reaches_github_during_a_rate_limit_block(smoke: dict[str, Any]) -> None:
    blocks = smoke["rate_limit_blocks"]
    assert len(blocks) == 2
    assert [b["reached_github_during_block"] for b in blocks] == [0, 0], blocks
    assert smoke["hostile_requests_reaching_github"] == 0


def test_one_clients_made_up_names_cost_github_at_most_its_budget(
    smoke: dict[str, Any],
) -> None:
    drain = smoke["drain"]
    assert drain["by_status"].get("429", 0) > 0, drain  # past its budget, told to stop
    assert 0 < drain["reached_github"] <= drain["allowed"], drain


def test_the_cache_equals_githubs_truth_once_revalidated(smoke: dict[str, Any]) -> None:
    truth = smoke["truth"]
    assert truth["users"] > 0
    assert truth["mismatches"] == []


def test_the_harness_says_the_targets_were_met(smoke: dict[str, Any]) -> None:
    assert smoke["_status"] == 0, smoke["_output"]
