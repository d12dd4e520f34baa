"""Several servers sharing one database: one refresh at a time, one view of GitHub's limits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.domain.results import CacheStatus
from gistcache.services import refresh
from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.app_keys import LISTING
from tests.support.clock import FakeClock
from tests.support.http import ClientFactory


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


async def test_a_spent_rate_limit_found_by_one_server_stops_the_others(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    first, second = await make_client(), await make_client()
    fake.exhaust_rate_limit()
    resp = await first.get("/octocat")
    assert resp.status == 503
    assert int(resp.headers["Retry-After"]) > 3000  # the fake's window resets in an hour
    assert len(fake.api_requests()) == 1

    # the other server has not asked GitHub yet, but the database tells it to wait
    for login in ("octocat", "someone-else"):
        resp = await second.get(f"/{login}")
        assert resp.status == 503
        assert resp.content_type == "application/problem+json"
        assert int(resp.headers["Retry-After"]) > 3000
    # one look at GET /rate_limit (no budget; once a minute for all servers): still spent
    assert [r.path for r in fake.api_requests()] == ["/users/octocat/gists", "/rate_limit"]


async def test_a_hintless_secondary_limit_backs_off_for_every_server(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    first, second = await make_client(), await make_client()
    fake.secondary_rate_limit(retry_after=None)
    resp = await first.get("/octocat")
    assert (resp.status, resp.headers["Retry-After"]) == (503, "60")
    resp = await second.get("/octocat")
    assert (resp.status, resp.headers["Retry-After"]) == (503, "60")
    assert len(fake.api_requests()) == 1


async def test_after_github_failed_for_a_user_no_server_asks_again_at_once(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    first, second = await make_client(), await make_client()
    assert (await first.get("/octocat")).headers["X-Cache"] == "MISS"
    clock.advance(61)
    fake.fail_next(500)
    assert (await first.get("/octocat")).headers["X-Cache"] == "STALE"
    assert len(fake.api_requests()) == 2

    # the failure is remembered in the database: the other server serves the cache too
    resp = await second.get("/octocat")
    assert (resp.status, resp.headers["X-Cache"]) == (200, "STALE")
    assert len(fake.api_requests()) == 2

    clock.advance(6)  # the back-off is over: the next request asks GitHub
    assert (await second.get("/octocat")).headers["X-Cache"] == "REVALIDATED"
    assert (await first.get("/octocat")).headers["X-Cache"] == "HIT"
    assert len(fake.api_requests()) == 3


async def test_a_server_waiting_for_anothers_rate_limited_refresh_does_not_ask_itself(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    first, second = await make_client(), await make_client()
    fake.secondary_rate_limit(retry_after=120)
    fake.latency = 0.3  # the second server waits on the first one's lease meanwhile
    answers = await asyncio.gather(first.get("/octocat"), second.get("/octocat"))
    assert [(r.status, r.headers["Retry-After"]) for r in answers] == [
        (503, "120"),
        (503, "120"),
    ]
    assert len(fake.api_requests()) == 1


async def test_a_list_waited_for_elsewhere_past_its_ttl_is_served_stale_not_as_a_hit(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    """Found by the property tests: with a TTL of 0 the list another server fetched meanwhile
    answers the server that waited for it, as STALE (it was a HIT: fresh past its TTL)."""
    first, second = await make_client(cache_ttl=0), await make_client(cache_ttl=0)
    fake.latency = 0.3  # the second server waits on the first one's lease meanwhile
    answers = await asyncio.gather(first.get("/octocat"), second.get("/octocat"))
    assert sorted(r.headers["X-Cache"] for r in answers) == ["MISS", "STALE"]
    assert [r.status for r in answers] == [200, 200]
    assert (await answers[0].json()) == (await answers[1].json())
    assert len(fake.api_requests()) == 1


async def test_a_list_refreshed_early_elsewhere_reaches_a_server_when_its_copy_expires(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    first, second = await make_client(), await make_client()
    before = await (await first.get("/octocat")).json()
    gist_id = before[0]["id"]
    fake.update_gist(gist_id, {"hello_world.rb": "puts 'changed'\n"}, description="changed")
    forced = await second.get("/octocat", headers={"Cache-Control": "no-cache"})
    assert forced.headers["X-Cache"] == "UPDATED"
    assert (await forced.json())[0]["description"] == "changed"

    # the first server keeps answering its fresh copy from memory ...
    held = await first.get("/octocat")
    assert held.headers["X-Cache"] == "HIT"
    assert (await held.json())[0]["description"] == before[0]["description"]
    # ... until the cache TTL (60 s) from its own check runs out
    clock.advance(61)
    after = await first.get("/octocat")
    assert after.headers["X-Cache"] == "REVALIDATED"
    assert (await after.json())[0]["description"] == "changed"
    assert len(fake.api_requests()) == 3


async def test_a_request_that_read_a_stale_list_just_before_a_refresh_ended_does_not_repeat_it(
    client: TestClient[Any, Any], fake: FakeGitHub, clock: FakeClock
) -> None:
    # the herd race the benchmark found: a request reads the user (stale), the shared
    # refresh finishes and leaves, then the request starts a refresh of its own
    service = client.app[LISTING]
    assert (await client.get("/octocat")).headers["X-Cache"] == "MISS"
    clock.advance(61)
    assert (await client.get("/octocat")).headers["X-Cache"] == "REVALIDATED"
    late = await service._refresh("octocat")  # what that request would run next
    assert late.cache is CacheStatus.HIT
    assert len(fake.api_requests()) == 2
    forced = await service._refresh("octocat", revalidate=True)  # a no-cache still asks
    assert forced.cache is CacheStatus.REVALIDATED
    assert len(fake.api_requests()) == 3


async def test_a_no_cache_request_waits_for_the_refresh_another_server_is_making(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    first, second = await make_client(), await make_client()
    assert (await first.get("/octocat")).headers["X-Cache"] == "MISS"
    clock.advance(61)
    fake.latency = 0.3
    refreshing = asyncio.ensure_future(first.get("/octocat"))
    await asyncio.sleep(0.1)  # the first server holds the user's refresh lease now
    forced = await second.get("/octocat", headers={"Cache-Control": "no-cache"})
    assert (await refreshing).headers["X-Cache"] == "REVALIDATED"
    # not the stale copy: the answer GitHub gave the other server while this one waited
    assert forced.headers["X-Cache"] == "HIT"
    assert len(fake.api_requests()) == 2


async def test_a_refresh_lease_left_by_a_killed_server_lapses_within_the_lease(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    # a server took octocat's refresh lease and was killed before it released it
    dead = await make_client()
    service = dead.app[LISTING]
    assert await refresh.refresh_lease(service.store, "octocat", clock, "killed-server").claim()
    survivor = await make_client()
    clock.advance(refresh.REFRESH_LEASE.total_seconds() + 1)  # not the 120 s it once was
    started = time.monotonic()
    resp = await survivor.get("/octocat")
    assert (resp.status, resp.headers["X-Cache"]) == (200, "MISS")
    assert time.monotonic() - started < 5  # it did not wait for the dead server
    assert len(fake.api_requests()) == 1


async def test_a_refresh_longer_than_its_lease_keeps_it(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(refresh, "REFRESH_RENEW_SECONDS", 0.05)
    first, second = await make_client(), await make_client()
    assert (await first.get("/octocat")).headers["X-Cache"] == "MISS"
    clock.advance(61)
    fake.latency = 1.0
    refreshing = asyncio.ensure_future(first.get("/octocat"))
    await asyncio.sleep(0.3)  # the first server holds the lease and renews it
    clock.advance(refresh.REFRESH_LEASE.total_seconds() + 1)  # past the lease it first took
    await asyncio.sleep(0.2)  # renewed from the clock's new time
    forced = await second.get("/octocat", headers={"Cache-Control": "no-cache"})
    assert (await refreshing).headers["X-Cache"] == "REVALIDATED"
    # it waited for the first server's answer rather than taking the lease over
    assert forced.headers["X-Cache"] == "HIT"
    assert len(fake.api_requests()) == 2
