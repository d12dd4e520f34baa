"""How a list is fetched from GitHub: its pages followed through Link headers and asked
for together, the headers every request carries, and a GitHub Enterprise base URL."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gistcache import __version__
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.github import many_gists
from tests.support.http import ClientFactory

Client = TestClient[Any, Any]


async def test_every_github_page_is_followed_through_link_headers(
    client: Client, fake: FakeGitHub
) -> None:
    ids = many_gists(fake, "prolific", 250)
    fake.user("prolific").id = 4242
    resp = await client.get("/prolific")
    assert resp.status == 200
    assert [g["id"] for g in await resp.json()] == ids
    calls = fake.api_requests()
    assert [(c.path, c.query) for c in calls] == [
        ("/users/prolific/gists", "per_page=100"),
        ("/user/4242/gists", "per_page=100&page=2"),
        ("/user/4242/gists", "per_page=100&page=3"),
    ]


async def test_requests_to_github_carry_the_documented_headers(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    anonymous = await make_client()
    await anonymous.get("/octocat")
    headers = fake.api_requests()[-1].headers
    assert headers["Accept"] == "application/vnd.github+json"
    assert headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert headers["User-Agent"] == f"gistcache/{__version__}"
    assert "Authorization" not in headers

    with_token = await make_client(github_token="ghp_secret123")
    resp = await with_token.get("/octocat", headers={"Cache-Control": "no-cache"})
    assert resp.status == 200
    assert fake.api_requests()[-1].headers["Authorization"] == "Bearer ghp_secret123"
    assert "ghp_secret123" not in await resp.text()


async def test_a_stale_lists_known_pages_are_asked_for_at_once(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    ids = many_gists(fake, "prolific", 350)  # four pages
    first = await client.get("/prolific")
    assert first.headers["X-Cache"] == "MISS"
    fake.latency = 0.05  # long enough for requests sent together to overlap
    fake.api_peak_concurrency = 0
    clock.advance(61)
    resp = await client.get("/prolific")
    assert resp.headers["X-Cache"] == "REVALIDATED"
    assert await resp.json() == await first.json()
    calls = fake.api_requests()[4:]
    assert [c.status for c in calls] == [304] * 4
    assert all("If-None-Match" in c.headers for c in calls)
    assert fake.api_peak_concurrency == 4  # one round trip, not four in a row

    # one page changed (the third): the answer has it, the others come from the cache
    fake.update_gist(ids[250], description="only page three changed")
    fake.api_peak_concurrency = 0
    clock.advance(61)
    changed = await client.get("/prolific")
    assert changed.headers["X-Cache"] == "UPDATED"
    body = await changed.json()
    assert [g["id"] for g in body] == ids
    assert body[250]["description"] == "only page three changed"
    assert sorted(c.status or 0 for c in fake.api_requests()[8:]) == [200, 304, 304, 304]
    assert fake.api_peak_concurrency == 4
    hit = await client.get("/prolific")
    assert hit.headers["X-Cache"] == "HIT"
    assert await hit.json() == body


async def test_a_new_lists_pages_after_the_first_are_asked_for_together(
    client: Client, fake: FakeGitHub
) -> None:
    ids = many_gists(fake, "prolific", 450)  # five pages
    fake.latency = 0.05  # long enough for requests sent together to overlap
    fake.api_peak_concurrency = 0
    resp = await client.get("/prolific")
    assert resp.headers["X-Cache"] == "MISS"
    assert [g["id"] for g in await resp.json()] == ids
    calls = fake.api_requests()
    assert [c.status for c in calls] == [200] * 5  # each page once, none twice
    assert sorted(c.query for c in calls) == sorted(
        ["per_page=100"] + [f"per_page=100&page={n}" for n in range(2, 6)]
    )
    # the first page named the last: pages 2 to 5 went out together (4 at once at most)
    assert fake.api_peak_concurrency == 4
    # asked for again (stale or not), it is the same list from the same pages
    again = await client.get("/prolific", headers={"Cache-Control": "no-cache"})
    assert [g["id"] for g in await again.json()] == ids
    assert [c.status for c in fake.api_requests()[5:]] == [304] * 5


async def test_no_page_is_asked_for_twice_when_githubs_links_order_its_query_otherwise(
    client: Client, fake: FakeGitHub
) -> None:
    # as recorded by octokit.rb: page one's rel="last" is ?per_page=100&page=3, page
    # two's rel="next" names the same page as ?page=3&per_page=100
    ids = many_gists(fake, "prolific", 273)
    fake.later_links_page_first = True
    resp = await client.get("/prolific")
    assert resp.status == 200
    assert [g["id"] for g in await resp.json()] == ids
    pages = sorted(
        next((p for p in c.query.split("&") if p.startswith("page=")), "page=1")
        for c in fake.api_requests()
    )
    assert pages == ["page=1", "page=2", "page=3"]  # three pages, three requests
    again = await client.get("/prolific", headers={"Cache-Control": "no-cache"})
    assert [g["id"] for g in await again.json()] == ids
    assert [c.status for c in fake.api_requests()[3:]] == [304] * 3


async def test_a_stale_list_revalidates_when_githubs_links_spell_its_pages_otherwise(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    ids = many_gists(fake, "prolific", 273)
    await client.get("/prolific")  # pages stored as ?per_page=100&page=N
    fake.later_links_page_first = True  # now page two links to ?page=3&per_page=100
    fake.update_gist(ids[150], description="page two changed")
    clock.advance(61)
    resp = await client.get("/prolific")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "UPDATED"
    body = await resp.json()
    assert [g["id"] for g in body] == ids
    assert body[150]["description"] == "page two changed"
    assert sorted(c.status or 0 for c in fake.api_requests()[3:]) == [200, 304, 304]


async def test_github_enterprise_base_url_with_a_path(
    make_client: ClientFactory, aiohttp_server: Any
) -> None:
    ghe = FakeGitHub(api_prefix="/api/v3")
    ids = many_gists(ghe, "enterprise", 120)
    server = await aiohttp_server(ghe.app())
    client = await make_client(github_api_url=str(server.make_url("/api/v3")))
    resp = await client.get("/enterprise")
    assert resp.status == 200
    assert [g["id"] for g in await resp.json()] == ids
    assert [c.path for c in ghe.api_requests()] == [
        "/api/v3/users/enterprise/gists",
        f"/api/v3/user/{ghe.user('enterprise').id}/gists",
    ]
