"""GISTCACHE_CONTENT_CACHE_MB and GISTCACHE_SEARCH_DOWNLOAD_MB: the cached contents stay
within their budget (the least recently searched users' contents go first, their lists
stay), and one search downloads at most its share, saying which files it left."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gistcache.store import contents as content_store
from gistcache.store.models import file_chunks, file_contents, gists
from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.app_keys import GISTS, LISTING, SEARCHES, SESSIONS
from gistcache.web.pages.text import SKIP_REASONS
from tests.support.clock import FakeClock
from tests.support.database import EngineFactory
from tests.support.http import ClientFactory
from tests.support.waiting import eventually

Client = TestClient[Any, Any]
KIB = 1024
MIB = 1024 * KIB
# a budget of 1 MiB holds two users of two 200 KiB files each, not three
BUDGET = {"content_cache_mb": 1, "search_download_mb": 1, "cache_ttl": 86400}
MINUTES_10 = 600


def text(size: int, word: str = "TODO") -> str:
    """``size`` bytes of lines, each holding ``word``."""
    line = f"{word} ".ljust(99, "x") + "\n"
    return (line * (size // len(line) + 1))[:size]


def add_user(fake: FakeGitHub, login: str, files: int = 2, size: int = 200 * KIB) -> list[str]:
    """A user with one gist of ``files`` files; their names, in the gist's order."""
    names = [f"{login}{n}.txt" for n in range(files)]
    fake.add_gist(login, {name: text(size) for name in names})
    return names


async def search(client: Client, login: str, **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/search", json={"username": login, "pattern": "TODO", **body})
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def chunk_bytes(engine: AsyncEngine) -> int:
    """What the database holds of file contents, counted from the chunks themselves."""
    async with engine.connect() as conn:
        total = await conn.scalar(select(func.sum(func.length(file_chunks.c.data))))
    return int(total or 0)


async def cached_users(engine: AsyncEngine) -> set[str]:
    """The users with any file contents cached."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(gists.c.owner_login)
            .join(file_contents, file_contents.c.gist_id == gists.c.id)
            .distinct()
        )
        return {row.owner_login for row in rows}


def skipped_files(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["filename"], entry["reason"]) for entry in answer["skipped"]]


async def test_the_least_recently_searched_users_contents_make_room_and_their_list_stays(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    database_url: str,
    make_engine: EngineFactory,
) -> None:
    db = make_engine(database_url, create_async_engine)
    for login in ("ann", "bob", "cid"):
        add_user(fake, login)
    client = await make_client(**BUDGET)
    await search(client, "ann")
    clock.advance(MINUTES_10)
    await search(client, "bob")
    clock.advance(MINUTES_10)
    await search(client, "ann")  # ann is searched again: bob is now the least recent
    clock.advance(MINUTES_10)
    # a refresh of ann's list (GitHub has a new description) keeps when she was searched
    ann_gist = fake.user("ann").gists[0].id
    fake.update_gist(ann_gist, description="edited")
    listed = await client.get("/ann", headers={"Cache-Control": "no-cache"})
    assert listed.headers["X-Cache"] == "UPDATED"
    memory = client.app[SEARCHES]._sources.memory
    assert len(memory) == 4  # ann's and bob's files

    answer = await search(client, "cid")
    assert answer["total"] == 1
    assert answer["skipped"] == []
    assert len(fake.raw_requests()) == 6
    assert await chunk_bytes(db) <= 1 * MIB
    assert await cached_users(db) == {"ann", "cid"}
    assert len(memory) == 4  # bob's went with his contents; cid's came in

    # bob's list is still cached: served with no request to GitHub
    api_before = len(fake.api_requests())
    listed = await client.get("/bob")
    assert listed.status == 200
    assert listed.headers["X-Cache"] == "HIT"
    assert [f["filename"] for f in (await listed.json())[0]["files"]] == ["bob0.txt", "bob1.txt"]
    # his next search downloads his files again, and finds what it found before
    clock.advance(MINUTES_10)
    again = await search(client, "bob")
    assert again["total"] == 1
    assert again["skipped"] == []
    assert [f["filename"] for f in again["matches"][0]["files"]] == ["bob0.txt", "bob1.txt"]
    assert len(fake.api_requests()) == api_before
    raw = [r.path.rsplit("/", 1)[-1] for r in fake.raw_requests()]
    assert sorted(raw[6:]) == ["bob0.txt", "bob1.txt"]
    # and ann, searched before cid, made room for him
    assert await cached_users(db) == {"bob", "cid"}
    assert await chunk_bytes(db) <= 1 * MIB


async def test_a_search_downloads_at_most_its_share_and_says_which_files_it_left(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    names = add_user(fake, "dan", files=3, size=400 * KIB)  # 1.2 MiB: the share is 1 MiB
    client = await make_client(content_cache_mb=4, search_download_mb=1)
    first = await search(client, "dan")
    assert skipped_files(first) == [(names[2], "download_budget")]
    assert [f["filename"] for f in first["matches"][0]["files"]] == names[:2]
    assert len(fake.raw_requests()) == 2
    # the next search takes the rest
    second = await search(client, "dan")
    assert second["skipped"] == []
    assert [f["filename"] for f in second["matches"][0]["files"]] == names
    assert len(fake.raw_requests()) == 3


async def test_the_stream_and_the_page_say_what_the_download_budget_left(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    eve = add_user(fake, "eve", files=3, size=400 * KIB)
    fay = add_user(fake, "fay", files=3, size=400 * KIB)
    client = await make_client(content_cache_mb=4, search_download_mb=1)
    resp = await client.post(
        "/api/v1/search",
        json={"username": "eve", "pattern": "TODO"},
        headers={"Accept": "application/x-ndjson"},
    )
    assert resp.status == 200
    events = [json.loads(line) for line in (await resp.text()).splitlines()]
    skipped = [e for e in events if e["event"] == "skipped"]
    assert [(e["filename"], e["reason"]) for e in skipped] == [(eve[2], "download_budget")]
    assert events[-1]["event"] == "done"

    page = await client.get("/-/search", params={"user": "fay", "q": "TODO"})
    assert page.status == 200
    html = await page.text()
    words = SKIP_REASONS["download_budget"]
    assert words.startswith("not fetched")
    assert f"{fay[2]}</span> in gist" in html
    assert words.replace("'", "&#39;") in html


async def test_one_users_contents_never_take_the_cache_past_its_budget(
    make_client: ClientFactory, fake: FakeGitHub, database_url: str, make_engine: EngineFactory
) -> None:
    db = make_engine(database_url, create_async_engine)
    names = add_user(fake, "gus", files=3, size=400 * KIB)
    client = await make_client(**BUDGET)
    first = await search(client, "gus")
    assert skipped_files(first) == [(names[2], "download_budget")]
    # the share left is what the budget leaves beside gus's own 800 KiB: not a third file
    second = await search(client, "gus")
    assert skipped_files(second) == [(names[2], "download_budget")]
    assert len(fake.raw_requests()) == 2
    assert await chunk_bytes(db) <= 1 * MIB


async def test_contents_that_grow_in_decoding_are_paid_for_as_stored(
    make_client: ClientFactory, fake: FakeGitHub, database_url: str, make_engine: EngineFactory
) -> None:
    db = make_engine(database_url, create_async_engine)
    # 800 KiB of bytes that are not UTF-8: each is stored as U+FFFD, three bytes
    line = b"\xff" * 1023 + b"\n"
    fake.add_gist("hal", {"odd.txt": line * 800, "TODO.txt": "TODO\n"})
    client = await make_client(content_cache_mb=4, search_download_mb=2)
    answer = await search(client, "hal")
    assert ("odd.txt", "download_budget") in skipped_files(answer)
    # what it wrote before it stopped is deleted, not left behind
    await eventually(
        lambda: chunk_bytes(db),
        lambda held: held == len("TODO\n"),  # the other file's only
        what="the stopped download's chunks deleted",
    )


async def test_a_download_cut_off_leaves_no_chunks_behind(
    make_client: ClientFactory, fake: FakeGitHub, database_url: str, make_engine: EngineFactory
) -> None:
    db = make_engine(database_url, create_async_engine)
    fake.add_gist("ivy", {"big.txt": text(5 * MIB)})
    fake.cut_raw("big.txt", 3 * MIB)  # two chunks made, the first written
    client = await make_client()
    answer = await search(client, "ivy")
    assert skipped_files(answer) == [("big.txt", "unavailable")]
    await eventually(
        lambda: chunk_bytes(db),
        lambda held: held == 0,
        what="the cut-off download's chunks deleted",
    )


@contextlib.contextmanager
def writes_to(table: str) -> Iterator[list[str]]:
    """The UPDATE statements naming ``table`` that any engine sends meanwhile."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE") and table in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


async def test_a_warm_search_writes_when_it_was_searched_only_every_few_minutes(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    add_user(fake, "jay", size=2 * KIB)
    client = await make_client(cache_ttl=86400)
    await search(client, "jay")
    with writes_to("users") as writes:
        await search(client, "jay")
        clock.advance(4 * 60)
        await search(client, "jay")
    assert writes == []
    clock.advance(2 * 60)  # more than 5 minutes since it was written
    with writes_to("users") as writes:
        await search(client, "jay")
    assert len(writes) == 1


async def test_an_eviction_while_a_search_reads_is_a_skip_then_a_new_download(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    add_user(fake, "kim", size=2 * KIB)
    client = await make_client(content_memory_mb=0)
    await search(client, "kim")
    sessions = client.app[SESSIONS]
    # the states a search read just before another request evicted the user's contents
    site = await client.app[LISTING].store.site.id()
    async with sessions() as session:
        states = await content_store.Contents(session, site).user_files("kim")
    async with sessions() as session, session.begin():
        evicted = await content_store.Contents(session, site).evict_contents("kim")
    assert sorted(e.filename for e in evicted) == ["kim0.txt", "kim1.txt"]
    async with sessions() as session:
        read = [c async for c in content_store.stream_text_chunks(session, states)]
    assert [c.data for c in read] == [None, None]  # gone, as when a newer fetch replaced it
    # the next search fetches them again
    answer = await search(client, "kim")
    assert answer["total"] == 1
    assert answer["skipped"] == []
    assert len(fake.raw_requests()) == 4


async def test_the_heads_kept_of_binary_gists_count_within_the_budget(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    database_url: str,
    make_engine: EngineFactory,
) -> None:
    db = make_engine(database_url, create_async_engine)
    add_user(fake, "ann", size=300 * KIB)
    client = await make_client(**BUDGET)
    await search(client, "ann")  # 600 KiB of ann's text
    clock.advance(MINUTES_10)
    picture = b"\x89PNG\r\n\x1a\n\0" + bytes(range(256)) * (3 * KIB)  # 768 KiB, binary
    gist = fake.add_gist("bob", {"picture.png": picture})
    resp = await client.get(f"/api/v3/gists/{gist.id}")
    assert resp.status == 200
    # the picture's head is kept (and counted): ann's text made room for it
    assert await cached_users(db) == {"bob"}
    assert await chunk_bytes(db) == len(picture)
    async with client.app[SESSIONS]() as session:
        site = await client.app[LISTING].store.site.id()
        held = await content_store.Contents(session, site).user_content_bytes("bob")
        assert held == len(picture)


async def test_a_search_is_a_reader_before_it_reads_which_files_are_cached(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for login in ("ann", "bob"):
        add_user(fake, login)
    client = await make_client(**BUDGET)
    await search(client, "ann")
    clock.advance(MINUTES_10)
    await search(client, "bob")
    clock.advance(MINUTES_10)
    budget = client.app[SEARCHES]._contents.budget
    user_files = content_store.Contents.user_files
    evicted: list[str] = []

    async def evicting_after(*args: Any, **kwargs: Any) -> Any:
        # another search's finish() keeps the budget just after this one read its
        # states: ann, the least recently searched, must not go while her search reads
        states = await user_files(*args, **kwargs)
        if not evicted:
            evicted.append("kept")
            total, budget.total_bytes = budget.total_bytes, 500 * KIB
            budget._measured = None
            try:
                await budget.keep_within_budget()
            finally:
                budget.total_bytes = total
        return states

    monkeypatch.setattr(content_store.Contents, "user_files", evicting_after)
    answer = await search(client, "ann")
    assert answer["skipped"] == []
    assert answer["total"] == 1
    assert [f["filename"] for f in answer["matches"][0]["files"]] == ["ann0.txt", "ann1.txt"]
    assert len(fake.raw_requests()) == 4  # nothing fetched again


async def test_a_search_is_answered_when_the_time_it_was_searched_cannot_be_written(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for login in ("lee", "max"):
        add_user(fake, login, size=2 * KIB)
    client = await make_client(cache_ttl=86400)
    for login in ("lee", "max"):
        await search(client, login)
    clock.advance(MINUTES_10)
    record_search = content_store.Contents.record_search

    async def read_only(*args: Any, **kwargs: Any) -> None:
        raise DBAPIError("UPDATE users", None, Exception("the database is read-only"))

    monkeypatch.setattr(content_store.Contents, "record_search", read_only)
    caplog.set_level(logging.INFO, logger="gistcache.services.retention")
    for login in ("lee", "max", "lee"):
        answer = await search(client, login)
        assert answer["total"] == 1
        assert answer["skipped"] == []
    failed = [r for r in caplog.records if "could not record when users" in r.getMessage()]
    assert len(failed) == 1  # once when writing began to fail, not per search
    assert failed[0].levelno == logging.WARNING
    monkeypatch.setattr(content_store.Contents, "record_search", record_search)
    clock.advance(MINUTES_10)
    await search(client, "lee")
    again = [r for r in caplog.records if "last searched again" in r.getMessage()]
    assert len(again) == 1


async def gist_answer(client: Client, gist_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v3/gists/{gist_id}")
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def test_gists_read_through_api_v3_alone_keep_the_cached_contents_within_budget(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    database_url: str,
    make_engine: EngineFactory,
) -> None:
    db = make_engine(database_url, create_async_engine)
    for login in ("ann", "bob", "cid"):
        add_user(fake, login)
    client = await make_client(**BUDGET)
    for login in ("ann", "bob", "cid"):
        answer = await gist_answer(client, fake.user(login).gists[0].id)
        assert [f["content"] for f in answer["files"].values()] == [text(200 * KIB)] * 2
        clock.advance(MINUTES_10)
    assert await chunk_bytes(db) <= 1 * MIB
    assert await cached_users(db) == {"bob", "cid"}  # ann's, read first, made room


async def test_a_gist_read_through_api_v3_downloads_at_most_a_searchs_share(
    make_client: ClientFactory,
    fake: FakeGitHub,
    database_url: str,
    make_engine: EngineFactory,
) -> None:
    db = make_engine(database_url, create_async_engine)
    names = add_user(fake, "dan", files=3, size=400 * KIB)  # 1.2 MiB: the share is 1 MiB
    client = await make_client(content_cache_mb=4, search_download_mb=1)
    answer = await gist_answer(client, fake.user("dan").gists[0].id)
    # the whole answer: the file past the share is read from GitHub, not cached
    assert list(answer["files"]) == names
    assert all(f["content"] == text(400 * KIB) for f in answer["files"].values())
    assert await chunk_bytes(db) <= 1 * MIB


async def test_a_gist_answer_being_written_keeps_its_contents_from_eviction(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    database_url: str,
    make_engine: EngineFactory,
) -> None:
    db = make_engine(database_url, create_async_engine)
    for login in ("ann", "bob", "cid"):
        add_user(fake, login)
    client = await make_client(**BUDGET)
    reader = client.app[GISTS]
    # the answer stops before it reads its first file's contents, until let go
    reading, go_on = asyncio.Event(), asyncio.Event()
    cached_head = reader._cached_head

    async def held_head(state: content_store.FileState) -> bytes:
        reading.set()
        await go_on.wait()
        data: bytes = await cached_head(state)
        return data

    reader._cached_head = held_head
    answer = asyncio.create_task(gist_answer(client, fake.user("ann").gists[0].id))
    await asyncio.wait_for(reading.wait(), 10)
    clock.advance(MINUTES_10)
    # searches of two more users take the cache past its budget meanwhile
    await search(client, "bob")
    clock.advance(MINUTES_10)
    await search(client, "cid")
    assert await cached_users(db) == {"ann", "cid"}  # bob's went: ann's are being read
    go_on.set()
    files = (await answer)["files"]
    assert [f["content"] for f in files.values()] == [text(200 * KIB)] * 2
    assert [f["truncated"] for f in files.values()] == [False, False]


def matching_files(answer: dict[str, Any]) -> int:
    return sum(len(gist["files"]) for user in answer["users"] for gist in user["matches"])


async def test_a_many_user_search_downloads_within_one_share_for_all_its_users(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    # three users of two 200 KiB files: 1200 KiB in all, one share of 1 MiB holds five
    for login in ("ann", "ben", "cy"):
        add_user(fake, login)
    client = await make_client(content_cache_mb=16, search_download_mb=1, cache_ttl=86400)
    resp = await client.post(
        "/api/v1/search", json={"usernames": ["ann", "ben", "cy"], "pattern": "TODO"}
    )
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert len(fake.raw_requests()) == 5
    skipped = [entry for user in answer["users"] for entry in skipped_files(user)]
    assert [reason for _, reason in skipped] == ["download_budget"]
    assert matching_files(answer) == 5

    # the next search fetches the file left
    resp = await client.post(
        "/api/v1/search", json={"usernames": ["ann", "ben", "cy"], "pattern": "TODO"}
    )
    answer = await resp.json()
    assert len(fake.raw_requests()) == 6
    assert matching_files(answer) == 6
    assert all(user["skipped"] == [] for user in answer["users"])


async def test_a_many_user_stream_downloads_within_one_share_for_all_its_users(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    for login in ("ann", "ben", "cy"):
        add_user(fake, login)
    client = await make_client(content_cache_mb=16, search_download_mb=1, cache_ttl=86400)
    resp = await client.post(
        "/api/v1/search",
        json={"usernames": ["ann", "ben", "cy"], "pattern": "TODO"},
        headers={"Accept": "application/x-ndjson"},
    )
    assert resp.status == 200
    events = [json.loads(line) for line in (await resp.read()).splitlines()]
    assert len(fake.raw_requests()) == 5
    skipped = [e["reason"] for e in events if e["event"] == "skipped"]
    assert skipped == ["download_budget"]
