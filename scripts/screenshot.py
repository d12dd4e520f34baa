"""Make docs/screenshot.png: a real results page of the running service.

Starts a fake GitHub and ``gistcache serve`` of its own as processes, on free ports (a
throwaway SQLite cache), searches the gists of ``ada`` (whom the fake seeds, as under
``make fake``) in Debian's Chromium and saves the page. Run it with ``make screenshot``."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from playwright.async_api import async_playwright

from gistcache.testing.browser import CHROMIUM_ARGS, chromium_path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = chromium_path() or "/usr/bin/chromium"
SEARCH = "/-/search?user=ada&q=requests%5C.get&context=1&glob="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_for(http: aiohttp.ClientSession, url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            async with http.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within {within:g} s")
        await asyncio.sleep(0.1)


async def make(out: Path, width: int) -> None:
    fake_port, port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        fake = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped below
            [sys.executable, "-m", "gistcache.testing.fake_github", "--port", str(fake_port),
             "--seed-users", "0", "--anonymous-limit", "5000"],
            cwd=ROOT,
        )  # fmt: skip
        env = {
            **os.environ,
            "GISTCACHE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/cache.sqlite3",
            "GISTCACHE_HOST": "127.0.0.1",
            "GISTCACHE_PORT": str(port),
            "GISTCACHE_GITHUB_API_URL": f"http://127.0.0.1:{fake_port}",
        }
        server = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "gistcache", "serve"], env=env, cwd=tmp
        )
        try:
            async with aiohttp.ClientSession() as http:
                await wait_for(http, f"http://127.0.0.1:{fake_port}/_fake/stats")
                await wait_for(http, f"http://127.0.0.1:{port}/healthz")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                )
                page = await browser.new_page(viewport={"width": width, "height": 700})
                await page.goto(f"http://127.0.0.1:{port}{SEARCH}")
                await page.locator("#results .gist").first.wait_for()
                await page.screenshot(path=str(out), full_page=True)
                await browser.close()
        finally:
            for process in (server, fake):
                process.terminate()
            for process in (server, fake):
                process.wait(timeout=15)
    print(f"saved {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--width", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(make(args.out, args.width))


if __name__ == "__main__":
    main()
