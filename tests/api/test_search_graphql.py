"""With a token, a cold search takes its files' texts from GitHub's GraphQL API in
batches (the fake GitHub runs the queries against GitHub's published schema): small
text files cost no raw download, what GraphQL cannot give whole comes from the raw
URLs, a failed, partial or rate-limited batch falls back to raw downloads for what it
lacks, and the cache holds the same as if every file had come raw."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.github.graphql import Batch, BatchAnswer
from gistcache.store.models import file_chunks, file_contents
from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.app_keys import GITHUB
from tests.support.http import ClientFactory
from tests.support.search import search

TOKEN = "ghp_graphqlt0ken"
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
LARGE = ("needle in a large file\n" + "x" * 99 + "\n") * 2800  # 336,000 bytes


def raw_names(fake: FakeGitHub) -> list[str]:
    return sorted(r.path.rsplit("/", 1)[-1] for r in fake.raw_requests())


def alices_gists(fake: FakeGitHub) -> None:
    """Small text files, one binary, one not UTF-8, one too large for a batch, one gist
    of 31 files."""
    fake.add_gist("alice", {"a.py": "import os\nneedle = 1\n", "b.md": "# no match\n"})
    fake.add_gist("alice", {"c.txt": "a needle\nand another needle\n", "empty.txt": ""})
    # Latin-1, no UTF-8: GitHub's text of it is not its bytes
    fake.add_gist(
        "alice", {"logo.png": BINARY, "d.txt": "needle é ü\n", "l1.txt": b"caf\xe9 needle\n"}
    )
    fake.add_gist("alice", {"large.log": LARGE})
    fake.add_gist("alice", {f"part{n:02d}.txt": f"needle {n}\n" for n in range(31)})


def answer(body: dict[str, Any]) -> tuple[Any, ...]:
    """What a search told of the files: its matches (their lines) and its skips."""
    matches = sorted(
        (f["filename"], [(line["line_number"], line["text"]) for line in f["lines"]])
        for match in body["matches"]
        for f in match["files"]
    )
    skipped = sorted((s["filename"], s["reason"]) for s in body["skipped"])
    return (body["total"], matches, skipped)


async def stored(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    """Every cached file's state (its revision key included) and its current chunks."""
    f, c = file_contents.c, file_chunks.c
    states = select(
        f.gist_id, f.filename, f.updated_at, f.raw_url, f.status, f.size, f.chunks, f.chunk_bytes
    ).order_by(f.gist_id, f.filename)
    chunks = (
        select(c.gist_id, c.filename, c.chunk_no, c.first_line, c.data)
        .join(
            file_contents,
            (f.site_id == c.site_id)
            & (f.gist_id == c.gist_id)
            & (f.filename == c.filename)
            & (f.generation == c.generation),
        )
        .order_by(c.gist_id, c.filename, c.chunk_no)
    )
    async with engine.connect() as conn:
        return [tuple(row) for row in await conn.execute(states)] + [
            tuple(row) for row in await conn.execute(chunks)
        ]


async def test_a_cold_search_with_a_token_takes_small_texts_from_graphql(
    make_client: ClientFactory, fake: FakeGitHub, engine: AsyncEngine
) -> None:
    alices_gists(fake)
    client = await make_client(github_token=TOKEN)
    body = await search(client, username="alice", pattern="needle")
    # one batch for every file it can give; the rest from their raw URLs
    assert len(fake.graphql_requests()) == 1
    parts = [f"part{n:02d}.txt" for n in range(31)]
    assert raw_names(fake) == ["l1.txt", "large.log", "logo.png", *parts]
    total, matches, skipped = answer(body)
    assert total == 5  # gists searched
    assert ("c.txt", [(1, "a needle"), (2, "and another needle")]) in matches
    assert ("d.txt", [(1, "needle é ü")]) in matches
    assert skipped == [("logo.png", "binary")]
    metrics = await (await client.get("/metrics")).text()
    assert 'gistcache_github_requests_total{kind="graphql",status="200"} 1.0' in metrics
    assert "gistcache_github_graphql_points_total 1.0" in metrics

    # warm: the same answer from the cache, and nothing asked of GitHub
    asked = len(fake.requests)
    assert answer(await search(client, username="alice", pattern="needle")) == answer(body)
    assert len(fake.requests) == asked


async def test_the_cache_holds_what_raw_downloads_would_have_stored(
    make_client: ClientFactory,
    fake: FakeGitHub,
    engine: AsyncEngine,
    make_engine: Any,
    sqlite_template: Path,
    tmp_path: Path,
) -> None:
    alices_gists(fake)
    with_graphql = await make_client(github_token=TOKEN)
    body = await search(with_graphql, username="alice", pattern="needle")
    assert fake.graphql_requests()
    # the same user searched with every file from its raw URL, into a cache of its own
    raw_db = tmp_path / "raw.sqlite3"
    shutil.copy(sqlite_template, raw_db)
    raw_url = f"sqlite+aiosqlite:///{raw_db}"
    asked = len(fake.graphql_requests())
    raw_only = await make_client(github_token=TOKEN, graphql=False, database_url=raw_url)
    assert answer(await search(raw_only, username="alice", pattern="needle")) == answer(body)
    assert len(fake.graphql_requests()) == asked
    assert await stored(engine) == await stored(make_engine(raw_url))


async def test_without_a_token_or_turned_off_no_graphql_request_is_made(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("alice", {"a.py": "needle\n"})
    fake.add_gist("bob", {"b.py": "needle\n"})
    anonymous = await make_client()
    await search(anonymous, username="alice", pattern="needle")
    turned_off = await make_client(github_token=TOKEN, graphql=False)
    await search(turned_off, username="bob", pattern="needle")
    assert fake.graphql_requests() == []
    assert raw_names(fake) == ["a.py", "b.py"]


async def test_a_gist_changed_since_its_list_is_asked_of_its_listed_raw_url(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    changed = fake.add_gist("alice", {"a.txt": "old needle\n"})
    fake.add_gist("alice", {"b.txt": "needle\n"})
    client = await make_client(github_token=TOKEN)
    resp = await client.get("/api/v1/users/alice/gists")
    assert resp.status == 200
    # the list is cached (within its TTL) when the gist changes on GitHub
    fake.update_gist(changed.id, {"a.txt": "new needle\n"})
    body = await search(client, username="alice", pattern="needle")
    assert len(fake.graphql_requests()) == 1
    # its listed revision is asked of its raw URL (which the fake no longer serves, so
    # it is unavailable, as without GraphQL), never the newer text under the old key
    assert raw_names(fake) == ["a.txt"]
    assert answer(body)[1:] == ([("b.txt", [(1, "needle")])], [("a.txt", "unavailable")])


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "timeout"},  # GitHub's 502 "Something went wrong"
        {"kind": "timeout", "status": 200},
        {"kind": "secondary", "retry_after": 60},
        {"kind": "rate_limited"},
    ],
)
async def test_a_failed_batch_falls_back_to_raw_downloads(
    make_client: ClientFactory, fake: FakeGitHub, fault: dict[str, Any]
) -> None:
    fake.add_gist("alice", {"a.txt": "needle\n"})
    fake.add_gist("alice", {"b.txt": "needle\n", "c.txt": "no\n"})
    fake.graphql_fault(**fault)
    client = await make_client(github_token=TOKEN)
    body = await search(client, username="alice", pattern="needle")
    assert len(fake.graphql_requests()) == 1
    assert raw_names(fake) == ["a.txt", "b.txt", "c.txt"]
    assert answer(body) == (2, [("a.txt", [(1, "needle")]), ("b.txt", [(1, "needle")])], [])


async def test_a_rate_limit_stops_the_next_batches_on_every_server(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("alice", {"a.txt": "needle\n"})
    fake.add_gist("bob", {"b.txt": "needle\n"})
    fake.add_gist("carol", {"c.txt": "needle\n"})
    fake.exhaust_graphql_budget(TOKEN)
    first = await make_client(github_token=TOKEN)
    await search(first, username="alice", pattern="needle")
    assert len(fake.graphql_requests()) == 1
    # the block holds on this server, and another server sharing the database learns it
    await search(first, username="bob", pattern="needle")
    other = await make_client(github_token=TOKEN)
    body = await search(other, username="carol", pattern="needle")
    assert len(fake.graphql_requests()) == 1
    assert raw_names(fake) == ["a.txt", "b.txt", "c.txt"]
    assert answer(body)[1] == [("c.txt", [(1, "needle")])]
    # REST's budget is another: the lists were fetched all along
    assert len(fake.api_requests("/gists")) == 3


async def test_a_partial_answer_falls_back_for_the_gists_it_lacks(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    lost = fake.add_gist("alice", {"a.txt": "needle\n"})
    fake.add_gist("alice", {"b.txt": "needle\n"})
    fake.graphql_fault("partial", node_ids={f"G_fake{lost.id}"})
    client = await make_client(github_token=TOKEN)
    body = await search(client, username="alice", pattern="needle")
    assert len(fake.graphql_requests()) == 1
    assert raw_names(fake) == ["a.txt"]
    assert answer(body) == (2, [("a.txt", [(1, "needle")]), ("b.txt", [(1, "needle")])], [])


async def test_a_streamed_search_tells_each_gist_once_its_batch_is_in(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    for n in range(8):  # two batches of four files: the newest four, then the others
        fake.add_gist("alice", {f"f{n}.txt": f"needle {n}\n"})
    client = await make_client(github_token=TOKEN)
    graphql = client.app[GITHUB].graphql
    assert graphql is not None
    held = asyncio.Event()
    asked: list[Batch] = []
    answered: list[Batch] = []
    real: Callable[[Batch], Awaitable[BatchAnswer]] = graphql.texts

    async def oldest_held(batch: Batch) -> BatchAnswer:
        asked.append(batch)
        if any(gist.files[0][0] == "f0.txt" for gist in batch.gists):
            await held.wait()
        answer = await real(batch)
        answered.append(batch)
        return answer

    graphql.texts = oldest_held
    resp = await client.post(
        "/api/v1/search",
        json={"username": "alice", "pattern": "needle"},
        headers={"Accept": "application/x-ndjson"},
    )
    assert resp.status == 200
    told: list[str] = []
    while len(told) < 4:
        line = await asyncio.wait_for(resp.content.readline(), timeout=20)
        event = json.loads(line)
        if event["event"] == "match":
            told.append(event["gist"]["files"][0]["filename"])
    first = {f"f{n}.txt" for n in range(4, 8)}  # the newest, listed first
    assert set(told) == first
    assert len(answered) == 1  # the oldest gists' batch is still out
    held.set()
    rest = [json.loads(line) async for line in resp.content]
    assert len(asked) == len(answered) == 2
    later = {e["gist"]["files"][0]["filename"] for e in rest if e["event"] == "match"}
    assert later == {f"f{n}.txt" for n in range(4)}
    assert rest[-1]["event"] == "done"
    assert raw_names(fake) == []


async def test_a_file_whose_text_an_error_nulled_comes_raw_with_its_gist(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("alice", {"a.txt": "needle\n", "b.txt": "needle b\n"})
    fake.add_gist("alice", {"c.txt": "needle c\n"})
    fake.graphql_fault("partial", file_names={"a.txt"})
    client = await make_client(github_token=TOKEN)
    body = await search(client, username="alice", pattern="needle")
    assert len(fake.graphql_requests()) == 1
    # an error names a file of the gist: none of the gist's texts is taken
    assert raw_names(fake) == ["a.txt", "b.txt"]
    assert answer(body)[1] == [
        ("a.txt", [(1, "needle")]),
        ("b.txt", [(1, "needle b")]),
        ("c.txt", [(1, "needle c")]),
    ]
