"""`gistcache list` and `gistcache search` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from gistcache.testing.fake_github import FakeGitHub


async def run(
    tmp_path: Path,
    database_url: str,
    server: TestServer,
    *args: str | bytes,
    env: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "GISTCACHE_DATABASE_URL": database_url,
        "GISTCACHE_GITHUB_API_URL": str(server.make_url("")).rstrip("/"),
        "GISTCACHE_LOG_LEVEL": "WARNING",
        **(env or {}),
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


async def test_search_says_which_files_the_download_budget_left(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    line = "TODO " + "x" * 1018 + "\n"  # 1 KiB
    gist = fake.add_gist("uma", {f"{n}.txt": line * 400 for n in range(3)})  # 400 KiB each
    budget = {"GISTCACHE_SEARCH_DOWNLOAD_MB": "1"}
    code, out, err = await run(
        tmp_path, database_url, fake_server, "search", "uma", "TODO", env=budget
    )
    assert code == 0, err
    assert {line.split(":")[0] for line in out.splitlines()} == {
        f"{gist.id}/0.txt",
        f"{gist.id}/1.txt",
    }
    assert err.splitlines() == [f"gistcache: skipped {gist.id}/2.txt: download_budget"]


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


async def test_search_prints_long_lines_whole_and_sets_groups_apart(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    # as grep: the CLI cuts no line to a window (so it has no cut to say), and with
    # context -- parts groups of lines that do not follow each other
    long = "x" * 3000 + " needle " + "y" * 3000
    context = "z" * 900
    gist = fake.add_gist("vic", {"a.txt": f"a\n{long}\n{context}\nb\nc\nd needle\n"})
    code, out, err = await run(
        tmp_path, database_url, fake_server, "search", "vic", "needle", "-C", "1"
    )
    assert code == 0, err
    g = gist.id
    assert out.splitlines() == [
        f"{g}/a.txt-1- a",
        f"{g}/a.txt:2: {long}",
        f"{g}/a.txt-3- {context}",
        "--",
        f"{g}/a.txt-5- c",
        f"{g}/a.txt:6: d needle",
    ]


async def test_search_context_literal_glob_and_colour(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    text = "".join(f"line {n}{' a.b' if n in (2, 3, 9) else ''}\n" for n in range(1, 12))
    gist = fake.add_gist("vic", {"x.py": text, "x.md": "a.b\n", "y.py": "axb\n"})
    g = gist.id
    code, out, err = await run(
        tmp_path, database_url, fake_server, "search", "vic", "a.b", "-F", "-C", "1",
        "--glob", "*.PY",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == [
        f"{g}/x.py-1- line 1",
        f"{g}/x.py:2: line 2 a.b",
        f"{g}/x.py:3: line 3 a.b",
        f"{g}/x.py-4- line 4",
        "--",
        f"{g}/x.py-8- line 8",
        f"{g}/x.py:9: line 9 a.b",
        f"{g}/x.py-10- line 10",
    ]
    assert fake.raw_requests()
    assert all(r.path.endswith(".py") for r in fake.raw_requests())

    # without -F the dot matches any character; colour marks each match as grep does
    code, out, err = await run(
        tmp_path, database_url, fake_server, "search", "vic", "a.b", "--glob", "y.py",
        "--color=always",
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == [f"{g}/y.py:1: \x1b[01;31m\x1b[Kaxb\x1b[m\x1b[K"]
    # auto: standard output is a pipe here, so no colour
    code, out, err = await run(tmp_path, database_url, fake_server, "search", "vic", "axb")
    assert out.splitlines() == [f"{g}/y.py:1: axb"]
    code, out, err = await run(
        tmp_path, database_url, fake_server, "search", "vic", "axb", "--color=never"
    )
    assert "\x1b" not in out

    code, _, err = await run(tmp_path, database_url, fake_server, "search", "vic", "a", "-C", "11")
    assert code == 2
    assert "context must be from 0 to 10" in err

    # a byte that is not UTF-8 in the arguments: refused in words, with or without -F
    for flags in ((), ("-F",)):
        code, _, err = await run(
            tmp_path, database_url, fake_server, "search", "vic", b"a\xffb", *flags
        )
        assert code == 2, err
        assert err.splitlines() == [
            "gistcache: invalid pattern: the pattern is not valid Unicode text"
        ]


async def test_search_prints_in_list_order_as_gists_come(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    older = fake.add_gist("wes", {"old.txt": "hit old\n"})
    newer = fake.add_gist("wes", {"new.txt": "hit new\n"})
    fake.hold_raw("new.txt")  # the list's first gist comes last
    env = {
        **os.environ,
        "GISTCACHE_DATABASE_URL": database_url,
        "GISTCACHE_GITHUB_API_URL": str(fake_server.make_url("")).rstrip("/"),
        "GISTCACHE_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gistcache", "search", "wes", "hit",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    for _ in range(600):
        if any(r.path.endswith("/old.txt") and r.status == 200 for r in fake.raw_requests()):
            break
        await asyncio.sleep(0.05)
    fake.release_raw()
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [
        f"{newer.id}/new.txt:1: hit new",
        f"{older.id}/old.txt:1: hit old",
    ]

    # the list's first gist is printed while a later one is still downloading
    later = fake.add_gist("xan", {"later.txt": "hit later\n"})
    first = fake.add_gist("xan", {"first.txt": "hit first\n"})
    fake.hold_raw("later.txt")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gistcache", "search", "xan", "hit",
        env=env, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
    assert line.decode() == f"{first.id}/first.txt:1: hit first\n"
    [held] = [r for r in fake.raw_requests() if r.path.endswith("/later.txt")]
    assert held.status is None  # still downloading
    fake.release_raw()
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [f"{later.id}/later.txt:1: hit later"]


def test_colour_auto_follows_the_terminal_and_no_color(monkeypatch: Any) -> None:
    from gistcache import cli_output

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli_output.use_colour("auto") is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli_output.use_colour("auto") is False
    assert cli_output.use_colour("always") is True
    assert cli_output.use_colour("never") is False


async def test_search_of_several_users_or_an_organisation(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    from gistcache.testing.fake_github.rest import set_public_members

    a = fake.add_gist("amy", {"a.py": "needle\n"})
    b = fake.add_gist("ben", {"b.py": "hay\nneedle two\n"})
    args = ("search", "--users", "ben,nobody,amy,BEN", "needle")
    code, out, err = await run(tmp_path, database_url, fake_server, *args)
    # user by user in the order given, each line with its login; the unknown user told
    # on stderr, which makes the status 2 although the others matched (as grep's)
    assert out.splitlines() == [f"ben/{b.id}/b.py:2: needle two", f"amy/{a.id}/a.py:1: needle"]
    assert "gistcache: nobody: user not found" in err
    assert code == 2

    set_public_members(fake, "crew", ["amy", "ben"])
    code, out, err = await run(
        tmp_path, database_url, fake_server, "search", "--org", "crew", "hay"
    )
    assert (code, out.splitlines()) == (0, [f"ben/{b.id}/b.py:1: hay"]), err

    code, out, _ = await run(tmp_path, database_url, fake_server, "search", "--users", "amy", "x")
    assert (code, out) == (1, "")

    code, _, err = await run(
        tmp_path, database_url, fake_server, "search", "amy", "--org", "crew", "x"
    )
    assert code == 2
    assert "not more than one" in err
