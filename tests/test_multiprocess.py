"""Several servers sharing one PostgreSQL: one refresh at a time, across processes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from tests.conftest import ClientFactory, FakeClock


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_servers_sharing_postgres_take_turns_to_refresh(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    # each server has its own in-process single flight; only the database joins them
    servers = [await make_client() for _ in range(3)]
    fake.latency = 0.3

    # nothing cached: one server asks GitHub, the others wait for its answer
    first = await asyncio.gather(*(s.get("/octocat") for s in servers))
    assert [r.status for r in first] == [200, 200, 200]
    assert sorted(r.headers["X-Cache"] for r in first) == ["HIT", "HIT", "MISS"]
    assert len(fake.api_requests()) == 1
    bodies = [await r.json() for r in first]
    assert bodies[0] == bodies[1] == bodies[2]

    # stale: one server revalidates, the others serve the still-usable cache
    clock.advance(61)
    stale = await asyncio.gather(*(s.get("/octocat") for s in servers))
    assert sorted(r.headers["X-Cache"] for r in stale) == ["REVALIDATED", "STALE", "STALE"]
    assert len(fake.api_requests()) == 2


async def test_slow_github_refreshes_hold_no_database_connection(
    client: TestClient[Any, Any], fake: FakeGitHub, clock: FakeClock
) -> None:
    users = [f"user-{n}" for n in range(30)]  # more than the connection pool holds
    for login in users:
        fake.add_gist(login, {"a.txt": "x\n"})
        assert (await client.get(f"/{login}")).status == 200
    clock.advance(61)
    fake.latency = 1.0
    refreshes = asyncio.gather(*(client.get(f"/{login}") for login in users))
    await asyncio.sleep(0.3)  # every refresh is now waiting for GitHub
    started = time.monotonic()
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert time.monotonic() - started < 0.5
    assert {r.headers["X-Cache"] for r in await refreshes} == {"REVALIDATED"}
