"""Start-up as a user meets it: one line on stderr and exit status 2 for every error,
and nothing but the answer from ``list`` and ``search``."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy.engine import make_url

from gistcache.testing.fake_github import FakeGitHub
from tests.support.database import admin, ensure_database, with_database


def _env(variables: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GISTCACHE_")}
    env.update({f"GISTCACHE_{name}": value for name, value in variables.items()})
    return env


def gistcache(cwd: Path, *args: str, **variables: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "gistcache", *args],
        cwd=cwd, env=_env(variables), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


async def agistcache(cwd: Path, *args: str, **variables: str) -> tuple[int, str, str]:
    """``gistcache`` while this test's event loop keeps serving the fake GitHub."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gistcache", *args,
        cwd=cwd, env=_env(variables),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.postgres
def test_a_refused_login_is_told_with_the_servers_reason(
    tmp_path: Path, postgres_server: str
) -> None:
    url = make_url(postgres_server).set(username="nobody", password="sekrit")
    code, out, err = gistcache(
        tmp_path, "migrate", DATABASE_URL=url.render_as_string(hide_password=False)
    )
    assert code == 2
    assert out == ""
    line = one_line(err)
    assert line.startswith("gistcache: could not connect to postgresql+asyncpg://nobody:***@")
    assert line.endswith(': role "nobody" does not exist')
    assert "sekrit" not in err


def test_an_unreachable_database_is_told_with_the_drivers_reason(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once closed
    url = f"postgresql+asyncpg://app:sekrit@127.0.0.1:{port}/cache"
    code, _, err = gistcache(tmp_path, "list", "octocat", DATABASE_URL=url)
    assert code == 2
    line = one_line(err)
    assert line.startswith(
        f"gistcache: could not connect to postgresql+asyncpg://app:***@127.0.0.1:{port}/cache: "
    )
    assert "Connect call failed" in line or "refused" in line
    assert "sekrit" not in err


def test_a_migrations_folder_without_migrations_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for command in (["migrate"], ["serve"], ["list", "octocat"]):
        code, _, err = gistcache(tmp_path, *command, MIGRATIONS_DIR=str(tmp_path / "empty"))
        assert code == 2
        assert one_line(err).startswith("gistcache: configuration error: GISTCACHE_MIGRATIONS_DIR")
    assert not (tmp_path / "var").exists()  # no database was touched


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOST", "no-such-host.invalid"),
        ("HOST", "bad host"),
        ("RATE_LIMIT", "0/minute"),
        ("RATE_LIMIT", "0 per second"),
    ],
)
def test_bad_start_up_values_are_one_line_and_exit_2(tmp_path: Path, name: str, value: str) -> None:
    code, out, err = gistcache(tmp_path, "serve", **{name: value})
    assert (code, out) == (2, "")
    assert one_line(err).startswith(f"gistcache: configuration error: GISTCACHE_{name} ")


def test_a_port_in_use_is_found_before_serving_is_announced(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # at INFO, where "serving on" would be logged
        code, _, err = gistcache(tmp_path, "serve", HOST="127.0.0.1", PORT=str(port))
        quiet = gistcache(tmp_path, "serve", HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="WARNING")
    expected = f"gistcache: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert code == 2
    assert "Traceback" not in err
    assert "serving on" not in err
    assert err.splitlines()[-1] == expected
    assert quiet[0] == 2
    assert one_line(quiet[2]) == expected


async def test_list_and_search_print_nothing_but_their_answer(
    tmp_path: Path, fake: FakeGitHub, fake_server: TestServer
) -> None:
    fake.add_gist("quiet", {"a.txt": "needle\n"})
    github = str(fake_server.make_url("")).rstrip("/")
    # a new database: the migrations run first, and alembic has things to say at INFO
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.sqlite3'}"
    code, out, err = await agistcache(
        tmp_path, "list", "quiet", DATABASE_URL=url, GITHUB_API_URL=github
    )
    assert code == 0
    assert len(out.splitlines()) == 1
    assert err == ""
    code, out, err = await agistcache(
        tmp_path, "search", "quiet", "needle", DATABASE_URL=url, GITHUB_API_URL=github
    )
    assert code == 0
    assert out.endswith("/a.txt:1: needle\n")
    assert err == ""
    code, out, err = await agistcache(
        tmp_path, "search", "quiet", "absent", DATABASE_URL=url, GITHUB_API_URL=github
    )
    assert (code, out, err) == (1, "", "")

    code, out, err = await agistcache(
        tmp_path, "list", "-v", "quiet", DATABASE_URL=url, GITHUB_API_URL=github
    )
    assert code == 0
    assert len(out.splitlines()) == 1  # the log goes to stderr only
    assert " INFO " in err

    # an error is one line, whatever the log level says
    code, out, err = await agistcache(
        tmp_path, "list", "nobody-here", DATABASE_URL=url, GITHUB_API_URL=github, LOG_LEVEL="DEBUG"
    )
    assert (code, out) == (2, "")
    assert one_line(err) == "gistcache: user not found: GitHub has no user by this login"


@pytest.mark.postgres
async def test_the_suite_creates_the_test_database_it_is_pointed_at(postgres_server: str) -> None:
    name = f"gistcache_new_{uuid.uuid4().hex[:10]}"
    url = with_database(postgres_server, name)
    try:
        await ensure_database(url)
        await ensure_database(url)  # there already: left as it is
        await admin(url, "SELECT 1")
    finally:
        await admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_misspelt_variable_is_warned_about_at_start_up(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cache.sqlite3'}"
    code, _, err = gistcache(
        tmp_path, "migrate", DATABASE_URL=url, PROT="9000", LOG_LEVEL="WARNING"
    )
    assert code == 0
    assert one_line(err).endswith(
        " WARNING gistcache: GISTCACHE_PROT is not a setting gistcache reads, and is ignored: "
        "did you mean GISTCACHE_PORT?"
    )


def test_an_in_memory_sqlite_database_is_one_line_a_user_can_act_on(tmp_path: Path) -> None:
    code, _, err = gistcache(tmp_path, "migrate", DATABASE_URL="sqlite+aiosqlite:///:memory:")
    assert code == 2
    assert one_line(err) == (
        "gistcache: configuration error: GISTCACHE_DATABASE_URL names an in-memory SQLite "
        "database, which the cache cannot use: it must outlive the process (and every "
        "connection would see a database of its own); give a file, such as "
        "sqlite+aiosqlite:///./var/gistcache.sqlite3"
    )


@pytest.mark.postgres
def test_libpqs_sslmode_in_the_database_url_works(tmp_path: Path, postgres_server: str) -> None:
    name = f"gistcache_ssl_{uuid.uuid4().hex[:10]}"
    url = with_database(postgres_server, name)
    asyncio.run(ensure_database(url))
    try:
        # the suite's server speaks no TLS: "disable" is the mode it can prove, and
        # "require" reaches the server, which refuses it in its own words
        code, _, err = gistcache(tmp_path, "migrate", DATABASE_URL=f"{url}?sslmode=disable")
        assert (code, err.count("Traceback")) == (0, 0), err
        assert "is at the newest schema" in err
        code, _, err = gistcache(tmp_path, "migrate", DATABASE_URL=f"{url}?sslmode=require")
        assert code == 2
        assert "unexpected keyword" not in one_line(err)
        assert one_line(err).startswith("gistcache: could not connect to ")
    finally:
        asyncio.run(admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
