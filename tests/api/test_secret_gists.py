"""Secret gists: GitHub lists them to their owner's own token, gistcache never shows,
stores, counts, searches or downloads them."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gistcache.settings import Settings
from gistcache.store.models import file_contents, gist_files, gists
from gistcache.testing.fake_github import FakeGitHub
from gistcache.testing.fake_github.payloads import GIST_NODE_PREFIX
from tests.support.clock import FakeClock
from tests.support.http import ClientFactory

Client = TestClient[Any, Any]
TOKEN = "ghp_ownersOwnToken123"


def mixed_gists(fake: FakeGitHub) -> tuple[list[str], list[str]]:
    """150 public gists of owner's and 30 secret ones among them, on both of GitHub's
    pages; their ids newest first (public, secret)."""
    fake.add_user("owner", token=TOKEN)
    public, secret = [], []
    for n in range(180):
        if n % 6 == 0:
            gist = fake.add_gist(
                "owner", {f"s{n}.txt": f"secret needle {n}\n"}, public=False, description="s"
            )
            secret.append(gist.id)
        else:
            gist = fake.add_gist("owner", {f"p{n}.txt": f"public needle {n}\n"}, description="p")
            public.append(gist.id)
    return public[::-1], secret[::-1]


async def db_ids(settings: Settings) -> tuple[set[str], set[str], set[str]]:
    """Gist ids in the gists, gist_files and file_contents tables."""
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            return (
                set((await conn.execute(select(gists.c.id))).scalars()),
                set((await conn.execute(select(gist_files.c.gist_id))).scalars()),
                set((await conn.execute(select(file_contents.c.gist_id))).scalars()),
            )
    finally:
        await engine.dispose()


async def test_secret_gists_are_never_listed_counted_or_stored(
    make_client: ClientFactory, fake: FakeGitHub, settings: Settings, clock: FakeClock
) -> None:
    public, _ = mixed_gists(fake)
    client = await make_client(github_token=TOKEN)

    resp = await client.get("/owner")
    assert resp.status == 200
    assert resp.headers["X-Total-Count"] == "150"
    assert [g["id"] for g in await resp.json()] == public
    assert all(g["public"] is True for g in await resp.json())

    # the paged list: the same slices of the public gists, and links to 3 pages of 50
    paged = await client.get("/api/v1/users/owner/gists?per_page=50&page=2")
    assert paged.headers["X-Total-Count"] == "150"
    assert [g["id"] for g in await paged.json()] == public[50:100]
    assert 'page=3>; rel="last"' in paged.headers["Link"]
    last = await client.get("/api/v1/users/owner/gists?per_page=50&page=4")
    assert await last.json() == []

    listed, files, _ = await db_ids(settings)
    assert listed == set(public)
    assert files == set(public)

    # revalidation: the pages' ETags (earned with the secret items in them) still work
    clock.advance(61)
    again = await client.get("/owner")
    assert again.headers["X-Cache"] == "REVALIDATED"
    assert [r.status for r in fake.api_requests("/gists")][-2:] == [304, 304]
    assert [g["id"] for g in await again.json()] == public

    # a new secret gist changes GitHub's first page: still nothing of it here
    newest = fake.add_gist("owner", {"new.txt": "secret needle new\n"}, public=False).id
    clock.advance(61)
    changed = await client.get("/owner")
    assert changed.headers["X-Total-Count"] == "150"
    assert [g["id"] for g in await changed.json()] == public
    listed, files, _ = await db_ids(settings)
    assert newest not in listed
    assert listed == set(public)


@pytest.mark.parametrize("graphql", [False, True], ids=["raw", "graphql"])
async def test_secret_gists_are_never_searched_nor_downloaded(
    make_client: ClientFactory, fake: FakeGitHub, settings: Settings, graphql: bool
) -> None:
    public, _ = mixed_gists(fake)
    # the owner's token could read the secret gists' texts through GraphQL too
    client = await make_client(github_token=TOKEN, graphql=graphql)

    resp = await client.post(
        "/api/v1/search", json={"username": "owner", "pattern": "needle", "per_page": 100}
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["total"] == 150
    assert [m["id"] for m in body["matches"]] == public[:100]
    assert body["skipped"] == []

    only_secret = await client.post(
        "/api/v1/search", json={"username": "owner", "pattern": "secret"}
    )
    assert (await only_secret.json())["total"] == 0

    # each public gist's file asked for once, by its raw URL or its gist's node id
    downloaded = [r.path.split("/")[3] for r in fake.raw_requests()]
    asked = [
        node.removeprefix(GIST_NODE_PREFIX)
        for r in fake.graphql_requests()
        for node in r.body["variables"]["ids"]
    ]
    assert len(downloaded) + len(asked) == 150
    assert set(downloaded) | set(asked) == set(public)
    assert (len(asked) == 150) is graphql
    _, _, contents = await db_ids(settings)
    assert contents == set(public)


async def test_secret_gists_an_earlier_version_stored_are_never_served_and_go(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, engine: AsyncEngine
) -> None:
    fake.add_user("owner", token=TOKEN)
    kept = fake.add_gist("owner", {"kept.txt": "needle\n"}).id
    hidden = fake.add_gist("owner", {"hidden.txt": "needle\n"}, public=False).id
    first = await make_client(github_token=TOKEN)
    assert [g["id"] for g in await (await first.get("/owner")).json()] == [kept]

    # what a version that kept secret gists left in the database: the secret gist too
    async with engine.begin() as conn:
        row = (await conn.execute(select(gists).where(gists.c.id == kept))).one()._asdict()
        await conn.execute(insert(gists).values({**row, "id": hidden, "public": False}))
        file_row = (
            (await conn.execute(select(gist_files).where(gist_files.c.gist_id == kept)))
            .one()
            ._asdict()
        )
        await conn.execute(
            insert(gist_files).values({**file_row, "gist_id": hidden, "filename": "hidden.txt"})
        )

    restarted = await make_client(github_token=TOKEN)
    resp = await restarted.get("/owner")
    assert resp.headers["X-Cache"] == "HIT"
    assert resp.headers["X-Total-Count"] == "1"
    assert [g["id"] for g in await resp.json()] == [kept]
    found = await (
        await restarted.post("/api/v1/search", json={"username": "owner", "pattern": "needle"})
    ).json()
    assert [m["id"] for m in found["matches"]] == [kept]
    assert all(hidden not in r.path for r in fake.raw_requests())

    clock.advance(61)  # GitHub confirms the list (304): the leftover row goes
    assert (await restarted.get("/owner")).headers["X-Cache"] == "REVALIDATED"
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).where(gists.c.id == hidden)) == 0
        assert await conn.scalar(select(func.count()).where(gist_files.c.gist_id == hidden)) == 0
    await engine.dispose()
