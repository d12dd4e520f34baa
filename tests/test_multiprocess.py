"""Several servers sharing one PostgreSQL: one refresh at a time, across processes."""

from __future__ import annotations

import asyncio

import pytest

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
