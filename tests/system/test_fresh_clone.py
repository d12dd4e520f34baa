"""The repository stands on its own: a clone with nothing beside it passes its tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the reference folder beside the checkout, as a path or a quoted path part; spelt
# with a class so that this file does not match itself
SIBLING = re.compile(r"\.\./share[d]\b|[\"']share[d][\"']|share[d]/fixtures")


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed HEAD, cloned into an otherwise empty folder."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    head = _git("rev-parse", "HEAD", cwd=ROOT).strip()
    empty = tmp_path_factory.mktemp("empty")
    _git("clone", "--quiet", "--no-checkout", str(ROOT), str(empty / "gistcache"), cwd=empty)
    target = empty / "gistcache"
    _git("checkout", "--quiet", "--detach", head, cwd=target)
    assert sorted(p.name for p in empty.iterdir()) == ["gistcache"]
    return target


def test_no_tracked_file_reads_the_sibling_folder() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = _git("ls-files", cwd=ROOT).splitlines()
    readers = [
        name
        for name in tracked
        if (ROOT / name).is_file()
        and SIBLING.search((ROOT / name).read_text(encoding="utf-8", errors="replace"))
    ]
    assert readers == []


def test_the_fidelity_tests_pass_in_a_clone_with_nothing_beside_it(clone: Path) -> None:
    env = {
        **os.environ,
        "CI": "true",  # a test that cannot find what it needs fails instead of skipping
        "PYTHONPATH": str(clone / "src"),  # the clone's code, not this checkout's
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("GISTCACHE_GITHUB_FIXTURES", None)
    where = subprocess.run(
        [sys.executable, "-c", "import gistcache; print(gistcache.__file__)"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(clone)
    pytest_args = ["-q", "-p", "no:cacheprovider", "tests/fake/test_fake_github.py"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        cwd=clone, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
    assert "skipped" not in run.stdout
