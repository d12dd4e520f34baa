"""The real program: `gistcache serve` as a process, migrations, SIGTERM."""

from __future__ import annotations

import asyncio
import json
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


async def _raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library would send them) and read the answer
    until the server closes the connection: its status, headers and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_unparsable_requests_are_problems_that_quote_nothing_and_log_one_line(
    tmp_path: Path, fake_server: TestServer
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'served.sqlite3'}"
    proc, port = await start(
        tmp_path,
        url,
        "--no-migrate",
        github=str(fake_server.make_url("")).rstrip("/"),
        env={"GISTCACHE_LOG_FORMAT": "text"},
    )
    marker = b"SECRETMARKER"
    requests = {
        "an over-long request line": b"GET /"
        + marker
        + b"a" * 9000
        + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        "a malformed header": b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: \x01" + marker + b"\r\n\r\n",
        "an over-long header": b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: "
        + marker * 1000
        + b"\r\n\r\n",
        "bad framing": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
        b"Content-Length: 2" + marker + b"\r\n\r\n",
        "not HTTP at all": marker + b"\x16\x03\x01\r\n\r\n",
    }
    ids = []
    try:
        for name, request in requests.items():
            status, headers, body = await _raw_exchange(port, request)
            assert status == 400, name
            assert headers["content-type"] == "application/problem+json", name
            problem = json.loads(body)
            assert problem["type"] == "urn:gistcache:problem:malformed-request", name
            assert problem["status"] == 400
            assert problem["request_id"] == headers["x-request-id"]
            assert marker not in body, name  # nothing of the input comes back
            ids.append(problem["request_id"])
        # and the server goes on serving
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as ok,
        ):
            assert ok.status == 200
    finally:
        code, stderr = await stop(proc)
    assert code == 0
    assert "Traceback" not in stderr
    assert " ERROR " not in stderr
    assert marker.decode() not in stderr
    for request_id in ids:  # one line each, naming the request's id
        [line] = [line for line in stderr.splitlines() if request_id in line]
        assert " INFO gistcache.web: malformed request from 127.0.0.1 " in line
