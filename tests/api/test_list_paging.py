"""Paging a cached list: the page asked for, its Link header, and bad paging values."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from tests.support.github import many_gists

Client = TestClient[Any, Any]


async def test_pagination_of_our_own_list(client: Client, fake: FakeGitHub) -> None:
    ids = many_gists(fake, "prolific", 25)
    resp = await client.get("/prolific?page=2&per_page=10")
    assert resp.status == 200
    assert [g["id"] for g in await resp.json()] == ids[10:20]
    assert resp.headers["X-Total-Count"] == "25"
    links = {
        part.split(";")[1].strip(): part.split(";")[0].strip()[1:-1]
        for part in resp.headers["Link"].split(", ")
    }
    base = str(client.make_url("/prolific"))
    assert links == {
        'rel="next"': f"{base}?page=3&per_page=10",
        'rel="prev"': f"{base}?page=1&per_page=10",
        'rel="first"': f"{base}?page=1&per_page=10",
        'rel="last"': f"{base}?page=3&per_page=10",
    }

    last = await client.get("/prolific?page=3&per_page=10")
    assert [g["id"] for g in await last.json()] == ids[20:]
    assert 'rel="next"' not in last.headers["Link"]

    beyond = await client.get("/prolific?page=9&per_page=10")
    assert beyond.status == 200
    assert await beyond.json() == []

    only_page = await client.get("/prolific?page=1")  # per_page defaults to 30
    assert len(await only_page.json()) == 25
    assert 'rel="next"' not in only_page.headers["Link"]
    assert len(fake.api_requests()) == 1


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=abc", "per_page=0", "per_page=101", "per_page=1.5", "page="],
)
async def test_bad_paging_values_are_400(client: Client, fake: FakeGitHub, query: str) -> None:
    resp = await client.get(f"/octocat?{query}")
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == 400
    assert body["type"] == "urn:gistcache:problem:invalid-query"
    assert fake.requests == []
