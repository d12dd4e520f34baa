"""Concurrent searches share downloads per file: an overlap is fetched once, and a
search never waits for files only another search needs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.app_keys import GITHUB
from tests.support.clock import FakeClock

Client = TestClient[Any, Any]


class Gates:
    """Holds chosen files' downloads (before they reach the fake GitHub) until opened."""

    def __init__(self, client: Client, *names: str) -> None:
        self.closed = {name: asyncio.Event() for name in names}
        self.entered: set[str] = set()
        github = client.app[GITHUB]
        real = github.iter_raw

        async def gated(url: str) -> AsyncIterator[bytes]:
            name = url.rsplit("/", 1)[-1]
            self.entered.add(name)
            gate = self.closed.get(name)
            if gate is not None:
                await gate.wait()
            async for piece in real(url):
                yield piece

        github.iter_raw = gated

    def open(self, name: str) -> None:
        self.closed[name].set()

    async def reached(self, *names: str) -> None:
        for _ in range(400):
            if self.entered.issuperset(names):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"downloads of {names} never started: {self.entered}")


async def search(client: Client, pattern: str) -> dict[str, Any]:
    resp = await client.post("/api/v1/search", json={"username": "alice", "pattern": pattern})
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def downloads(fake: FakeGitHub) -> list[str]:
    return sorted(r.path.rsplit("/", 1)[-1] for r in fake.raw_requests())


def matched(body: dict[str, Any]) -> list[str]:
    return sorted(f["filename"] for m in body["matches"] for f in m["files"])


async def test_overlapping_searches_download_each_file_once(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    for name in ("f1", "f2", "f3"):
        fake.add_gist("alice", {f"{name}.txt": "needle\n"})
    gates = Gates(client, "f1.txt", "f2.txt", "f3.txt")
    first = asyncio.create_task(search(client, "needle"))
    await gates.reached("f1.txt", "f2.txt", "f3.txt")
    # the list changes: the second search misses one more file than the first
    fake.add_gist("alice", {"f4.txt": "needle\n"})
    clock.advance(61)
    second = asyncio.create_task(search(client, "needle"))
    await gates.reached("f4.txt")
    for name in ("f1.txt", "f2.txt", "f3.txt"):
        gates.open(name)
    one, two = await asyncio.gather(first, second)
    assert matched(one) == ["f1.txt", "f2.txt", "f3.txt"]
    assert matched(two) == ["f1.txt", "f2.txt", "f3.txt", "f4.txt"]
    assert (one["skipped"], two["skipped"]) == ([], [])
    assert downloads(fake) == ["f1.txt", "f2.txt", "f3.txt", "f4.txt"]


async def test_a_search_does_not_wait_for_files_only_another_needs(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    slow = fake.add_gist("alice", {"slow.txt": "needle\n"})
    fake.add_gist("alice", {"shared.txt": "needle\n"})
    gates = Gates(client, "slow.txt", "shared.txt")
    first = asyncio.create_task(search(client, "needle"))
    await gates.reached("slow.txt", "shared.txt")
    # the second search's list no longer holds the slow file, and holds one of its own
    fake.delete_gist(slow.id)
    fake.add_gist("alice", {"own.txt": "needle\n"})
    clock.advance(61)
    second = asyncio.create_task(search(client, "needle"))
    await gates.reached("own.txt")
    gates.open("shared.txt")
    body = await asyncio.wait_for(second, timeout=10)  # while slow.txt is still held
    assert matched(body) == ["own.txt", "shared.txt"]
    assert body["skipped"] == []
    assert not first.done()
    assert downloads(fake) == ["own.txt", "shared.txt"]
    gates.open("slow.txt")
    await first
    assert downloads(fake) == ["own.txt", "shared.txt", "slow.txt"]
