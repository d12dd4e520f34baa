"""GET /{username} and /api/v1/users/{username}/gists through the cache."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete, select, update

from gistcache import __version__
from gistcache.store.models import gist_files, gists
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.database import EngineFactory, commits, reads_of
from tests.support.github import many_gists
from tests.support.http import ClientFactory

Client = TestClient[Any, Any]


async def test_first_request_fetches_and_returns_every_field(
    client: Client, fake: FakeGitHub
) -> None:
    resp = await client.get("/octocat")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers["X-Cache"] == "MISS"
    assert resp.headers["X-Total-Count"] == "1"
    body = await resp.json()
    raw_url = body[0]["files"][0]["raw_url"]
    assert raw_url.endswith("/hello_world.rb")
    assert body == [
        {
            "id": "aa5a315d61ae9438b18d",
            "html_url": "https://gist.github.com/aa5a315d61ae9438b18d",
            "description": "Hello World Examples",
            "public": True,
            "created_at": "2024-01-01T00:00:01Z",
            "updated_at": "2024-01-01T00:00:01Z",
            "comments": 0,
            "owner": "octocat",
            "files": [
                {
                    "filename": "hello_world.rb",
                    "language": "Ruby",
                    "type": "application/x-ruby",
                    "size": 107,
                    "raw_url": raw_url,
                }
            ],
        }
    ]
    assert len(fake.api_requests()) == 1


async def test_an_old_format_item_takes_its_owner_from_user(
    client: Client, fake: FakeGitHub
) -> None:
    # older payloads name the owner only in "user" (no "owner" at all)
    fake.add_user("OldTimer")
    old = fake.add_gist("OldTimer", {"a.txt": "old\n"}, old_format=True).id
    new = fake.add_gist("OldTimer", {"b.txt": "new\n"}).id
    body = await (await client.get("/oldtimer")).json()
    assert [(g["id"], g["owner"]) for g in body] == [(new, "OldTimer"), (old, "OldTimer")]


async def test_fresh_cache_answers_without_github(client: Client, fake: FakeGitHub) -> None:
    first = await client.get("/octocat")
    assert first.headers["X-Cache"] == "MISS"
    second = await client.get("/octocat")
    assert second.status == 200
    assert second.headers["X-Cache"] == "HIT"
    assert await second.json() == await first.json()
    assert second.headers["Cache-Control"] == "public, max-age=60"
    assert len(fake.api_requests()) == 1


async def test_max_age_is_the_remaining_freshness(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    await client.get("/octocat")
    clock.advance(45)
    resp = await client.get("/octocat")
    assert resp.headers["X-Cache"] == "HIT"
    assert resp.headers["Cache-Control"] == "public, max-age=15"
    # max-age already counts the age down; an Age header would count it twice
    assert "Age" not in resp.headers


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


async def test_stale_list_is_revalidated_with_etags_per_page(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    many_gists(fake, "prolific", 150)
    first = await client.get("/prolific")
    clock.advance(61)
    resp = await client.get("/prolific")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "REVALIDATED"
    assert await resp.json() == await first.json()
    calls = fake.api_requests()
    assert [c.status for c in calls] == [200, 200, 304, 304]
    assert all("If-None-Match" not in c.headers for c in calls[:2])
    assert all(c.headers["If-None-Match"].startswith('W/"') for c in calls[2:])
    # the timestamps moved: fresh again for a full TTL
    again = await client.get("/prolific")
    assert again.headers["X-Cache"] == "HIT"
    assert again.headers["Cache-Control"] == "public, max-age=60"
    assert len(fake.api_requests()) == 4


async def test_changes_on_github_update_the_cache(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    ids = many_gists(fake, "prolific", 150)
    await client.get("/prolific")

    fake.update_gist(ids[120], {"f0.py": "changed\n"}, description="edited")
    fake.delete_gist(ids[5])
    newest = fake.add_gist("prolific", {"new.md": "# new\n"}, description="brand new").id
    clock.advance(61)

    resp = await client.get("/prolific")
    assert resp.headers["X-Cache"] == "UPDATED"
    body = await resp.json()
    expected = [newest] + [i for i in ids if i != ids[5]]
    assert [g["id"] for g in body] == expected
    edited = next(g for g in body if g["id"] == ids[120])
    assert edited["description"] == "edited"
    assert [f["filename"] for f in edited["files"]] == ["f29.py", "f0.py"]
    assert edited["updated_at"] > edited["created_at"]

    # the database holds the new list: a later HIT serves exactly it
    hit = await client.get("/prolific")
    assert hit.headers["X-Cache"] == "HIT"
    assert await hit.json() == body


async def test_a_refresh_after_a_token_change_that_finds_no_change_says_refreshed(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    many_gists(fake, "prolific", 150)
    first = await (await make_client()).get("/prolific")
    assert first.headers["X-Cache"] == "MISS"
    # another token: the ETags it has are not its own, so GitHub is asked unconditionally
    with_token = await make_client(github_token="ghp_another")
    clock.advance(61)
    resp = await with_token.get("/prolific")
    assert resp.headers["X-Cache"] == "REFRESHED"  # not a 304, and not a change either
    assert await resp.json() == await first.json()
    calls = fake.api_requests()[2:]
    assert [(c.status, "If-None-Match" in c.headers) for c in calls] == [(200, False)] * 2
    # its own ETags from now on: GitHub's 304 is what REVALIDATED stands for
    clock.advance(61)
    again = await with_token.get("/prolific")
    assert again.headers["X-Cache"] == "REVALIDATED"
    assert [c.status for c in fake.api_requests()[4:]] == [304, 304]
    forced = await with_token.get("/prolific", headers={"Cache-Control": "no-cache"})
    assert forced.headers["X-Cache"] == "REVALIDATED"


async def test_a_changed_page_after_unchanged_ones_is_merged(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    ids = many_gists(fake, "prolific", 150)
    await client.get("/prolific")
    fake.update_gist(ids[140], description="only page two changed")
    clock.advance(61)

    resp = await client.get("/prolific")
    assert resp.headers["X-Cache"] == "UPDATED"
    body = await resp.json()
    assert [g["id"] for g in body] == ids
    assert body[140]["description"] == "only page two changed"
    # page one was unchanged (304, served from the cache), page two came anew
    assert [c.status for c in fake.api_requests()[2:]] == [304, 200]


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


async def test_a_list_that_shrank_drops_the_answers_for_pages_it_no_longer_has(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    ids = many_gists(fake, "prolific", 250)  # three pages
    await client.get("/prolific")
    for gist_id in ids[:60]:
        fake.delete_gist(gist_id)  # 190 left: two pages
    clock.advance(61)
    resp = await client.get("/prolific")
    assert resp.headers["X-Cache"] == "UPDATED"
    assert [g["id"] for g in await resp.json()] == ids[60:]
    hit = await client.get("/prolific")
    assert [g["id"] for g in await hit.json()] == ids[60:]


async def test_logins_are_case_insensitive(client: Client, fake: FakeGitHub) -> None:
    first = await client.get("/OctoCat")
    second = await client.get("/api/v1/users/octocat/gists")
    assert first.status == second.status == 200
    assert first.headers["X-Cache"] == "MISS"
    assert second.headers["X-Cache"] == "HIT"
    assert await first.json() == await second.json()
    assert len(fake.api_requests()) == 1


async def test_unknown_user_is_404_and_remembered(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    resp = await client.get("/nobody-here")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == 404
    assert body["type"] == "urn:gistcache:problem:user-not-found"

    clock.advance(200)
    again = await client.get("/Nobody-Here")
    assert again.status == 404
    assert len(fake.api_requests()) == 1

    clock.advance(101)  # past the 300 s memory: ask GitHub again, and now it exists
    fake.add_gist("nobody-here", {"a.txt": "hi\n"})
    found = await client.get("/nobody-here")
    assert found.status == 200
    assert found.headers["X-Cache"] == "MISS"
    assert len(await found.json()) == 1
    assert len(fake.api_requests()) == 2


async def test_user_deleted_on_github_loses_the_cached_list(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    fake.add_gist("leaver", {"a.txt": "hi\n"})
    assert (await client.get("/leaver")).status == 200
    del fake.users["leaver"]
    clock.advance(61)
    assert (await client.get("/leaver")).status == 404
    assert (await client.get("/leaver")).status == 404
    assert len(fake.api_requests()) == 2


async def test_client_no_cache_forces_revalidation(client: Client, fake: FakeGitHub) -> None:
    await client.get("/octocat")
    resp = await client.get("/octocat", headers={"Cache-Control": "no-cache"})
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "REVALIDATED"
    calls = fake.api_requests()
    assert [c.status for c in calls] == [200, 304]


async def test_our_etag_answers_if_none_match_with_304(client: Client, fake: FakeGitHub) -> None:
    first = await client.get("/octocat")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')

    resp = await client.get("/octocat", headers={"If-None-Match": etag})
    assert resp.status == 304
    assert await resp.read() == b""
    assert resp.headers["ETag"] == etag
    assert resp.headers["X-Cache"] == "HIT"

    other = await client.get("/octocat", headers={"If-None-Match": '"something-else"'})
    assert other.status == 200


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        ("W/{etag}", 304),  # a weak tag compares equal: GET uses the weak comparison
        ('"something-else", {etag}', 304),
        ('"a",W/{etag} , "b"', 304),
        ("*", 304),
        ('"a", "b"', 200),
        ('W/"something-else"', 200),
        ("{unquoted}", 200),  # an entity tag is quoted; a bare word names none
    ],
)
async def test_if_none_match_forms(
    client: Client, fake: FakeGitHub, if_none_match: str, status: int
) -> None:
    fake.add_gist("octocat", {"a.py": "1"})
    first = await client.get("/octocat")
    etag = first.headers["ETag"]
    value = if_none_match.format(etag=etag, unquoted=etag.strip('"'))
    resp = await client.get("/octocat", headers={"If-None-Match": value})
    assert resp.status == status
    assert resp.headers["ETag"] == etag
    assert await resp.read() == (b"" if status == 304 else await first.read())


@pytest.mark.parametrize(
    "path",
    [
        "/prolific",
        "/prolific?page=2&per_page=2",
        "/api/v1/users/prolific/gists",
        "/api/v1/users/prolific/gists?per_page=1",
    ],
)
async def test_a_weak_etag_matches_on_every_list_that_answers_304(
    client: Client, fake: FakeGitHub, path: str
) -> None:
    # caching clients (hishel, which githubkit uses) send back W/"…"
    many_gists(fake, "prolific", 5)
    first = await client.get(path)
    etag = first.headers["ETag"]
    assert not etag.startswith("W/")
    for offered in (f"W/{etag}", f'"other", W/{etag}'):
        resp = await client.get(path, headers={"If-None-Match": offered})
        assert resp.status == 304, offered
        assert await resp.read() == b""
    changed = await client.get(path, headers={"If-None-Match": 'W/"other"'})
    assert changed.status == 200


async def test_restart_within_ttl_makes_no_github_call(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    before = await make_client()
    body = await (await before.get("/octocat")).json()
    await before.close()

    after = await make_client()
    resp = await after.get("/octocat")
    assert resp.headers["X-Cache"] == "HIT"
    assert await resp.json() == body
    assert len(fake.api_requests()) == 1


async def test_pagination_of_our_own_list(client: Client, fake: FakeGitHub) -> None:
    ids = many_gists(fake, "prolific", 25)
    resp = await client.get("/prolific?page=2&per_page=10")
    assert resp.status == 200
    assert [g["id"] for g in await resp.json()] == ids[10:20]
    assert resp.headers["X-Total-Count"] == "25"
    links = {
        part.split(";")[1].strip(): part.split(";")[0].strip()[1:-1]
        for part in resp.headers["Link"].split(", ")
    }
    base = str(client.make_url("/prolific"))
    assert links == {
        'rel="next"': f"{base}?page=3&per_page=10",
        'rel="prev"': f"{base}?page=1&per_page=10",
        'rel="first"': f"{base}?page=1&per_page=10",
        'rel="last"': f"{base}?page=3&per_page=10",
    }

    last = await client.get("/prolific?page=3&per_page=10")
    assert [g["id"] for g in await last.json()] == ids[20:]
    assert 'rel="next"' not in last.headers["Link"]

    beyond = await client.get("/prolific?page=9&per_page=10")
    assert beyond.status == 200
    assert await beyond.json() == []

    only_page = await client.get("/prolific?page=1")  # per_page defaults to 30
    assert len(await only_page.json()) == 25
    assert 'rel="next"' not in only_page.headers["Link"]
    assert len(fake.api_requests()) == 1


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "per_page=0", "per_page=101", "per_page=1.5", "page="],
)
async def test_bad_paging_values_are_400(client: Client, fake: FakeGitHub, query: str) -> None:
    resp = await client.get(f"/octocat?{query}")
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == 400
    assert body["type"] == "urn:gistcache:problem:invalid-query"
    assert fake.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/a..b",
        "/a.b",
        "/" + "x" * 40,
        "/%C3%BCser",
        "/a%20b",
        "/a%00b",
        "/api/v1/users/a..b/gists",
        "/api/v1/users/" + "x" * 40 + "/gists",
    ],
)
async def test_invalid_usernames_are_400_and_never_reach_github(
    client: Client, fake: FakeGitHub, path: str
) -> None:
    resp = await client.get(path)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["type"] == "urn:gistcache:problem:invalid-username"
    assert fake.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/a%2Fb",
        "/..%2F..%2Fetc",
        "/a/b",
        "/%2e%2e",
        "/api/v1/users/%2e%2e/gists",
        "/api/v1/users/a%2Fb/gists",
        "/api/v1/users/../gists",
    ],
)
async def test_paths_that_are_not_a_username_never_reach_github(
    client: Client, fake: FakeGitHub, path: str
) -> None:
    # sent exactly as written: no client-side normalisation of dots or escapes
    resp = await client.session.get(client.make_url("").with_path(path, encoded=True))
    assert resp.status in (400, 404)
    assert resp.content_type == "application/problem+json"
    assert fake.requests == []


async def test_fixed_paths_win_and_the_api_form_reaches_such_users(
    client: Client, fake: FakeGitHub
) -> None:
    fake.add_gist("ping", {"a.txt": "pong?\n"})
    assert await (await client.get("/ping")).text() == "pong"
    assert fake.requests == []
    resp = await client.get("/api/v1/users/ping/gists")
    assert resp.status == 200
    assert [g["owner"] for g in await resp.json()] == ["ping"]


async def test_unknown_routes_and_methods_are_problems(client: Client) -> None:
    resp = await client.get("/a/b/c")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    resp = await client.post("/octocat")
    assert resp.status == 405
    assert resp.content_type == "application/problem+json"
    assert "GET" in resp.headers["Allow"]


async def test_request_id_is_echoed_or_made(client: Client) -> None:
    resp = await client.get("/ping", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/ping", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(made.headers["X-Request-ID"]) == 32


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


async def test_unchanged_gists_are_not_rewritten(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    settings: Any,
    make_engine: EngineFactory,
) -> None:
    client = await make_client(memory_cache_mb=0)  # every answer read from the database
    ids = many_gists(fake, "prolific", 3)
    await client.get("/prolific")
    # mark the stored files of two gists behind the service's back
    engine = make_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(update(gist_files).values(language="MARKER"))

    fake.update_gist(ids[1], {"f1.py": "changed\n"})
    clock.advance(61)
    assert (await client.get("/prolific")).headers["X-Cache"] == "UPDATED"
    resp = await client.get("/prolific")
    assert resp.headers["X-Cache"] == "HIT"  # read back from the database
    languages = {g["id"]: {f["language"] for f in g["files"]} for g in await resp.json()}
    # only the gist whose updated_at moved had its files written again
    assert languages == {ids[0]: {"MARKER"}, ids[1]: {"Python"}, ids[2]: {"MARKER"}}


async def test_concurrent_requests_share_one_refresh(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    await client.get("/octocat")
    clock.advance(61)
    fake.latency = 0.2
    responses = await asyncio.gather(*(client.get("/octocat") for _ in range(200)))
    assert {r.status for r in responses} == {200}
    # those that came after the shared refresh finished found the cache fresh
    assert {r.headers["X-Cache"] for r in responses} <= {"REVALIDATED", "HIT"}
    assert "REVALIDATED" in {r.headers["X-Cache"] for r in responses}
    assert len(fake.api_requests()) == 2  # one list request upstream for all 200


async def test_no_cache_does_not_bypass_the_not_found_memory(
    client: Client, fake: FakeGitHub
) -> None:
    assert (await client.get("/ghost")).status == 404
    resp = await client.get("/ghost", headers={"Cache-Control": "no-cache"})
    assert resp.status == 404
    assert len(fake.api_requests()) == 1


async def test_text_with_nul_is_stored_the_same_on_every_database(
    client: Client, fake: FakeGitHub
) -> None:
    fake.add_gist("odd", {"a.txt": "x"}, description="before\x00after")
    resp = await client.get("/odd")
    assert resp.status == 200
    assert (await resp.json())[0]["description"] == "before\ufffdafter"
    again = await client.get("/odd")
    assert again.headers["X-Cache"] == "HIT"


LONE = "\ud800"  # a UTF-16 surrogate with no partner: JSON can carry it, UTF-8 cannot


def _gist_with_a_lone_surrogate(fake: FakeGitHub, where: str) -> str:
    """A gist of "odd" whose ``where`` (as GitHub's JSON names it) holds a lone surrogate,
    sent as the ``\\ud800`` escape; the gist's id."""
    name = f"a{LONE}.txt" if where in ("filename", "raw_url") else "a.txt"
    description = f"before{LONE}after" if where == "description" else "plain"
    gist = fake.add_gist("odd", {name: "needle\n"}, description=description)
    if where == "language":
        gist.files[name].fields["language"] = f"Py{LONE}"
    elif where == "raw_url":
        fake.quote_raw_urls = False  # the file's name in its raw URL as it is, not %XX
    elif where == "html_url":
        gist.fields["html_url"] = f"https://gist.github.com/{gist.id}{LONE}"
    return gist.id


@pytest.mark.parametrize("where", ["description", "filename", "language", "raw_url", "html_url"])
async def test_a_lone_surrogate_from_github_is_replaced_on_every_endpoint(
    client: Client, fake: FakeGitHub, fake_server: TestServer, where: str
) -> None:
    gist_id = _gist_with_a_lone_surrogate(fake, where)
    async with ClientSession(headers={"User-Agent": "test"}) as github:
        sent_by_github = await (await github.get(fake_server.make_url("/users/odd/gists"))).read()
    assert b"\\ud800" in sent_by_github  # the JSON escape, as GitHub would send it

    resp = await client.get("/odd")
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Cache"] == "MISS"
    [listed] = await resp.json()
    text = json.dumps(listed, ensure_ascii=False)
    assert LONE not in text
    if where.endswith("_url"):
        assert "%ED%A0%80" in text  # escaped as a request sends it: the same URL
    else:
        assert "\ufffd" in text  # replaced, as a NUL is
    sent = len(fake.api_requests("/users/odd"))

    search = {"username": "odd", "pattern": "needle"}
    answers = [
        await client.get("/odd"),
        await client.get("/api/v1/users/odd/gists"),
        await client.post("/api/v1/search", json=search),
        await client.post(
            "/api/v1/search", json=search, headers={"Accept": "application/x-ndjson"}
        ),
        await client.get("/-/users/odd"),
        await client.get("/-/search", params={"user": "odd", "q": "needle"}),
        await client.get("/api/v3/users/odd/gists"),
        await client.get(f"/api/v3/gists/{gist_id}"),
    ]
    for answer in answers:
        assert answer.status == 200, (answer.url, await answer.text())
        await answer.read()
    assert answers[0].headers["X-Cache"] == "HIT"
    found = await answers[2].json()
    assert (found["total"], found["skipped"]) == (1, [])  # its raw URL still names the file
    # the list was cached once: asking again cost GitHub nothing (the gist's own
    # GET /gists/{id} under /api/v3 is one request of its own)
    assert len(fake.api_requests("/users/odd")) == sent


@pytest.mark.parametrize("memory_mb", [64, 0])
async def test_a_fresh_list_is_answered_from_memory_without_the_database(
    make_client: ClientFactory,
    fake: FakeGitHub,
    settings: Any,
    memory_mb: int,
    make_engine: EngineFactory,
) -> None:
    client = await make_client(memory_cache_mb=memory_mb)
    first = await client.get("/octocat")
    listed = await first.json()
    assert len(listed) == 1
    # empty the cache tables behind the service's back
    engine = make_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(delete(gist_files))
        await conn.execute(delete(gists))

    resp = await client.get("/octocat")
    assert resp.headers["X-Cache"] == "HIT"
    if memory_mb:
        assert await resp.json() == listed  # this server's memory answered
        assert resp.headers["ETag"] == first.headers["ETag"]
    else:
        assert await resp.json() == []  # the database answered
    assert len(fake.api_requests()) == 1


async def test_a_user_gone_from_github_leaves_no_copy_in_memory(
    client: Client, fake: FakeGitHub
) -> None:
    assert (await client.get("/octocat")).headers["X-Cache"] == "MISS"
    del fake.users["octocat"]
    gone = await client.get("/octocat", headers={"Cache-Control": "no-cache"})
    assert gone.status == 404
    assert (await client.get("/octocat")).status == 404  # not the list held in memory


async def test_a_revalidation_that_changes_nothing_does_not_render_the_list_again(
    client: Client, fake: FakeGitHub, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gistcache.domain.results as results
    from gistcache.domain.gists import render_gists as render

    renders: list[int] = []

    def counted(gists: Any) -> bytes:
        renders.append(len(gists))
        return render(gists)

    monkeypatch.setattr(results, "render_gists", counted)
    many_gists(fake, "prolific", 150)
    first = await client.get("/prolific")
    assert renders == [150]
    clock.advance(61)
    again = await client.get("/prolific")
    assert again.headers["X-Cache"] == "REVALIDATED"
    assert [c.status for c in fake.api_requests()][-2:] == [304, 304]
    assert await again.read() == await first.read()
    assert again.headers["ETag"] == first.headers["ETag"]
    assert renders == [150]  # the held copy's JSON answered
    # a change upstream is rendered anew
    fake.add_gist("prolific", {"new.txt": "new\n"})
    clock.advance(61)
    changed = await client.get("/prolific")
    assert changed.headers["X-Cache"] == "UPDATED"
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert len(await changed.json()) == 151
    assert renders == [150, 151]


@pytest.mark.parametrize("memory_mb", [64, 0])
async def test_a_revalidation_of_the_list_held_in_memory_reads_no_gist_from_the_database(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, memory_mb: int
) -> None:
    client = await make_client(memory_cache_mb=memory_mb)
    ids = many_gists(fake, "prolific", 150)
    await client.get("/prolific")
    clock.advance(61)
    # the first revalidation reads the stored list (what was saved, not GitHub's parse)
    assert (await client.get("/prolific")).headers["X-Cache"] == "REVALIDATED"
    with reads_of("gist_files") as reads:
        clock.advance(61)
        again = await client.get("/prolific")
        assert again.headers["X-Cache"] == "REVALIDATED"
        assert [g["id"] for g in await again.json()] == ids
        assert bool(reads) == (memory_mb == 0)  # the held copy was the stored list
        # a page sent again is merged with the stored ones, read then
        fake.update_gist(ids[120], description="changed on page two")
        clock.advance(61)
        changed = await client.get("/prolific")
        assert changed.headers["X-Cache"] == "UPDATED"
        body = await changed.json()
        assert [g["id"] for g in body] == ids
        assert body[120]["description"] == "changed on page two"
    assert [c.status for c in fake.api_requests()][-2:] in ([304, 200], [200, 304])


async def test_a_list_read_from_the_database_is_revalidated_without_reading_it_again(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    ids = many_gists(fake, "prolific", 150)
    await (await make_client()).get("/prolific")
    restarted = await make_client()  # another server on the same database
    with reads_of("gist_files") as reads:
        hit = await restarted.get("/prolific")
        assert hit.headers["X-Cache"] == "HIT"
        assert reads  # read from the database once
        reads.clear()
        clock.advance(61)
        again = await restarted.get("/prolific")
        assert again.headers["X-Cache"] == "REVALIDATED"
        assert [g["id"] for g in await again.json()] == ids
        assert reads == []  # the copy it read is the stored list: GitHub said 304


async def leases_held(engine: Any) -> list[str]:
    from gistcache.store.models import refresh_leases

    async with engine.connect() as conn:
        return list((await conn.execute(select(refresh_leases.c.login))).scalars())


@pytest.mark.parametrize("change", [False, True])
async def test_a_refresh_ends_its_lease_in_the_transaction_that_records_it(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    settings: Any,
    make_engine: EngineFactory,
    change: bool,
) -> None:
    client = await make_client()
    ids = many_gists(fake, "prolific", 150)
    await client.get("/prolific")
    clock.advance(61)
    await client.get("/prolific")  # the first revalidation reads the stored list once
    if change:
        fake.update_gist(ids[3], description="changed")
    clock.advance(61)
    with commits() as committed:
        answer = await client.get("/prolific")
    assert answer.headers["X-Cache"] == ("UPDATED" if change else "REVALIDATED")
    # one commit takes the lease; one records GitHub's answer and hands the lease back
    assert len(committed) == 2
    assert await leases_held(make_engine(settings.database_url)) == []
    clock.advance(61)  # and the next refresh can take it at once
    assert (await client.get("/prolific")).headers["X-Cache"] == "REVALIDATED"


async def test_a_refresh_whose_save_fails_still_hands_its_lease_back(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    settings: Any,
    make_engine: EngineFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gistcache.store.lists as lists

    client = await make_client()
    ids = many_gists(fake, "prolific", 150)
    await client.get("/prolific")
    fake.update_gist(ids[3], description="changed")
    clock.advance(61)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the save failed")

    save = lists.save_list
    monkeypatch.setattr(lists, "save_list", broken)
    failed = await client.get("/prolific")
    assert failed.status >= 500
    assert await leases_held(make_engine(settings.database_url)) == []
    monkeypatch.setattr(lists, "save_list", save)
    again = await client.get("/prolific")
    assert again.headers["X-Cache"] == "UPDATED"
    assert (await again.json())[3]["description"] == "changed"


async def test_a_list_read_while_its_pages_changed_is_not_taken_for_the_stored_one(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    settings: Any,
    make_engine: EngineFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gistcache.store.lists as lists
    from gistcache.store.models import list_pages

    many_gists(fake, "prolific", 150)
    await (await make_client()).get("/prolific")
    restarted = await make_client()
    engine = make_engine(settings.database_url)
    load = lists.load_gists

    async def load_while_a_refresh_commits(*args: Any, **kwargs: Any) -> Any:
        loaded = await load(*args, **kwargs)
        async with engine.begin() as conn:  # another server's save, between the reads
            await conn.execute(update(list_pages).values(etag='W/"elsewhere"'))
        return loaded

    async with engine.begin() as conn:
        stored = (await conn.execute(select(list_pages.c.page_no, list_pages.c.etag))).all()
    monkeypatch.setattr(lists, "load_gists", load_while_a_refresh_commits)
    assert (await restarted.get("/prolific")).headers["X-Cache"] == "HIT"
    monkeypatch.setattr(lists, "load_gists", load)
    # and a later save puts the first ETags back (a gist made and deleted again):
    # the pages match the ones read before the gists, which were not those pages' gists
    async with engine.begin() as conn:
        for page_no, etag in stored:
            await conn.execute(
                update(list_pages).where(list_pages.c.page_no == page_no).values(etag=etag)
            )
    with reads_of("gist_files") as reads:
        clock.advance(61)
        again = await restarted.get("/prolific")
        assert again.status == 200
        assert reads  # not marked: the stored list is read again
