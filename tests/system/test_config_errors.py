"""The program stopping on a bad configuration value, as a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GISTCACHE_PORT", "abc", "GISTCACHE_PORT must be an integer, got 'abc'"),
        (
            "GISTCACHE_DATABASE_URL",
            "postgresql+asyncpg://u:hunter2@h:abc/db",
            "GISTCACHE_DATABASE_URL is not a valid SQLAlchemy URL",
        ),
        (
            "GISTCACHE_GITHUB_API_URL",
            "http://[::1",
            "GISTCACHE_GITHUB_API_URL is not a valid URL: 'http://[::1'",
        ),
    ],
)
def test_cli_stops_with_one_clear_line_on_a_bad_value(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gistcache", "serve"],
        env={name: value, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"gistcache: configuration error: {message}"]
