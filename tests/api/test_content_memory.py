"""GISTCACHE_CONTENT_MEMORY_MB: a warm search reads its contents from this process's
memory, each held with the revision it was fetched for, so it reads no chunk (and, with
its list fresh and every file held, nothing at all) from the database and is never
answered from a copy of contents that are no longer current."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.database import reads_of
from tests.support.http import ClientFactory
from tests.support.search import search

Client = TestClient[Any, Any]


def chunk_reads() -> contextlib.AbstractContextManager[list[str]]:
    """The statements that read file chunks, sent by any engine meanwhile."""
    return reads_of("file_chunks")


def found(body: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (f["filename"], line["line_number"], line["text"])
        for m in body["matches"]
        for f in m["files"]
        for line in f["lines"]
    ]


async def test_a_warm_search_reads_no_chunk_from_the_database(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    for n in range(5):
        fake.add_gist("carol", {f"f{n}.py": f"x = {n}\n# TODO {n}\n", "g.txt": "nothing\n"})
    client = await make_client(content_memory_mb=8)
    cold = await search(client, username="carol", pattern="TODO")  # fetches, then reads
    with chunk_reads() as reads:
        warm = await search(client, username="carol", pattern="TODO")
        other = await search(client, username="carol", pattern="x = [0-4]")
    assert reads == []
    assert warm == cold
    assert sorted(found(warm)) == [(f"f{n}.py", 2, f"# TODO {n}") for n in range(5)]
    assert len(other["matches"]) == 5
    assert len(fake.raw_requests()) == 10  # each file fetched once


async def test_without_the_memory_every_search_reads_the_chunks(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("carol", {"a.py": "# TODO\n"})
    client = await make_client(content_memory_mb=0)
    first = await search(client, username="carol", pattern="TODO")
    with chunk_reads() as reads:
        second = await search(client, username="carol", pattern="TODO")
    assert reads  # the chunks came from the database again
    assert second == first


async def test_a_gist_changed_upstream_is_searched_in_its_new_contents(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    gist = fake.add_gist("carol", {"a.py": "old = 1  # TODO\n", "b.py": "kept  # TODO\n"})
    client = await make_client(content_memory_mb=8)
    before = await search(client, username="carol", pattern="TODO")
    assert sorted(found(before)) == [("a.py", 1, "old = 1  # TODO"), ("b.py", 1, "kept  # TODO")]
    await search(client, username="carol", pattern="TODO")  # both files now in memory

    fake.update_gist(gist.id, {"a.py": "new = 2\n# TODO again\n"})
    clock.advance(61)  # the list is stale: the change is seen
    after = await search(client, username="carol", pattern="TODO|old")
    assert sorted(found(after)) == [("a.py", 2, "# TODO again"), ("b.py", 1, "kept  # TODO")]
    assert not any("old" in text for _, _, text in found(after))
    with chunk_reads() as reads:
        again = await search(client, username="carol", pattern="TODO|old")
    assert reads == []  # the new revision is the one kept now
    assert again == after


@contextlib.contextmanager
def commits() -> Iterator[list[int]]:
    """Transactions committed by any engine meanwhile."""
    seen: list[int] = []

    def on_commit(conn: Any) -> None:
        seen.append(1)

    event.listen(Engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(Engine, "commit", on_commit)


async def test_a_cold_search_installs_several_files_per_transaction(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    for n in range(24):
        fake.add_gist("dave", {f"f{n}.txt": f"line {n}\n"})
    fake.latency = 0.02
    client = await make_client(fetch_concurrency=24)
    await client.get("/dave")  # the list first: its own transactions
    with commits() as committed:
        body = await search(client, username="dave", pattern="line")
    assert body["total"] == 24
    assert len(fake.raw_requests()) == 24
    assert len(committed) < 24  # one a file before; files downloaded together share one


async def test_a_user_larger_than_the_memory_is_read_from_the_database_and_evicts_no_one(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("carol", {"a.py": "# TODO small\n"})
    # 12 files of 100 KB: each would fit (at most an eighth of 1 MB), all of them not
    text = "# TODO big\n" + "filler line\n" * 8_500
    for n in range(12):
        fake.add_gist("bigsby", {f"f{n}.txt": text})
    client = await make_client(content_memory_mb=1)
    await search(client, username="carol", pattern="TODO")
    await search(client, username="bigsby", pattern="TODO")
    with chunk_reads() as reads:
        big = await search(client, username="bigsby", pattern="TODO")
    assert reads  # read again from the database: never kept
    assert big["total"] == 12
    with chunk_reads() as reads:
        small = await search(client, username="carol", pattern="TODO")
    assert reads == []  # still held: the larger user pushed nothing out
    assert small["total"] == 1


@contextlib.contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine sends meanwhile."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


async def test_a_fresh_warm_search_held_in_memory_sends_no_statement(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    for n in range(3):
        fake.add_gist("carol", {f"f{n}.py": f"x = {n}\n# TODO {n}\n", "empty.txt": ""})
    fake.add_gist("carol", {"logo.png": b"\x89PNG\r\n\x1a\n\x00\x00 TODO", "n.md": "TODO\n"})
    fake.add_gist("carol", {"big.txt": "TODO " * 400})
    client = await make_client(content_memory_mb=8, max_file_bytes=1000)
    cold = await search(client, username="carol", pattern="TODO")
    assert sorted((s["filename"], s["reason"]) for s in cold["skipped"]) == [
        ("big.txt", "too_large"),
        ("logo.png", "binary"),
    ]
    with statements() as sent:
        warm = await search(client, username="carol", pattern="TODO")
        other = await search(client, username="carol", pattern=r"x = [0-9]", context=1)
    assert sent == []  # neither the files' states nor a chunk, nor any write
    assert warm == cold  # the same matches, and the same skips from what memory holds
    assert sorted(found(other)) == [(f"f{n}.py", 1, f"x = {n}") for n in range(3)]
    assert len(fake.raw_requests()) == 8  # each file fetched once (big.txt: never, by its size)


async def test_a_file_edited_upstream_is_not_answered_from_its_copy_in_memory(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    gist = fake.add_gist("carol", {"a.py": "old  # TODO\n", "b.py": "kept  # TODO\n"})
    client = await make_client(content_memory_mb=8)
    await search(client, username="carol", pattern="TODO")
    with statements() as sent:
        await search(client, username="carol", pattern="TODO")  # held: nothing read
    assert sent == []
    fetched = len(fake.raw_requests())

    # a.py edited: its raw URL and the gist's updated_at change; b.py's URL stays
    fake.update_gist(gist.id, {"a.py": "new  # TODO\n"})
    clock.advance(61)  # the list is stale: the refresh brings the new revision in
    after = await search(client, username="carol", pattern="TODO")
    assert sorted(found(after)) == [("a.py", 1, "new  # TODO"), ("b.py", 1, "kept  # TODO")]
    # only a.py fetched again: b.py's copy is current for its unchanged raw URL
    assert [r.path.rsplit("/", 1)[-1] for r in fake.raw_requests()[fetched:]] == ["a.py"]
    with statements() as sent:
        again = await search(client, username="carol", pattern="TODO")
    assert sent == []  # both held again, for the new revision
    assert again == after
