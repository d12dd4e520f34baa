"""The README's demo recovery, as typed: the fake GitHub's budget runs out, the fake is
restarted with ``--anonymous-limit 5000``, and gistcache serves again without a restart
of its own (it asks GitHub's ``GET /rate_limit`` while blocked)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from tests.support.processes import free_port, start, stop
from tests.support.waiting import eventually

UA = {"User-Agent": "recovery-test"}


async def _fake(port: int, *args: str) -> asyncio.subprocess.Process:
    """``make fake FAKE_ARGS=…``: the fake GitHub's command line, once it answers."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gistcache.testing.fake_github", "--port", str(port), *args,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip

    async def answering() -> bool:
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/_fake/stats") as resp,
            ):
                return resp.status == 200
        except aiohttp.ClientConnectionError:
            return False

    await eventually(answering, what="the fake GitHub answering")
    return proc


async def test_restarting_the_fake_with_a_larger_limit_ends_the_block(tmp_path: Path) -> None:
    fake_port = free_port()
    fake = await _fake(fake_port, "--anonymous-limit", "2")
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}"
    server, port = await start(tmp_path, url, github=f"http://127.0.0.1:{fake_port}")
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(headers=UA) as http:
            for login in ("octocat", "user1"):  # the second answer says none remain
                async with http.get(f"{base}/{login}") as resp:
                    assert resp.status == 200, login

            fake.terminate()
            await fake.wait()
            fake = await _fake(fake_port, "--anonymous-limit", "5000")
            # no restart of gistcache: blocked, it asks the fake's GET /rate_limit (at most
            # once a minute), which says requests remain, and asks for the list
            async with http.get(f"{base}/user2") as resp:
                assert resp.status == 200
                assert resp.headers["X-Cache"] == "MISS"
            async with http.get(f"http://127.0.0.1:{fake_port}/_fake/stats") as resp:
                assert (await resp.json())["api_requests"] == 2  # /rate_limit, the list
            async with http.get(f"{base}/octocat") as resp:
                assert resp.status == 200  # cached before: served as ever
    finally:
        fake.terminate()
        await fake.wait()
        code, stderr = await stop(server)
    assert code == 0, stderr
