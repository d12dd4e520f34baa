"""The service when its PostgreSQL goes away and comes back, on a private cluster
that the test stops and starts (the shared test server is left alone)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from gistcache.store.migrate import upgrade
from gistcache.testing.fake_github import FakeGitHub
from gistcache.testing.postgres import PrivatePostgres, find_bindir
from tests.support.database import CI
from tests.support.http import ClientFactory, wait_for_status


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = find_bindir()
    if bindir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = PrivatePostgres.create(bindir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_service_survives_postgres_going_away_and_coming_back(
    make_client: ClientFactory, fake: FakeGitHub, private_postgres: PrivatePostgres
) -> None:
    await asyncio.to_thread(upgrade, private_postgres.url)
    client = await make_client(database_url=private_postgres.url)
    before = await client.get("/octocat")
    assert before.status == 200
    cached = await before.json()
    assert (await client.get("/readyz")).status == 200

    await asyncio.to_thread(private_postgres.stop)
    assert await wait_for_status(client, "/readyz", 503, within=5) < 5
    assert (await client.get("/healthz")).status == 200  # alive, just not ready
    # a fresh list this server served is still answered from its memory ...
    held = await client.get("/octocat")
    assert (held.status, held.headers["X-Cache"]) == (200, "HIT")
    assert await held.json() == cached
    # ... anything that needs the database is a clear 503
    for method, path, body, headers in (
        ("GET", "/someone-else", None, {}),
        ("GET", "/octocat", None, {"Cache-Control": "no-cache"}),
        ("POST", "/api/v1/search", {"username": "octocat", "pattern": "x"}, {}),
    ):
        resp = await client.request(method, path, json=body, headers=headers)
        assert resp.status == 503
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert problem["type"] == "urn:gistcache:problem:database-unavailable"
        assert "Traceback" not in str(problem)

    await asyncio.to_thread(private_postgres.start)
    await wait_for_status(client, "/readyz", 200, within=15)  # no restart needed
    after = await client.get("/octocat")
    assert after.status == 200
    assert after.headers["X-Cache"] == "HIT"  # nothing was lost
    assert await after.json() == cached
    assert len(fake.api_requests()) == 1
