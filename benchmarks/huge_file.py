"""Huge file: fetch, store and search one gist with a 200 MB file, and measure the
server's peak memory growth (target: under 100 MB) and throughput.

Runs the fake GitHub and ``gistcache serve`` as separate processes, so the figures
are the server's own (VmHWM from /proc), then writes benchmarks/results/.

    python benchmarks/huge_file.py [--size-mb 200] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


async def wait_until_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def run(size_mb: int, database_url: str | None) -> dict[str, Any]:
    fake_port, app_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="gistcache-bench-"))
    url = database_url or f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}"
    fake = subprocess.Popen(  # noqa: ASYNC220 - long-lived helper processes
        [sys.executable, "-m", "gistcache.testing.fake_github", "--port", str(fake_port),
         "--seed-users", "0", "--huge-file-mb", str(size_mb)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {
        **os.environ,
        "GISTCACHE_DATABASE_URL": url,
        "GISTCACHE_GITHUB_API_URL": f"http://127.0.0.1:{fake_port}",
        "GISTCACHE_HOST": "127.0.0.1",
        "GISTCACHE_PORT": str(app_port),
        "GISTCACHE_MAX_FILE_BYTES": str((size_mb + 1) * 1024 * 1024),
        "GISTCACHE_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "gistcache", "serve"], env=env, cwd=workdir
    )
    try:
        await wait_until_up(f"http://127.0.0.1:{fake_port}/_fake/stats")
        await wait_until_up(f"http://127.0.0.1:{app_port}/healthz")
        before = memory_kib(server.pid)
        timeout = aiohttp.ClientTimeout(total=3600)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            answers, seconds = [], []
            for _ in ("cold", "warm"):  # the second search finds the contents cached
                started = time.perf_counter()
                async with http.post(
                    f"http://127.0.0.1:{app_port}/api/v1/search",
                    json={"username": "huge", "pattern": "needle"},
                ) as resp:
                    answers.append(await resp.json())
                seconds.append(time.perf_counter() - started)
        (cold, warm), (cold_seconds, warm_seconds) = answers, seconds
        after = memory_kib(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        fake.send_signal(signal.SIGTERM)
        server.wait(30)
        fake.wait(30)
    if cold.get("total") != 1 or warm != cold:
        raise RuntimeError(f"unexpected search answers: {cold!r} {warm!r}")
    growth_mb = (after["VmHWM"] - before["VmRSS"]) / 1024
    return {
        "scenario": "huge_file",
        "size_mb": size_mb,
        "database": url.split(":", 1)[0],
        "cold_search_seconds": round(cold_seconds, 2),
        "cold_mb_per_s": round(size_mb / cold_seconds, 1),
        "warm_search_seconds": round(warm_seconds, 2),
        "warm_mb_per_s": round(size_mb / warm_seconds, 1),
        "rss_before_mb": round(before["VmRSS"] / 1024, 1),
        "peak_rss_mb": round(after["VmHWM"] / 1024, 1),
        "peak_growth_mb": round(growth_mb, 1),
        "target_peak_growth_mb": 100,
        "target_met": growth_mb < 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get("GISTCACHE_BENCH_DATABASE_URL"))
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    figures: dict[str, Any] = asyncio.run(run(args.size_mb, args.database_url))
    figures["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    figures["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print(json.dumps(figures, indent=2))
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = f"{dt.date.today().isoformat()}-huge_file-{figures['database'].split('+')[0]}.json"
        (RESULTS / name).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
