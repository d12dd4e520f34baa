"""Conditional requests for a list: our ETag and the forms of If-None-Match that match it."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from tests.support.github import many_gists

Client = TestClient[Any, Any]


async def test_our_etag_answers_if_none_match_with_304(client: Client, fake: FakeGitHub) -> None:
    first = await client.get("/octocat")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')

    resp = await client.get("/octocat", headers={"If-None-Match": etag})
    assert resp.status == 304
    assert await resp.read() == b""
    assert resp.headers["ETag"] == etag
    assert resp.headers["X-Cache"] == "HIT"

    other = await client.get("/octocat", headers={"If-None-Match": '"something-else"'})
    assert other.status == 200


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        ("W/{etag}", 304),  # a weak tag compares equal: GET uses the weak comparison
        ('"something-else", {etag}', 304),
        ('"a",W/{etag} , "b"', 304),
        ("*", 304),
        ('"a", "b"', 200),
        ('W/"something-else"', 200),
        ("{unquoted}", 200),  # an entity tag is quoted; a bare word names none
    ],
)
async def test_if_none_match_forms(
    client: Client, fake: FakeGitHub, if_none_match: str, status: int
) -> None:
    fake.add_gist("octocat", {"a.py": "1"})
    first = await client.get("/octocat")
    etag = first.headers["ETag"]
    value = if_none_match.format(etag=etag, unquoted=etag.strip('"'))
    resp = await client.get("/octocat", headers={"If-None-Match": value})
    assert resp.status == status
    assert resp.headers["ETag"] == etag
    assert await resp.read() == (b"" if status == 304 else await first.read())


@pytest.mark.parametrize(
    "path",
    [
        "/prolific",
        "/prolific?page=2&per_page=2",
        "/api/v1/users/prolific/gists",
        "/api/v1/users/prolific/gists?per_page=1",
    ],
)
async def test_a_weak_etag_matches_on_every_list_that_answers_304(
    client: Client, fake: FakeGitHub, path: str
) -> None:
    # caching clients (hishel, which githubkit uses) send back W/"…"
    many_gists(fake, "prolific", 5)
    first = await client.get(path)
    etag = first.headers["ETag"]
    assert not etag.startswith("W/")
    for offered in (f"W/{etag}", f'"other", W/{etag}'):
        resp = await client.get(path, headers={"If-None-Match": offered})
        assert resp.status == 304, offered
        assert await resp.read() == b""
    changed = await client.get(path, headers={"If-None-Match": 'W/"other"'})
    assert changed.status == 200
