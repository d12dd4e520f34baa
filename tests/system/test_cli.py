"""`gistcache list` and `gistcache search` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from aiohttp.test_utils import TestServer

from gistcache.testing.fake_github import FakeGitHub


async def run(
    tmp_path: Path, database_url: str, server: TestServer, *args: str
) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "GISTCACHE_DATABASE_URL": database_url,
        "GISTCACHE_GITHUB_API_URL": str(server.make_url("")).rstrip("/"),
        "GISTCACHE_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gistcache", *args,
        env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_list_and_search_print_for_people(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    a = fake.add_gist("zoe", {"a.py": "import os\nprint(1)\n"}, description="first")
    b = fake.add_gist("zoe", {"b.txt": "nothing\n", "c.md": "Import OS\n"})

    code, out, err = await run(tmp_path, database_url, fake_server, "list", "zoe")
    assert code == 0, err
    assert out.splitlines() == [
        f"{b.id}  {b.updated_at:%Y-%m-%dT%H:%M:%SZ}  [b.txt, c.md]",
        f"{a.id}  {a.updated_at:%Y-%m-%dT%H:%M:%SZ}  [a.py]  first",
    ]

    code, out, err = await run(tmp_path, database_url, fake_server, "search", "zoe", "import", "-i")
    assert code == 0, err
    assert out.splitlines() == [f"{b.id}/c.md:1: Import OS", f"{a.id}/a.py:1: import os"]
    assert "fetching contents" not in err  # no progress bar unless stderr is a terminal

    code, out, _ = await run(tmp_path, database_url, fake_server, "search", "zoe", "absent")
    assert (code, out) == (1, "")

    code, _, err = await run(tmp_path, database_url, fake_server, "search", "zoe", "(?=x)")
    assert code == 2
    assert err.strip().startswith("gistcache: invalid pattern: RE2 syntax does not support")

    code, _, err = await run(tmp_path, database_url, fake_server, "list", "no-such-user")
    assert code == 2
    assert err.strip() == "gistcache: user not found: GitHub has no user by this login"


async def test_search_shows_progress_on_a_terminal(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    import pty

    for n in range(3):
        fake.add_gist("yan", {f"{n}.txt": "x\n"})
    leader, follower = pty.openpty()
    env = {
        **os.environ,
        "GISTCACHE_DATABASE_URL": database_url,
        "GISTCACHE_GITHUB_API_URL": str(fake_server.make_url("")).rstrip("/"),
        "GISTCACHE_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gistcache", "search", "yan", "x",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    terminal = b""
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        terminal += data
    os.close(leader)
    assert proc.returncode == 0
    assert len(out.decode().splitlines()) == 3
    assert b"fetching contents" in terminal
    assert b"3/3" in terminal


async def test_search_prints_every_line_whole_and_survives_a_closed_pipe(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    long = "match " + "z" * 800
    gist = fake.add_gist("ulla", {"many.txt": "".join(f"match {n}\n" for n in range(5000)) + long})
    code, out, err = await run(tmp_path, database_url, fake_server, "search", "ulla", "match")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 5001  # no cap of 20 lines, as the API has
    assert lines[-1] == f"{gist.id}/many.txt:5001: {long}"  # nor a cut at 500 characters

    code, _, err = await run(tmp_path, database_url, fake_server, "search", "ulla", "  ")
    assert code == 2
    assert "pattern is required" in err

    env = {
        **os.environ,
        "GISTCACHE_DATABASE_URL": database_url,
        "GISTCACHE_GITHUB_API_URL": str(fake_server.make_url("")).rstrip("/"),
    }
    proc = await asyncio.create_subprocess_shell(
        f"{sys.executable} -m gistcache search ulla match | head -n 1",
        env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out_b, err_b = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert len(out_b.decode().splitlines()) == 1
    assert "Traceback" not in err_b.decode()
    assert "unavailable" not in err_b.decode()


def test_the_command_line_validates_through_the_domain_not_the_web_layer() -> None:
    import ast

    import gistcache.cli

    tree = ast.parse(Path(gistcache.cli.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "gistcache.domain.requests" in imported
    assert not {name for name in imported if name and name.startswith("gistcache.web")}
