"""The real program in processes of its own: free ports, starting and stopping
``gistcache serve``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from tests.support.waiting import eventually


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start(
    tmp_path: Path,
    url: str,
    *args: str,
    github: str,
    env: dict[str, str] | None = None,
    program: Sequence[str] = ("-m", "gistcache"),
) -> tuple[asyncio.subprocess.Process, int]:
    """``gistcache serve`` in a process of its own, once it answers /healthz (``program``:
    what the interpreter runs, ``serve`` and ``args`` following it)."""
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
        *program,
        "serve",
        *args,
        env=env,
        cwd=tmp_path,
        stderr=asyncio.subprocess.PIPE,
    )
    async with aiohttp.ClientSession() as http:

        async def healthy() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientConnectionError:
                return False

        try:
            await eventually(healthy, what="/healthz answering 200")
            return proc, port
        except AssertionError:
            pass
    proc.kill()
    stderr = await proc.stderr.read() if proc.stderr else b""
    raise AssertionError(f"server did not start: {stderr.decode()}")


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
    return proc.returncode or 0, stderr.decode()
