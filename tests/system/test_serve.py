"""The real program: `gistcache serve` as a process, migrations, SIGTERM."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from gistcache.testing.fake_github import FakeGitHub
from tests.support.database import TABLES, table_names
from tests.support.processes import start, stop
from tests.support.waiting import eventually


async def test_serve_migrates_answers_and_stops_cleanly_on_sigterm(
    tmp_path: Path, fake_server: TestServer
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'served.sqlite3'}"
    github = str(fake_server.make_url("")).rstrip("/")
    proc, port = await start(tmp_path, url, github=github)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/octocat") as resp,
        ):
            assert resp.status == 200
            assert resp.headers["X-Cache"] == "MISS"
            assert [g["id"] for g in await resp.json()] == ["aa5a315d61ae9438b18d"]
    finally:
        code, stderr = await stop(proc)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert "status=200" in stderr  # the access log line
    tables = await asyncio.to_thread(table_names, url)
    assert tables == TABLES


async def test_serve_no_migrate_leaves_the_schema_alone(
    tmp_path: Path, fake_server: TestServer
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'untouched.sqlite3'}"
    proc, _ = await start(tmp_path, url, "--no-migrate", github="http://127.0.0.1:1")
    code, stderr = await stop(proc)
    assert code == 0, stderr
    assert await asyncio.to_thread(table_names, url) == set()


async def test_a_job_running_at_sigterm_finishes_after_the_next_start(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    fake.add_gist("sigma", {"a.txt": "needle\n"})
    github = str(fake_server.make_url("")).rstrip("/")
    fake.latency = 1.0  # the job is mid-flight when the signal comes
    proc, port = await start(tmp_path, database_url, github=github)
    base = f"http://127.0.0.1:{port}/api/v1"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/search", json={"username": "sigma", "pattern": "needle", "async": True}
        ) as resp:
            job_id = (await resp.json())["request_id"]

        async def job() -> Any:
            async with http.get(f"{base}/search/{job_id}") as resp:
                return await resp.json()

        await eventually(job, lambda body: body["status"] == "STARTED", what="STARTED")
        started = time.monotonic()
        code, stderr = await stop(proc)
        assert code == 0, stderr
        assert time.monotonic() - started < 10  # within Docker's grace period
        assert "handed back to the queue" in stderr

        fake.latency = 0
        proc, port = await start(tmp_path, database_url, github=github)
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            done = await eventually(
                job, lambda body: body["status"] in ("SUCCESS", "FAILURE"), what="finished"
            )
            assert done["status"] == "SUCCESS"
            async with http.get(f"{base}/search_result/{job_id}") as resp:
                assert (await resp.json())["total"] == 1
        finally:
            await stop(proc)
