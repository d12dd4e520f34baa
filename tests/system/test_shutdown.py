"""SIGTERM while requests wait on a GitHub that never answers: the process is gone within
GISTCACHE_SHUTDOWN_TIMEOUT plus one second, whatever the requests were doing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gistcache.testing.fake_github import FakeGitHub
from tests.support.processes import start

SHUTDOWN_TIMEOUT = 2.0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/hanging", None),
        ("POST", "/api/v1/search", {"username": "hanging", "pattern": "x"}),
        ("POST", "/api/v1/search", {"username": "hanging", "pattern": "x", "async": True}),
    ],
    ids=["list", "search", "search-job"],
)
async def test_sigterm_with_a_request_held_upstream_exits_within_the_timeout(
    tmp_path: Path, method: str, path: str, body: dict[str, object] | None
) -> None:
    fake = FakeGitHub()
    fake.add_gist("hanging", {"a.txt": "x\n"})
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    url = f"sqlite+aiosqlite:///{tmp_path / 'cache.sqlite3'}"
    github = str(server.make_url("")).rstrip("/")
    proc, port = await start(
        tmp_path,
        url,
        github=github,
        env={
            "GISTCACHE_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
            # longer than the test: only the shutdown can end the wait
            "GISTCACHE_GITHUB_TIMEOUT": "300",
            "GISTCACHE_GITHUB_RETRIES": "0",
            "GISTCACHE_SEARCH_TIMEOUT": "300",
        },
    )
    fake.latency = 3600  # from now on GitHub takes every request and never answers
    try:
        async with aiohttp.ClientSession() as http:
            request = asyncio.ensure_future(
                http.request(method, f"http://127.0.0.1:{port}{path}", json=body)
            )
            for _ in range(200):  # until the server's call is waiting at GitHub
                if fake.api_requests("/hanging"):
                    break
                await asyncio.sleep(0.02)
            assert fake.api_requests("/hanging"), "the request never reached GitHub"
            if body and body.get("async"):
                await request  # the job runs on; its answer came at once
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
            took = time.monotonic() - signalled
            request.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.close()
    log = stderr.decode()
    assert took < SHUTDOWN_TIMEOUT + 1, f"exit took {took:.1f} s"
    assert proc.returncode == 0, log
    assert "Traceback" not in log
    if not (body and body.get("async")):
        # the request had its grace period first, then was cancelled
        assert took >= SHUTDOWN_TIMEOUT - 0.1
        assert "cancelled 1 request(s) still running after 2 s" in log
    else:
        assert "handed back to the queue" in log


# the interpreter's teardown after the server closed everything, made slow on purpose:
# it stands for freeing a heap the memory caches have filled (measured: 0.3 s for a few
# lists, 0.8 s for 64 MB of them, more on a loaded machine), atexit hooks, and joining
# threads left running (the default executor's, one stuck in a DNS lookup)
SLOW_TEARDOWN = """
import atexit, sys, time
from gistcache.cli import main

atexit.register(time.sleep, 3)
sys.argv[0] = "gistcache"
sys.exit(main())
"""


async def test_the_process_ends_without_the_interpreters_teardown(tmp_path: Path) -> None:
    """What runs after the server closed everything cannot stretch the bound."""
    fake = FakeGitHub()
    fake.add_gist("hanging", {"a.txt": "x\n"})
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    url = f"sqlite+aiosqlite:///{tmp_path / 'cache.sqlite3'}"
    github = str(server.make_url("")).rstrip("/")
    proc, port = await start(
        tmp_path,
        url,
        github=github,
        env={"GISTCACHE_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT), "GISTCACHE_GITHUB_RETRIES": "0"},
        program=("-c", SLOW_TEARDOWN),
    )
    fake.latency = 3600
    try:
        async with aiohttp.ClientSession() as http:
            request = asyncio.ensure_future(http.get(f"http://127.0.0.1:{port}/hanging"))
            for _ in range(200):
                if fake.api_requests("/hanging"):
                    break
                await asyncio.sleep(0.02)
            assert fake.api_requests("/hanging"), "the request never reached GitHub"
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
            took = time.monotonic() - signalled
            request.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.close()
    log = stderr.decode()
    assert proc.returncode == 0, log
    assert "cancelled 1 request(s) still running after 2 s" in log
    assert took < SHUTDOWN_TIMEOUT + 1, f"exit took {took:.1f} s"


# a route that holds the event loop for 1.5 s, as a long synchronous step of a search does
BUSY_LOOP = """
import sys, time
import gistcache.app
from gistcache.cli import main

create_app = gistcache.app.create_app

def create_busy_app(settings, **kwargs):
    app = create_app(settings, **kwargs)

    async def hold(request):
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            pass
        return gistcache.app.web.Response(text="done")

    app.router.add_post("/hold-the-loop", hold)
    return app

gistcache.app.create_app = create_busy_app
sys.argv[0] = "gistcache"
sys.exit(main())
"""


async def test_the_grace_counts_from_the_signal_even_while_the_loop_is_busy(
    tmp_path: Path,
) -> None:
    fake = FakeGitHub()
    fake.add_gist("hanging", {"a.txt": "x\n"})
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    url = f"sqlite+aiosqlite:///{tmp_path / 'cache.sqlite3'}"
    github = str(server.make_url("")).rstrip("/")
    proc, port = await start(
        tmp_path,
        url,
        github=github,
        env={"GISTCACHE_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT), "GISTCACHE_GITHUB_RETRIES": "0"},
        program=("-c", BUSY_LOOP),
    )
    fake.latency = 3600
    try:
        async with aiohttp.ClientSession() as http:
            waiting = asyncio.ensure_future(http.get(f"http://127.0.0.1:{port}/hanging"))
            for _ in range(200):
                if fake.api_requests("/hanging"):
                    break
                await asyncio.sleep(0.02)
            assert fake.api_requests("/hanging"), "the request never reached GitHub"
            busy = asyncio.ensure_future(http.post(f"http://127.0.0.1:{port}/hold-the-loop"))
            await asyncio.sleep(0.3)  # the server is inside the busy step now
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=30)
            took = time.monotonic() - signalled
            waiting.cancel()
            busy.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.close()
    log = stderr.decode()
    assert proc.returncode == 0, log
    assert "cancelled 1 request(s) still running after 2 s" in log
    assert took < SHUTDOWN_TIMEOUT + 1, f"exit took {took:.1f} s"


def test_a_shutdown_that_hangs_is_ended_by_the_watchdog() -> None:
    """Whatever hangs during the shutdown, the process ends in time, with status 2."""
    script = (
        "import time\n"
        "from gistcache.serve import arm_watchdog\n"
        "from gistcache.observability.logs import configure_logging\n"
        "configure_logging('INFO')\n"
        "arm_watchdog(0.3)\n"
        "time.sleep(30)  # a cleanup that never ends\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=20, check=False
    )
    assert time.monotonic() - started < 5
    assert done.returncode == 2
    assert "shutdown still not done after 0.3 s: exiting now" in done.stderr
