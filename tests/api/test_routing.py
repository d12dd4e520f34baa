"""Which path reaches which handler: usernames, paths that are not one, fixed paths,
unknown routes and methods, and the request id every answer carries."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub

Client = TestClient[Any, Any]


@pytest.mark.parametrize(
    "path",
    [
        "/a..b",
        "/a.b",
        "/" + "x" * 40,
        "/%C3%BCser",
        "/a%20b",
        "/a%00b",
        "/api/v1/users/a..b/gists",
        "/api/v1/users/" + "x" * 40 + "/gists",
    ],
)
async def test_invalid_usernames_are_400_and_never_reach_github(
    client: Client, fake: FakeGitHub, path: str
) -> None:
    resp = await client.get(path)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["type"] == "urn:gistcache:problem:invalid-username"
    assert fake.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/a%2Fb",
        "/..%2F..%2Fetc",
        "/a/b",
        "/%2e%2e",
        "/api/v1/users/%2e%2e/gists",
        "/api/v1/users/a%2Fb/gists",
        "/api/v1/users/../gists",
    ],
)
async def test_paths_that_are_not_a_username_never_reach_github(
    client: Client, fake: FakeGitHub, path: str
) -> None:
    # sent exactly as written: no client-side normalisation of dots or escapes
    resp = await client.session.get(client.make_url("").with_path(path, encoded=True))
    assert resp.status in (400, 404)
    assert resp.content_type == "application/problem+json"
    assert fake.requests == []


async def test_fixed_paths_win_and_the_api_form_reaches_such_users(
    client: Client, fake: FakeGitHub
) -> None:
    fake.add_gist("ping", {"a.txt": "pong?\n"})
    assert await (await client.get("/ping")).text() == "pong"
    assert fake.requests == []
    resp = await client.get("/api/v1/users/ping/gists")
    assert resp.status == 200
    assert [g["owner"] for g in await resp.json()] == ["ping"]


async def test_unknown_routes_and_methods_are_problems(client: Client) -> None:
    resp = await client.get("/a/b/c")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    resp = await client.post("/octocat")
    assert resp.status == 405
    assert resp.content_type == "application/problem+json"
    assert "GET" in resp.headers["Allow"]


async def test_request_id_is_echoed_or_made(client: Client) -> None:
    resp = await client.get("/ping", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/ping", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(made.headers["X-Request-ID"]) == 32
