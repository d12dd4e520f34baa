"""The cache keeps each listed gist's item as GitHub sent it, and the user's numeric id
(for answers in GitHub's own shape); lists cached before that are fetched
again, unconditionally, at their next revalidation."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.store.models import gists, users
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.github import many_gists
from tests.support.http import ClientFactory


async def _stored(engine: Any, login: str) -> tuple[list[Any], Any]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(gists.c.id, gists.c.raw)
                .where(gists.c.owner_login == login)
                .order_by(gists.c.position)
            )
        ).all()
        github_id = (
            await conn.execute(select(users.c.github_id).where(users.c.login == login))
        ).scalar_one()
    return rows, github_id


async def test_each_item_is_stored_as_github_sent_it_and_survives_a_restart(
    make_client: ClientFactory, fake: FakeGitHub, fake_server: Any, engine: AsyncEngine
) -> None:
    many_gists(fake, "prolific", 3)
    fake.add_gist("prolific", {"s.py": "secret\n"}, public=False)
    client = await make_client()
    assert (await client.get("/prolific")).status == 200

    # what GitHub (the fake) sends for this list, read straight from it
    url = fake_server.make_url("/users/prolific/gists?per_page=100")
    async with aiohttp.ClientSession(headers={"User-Agent": "test"}) as direct:
        sent = await (await direct.get(url)).text()
    items = json.loads(sent)  # json keeps the keys in the order they came
    rows, github_id = await _stored(engine, "prolific")
    assert [row.id for row in rows] == [item["id"] for item in items]
    for row, item in zip(rows, items, strict=True):
        assert list(json.loads(row.raw)) == list(item)  # every key, in GitHub's order
        assert json.loads(row.raw) == item
    assert github_id == fake.user("prolific").id

    await client.close()
    again = await make_client()
    assert (await again.get("/prolific")).headers["X-Cache"] == "HIT"
    rows_after, id_after = await _stored(engine, "prolific")
    assert [(r.id, r.raw) for r in rows_after] == [(r.id, r.raw) for r in rows]
    assert id_after == github_id


async def test_a_list_cached_without_items_is_fetched_again_unconditionally(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, engine: AsyncEngine
) -> None:
    many_gists(fake, "prolific", 150)  # two pages on GitHub
    client = await make_client(memory_cache_mb=0)
    first = await client.get("/prolific")
    # as a version before 0007 left it: no items, no id
    async with engine.begin() as conn:
        await conn.execute(update(gists).values(raw=None))
        await conn.execute(update(users).values(github_id=None))

    clock.advance(61)
    resp = await client.get("/prolific")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "REFRESHED"  # sent again in full, nothing changed
    assert await resp.json() == await first.json()
    calls = fake.api_requests()
    assert [c.status for c in calls] == [200, 200, 200, 200]
    assert all("If-None-Match" not in c.headers for c in calls)
    rows, github_id = await _stored(engine, "prolific")
    assert len(rows) == 150
    assert all(row.raw is not None for row in rows)
    assert github_id == fake.user("prolific").id

    # with the items back, the next revalidation is conditional again
    clock.advance(61)
    assert (await client.get("/prolific")).headers["X-Cache"] == "REVALIDATED"
    assert [c.status for c in fake.api_requests()[4:]] == [304, 304]


async def test_an_empty_list_keeps_the_id_learnt_before(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, engine: AsyncEngine
) -> None:
    (only,) = many_gists(fake, "brief", 1)
    client = await make_client()
    await client.get("/brief")
    fake.delete_gist(only)
    clock.advance(61)
    assert await (await client.get("/brief")).json() == []
    _, github_id = await _stored(engine, "brief")
    assert github_id == fake.user("brief").id
