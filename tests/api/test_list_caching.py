"""A user's list through the cache: what a first request returns, freshness, revalidation
and updates from GitHub, the not-found memory, restarts and one refresh shared by many."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.store.models import gist_files
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
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


async def test_unchanged_gists_are_not_rewritten(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, engine: AsyncEngine
) -> None:
    client = await make_client(memory_cache_mb=0)  # every answer read from the database
    ids = many_gists(fake, "prolific", 3)
    await client.get("/prolific")
    # mark the stored files of two gists behind the service's back
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
