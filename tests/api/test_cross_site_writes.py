"""Writes a browser sends from another site's page (a form, a text/plain fetch: no CORS
preflight needed) are refused; this site's own pages and clients that are not browsers
(curl, scripts) are served, whatever the body's content type."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.store.models import search_jobs
from gistcache.testing.fake_github import FakeGitHub

Client = TestClient[Any, Any]
SEARCH = json.dumps({"username": "octocat", "pattern": "def"})
ASYNC_SEARCH = json.dumps({"username": "octocat", "pattern": "def", "async": True})


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://evil.localhost"},
        {"Origin": "https://evil.example"},  # a browser too old to send Sec-Fetch-Site
        {"Origin": "null"},  # a sandboxed frame or a file
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
async def test_a_write_a_browser_sends_from_another_site_is_refused(
    client: Client,
    fake: FakeGitHub,
    headers: dict[str, str],
    content_type: str,
    engine: AsyncEngine,
) -> None:
    for body in (SEARCH, ASYNC_SEARCH):
        resp = await client.post(
            "/api/v1/search", data=body, headers={**headers, "Content-Type": content_type}
        )
        assert resp.status == 403
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
        assert problem["type"] == "urn:gistcache:problem:cross-site-request"
        assert "another site" in problem["detail"]
    assert fake.requests == []  # nothing reached GitHub
    async with engine.connect() as conn:  # and no job was queued
        assert await conn.scalar(select(func.count()).select_from(search_jobs)) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, a script: not a browser acting for a page
        {"Content-Type": "application/x-www-form-urlencoded"},  # what curl -d sends
        {"Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain"},  # our own page
        {"Sec-Fetch-Site": "none"},  # typed by the user
        {"Origin": "ORIGIN"},  # an older browser, on this site
    ],
)
async def test_this_sites_pages_and_other_clients_may_write(
    client: Client, headers: dict[str, str]
) -> None:
    origin = str(client.make_url("")).rstrip("/")
    headers = {k: origin if v == "ORIGIN" else v for k, v in headers.items()}
    resp = await client.post("/api/v1/search", data=SEARCH, headers=headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["total"] == 1


async def test_reads_from_any_site_are_served(client: Client) -> None:
    # a search is also a link (GET /-/search): any page may link to it
    cross = {"Sec-Fetch-Site": "cross-site", "Origin": "https://elsewhere.example"}
    assert (await client.get("/octocat", headers=cross)).status == 200
    page = await client.get("/-/search", params={"user": "octocat", "q": "def"}, headers=cross)
    assert page.status == 200
