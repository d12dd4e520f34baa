"""The service when its PostgreSQL goes away and comes back, on a private cluster
that the test stops and starts (the shared test server is left alone)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gistcache.store.migrate import upgrade
from gistcache.testing.fake_github import FakeGitHub
from tests.support.database import CI
from tests.support.http import ClientFactory, wait_for_status
from tests.support.processes import free_port


class PrivatePostgres:
    def __init__(self, bindir: Path, datadir: Path, port: int) -> None:
        self.bindir, self.datadir, self.port = bindir, datadir, port
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        # the server's output goes to its log file: a pipe held open by the
        # postmaster would make this call wait for ever
        subprocess.run(
            command,
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def init(self) -> None:
        self._run("initdb", "-D", str(self.datadir), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1"
        log = str(self.datadir / "server.log")
        self._run("pg_ctl", "-D", str(self.datadir), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")


def _bindir() -> Path | None:
    try:
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(out)
    return path if (path / "initdb").exists() else None


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _bindir()
    if bindir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    datadir = Path(tempfile.mkdtemp(prefix="gistcache-pg-"))
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    cluster = PrivatePostgres(bindir, datadir, free_port())
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            cluster.stop()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_service_survives_postgres_going_away_and_coming_back(
    make_client: ClientFactory, fake: FakeGitHub, private_postgres: PrivatePostgres
) -> None:
    await asyncio.to_thread(upgrade, private_postgres.url)
    client = await make_client(database_url=private_postgres.url)
    before = await client.get("/octocat")
    assert before.status == 200
    cached = await before.json()
    assert (await client.get("/readyz")).status == 200

    await asyncio.to_thread(private_postgres.stop)
    assert await wait_for_status(client, "/readyz", 503, within=5) < 5
    assert (await client.get("/healthz")).status == 200  # alive, just not ready
    # a fresh list this server served is still answered from its memory ...
    held = await client.get("/octocat")
    assert (held.status, held.headers["X-Cache"]) == (200, "HIT")
    assert await held.json() == cached
    # ... anything that needs the database is a clear 503
    for method, path, body, headers in (
        ("GET", "/someone-else", None, {}),
        ("GET", "/octocat", None, {"Cache-Control": "no-cache"}),
        ("POST", "/api/v1/search", {"username": "octocat", "pattern": "x"}, {}),
    ):
        resp = await client.request(method, path, json=body, headers=headers)
        assert resp.status == 503
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert problem["type"] == "urn:gistcache:problem:database-unavailable"
        assert "Traceback" not in str(problem)

    await asyncio.to_thread(private_postgres.start)
    await wait_for_status(client, "/readyz", 200, within=15)  # no restart needed
    after = await client.get("/octocat")
    assert after.status == 200
    assert after.headers["X-Cache"] == "HIT"  # nothing was lost
    assert await after.json() == cached
    assert len(fake.api_requests()) == 1
