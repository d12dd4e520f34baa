"""A pattern RE2 scans slowly: the server answers beside it, its time budget holds even
inside one chunk, the scan it leaves behind stops (its search slot held until then),
and as a job it fails once; a pattern whose compiled program is too large is refused
in words."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.services import search as search_service
from gistcache.store.models import search_jobs
from gistcache.testing.fake_github import FakeGitHub
from tests.support.http import ClientFactory
from tests.support.waiting import eventually

Client = TestClient[Any, Any]

# within the program-size bound (3,614 instructions), yet over text of a and b RE2's DFA
# runs out of states and it simulates the NFA: several seconds a megabyte, no match
SLOW = ".*a.{450}c"
BUDGET = 1.0  # seconds: GISTCACHE_SEARCH_TIMEOUT for these tests


def a_and_b(size: int, line: int = 2000) -> str:
    """Lines of ``line`` random a and b, about ``size`` bytes: one chunk, seconds to scan."""
    rng = random.Random(20)  # noqa: S311 - test data, the same on every run
    lines = ["".join(rng.choices("ab", k=line)) for _ in range(size // (line + 1))]
    return "\n".join(lines) + "\n"


async def cached_user(
    make_client: ClientFactory, fake: FakeGitHub, text: str | None = None
) -> None:
    """A user whose one file is in the cache already, so a search spends its budget
    scanning, not downloading (brought in by a server of its own, with all the time it
    needs on a busy machine)."""
    client = await make_client()
    fake.add_gist("slow", {"ab.txt": a_and_b(768 * 1024) if text is None else text})
    resp = await client.post("/api/v1/search", json={"username": "slow", "pattern": "c"})
    assert resp.status == 200, await resp.text()


async def timed(client: Client, coro: Any) -> tuple[Any, float, list[float]]:
    """Run ``coro`` while ``client``'s server is asked for /healthz again and again: its
    outcome, how long it took, and how long each health answer took."""
    started = time.monotonic()
    work = asyncio.ensure_future(coro)
    health: list[float] = []
    while not work.done():
        asked = time.monotonic()
        resp = await client.get("/healthz")
        health.append(time.monotonic() - asked)
        assert resp.status == 200
        await asyncio.sleep(0.02)
    return work.result(), time.monotonic() - started, health


async def busy_cpu(seconds: float) -> float:
    """The CPU time this process spends over ``seconds`` of wall time, doing nothing."""
    before = time.process_time()
    await asyncio.sleep(seconds)
    return time.process_time() - before


async def test_a_slow_pattern_leaves_the_server_answering_and_runs_out_of_time_on_time(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    client = await make_client(search_timeout=BUDGET)
    await cached_user(make_client, fake)

    async def slow_search() -> tuple[int, dict[str, Any]]:
        resp = await client.post("/api/v1/search", json={"username": "slow", "pattern": SLOW})
        return resp.status, await resp.json()

    (status, problem), took, health = await timed(client, slow_search())
    assert status == 504
    assert problem["type"] == "urn:gistcache:problem:search-timeout"
    # the budget is kept inside the chunk, not at its end, seconds later
    assert BUDGET <= took < BUDGET + 1.0, took
    # the event loop was never held: every health check answered at once
    assert len(health) >= 5
    assert max(health) < 0.25, health
    # the scan the search left behind stops at its next slice, not at the chunk's end
    await asyncio.sleep(1.0)
    assert await busy_cpu(1.0) < 0.25
    # and a search after it is answered as ever
    resp = await client.post("/api/v1/search", json={"username": "slow", "pattern": "c"})
    assert resp.status == 200


async def test_a_scan_out_of_time_over_long_lines_frees_its_thread_within_a_second(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    # lines of 30 KiB: each a slice of its own, one RE2 call
    await cached_user(make_client, fake, a_and_b(1024 * 1024, line=30 * 1024))
    client = await make_client(search_timeout=BUDGET, max_searches=1)
    resp = await client.post("/api/v1/search", json={"username": "slow", "pattern": SLOW})
    assert resp.status == 504
    await asyncio.sleep(1.0)
    assert await busy_cpu(1.0) < 0.25
    # the one search slot is free again
    resp = await client.post("/api/v1/search", json={"username": "slow", "pattern": "c"})
    assert resp.status == 200


async def test_a_search_out_of_time_holds_its_slot_until_its_scan_has_stopped(
    make_client: ClientFactory, fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cached_user(make_client, fake)
    client = await make_client(search_timeout=BUDGET, max_searches=1)
    scanned = search_service._scan_batch
    finishing = threading.Event()

    def slow_to_stop(*args: Any) -> None:
        finishing.wait(30)  # a slice that goes on after the search's time is up

    monkeypatch.setattr(search_service, "_scan_batch", slow_to_stop)
    body = {"username": "slow", "pattern": "c"}
    resp = await client.post("/api/v1/search", json=body)
    assert resp.status == 504
    # the one scanning thread is still busy: a search now is told so at once, rather
    # than queued behind it until its own time is up
    resp = await client.post("/api/v1/search", json=body)
    assert resp.status == 503
    assert (await resp.json())["type"] == "urn:gistcache:problem:searches-busy"
    monkeypatch.setattr(search_service, "_scan_batch", scanned)
    finishing.set()

    async def again() -> int:
        return (await client.post("/api/v1/search", json=body)).status

    assert await eventually(again, lambda status: status == 200, within=5.0) == 200


async def test_a_search_job_out_of_time_fails_once_on_one_server(
    make_client: ClientFactory, fake: FakeGitHub, engine: AsyncEngine
) -> None:
    # two servers on one database, with a lease far shorter than the scan would take:
    # the runner keeps renewing it while the scan runs, so nobody else takes the job
    servers = [
        await make_client(search_timeout=BUDGET, search_job_lease=0.6, search_workers=1)
        for _ in range(2)
    ]
    await cached_user(make_client, fake)

    async def slow_job() -> dict[str, Any]:
        resp = await servers[0].post(
            "/api/v1/search", json={"username": "slow", "pattern": SLOW, "async": True}
        )
        assert resp.status == 202
        job_id = (await resp.json())["request_id"]

        async def status() -> dict[str, Any]:
            body: dict[str, Any] = await (await servers[1].get(f"/api/v1/search/{job_id}")).json()
            return body

        return await eventually(status, lambda body: body["status"] in ("SUCCESS", "FAILURE"))

    job, took, health = await timed(servers[1], slow_job())
    assert job["status"] == "FAILURE"
    assert job["error"]["type"] == "urn:gistcache:problem:search-timeout"
    assert job["error"]["status"] == 504
    assert took < BUDGET + 1.5, took
    assert max(health) < 0.25, health
    await asyncio.sleep(1.0)  # time for anyone who would take the job over
    async with engine.connect() as conn:
        row = (await conn.execute(select(search_jobs))).one()
    assert (row.status, row.attempts) == ("FAILURE", 1)


async def test_a_pattern_too_complex_to_scan_fast_is_refused_in_words(
    client: Client, fake: FakeGitHub
) -> None:
    resp = await client.post(
        "/api/v1/search", json={"username": "alice", "pattern": "(.{20}){50}q"}
    )
    assert resp.status == 400
    problem = await resp.json()
    assert problem["type"] == "urn:gistcache:problem:invalid-pattern"
    assert problem["field"] == "pattern"
    assert problem["detail"].startswith(
        "the pattern is too complex: RE2 compiles it to 8,005 instructions, "
        "more than the 4,000 allowed"
    )
    page = await client.get("/-/search", params={"user": "alice", "q": "[^\\n]{900}Z"})
    assert page.status == 400
    assert "the pattern is too complex" in await page.text()
    assert fake.requests == []
