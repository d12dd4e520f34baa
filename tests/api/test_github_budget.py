"""The shared GitHub budget: what a client can make gistcache ask GitHub, and what is
kept for the users already cached."""

from __future__ import annotations

import asyncio
from ipaddress import ip_network
from typing import Any

from limits import parse

from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.github import many_gists
from tests.support.http import Client, ClientFactory
from tests.support.waiting import eventually


async def test_unknown_and_secret_gist_ids_are_remembered_for_the_not_found_ttl(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    secret = fake.add_gist("octocat", {"s.py": "secret\n"}, public=False)
    for gist_id in ("cafe0000", secret.id):
        for _ in range(3):
            resp = await client.get(f"/api/v3/gists/{gist_id}")
            assert resp.status == 404
            assert (await resp.json())["message"] == "Not Found"
        # one GET /gists/{id} for three answers
        assert len(fake.api_requests(f"/gists/{gist_id}")) == 1, gist_id
    clock.advance(299)
    assert (await client.get("/api/v3/gists/cafe0000")).status == 404
    assert len(fake.api_requests("/gists/cafe0000")) == 1
    clock.advance(2)  # past GISTCACHE_NOT_FOUND_TTL: GitHub is asked again
    assert (await client.get("/api/v3/gists/cafe0000")).status == 404
    assert len(fake.api_requests("/gists/cafe0000")) == 2


def _forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_a_clients_budget_counts_the_github_requests_it_causes(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    many_gists(fake, "prolific", 250)  # three pages on GitHub
    client = await make_client(
        client_github_budget=parse("5/hour"), trusted_proxies=(ip_network("127.0.0.1"),)
    )
    alice = _forwarded("203.0.113.7")
    resp = await client.get("/prolific", headers=alice)
    assert resp.status == 200
    assert len(fake.api_requests("/gists")) == 3  # a cold list: each of its pages counts
    for _ in range(5):  # cached answers cost nothing
        assert (await client.get("/prolific", headers=alice)).status == 200
    for login in ("nobody-1", "nobody-2"):  # an unknown user costs one
        assert (await client.get(f"/{login}", headers=alice)).status == 404
    sent = len(fake.api_requests())

    over = await client.get("/nobody-3", headers=alice)
    assert over.status == 429
    assert over.content_type == "application/problem+json"
    problem = await over.json()
    assert problem["type"] == "urn:gistcache:problem:github-budget-spent"
    assert "at most 5 GitHub API requests per 3600 s" in problem["detail"]
    assert 3500 <= int(over.headers["Retry-After"]) <= 3600
    gist = await client.get("/api/v3/gists/cafe0001", headers=alice)  # GitHub's shape there
    assert gist.status == 429
    assert (await gist.json())["message"].startswith("API rate limit exceeded")
    search = await client.post(
        "/api/v1/search", json={"username": "nobody-4", "pattern": "x"}, headers=alice
    )
    assert search.status == 429
    assert len(fake.api_requests()) == sent  # none of them reached GitHub

    # what is cached still answers, a stale list as STALE rather than a 429
    clock.advance(61)
    stale = await client.get("/prolific", headers=alice)
    assert stale.status == 200
    assert stale.headers["X-Cache"] == "STALE"
    assert len(fake.api_requests()) == sent
    # and another client has a budget of its own, which revalidates the list for everyone
    bob = await client.get("/prolific", headers=_forwarded("198.51.100.1"))
    assert bob.headers["X-Cache"] == "REVALIDATED"
    assert len(fake.api_requests()) == sent + 3


async def test_a_revalidation_github_does_not_count_costs_the_client_nothing(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    client = await make_client(client_github_budget=parse("2/hour"), github_token="ghp_t0ken")

    async def remaining() -> int:
        overview = await (await client.get("/api/v3/rate_limit")).json()
        return int(overview["rate"]["remaining"])

    assert (await client.get("/octocat")).status == 200
    assert await remaining() == 1
    for _ in range(3):  # GitHub answers 304 to the token: free, on GitHub and here
        clock.advance(61)
        resp = await client.get("/octocat")
        assert resp.headers["X-Cache"] == "REVALIDATED"
    assert await remaining() == 1
    assert len(fake.api_requests("/users/octocat/gists")) == 4


async def test_random_names_cannot_drain_githubs_budget_from_the_cached_users(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    # the shipped defaults: 300 GitHub requests an hour per client, 10% of GitHub's
    # limit kept for revalidations; GitHub's anonymous limit made small
    fake.anonymous_limit = 20
    client = await make_client()
    assert (await client.get("/octocat")).headers["X-Cache"] == "MISS"  # 19 left
    hostile = [f"/made-up-{n}" for n in range(25)]
    hostile += [f"/api/v3/gists/{n:08x}" for n in range(25)]
    hostile += [f"/api/v3/users/also-made-up-{n}/gists" for n in range(25)]
    statuses = [(await client.get(path)).status for path in hostile]
    # until GitHub's remaining 20 are down to the reserve of 2, each new name costs one
    assert statuses[:17] == [404] * 17
    assert set(statuses[17:]) == {503}
    assert len(fake.api_requests()) == 18
    refused = await client.get("/made-up-again")
    assert refused.status == 503
    problem = await refused.json()
    assert problem["type"] == "urn:gistcache:problem:github-reserve"
    assert "kept for revalidating the users already cached" in problem["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    v3 = await client.get("/api/v3/users/made-up-again/gists")
    assert v3.status == 503
    assert "kept for revalidating" in (await v3.json())["message"]
    assert len(fake.api_requests()) == 18

    # the cached user's stale list still revalidates with GitHub
    clock.advance(61)
    resp = await client.get("/octocat")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "REVALIDATED"
    assert len(fake.api_requests("/users/octocat/gists")) == 2


async def test_a_refresh_stopped_by_its_starters_budget_is_no_429_for_who_joined_it(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    many_gists(fake, "prolific", 250)  # three pages on GitHub
    client = await make_client(
        client_github_budget=parse("3/hour"), trusted_proxies=(ip_network("127.0.0.1"),)
    )
    alice, bob = _forwarded("203.0.113.7"), _forwarded("198.51.100.1")
    for login in ("nobody-1", "nobody-2"):
        assert (await client.get(f"/{login}", headers=alice)).status == 404
    fake.latency = 0.3
    started = asyncio.ensure_future(client.get("/prolific", headers=alice))
    await asyncio.sleep(0.1)
    joined = await client.get("/prolific", headers=bob)  # joins alice's refresh
    assert (await started).status == 429  # her budget held its first page only
    assert joined.status == 503
    assert (await joined.json())["type"] == "urn:gistcache:problem:shared-refresh-stopped"
    assert joined.headers["Retry-After"] == "1"
    again = await client.get("/prolific", headers=bob)  # on his own budget
    assert again.status == 200
    assert again.headers["X-Cache"] == "MISS"


async def _job_outcome(client: Client, job_id: str) -> dict[str, Any]:
    async def status() -> dict[str, Any]:
        body: dict[str, Any] = await (await client.get(f"/api/v1/search/{job_id}")).json()
        return body

    return await eventually(
        status, lambda body: body["status"] in ("SUCCESS", "FAILURE"), what=f"job {job_id}"
    )


async def test_a_clients_search_jobs_are_charged_to_its_budget(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("octocat", {"n.txt": "a needle\n"})
    client = await make_client(
        client_github_budget=parse("3/hour"), trusted_proxies=(ip_network("127.0.0.1"),)
    )
    alice, bob = _forwarded("203.0.113.7"), _forwarded("198.51.100.1")
    jobs = []
    for n in range(6):  # made-up names, each a GitHub request were it not for the budget
        resp = await client.post(
            "/api/v1/search",
            json={"username": f"made-up-{n}", "pattern": "x", "async": True},
            headers=alice,
        )
        assert resp.status == 202
        jobs.append((await resp.json())["request_id"])
    outcomes = [(await _job_outcome(client, job_id))["error"] for job_id in jobs]
    kinds = sorted(error["type"].rsplit(":", 1)[-1] for error in outcomes)
    assert kinds == ["github-budget-spent"] * 3 + ["user-not-found"] * 3
    assert len(fake.api_requests()) == 3  # no more than her budget reached GitHub
    spent = next(e for e in outcomes if e["type"].endswith(":github-budget-spent"))
    assert spent["status"] == 429
    assert "at most 3 GitHub API requests per 3600 s" in spent["detail"]
    refused = jobs[outcomes.index(spent)]
    result = await client.get(f"/api/v1/search_result/{refused}", headers=alice)
    assert result.status == 429
    assert (await result.json())["type"] == "urn:gistcache:problem:github-budget-spent"
    # her requests see the budget her jobs spent
    overview = await (await client.get("/api/v3/rate_limit", headers=alice)).json()
    assert overview["rate"]["used"] == 3

    # another client's job is charged to its own budget, and runs
    resp = await client.post(
        "/api/v1/search",
        json={"username": "octocat", "pattern": "needle", "async": True},
        headers=bob,
    )
    assert (await _job_outcome(client, (await resp.json())["request_id"]))["status"] == "SUCCESS"


async def test_a_request_retried_through_a_github_outage_costs_the_client_one(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    client = await make_client(client_github_budget=parse("3/hour"))

    async def used() -> int:
        overview = await (await client.get("/api/v3/rate_limit")).json()
        return int(overview["rate"]["used"])

    fake.fail_next(502, times=3 * 3)  # each request's three attempts fail: an outage
    for n in range(3):
        resp = await client.get(f"/made-up-{n}")
        assert resp.status == 502
        assert (await resp.json())["type"] == "urn:gistcache:problem:github-unavailable"
        assert await used() == n + 1
    assert len(fake.api_requests()) == 9  # GitHub was tried three times for each
    # GitHub is back; the client's three requests spent its budget, one each
    over = await client.get("/made-up-3")
    assert over.status == 429
    assert (await over.json())["type"] == "urn:gistcache:problem:github-budget-spent"
    assert len(fake.api_requests()) == 9
