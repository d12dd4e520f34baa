"""The real program: `gistcache serve` as a process, migrations, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from gistcache.testing.fake_github import FakeGitHub
from tests.test_migrations import TABLES, table_names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start(
    tmp_path: Path, url: str, *args: str, github: str, env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, int]:
    """``gistcache serve`` in a process of its own, once it answers /healthz."""
    port = free_port()
    env = {
        **os.environ,
        "GISTCACHE_DATABASE_URL": url,
        "GISTCACHE_PORT": str(port),
        "GISTCACHE_HOST": "127.0.0.1",
        "GISTCACHE_GITHUB_API_URL": github,
        **(env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gistcache",
        "serve",
        *args,
        env=env,
        cwd=tmp_path,
        stderr=asyncio.subprocess.PIPE,
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return proc, port
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    proc.kill()
    stderr = await proc.stderr.read() if proc.stderr else b""
    raise AssertionError(f"server did not start: {stderr.decode()}")


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    return proc.returncode or 0, stderr.decode()


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
        for _ in range(100):
            async with http.get(f"{base}/search/{job_id}") as resp:
                if (await resp.json())["status"] == "STARTED":
                    break
            await asyncio.sleep(0.05)
        started = time.monotonic()
        code, stderr = await stop(proc)
        assert code == 0, stderr
        assert time.monotonic() - started < 10  # within Docker's grace period
        assert "handed back to the queue" in stderr

        fake.latency = 0
        proc, port = await start(tmp_path, database_url, github=github)
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            for _ in range(200):
                async with http.get(f"{base}/search/{job_id}") as resp:
                    status = (await resp.json())["status"]
                if status in ("SUCCESS", "FAILURE"):
                    break
                await asyncio.sleep(0.05)
            assert status == "SUCCESS"
            async with http.get(f"{base}/search_result/{job_id}") as resp:
                assert (await resp.json())["total"] == 1
        finally:
            await stop(proc)
