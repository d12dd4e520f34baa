"""The README and the project's files say what the program does, and work as typed."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

from gistcache.domain.requests import MAX_PAGE
from gistcache.testing.fake_github import FakeGitHub

ROOT = Path(__file__).resolve().parents[2]


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert found is not None, f"no section {title!r}"
    return found.group(1)


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```(?:sh)?\n(.*?)^```", text, re.M | re.S)


def test_the_command_line_section_works_as_typed() -> None:
    commands = section(read("docs/cli.md"), "Command line")
    [block] = code_blocks(commands)
    lines = [line for line in block.splitlines() if line.strip()]
    assert lines
    for line in lines:
        # the programs are in the venv, not on PATH
        assert line.startswith(".venv/bin/"), line
        program = line.split()[0]
        assert (ROOT / program).exists() or not (ROOT / ".venv").exists(), program
    assert ". .venv/bin/activate" in commands
    assert "alembic downgrade base" in commands
    assert re.search(r"`alembic downgrade base` empties the cache", commands)
    assert "exits with 2" in commands


def test_every_make_target_the_documents_name_exists() -> None:
    makefile = read("Makefile")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    pages = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "docs").glob("*.md"))]
    for name in ("README.md", "CONTRIBUTING.md", *pages):
        for target in re.findall(r"\bmake ([a-z][a-z-]+)", read(name)):
            assert target in targets, f"{name} names make {target}"


def test_contributings_test_map_names_every_test_file_and_only_real_ones() -> None:
    """ "Where is the test for…" stays a true map: a new test file gets a row, a moved one
    its new path."""
    table = section(read("CONTRIBUTING.md"), "Where is the test for…")
    named = set(re.findall(r"`([a-z]+/test_[a-z0-9_]+\.py)`", table))
    on_disk = {
        p.relative_to(ROOT / "tests").as_posix() for p in (ROOT / "tests").rglob("test_*.py")
    }
    assert named - on_disk == set(), "named but missing"
    assert on_disk - named == set(), "test files the map does not name"


def test_the_fakes_options_in_the_readme_exist_and_its_limit_is_told() -> None:
    readme = read("README.md")
    done = subprocess.run(
        [sys.executable, "-m", "gistcache.testing.fake_github", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    documented = set(
        re.findall(r"(--[a-z][a-z-]+)", section(readme, "Try it offline, against the fake GitHub"))
    )
    assert "--anonymous-limit" in documented
    for option in documented:
        assert option in done.stdout, option
    assert "60 API requests an hour" in readme
    assert 'make fake FAKE_ARGS="--anonymous-limit 5000"' in readme
    assert "$(FAKE_ARGS)" in read("Makefile")


def test_the_sample_at_the_top_is_what_the_fake_serves() -> None:
    readme = read("README.md")
    top = readme[: readme.index("## Set-up")]
    assert "sample in GitHub's REST documentation" in top
    fake = FakeGitHub()
    fake.seed_octocat()
    [gist] = fake.user("octocat").gists
    assert f'"id": "{gist.id}"' in top
    assert f'"description": "{gist.description}"' in top
    assert f'"files": ["{next(iter(gist.files))}"]' in top


def test_the_readme_tells_what_users_asked_for() -> None:
    api = read("docs/api.md")
    assert f"`page` from 1 to {MAX_PAGE:,}" in api  # the list's upper bound
    assert f"`page` at most {MAX_PAGE:,}" in api  # the search's
    assert "The answer carries `X-Cache`" in section(api, "HTTP API")
    development = read("docs/development.md")
    performance = section(development, "Performance")
    assert re.search(r"takes about \d+ minutes", performance)
    assert "var/bench-smoke/" in performance
    assert "benchmarks/results/" in performance
    token = section(read("docs/configuration.md"), "Configuration")
    assert "### A GitHub token" in token
    assert "no scope" in token
    assert "Personal access tokens" in token
    tests = section(development, "Tests")
    assert "the suite creates it" in tests


def test_license_changelog_contributing_and_security_exist_and_agree() -> None:
    project = tomllib.loads(read("pyproject.toml"))["project"]
    assert project["license"] == "MIT"
    assert read("LICENSE").startswith("MIT License\n")
    changelog = read("CHANGELOG.md")
    versions = re.findall(r"^## (\S+)", changelog, re.M)
    assert versions[:2] == ["Unreleased", project["version"]]
    contributing = read("CONTRIBUTING.md")
    for needed in ("make install", "make lint", "make test", "alembic revision", "make lock"):
        assert needed in contributing, needed
    security = read("SECURITY.md")
    assert "## Reporting a vulnerability" in security
    assert "Secret gists** are never listed, cached or searched" in security
    assert "never written to a log" in security


def test_the_screenshots_user_is_on_make_fakes_fake(tmp_path: Path) -> None:
    """The README's picture can be had as typed: its user is one `make fake` serves, and
    `make screenshot` needs nothing running."""
    readme = read("README.md")
    script = read("scripts/screenshot.py")
    [search] = re.findall(r'^SEARCH = "(/-/search\?[^"]+)"', script, re.M)
    user = re.search(r"user=(\w+)", search)
    assert user is not None
    assert f'the gists of the user "{user.group(1)}"' in readme
    assert f"http://localhost:8080{search.replace('&glob=', '')}" in readme
    assert "starts a fake GitHub and a server of its own" in readme
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fake = subprocess.Popen(  # what `make fake` runs, as it runs it
        [sys.executable, "-m", "gistcache.testing.fake_github", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        gists = None
        for _ in range(200):
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(
                        f"http://127.0.0.1:{port}/users/{user.group(1)}/gists",
                        headers={"User-Agent": "docs-test"},
                    ),
                    timeout=5,
                ) as resp:
                    gists = json.load(resp)
                break
            except OSError:
                time.sleep(0.05)
    finally:
        fake.terminate()
        fake.wait(timeout=15)
    assert gists, f"make fake has no gists of {user.group(1)}"
    assert "fetch.py" in {name for gist in gists for name in gist["files"]}


def test_the_set_up_names_make_install_and_make_help() -> None:
    setup = section(read("README.md"), "Set-up")
    assert "| `make install` |" in setup
    assert "`make help` lists every target" in setup
    makefile = read("Makefile")
    help_text = re.search(r"^help:\n((?:\t.*\n)+)", makefile, re.M)
    assert help_text is not None
    for target in re.findall(r"^([a-z][a-z-]*):", makefile, re.M):
        if target != "clean":
            assert f'"make {target} ' in help_text.group(1), target
