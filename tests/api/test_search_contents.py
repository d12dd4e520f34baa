"""POST /api/v1/search: file contents cached on their raw URL, what is downloaded again
and when, failed and skipped downloads, and the list's freshness."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.store.models import file_chunks, file_contents
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.http import ClientFactory
from tests.support.search import add_alices_gists, search

Client = TestClient[Any, Any]


@pytest.fixture
def gists(fake: FakeGitHub) -> dict[str, str]:
    return add_alices_gists(fake)


async def stored_contents(engine: AsyncEngine, gist_id: str) -> dict[str, list[str]]:
    """The names of ``gist_id``'s files each contents table holds, by table."""
    kept = {}
    async with engine.connect() as conn:
        for table in (file_chunks, file_contents):
            names = await conn.execute(
                select(table.c.filename).distinct().where(table.c.gist_id == gist_id)
            )
            kept[table.name] = list(names.scalars())
    return kept


async def test_second_search_fetches_nothing_and_a_changed_gist_only_its_changed_file(
    client: Client, fake: FakeGitHub, clock: FakeClock, gists: dict[str, str]
) -> None:
    await search(client, username="alice", pattern="x")
    assert len(fake.raw_requests()) == 4  # every file once
    assert len(fake.api_requests()) == 1

    await search(client, username="alice", pattern="y")
    assert len(fake.raw_requests()) == 4  # nothing changed: nothing fetched
    assert len(fake.api_requests()) == 1  # and the list was fresh

    fake.update_gist(gists["tools"], {"fetch.py": "import httpx\n"})
    clock.advance(61)
    body = await search(client, username="alice", pattern="import httpx")
    assert [m["id"] for m in body["matches"]] == [gists["tools"]]
    fetched = [r.path.rsplit("/", 1)[-1] for r in fake.raw_requests()[4:]]
    assert fetched == ["fetch.py"]  # README.md kept its raw URL: its contents were reused
    body = await search(client, username="alice", pattern="^# Tools$")
    assert [f["filename"] for m in body["matches"] for f in m["files"]] == ["README.md"]
    assert len(fake.raw_requests()) == 5


async def test_a_gist_edited_but_not_its_files_downloads_nothing(
    client: Client, fake: FakeGitHub, clock: FakeClock, gists: dict[str, str], engine: AsyncEngine
) -> None:
    await search(client, username="alice", pattern="x")
    assert len(fake.raw_requests()) == 4
    fake.update_gist(gists["tools"], description="tools, renamed")  # updated_at moves
    fake.update_gist(gists["notes"], {"notes.txt": None, "new.txt": "Import later\n"})
    clock.advance(61)
    body = await search(client, username="alice", pattern="(?i)^import")
    tools = next(m for m in body["matches"] if m["id"] == gists["tools"])
    assert tools["description"] == "tools, renamed"
    assert [f["filename"] for f in tools["files"]] == ["fetch.py"]
    notes = next(m for m in body["matches"] if m["id"] == gists["notes"])
    assert [f["filename"] for f in notes["files"]] == ["new.txt"]
    # the renamed gist's files were not fetched again; only the new file was
    assert [r.path.rsplit("/", 1)[-1] for r in fake.raw_requests()[4:]] == ["new.txt"]
    clock.advance(61)
    await search(client, username="alice", pattern="y")
    assert len(fake.raw_requests()) == 5  # and the reused contents stay current
    kept = await stored_contents(engine, gists["notes"])
    # the deleted file's contents went
    assert kept == {"file_chunks": ["new.txt"], "file_contents": ["new.txt"]}


async def test_contents_survive_a_restart(
    make_client: ClientFactory, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    first = await make_client()
    before = await search(first, username="alice", pattern="requests")
    await first.close()
    second = await make_client()
    after = await search(second, username="alice", pattern="requests")
    assert after == before
    assert len(fake.raw_requests()) == 4


async def test_gists_that_leave_the_list_take_their_contents(
    client: Client, fake: FakeGitHub, clock: FakeClock, gists: dict[str, str], engine: AsyncEngine
) -> None:
    await search(client, username="alice", pattern="x")
    fake.delete_gist(gists["tools"])
    clock.advance(61)
    body = await search(client, username="alice", pattern="requests")
    assert body["total"] == 0
    kept = await stored_contents(engine, gists["tools"])
    assert kept == {"file_chunks": [], "file_contents": []}


async def test_a_failed_download_is_retried_only_after_a_growing_back_off(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    gist = fake.add_gist("hal", {"a.txt": "needle\n"})
    fake.fail_next(502, kind="raw", times=2)
    unavailable = [{"id": gist.id, "filename": "a.txt", "reason": "unavailable"}]

    async def attempt() -> tuple[list[dict[str, Any]], int]:
        body = await search(client, username="hal", pattern="needle")
        return body["skipped"], len(fake.raw_requests())

    assert await attempt() == (unavailable, 1)  # the first failure: 30 s before the next try
    assert await attempt() == (unavailable, 1)
    clock.advance(29)
    assert await attempt() == (unavailable, 1)
    clock.advance(2)
    assert await attempt() == (unavailable, 2)  # the second failure: 60 s now
    clock.advance(59)
    assert await attempt() == (unavailable, 2)
    clock.advance(2)
    body = await search(client, username="hal", pattern="needle")
    assert (body["skipped"], body["total"], len(fake.raw_requests())) == ([], 1, 3)
    await search(client, username="hal", pattern="needle")
    assert len(fake.raw_requests()) == 3  # cached now


async def test_a_file_that_changed_since_its_download_failed_is_tried_at_once(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    client = await make_client(cache_ttl=10)
    gist = fake.add_gist("ida", {"a.txt": "hay\n"})
    fake.fail_next(502, kind="raw")
    body = await search(client, username="ida", pattern="needle")
    assert body["skipped"] == [{"id": gist.id, "filename": "a.txt", "reason": "unavailable"}]
    fake.update_gist(gist.id, {"a.txt": "needle\n"})
    clock.advance(11)  # the list is stale, the failed download's back-off is not over
    body = await search(client, username="ida", pattern="needle")
    assert (body["skipped"], body["total"], len(fake.raw_requests())) == ([], 1, 2)


async def test_binary_and_oversized_files_are_reported(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    gist = fake.add_gist(
        "grace",
        {
            "img.png": b"\x89PNG\r\n\x1a\n\x00\x00needle",
            "big.txt": "needle\n" * 200,
            "ok.txt": "needle\n",
        },
    )
    client = await make_client(max_file_bytes=1000)
    body = await search(client, username="grace", pattern="needle")
    assert [f["filename"] for f in body["matches"][0]["files"]] == ["ok.txt"]
    assert sorted(body["skipped"], key=lambda s: s["filename"]) == [
        {"id": gist.id, "filename": "big.txt", "reason": "too_large"},
        {"id": gist.id, "filename": "img.png", "reason": "binary"},
    ]
    raw_names = sorted(r.path.rsplit("/", 1)[-1] for r in fake.raw_requests())
    assert raw_names == ["img.png", "ok.txt"]  # big.txt was skipped by its listed size
    # and it is remembered: a second search fetches nothing
    again = await search(client, username="grace", pattern="needle")
    assert again == body
    assert len(fake.raw_requests()) == 2


async def test_fetches_respect_the_concurrency_limit(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    for n in range(12):
        fake.add_gist("jack", {"a.txt": f"{n}\n"})
    fake.latency = 0.05
    client = await make_client(fetch_concurrency=3)
    await search(client, username="jack", pattern="1")
    assert len(fake.raw_requests()) == 12
    assert fake.raw_peak_concurrency == 3


async def test_concurrent_searches_download_each_file_once(
    client: Client, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    fake.latency = 0.05
    patterns = ("import", "x", "text", "python")
    bodies = await asyncio.gather(*(search(client, username="alice", pattern=p) for p in patterns))
    assert [b["total"] for b in bodies] == [1, 2, 1, 1]
    assert len(fake.raw_requests()) == 4
    assert len(fake.api_requests()) == 1
    # the same answers as one at a time, from the cache
    assert [await search(client, username="alice", pattern=p) for p in patterns] == bodies


async def test_a_cold_search_costs_one_api_request_per_hundred_gists(
    client: Client, fake: FakeGitHub
) -> None:
    for n in range(210):
        fake.add_gist("many", {f"{n}.txt": f"line {n}\n"})
    body = await search(client, username="many", pattern="^line 7$")
    assert body["total"] == 1
    assert len(fake.api_requests()) == 3  # the list's pages; contents come from raw URLs
    assert len(fake.raw_requests()) == 210


async def test_search_says_how_fresh_its_list_was_and_survives_github_failing(
    client: Client, fake: FakeGitHub, clock: FakeClock, gists: dict[str, str]
) -> None:
    first = await client.post("/api/v1/search", json={"username": "alice", "pattern": "import"})
    assert first.headers["X-Cache"] == "MISS"
    again = await client.post("/api/v1/search", json={"username": "alice", "pattern": "import"})
    assert again.headers["X-Cache"] == "HIT"
    clock.advance(100)
    fake.fail_next(503, times=3)
    stale = await client.post("/api/v1/search", json={"username": "alice", "pattern": "import"})
    assert stale.status == 200
    assert stale.headers["X-Cache"] == "STALE"
    assert stale.headers["Age"] == "100"
    assert await stale.json() == await first.json()
