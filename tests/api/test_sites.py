"""One cache database, several GitHubs: everything that came from GitHub is kept per
site (the API base URL), and rows cached before sites existed stay with the GitHub
configured when the database was upgraded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from gistcache.app import create_app
from gistcache.settings import Settings
from gistcache.store.migrate import downgrade, upgrade
from gistcache.store.models import UTCDateTime
from gistcache.store.sites import site_url
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.database import EngineFactory
from tests.support.http import ClientFactory, problem

Client = TestClient[Any, Any]


def base_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def other_server() -> AsyncIterator[tuple[FakeGitHub, TestServer]]:
    """A second GitHub, on a port (so an origin) of its own, with a tiny anonymous limit."""
    github = FakeGitHub(anonymous_limit=3)
    server = TestServer(github.app(), host="127.0.0.1")
    await server.start_server()
    yield github, server
    await server.close()


async def search(client: Client, **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/search", json={"username": "alice", **body})
    assert resp.status == 200, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


def test_a_site_is_its_api_base_url_normalised() -> None:
    assert site_url("https://API.GitHub.com/") == "https://api.github.com"
    assert site_url("https://api.github.com:443") == "https://api.github.com"
    assert site_url("http://127.0.0.1:80/") == "http://127.0.0.1"
    assert site_url("http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    assert site_url("https://ghe.example.com/api/v3/") == "https://ghe.example.com/api/v3"
    assert site_url("https://ghe.example.com/api/v3") != site_url("https://ghe.example.com")


async def test_one_database_keeps_two_githubs_apart(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    other_server: tuple[FakeGitHub, TestServer],
) -> None:
    other, server = other_server
    # the same login, and even the same gist id, on both GitHubs
    fake.add_gist("alice", {"a.txt": "from the first github\n"}, gist_id="g1", description="one")
    other.add_gist("alice", {"a.txt": "from the second github\n"}, gist_id="g1", description="two")
    first = await make_client()
    second = await make_client(github_api_url=base_url(server))

    one = await first.get("/alice")
    assert (one.status, one.headers["X-Cache"]) == (200, "MISS")
    two = await second.get("/alice")
    # the first GitHub's fresh list of alice is not the second one's
    assert (two.status, two.headers["X-Cache"]) == (200, "MISS")
    assert [g["description"] for g in await one.json()] == ["one"]
    assert [g["description"] for g in await two.json()] == ["two"]
    again = await second.get("/alice")
    assert (again.headers["X-Cache"], await again.json()) == ("HIT", await two.json())

    # contents: each server searches what its own GitHub holds
    found = await search(first, pattern="github")
    assert found["matches"][0]["description"] == "one"
    assert (await search(second, pattern="first"))["total"] == 0
    assert (await search(second, pattern="second"))["total"] == 1
    assert (await search(first, pattern="second"))["total"] == 0
    assert (len(fake.raw_requests()), len(other.raw_requests())) == (1, 1)

    # not-found entries: octocat is on the first GitHub only
    assert (await second.get("/octocat")).status == 404
    assert (await first.get("/octocat")).status == 200
    assert (await second.get("/octocat")).status == 404  # remembered, for the second only
    assert [r.path for r in other.api_requests()].count("/users/octocat/gists") == 1

    # the rate limit: the second GitHub's anonymous budget (3 requests) is spent ...
    other.add_gist("bob", {"b.txt": "b\n"})
    fake.add_gist("bob", {"b.txt": "b\n"})
    assert (await second.get("/bob")).status == 200  # the last request it allowed
    await problem(await second.get("/carol"), 503, "github-rate-limited")
    # GitHub was not asked for carol: only whether its budget is renewed (which costs none)
    assert [r.path for r in other.api_requests()][3:] == ["/rate_limit"]
    # ... which keeps no server of the first GitHub's from it, even one started afresh
    assert (await first.get("/bob")).status == 200
    restarted = await make_client()
    clock.advance(61)
    assert (await restarted.get("/bob")).headers["X-Cache"] == "REVALIDATED"
    # while a restarted server of the second one's learns its block from the database
    later = await make_client(github_api_url=base_url(server))
    await problem(await later.get("/dave"), 503, "github-rate-limited")
    assert "/users/dave/gists" not in [r.path for r in other.api_requests()]
    assert "/rate_limit" not in [r.path for r in fake.api_requests()]  # the first's is not spent


async def test_a_search_job_runs_against_its_own_github(
    make_client: ClientFactory, fake: FakeGitHub, other_server: tuple[FakeGitHub, TestServer]
) -> None:
    other, server = other_server
    fake.add_gist("alice", {"a.txt": "needle\n"})
    # a server of the second GitHub starts first: its workers must leave the job alone
    second = await make_client(github_api_url=base_url(server))
    first = await make_client(search_workers=0)
    resp = await first.post(
        "/api/v1/search", json={"username": "alice", "pattern": "needle", "async": True}
    )
    assert resp.status == 202
    job = (await resp.json())["request_id"]
    assert (await second.get(f"/api/v1/search/{job}")).status == 404
    await asyncio.sleep(1.5)  # longer than a worker's poll interval
    status = await (await first.get(f"/api/v1/search/{job}")).json()
    assert status["status"] == "PENDING"  # not run by the other GitHub's server
    assert other.api_requests() == []
    runner = await make_client()
    for _ in range(100):
        status = await (await runner.get(f"/api/v1/search/{job}")).json()
        if status["status"] == "SUCCESS":
            break
        await asyncio.sleep(0.05)
    result = await (await runner.get(f"/api/v1/search_result/{job}")).json()
    assert result["total"] == 1


# the tables as migration 0004 left them (only the columns the test fills)
OLD = MetaData()
OLD_USERS = Table(
    "users",
    OLD,
    Column("login", String),
    Column("not_found", Boolean),
    Column("credential", String),
    Column("fetched_at", UTCDateTime),
    Column("checked_at", UTCDateTime),
)
OLD_PAGES = Table(
    "list_pages", OLD, Column("login", String), Column("page_no", Integer), Column("url", Text)
)
OLD_GISTS = Table(
    "gists",
    OLD,
    Column("id", String),
    Column("owner_login", String),
    Column("page_no", Integer),
    Column("position", Integer),
    Column("owner", String),
    Column("html_url", Text),
    Column("description", Text),
    Column("public", Boolean),
    Column("created_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Column("comments", Integer),
    Column("truncated", Boolean),
)
OLD_FILES = Table(
    "gist_files",
    OLD,
    Column("gist_id", String),
    Column("filename", Text),
    Column("position", Integer),
    Column("raw_url", Text),
)
OLD_CONTENTS = Table(
    "file_contents",
    OLD,
    Column("gist_id", String),
    Column("filename", Text),
    Column("updated_at", UTCDateTime),
    Column("status", String),
    Column("size", Integer),
    Column("chunks", Integer),
    Column("generation", String),
    Column("fetched_at", UTCDateTime),
)
OLD_CHUNKS = Table(
    "file_chunks",
    OLD,
    Column("gist_id", String),
    Column("filename", Text),
    Column("generation", String),
    Column("chunk_no", Integer),
    Column("first_line", Integer),
    Column("size", Integer),
    Column("data", LargeBinary),
)
OLD_BLOCKS = Table(
    "github_blocks",
    OLD,
    Column("credential", String),
    Column("blocked_until", UTCDateTime),
    Column("hintless_strikes", Integer),
)


async def test_an_upgrade_keeps_the_rows_cached_before_under_the_configured_github(
    empty_database_url: str,
    fake: FakeGitHub,
    fake_server: TestServer,
    other_server: tuple[FakeGitHub, TestServer],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    make_engine: EngineFactory,
) -> None:
    url = empty_database_url
    await asyncio.to_thread(upgrade, url, "0004")
    now = clock.now
    text = b"cached before sites existed\n"
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            OLD_USERS.insert().values(
                login="alice", not_found=False, credential="anonymous", fetched_at=now,
                checked_at=now,
            )
        )  # fmt: skip
        await conn.execute(OLD_PAGES.insert().values(login="alice", page_no=1, url="p1"))
        await conn.execute(
            OLD_GISTS.insert().values(
                id="old1", owner_login="alice", page_no=1, position=0, owner="alice",
                html_url="https://gist.github.com/old1", description="kept", public=True,
                created_at=now, updated_at=now, comments=0, truncated=False,
            )
        )  # fmt: skip
        raw = f"{base_url(fake_server)}/gist-raw/alice/old1/raw/abc/a.txt"
        await conn.execute(
            OLD_FILES.insert().values(gist_id="old1", filename="a.txt", position=0, raw_url=raw)
        )
        await conn.execute(
            OLD_CONTENTS.insert().values(
                gist_id="old1", filename="a.txt", updated_at=now, status="text", size=len(text),
                chunks=1, generation="gen1", fetched_at=now,
            )
        )  # fmt: skip
        await conn.execute(
            OLD_CHUNKS.insert().values(
                gist_id="old1", filename="a.txt", generation="gen1", chunk_no=0, first_line=1,
                size=len(text), data=text,
            )
        )  # fmt: skip
        await conn.execute(
            OLD_BLOCKS.insert().values(
                credential="anonymous", blocked_until=now + timedelta(days=3650),
                hintless_strikes=0,
            )
        )  # fmt: skip
    await engine.dispose()

    # the server that filled the cache talked to the first fake
    monkeypatch.setenv("GISTCACHE_GITHUB_API_URL", base_url(fake_server) + "/")
    await asyncio.to_thread(upgrade, url)

    clients: list[Client] = []

    async def serve(api_url: str) -> Client:
        settings = Settings(database_url=url, github_api_url=api_url, cache_ttl=60)
        client: Client = TestClient(TestServer(create_app(settings, clock=clock)))
        await client.start_server()
        clients.append(client)
        return client

    try:
        first = await serve(base_url(fake_server))
        listed = await first.get("/alice")
        assert (listed.status, listed.headers["X-Cache"]) == (200, "HIT")
        assert [g["id"] for g in await listed.json()] == ["old1"]
        found = await search(first, pattern="before sites")
        assert found["matches"][0]["files"][0]["lines"][0]["text"] == text.decode().strip()
        # the block stayed with its GitHub too
        await problem(await first.get("/octocat"), 503, "github-rate-limited")
        assert fake.requests == []

        # another GitHub sees none of it
        other, server = other_server
        other.add_gist("alice", {"b.txt": "elsewhere\n"})
        second = await serve(base_url(server))
        elsewhere = await second.get("/alice")
        assert (elsewhere.status, elsewhere.headers["X-Cache"]) == (200, "MISS")
        assert [g["description"] for g in await elsewhere.json()] == [""]
    finally:
        for client in clients:
            await client.close()

    # back down: the configured GitHub's rows fit the old keys, the other one's go
    await asyncio.to_thread(downgrade, url, "0004")
    engine = make_engine(url)
    async with engine.connect() as conn:
        logins = (await conn.execute(select(OLD_USERS.c.login))).scalars().all()
        ids = (await conn.execute(select(OLD_GISTS.c.id))).scalars().all()
        chunks = (await conn.execute(select(OLD_CHUNKS.c.data))).scalars().all()
    await engine.dispose()
    assert (sorted(logins), ids, chunks) == (["alice"], ["old1"], [text])
