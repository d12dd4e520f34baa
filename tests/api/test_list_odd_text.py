"""Text from GitHub that a database or UTF-8 cannot hold as it is (a NUL, a lone
surrogate), stored and served the same on every database and endpoint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from gistcache.testing.fake_github import FakeGitHub

Client = TestClient[Any, Any]


async def test_text_with_nul_is_stored_the_same_on_every_database(
    client: Client, fake: FakeGitHub
) -> None:
    fake.add_gist("odd", {"a.txt": "x"}, description="before\x00after")
    resp = await client.get("/odd")
    assert resp.status == 200
    assert (await resp.json())[0]["description"] == "before\ufffdafter"
    again = await client.get("/odd")
    assert again.headers["X-Cache"] == "HIT"


LONE = "\ud800"  # a UTF-16 surrogate with no partner: JSON can carry it, UTF-8 cannot


def _gist_with_a_lone_surrogate(fake: FakeGitHub, where: str) -> str:
    """A gist of "odd" whose ``where`` (as GitHub's JSON names it) holds a lone surrogate,
    sent as the ``\\ud800`` escape; the gist's id."""
    name = f"a{LONE}.txt" if where in ("filename", "raw_url") else "a.txt"
    description = f"before{LONE}after" if where == "description" else "plain"
    gist = fake.add_gist("odd", {name: "needle\n"}, description=description)
    if where == "language":
        gist.files[name].fields["language"] = f"Py{LONE}"
    elif where == "raw_url":
        fake.quote_raw_urls = False  # the file's name in its raw URL as it is, not %XX
    elif where == "html_url":
        gist.fields["html_url"] = f"https://gist.github.com/{gist.id}{LONE}"
    return gist.id


@pytest.mark.parametrize("where", ["description", "filename", "language", "raw_url", "html_url"])
async def test_a_lone_surrogate_from_github_is_replaced_on_every_endpoint(
    client: Client, fake: FakeGitHub, fake_server: TestServer, where: str
) -> None:
    gist_id = _gist_with_a_lone_surrogate(fake, where)
    async with ClientSession(headers={"User-Agent": "test"}) as github:
        sent_by_github = await (await github.get(fake_server.make_url("/users/odd/gists"))).read()
    assert b"\\ud800" in sent_by_github  # the JSON escape, as GitHub would send it

    resp = await client.get("/odd")
    assert resp.status == 200, await resp.text()
    assert resp.headers["X-Cache"] == "MISS"
    [listed] = await resp.json()
    text = json.dumps(listed, ensure_ascii=False)
    assert LONE not in text
    if where.endswith("_url"):
        assert "%ED%A0%80" in text  # escaped as a request sends it: the same URL
    else:
        assert "\ufffd" in text  # replaced, as a NUL is
    sent = len(fake.api_requests("/users/odd"))

    search = {"username": "odd", "pattern": "needle"}
    answers = [
        await client.get("/odd"),
        await client.get("/api/v1/users/odd/gists"),
        await client.post("/api/v1/search", json=search),
        await client.post(
            "/api/v1/search", json=search, headers={"Accept": "application/x-ndjson"}
        ),
        await client.get("/-/users/odd"),
        await client.get("/-/search", params={"user": "odd", "q": "needle"}),
        await client.get("/api/v3/users/odd/gists"),
        await client.get(f"/api/v3/gists/{gist_id}"),
    ]
    for answer in answers:
        assert answer.status == 200, (answer.url, await answer.text())
        await answer.read()
    assert answers[0].headers["X-Cache"] == "HIT"
    found = await answers[2].json()
    assert (found["total"], found["skipped"]) == (1, [])  # its raw URL still names the file
    # the list was cached once: asking again cost GitHub nothing (the gist's own
    # GET /gists/{id} under /api/v3 is one request of its own)
    assert len(fake.api_requests("/users/odd")) == sent
