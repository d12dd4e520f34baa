"""The memory tier in front of the database, and the refresh lease: a fresh list answered
from memory, revalidations that read and render nothing again, and a lease handed back
in the transaction that records the refresh, even when it fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.store.models import gist_files, gists
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.database import commits, reads_of
from tests.support.github import many_gists
from tests.support.http import ClientFactory

Client = TestClient[Any, Any]


@pytest.mark.parametrize("memory_mb", [64, 0])
async def test_a_fresh_list_is_answered_from_memory_without_the_database(
    make_client: ClientFactory, fake: FakeGitHub, memory_mb: int, engine: AsyncEngine
) -> None:
    client = await make_client(memory_cache_mb=memory_mb)
    first = await client.get("/octocat")
    listed = await first.json()
    assert len(listed) == 1
    # empty the cache tables behind the service's back
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


async def test_answers_from_memory_count_down_and_say_how_they_were_obtained(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    # the headers of a version of the list are made once: what changes per answer
    # (X-Cache, the freshness left, a 304's missing body) must still change
    first = await client.get("/octocat")
    assert first.headers["X-Cache"] == "MISS"
    assert first.headers["Cache-Control"] == "public, max-age=60"
    etag = first.headers["ETag"]
    clock.advance(10)
    hit = await client.get("/octocat")
    assert (hit.headers["X-Cache"], hit.headers["Cache-Control"]) == ("HIT", "public, max-age=50")
    assert hit.headers["ETag"] == etag
    assert hit.headers["X-Total-Count"] == "1"
    assert hit.headers["Content-Type"] == "application/json"
    clock.advance(25)
    unchanged = await client.get("/octocat", headers={"If-None-Match": etag})
    assert unchanged.status == 304
    assert unchanged.headers["X-Cache"] == "HIT"
    assert unchanged.headers["Cache-Control"] == "public, max-age=25"
    assert unchanged.headers["ETag"] == etag
    assert "Content-Type" not in unchanged.headers
    again = await client.get("/octocat")
    assert again.headers["Content-Type"] == "application/json"  # the 304 took it from no one
    assert await again.json() == await first.json()
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
    import gistcache.services.memory as memory
    from gistcache.domain.gists import render_gists as render

    renders: list[int] = []

    def counted(gists: Any) -> bytes:
        renders.append(len(gists))
        return render(gists)

    monkeypatch.setattr(memory, "render_gists", counted)
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
    change: bool,
    engine: AsyncEngine,
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
    assert await leases_held(engine) == []
    clock.advance(61)  # and the next refresh can take it at once
    assert (await client.get("/prolific")).headers["X-Cache"] == "REVALIDATED"


async def test_a_refresh_whose_save_fails_still_hands_its_lease_back(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    engine: AsyncEngine,
) -> None:
    from gistcache.store.users import Users

    client = await make_client()
    ids = many_gists(fake, "prolific", 150)
    await client.get("/prolific")
    fake.update_gist(ids[3], description="changed")
    clock.advance(61)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the save failed")

    save = Users.save_list
    monkeypatch.setattr(Users, "save_list", broken)
    failed = await client.get("/prolific")
    assert failed.status >= 500
    assert await leases_held(engine) == []
    monkeypatch.setattr(Users, "save_list", save)
    again = await client.get("/prolific")
    assert again.headers["X-Cache"] == "UPDATED"
    assert (await again.json())[3]["description"] == "changed"


async def test_a_list_read_while_its_pages_changed_is_not_taken_for_the_stored_one(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    engine: AsyncEngine,
) -> None:
    from gistcache.store.models import list_pages
    from gistcache.store.users import Users

    many_gists(fake, "prolific", 150)
    await (await make_client()).get("/prolific")
    restarted = await make_client()
    load = Users.gists

    async def load_while_a_refresh_commits(*args: Any, **kwargs: Any) -> Any:
        loaded = await load(*args, **kwargs)
        async with engine.begin() as conn:  # another server's save, between the reads
            await conn.execute(update(list_pages).values(etag='W/"elsewhere"'))
        return loaded

    async with engine.begin() as conn:
        stored = (await conn.execute(select(list_pages.c.page_no, list_pages.c.etag))).all()
    monkeypatch.setattr(Users, "gists", load_while_a_refresh_commits)
    assert (await restarted.get("/prolific")).headers["X-Cache"] == "HIT"
    monkeypatch.setattr(Users, "gists", load)
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


def slow_check_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording a check takes a while: the answer comes well before it (its correctness
    does not depend on how long; the wait only leaves a wrong order the time to show)."""
    from gistcache.store.users import Users

    mark = Users.mark_checked

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)
        return await mark(*args, **kwargs)

    monkeypatch.setattr(Users, "mark_checked", slow)


async def stale_search(client: Client, clock: FakeClock) -> str:
    """A search of prolific's stale list, which GitHub confirms: its X-Cache."""
    clock.advance(61)
    answer = await client.post("/api/v1/search", json={"username": "prolific", "pattern": "9"})
    assert answer.status == 200, await answer.text()
    return answer.headers["X-Cache"]


async def test_a_stale_search_records_githubs_304_after_its_answer_and_before_the_next_read(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    engine: AsyncEngine,
) -> None:
    slow_check_record(monkeypatch)
    many_gists(fake, "prolific", 150)
    client = await make_client(memory_cache_mb=0)  # the next answer reads the database
    await client.post("/api/v1/search", json={"username": "prolific", "pattern": "9"})
    asked = len(fake.api_requests())
    assert await stale_search(client, clock) == "REVALIDATED"
    assert len(fake.api_requests()) == asked + 2  # the list's two pages, conditionally
    # this process reads the check it answered with: not stale, no lease in the way
    assert (await client.get("/prolific")).headers["X-Cache"] == "HIT"
    assert await leases_held(engine) == []
    assert len(fake.api_requests()) == asked + 2


async def test_a_check_recorded_after_the_answer_that_fails_still_hands_the_lease_back(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    engine: AsyncEngine,
) -> None:
    from gistcache.store.users import Users

    many_gists(fake, "prolific", 150)
    client = await make_client(memory_cache_mb=0)
    await client.post("/api/v1/search", json={"username": "prolific", "pattern": "9"})

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the write failed")

    mark = Users.mark_checked
    monkeypatch.setattr(Users, "mark_checked", broken)
    assert await stale_search(client, clock) == "REVALIDATED"  # answered all the same
    monkeypatch.setattr(Users, "mark_checked", mark)
    # the check was lost: GitHub is asked once more, at once, and no lease is in the way
    assert (await client.get("/prolific")).headers["X-Cache"] == "REVALIDATED"
    assert await leases_held(engine) == []


async def test_a_server_stopping_right_after_a_stale_search_records_its_check_first(
    make_client: ClientFactory,
    fake: FakeGitHub,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    engine: AsyncEngine,
) -> None:
    slow_check_record(monkeypatch)
    many_gists(fake, "prolific", 150)
    client = await make_client()
    await client.post("/api/v1/search", json={"username": "prolific", "pattern": "9"})
    assert await stale_search(client, clock) == "REVALIDATED"
    await client.close()
    assert await leases_held(engine) == []
    monkeypatch.undo()
    asked = len(fake.api_requests())
    restarted = await make_client()
    assert (await restarted.get("/prolific")).headers["X-Cache"] == "HIT"
    assert len(fake.api_requests()) == asked
