from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from tests.support.http import ClientFactory


async def test_ping_healthz_readyz(client: TestClient[Any, Any], fake: FakeGitHub) -> None:
    resp = await client.get("/ping")
    assert resp.status == 200
    assert await resp.text() == "pong"

    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}

    resp = await client.get("/readyz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ready"}
    assert fake.requests == []


async def test_readyz_is_503_when_the_database_does_not_answer(
    make_client: ClientFactory,
) -> None:
    # nothing listens on port 1: the database is unreachable, the process is alive
    client = await make_client(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    resp = await client.get("/healthz")
    assert resp.status == 200

    resp = await client.get("/readyz")
    assert resp.status == 503
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == 503
    assert body["title"] == "Not ready"
    assert "Traceback" not in await resp.text()

    resp = await client.get("/octocat")
    assert resp.status == 503
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["type"] == "urn:gistcache:problem:database-unavailable"
    assert resp.headers["Retry-After"] == "5"
