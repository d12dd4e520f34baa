from __future__ import annotations

import asyncio
import struct
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.settings import Settings
from gistcache.store.models import sites
from gistcache.testing.fake_github import FakeGitHub
from tests.support.database import read_only_database
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


async def test_readyz_is_503_while_the_database_accepts_no_writes(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    assert (await client.get("/octocat")).status == 200  # connections are open
    async with read_only_database(settings.database_url):
        assert (await client.get("/healthz")).status == 200
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert problem["title"] == "Not ready"
        assert "read-only" in problem["detail"]
        assert resp.headers["Retry-After"] == "5"
    # writable again: ready again, without a restart
    assert (await client.get("/readyz")).status == 200


async def test_a_read_only_database_is_a_503_not_a_500(
    make_client: ClientFactory, settings: Settings
) -> None:
    async with read_only_database(settings.database_url):
        client = await make_client()
        for method, path, body in (
            ("GET", "/octocat", None),
            ("POST", "/api/v1/search", {"username": "octocat", "pattern": "x"}),
            ("POST", "/api/v1/search", {"username": "octocat", "pattern": "x", "async": True}),
        ):
            resp = await client.request(method, path, json=body)
            assert resp.status == 503, await resp.text()
            problem = await resp.json()
            assert problem["type"] == "urn:gistcache:problem:database-unavailable"
            assert resp.headers["Retry-After"] == "5"
        assert (await client.get("/readyz")).status == 503


async def test_readyz_does_not_wait_for_another_writer(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    # a long transaction holding the write lock (SQLite has one writer at a time) is a
    # busy database, not a read-only one: ready, and at once
    assert (await client.get("/readyz")).status == 200  # the server set the database up
    async with engine.begin() as conn:
        await conn.execute(update(sites).values(api_url=sites.c.api_url))
        resp = await asyncio.wait_for(client.get("/readyz"), timeout=1.5)
        assert resp.status == 200, await resp.text()


async def _refuse_as_shutting_down(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer a PostgreSQL client as a server that is shutting down does: SQLSTATE 57P03."""
    length, code = struct.unpack("!ii", await reader.readexactly(8))
    if code == 80877103:  # SSLRequest: no TLS here, then the real startup message
        writer.write(b"N")
        (length,) = struct.unpack("!i", await reader.readexactly(4))
        await reader.readexactly(length - 4)
    else:
        await reader.readexactly(length - 8)
    fields = b"".join(
        key + value.encode() + b"\0"
        for key, value in (
            (b"S", "FATAL"),
            (b"V", "FATAL"),
            (b"C", "57P03"),
            (b"M", "the database system is shutting down"),
        )
    )
    body = fields + b"\0"
    writer.write(b"E" + struct.pack("!i", len(body) + 4) + body)
    await writer.drain()
    writer.close()


async def test_a_database_shutting_down_is_a_503_not_a_500(make_client: ClientFactory) -> None:
    # what the chaos soak met while it stopped PostgreSQL: "the database system is
    # shutting down" (57P03) is an outage like a refused connection
    server = await asyncio.start_server(_refuse_as_shutting_down, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = await make_client(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x")
        for method, path, body in (
            ("GET", "/octocat", None),
            ("POST", "/api/v1/search", {"username": "octocat", "pattern": "x"}),
            ("POST", "/api/v1/search", {"username": "octocat", "pattern": "x", "async": True}),
        ):
            resp = await client.request(method, path, json=body)
            assert resp.status == 503, await resp.text()
            assert resp.content_type == "application/problem+json"
            problem = await resp.json()
            assert problem["type"] == "urn:gistcache:problem:database-unavailable"
            assert resp.headers["Retry-After"] == "5"
        assert (await client.get("/readyz")).status == 503
    finally:
        server.close()
        await server.wait_closed()
