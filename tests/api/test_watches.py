"""The watches API: who may (404 without API tokens, 401 and 403, another token's watches
invisible), create, list, get and delete, and bad input refused with nothing made."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.web.app_keys import WATCHES
from tests.support.http import ClientFactory, problem

Client = TestClient[Any, Any]
TOKEN = "alpha-token-0123456789"
OTHER = "bravo-token-0123456789"
MINE = {"Authorization": f"Bearer {TOKEN}"}
THEIRS = {"Authorization": f"Bearer {OTHER}"}
WATCH = {"usernames": ["Alice", "bob", "alice"], "pattern": "needle", "interval": 600}


@pytest.fixture
async def api(make_client: ClientFactory) -> Client:
    client = await make_client(api_tokens=(TOKEN, OTHER))
    await client.app[WATCHES].stop()  # the tests run the poller themselves
    return client


async def test_without_api_tokens_the_watches_are_not_there(make_client: ClientFactory) -> None:
    client = await make_client()
    await problem(await client.get("/api/v1/watches", headers=MINE), 404, "not-found")
    await problem(await client.post("/api/v1/watches", json=WATCH, headers=MINE), 404, "not-found")
    resp = await client.get("/api/v1/watches/x/feed.atom?token=y")
    assert resp.status == 404


async def test_a_token_is_required_and_must_be_the_servers(api: Client) -> None:
    resp = await api.get("/api/v1/watches")
    await problem(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    await problem(
        await api.get("/api/v1/watches", headers={"Authorization": f"Basic {TOKEN}"}),
        401,
        "unauthorized",
    )
    wrong = {"Authorization": "Bearer not-a-token-of-the-server"}
    await problem(await api.post("/api/v1/watches", json=WATCH, headers=wrong), 403, "forbidden")
    resp = await api.get("/api/v1/watches", headers=MINE)
    assert await resp.json() == {"watches": []}


async def test_create_list_get_delete_and_another_tokens_watch_is_invisible(api: Client) -> None:
    resp = await api.post(
        "/api/v1/watches",
        json={**WATCH, "webhook": {"url": "https://hooks.example.com/x", "secret": "s3cret"}},
        headers=MINE,
    )
    assert resp.status == 201
    watch = await resp.json()
    assert resp.headers["Location"] == f"/api/v1/watches/{watch['id']}"
    assert watch["usernames"] == ["alice", "bob"]  # lower-cased, duplicates dropped, in order
    assert (watch["pattern"], watch["interval"], watch["org"]) == ("needle", 600, None)
    assert watch["webhook"] == {"url": "https://hooks.example.com/x"}  # the secret never shown
    assert "s3cret" not in await resp.text()
    assert watch["feed_url"].startswith(f"/api/v1/watches/{watch['id']}/feed.atom?token=")
    assert len(watch["feed_url"].rsplit("=", 1)[1]) >= 40  # unguessable
    assert watch["runs"] == 0
    assert watch["last_run_at"] is None

    listed = await (await api.get("/api/v1/watches", headers=MINE)).json()
    assert [w["id"] for w in listed["watches"]] == [watch["id"]]
    got = await api.get(f"/api/v1/watches/{watch['id']}", headers=MINE)
    assert (await got.json())["id"] == watch["id"]

    assert await (await api.get("/api/v1/watches", headers=THEIRS)).json() == {"watches": []}
    path = f"/api/v1/watches/{watch['id']}"
    await problem(await api.get(path, headers=THEIRS), 404, "watch-not-found")
    await problem(await api.delete(path, headers=THEIRS), 404, "watch-not-found")

    assert (await api.delete(path, headers=MINE)).status == 204
    await problem(await api.get(path, headers=MINE), 404, "watch-not-found")
    await problem(await api.delete(path, headers=MINE), 404, "watch-not-found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pattern": "x"}, "usernames"),
        ({"usernames": ["a"], "org": "o", "pattern": "x"}, "usernames"),
        ({"usernames": [], "pattern": "x"}, "usernames"),
        ({"usernames": ["a"] * 101, "pattern": "x"}, "usernames"),
        ({"usernames": ["not a login"], "pattern": "x"}, "usernames"),
        ({"usernames": ["a"]}, "pattern"),
        ({"usernames": ["a"], "pattern": "x", "interval": 59}, "interval"),
        ({"usernames": ["a"], "pattern": "x", "interval": 86401}, "interval"),
        ({"usernames": ["a"], "pattern": "x", "context": 11}, "context"),
        ({"usernames": ["a"], "pattern": "x", "webhook": {"url": "ftp://h/x"}}, "webhook"),
        (
            {
                "usernames": ["a"],
                "pattern": "x",
                "webhook": {"url": "http://h.example/x", "secret": "s"},
            },
            "webhook",
        ),
        (
            {
                "usernames": ["a"],
                "pattern": "x",
                "webhook": {"url": "https://10.0.0.1/", "secret": "s"},
            },
            "webhook",
        ),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_makes_nothing(
    api: Client, body: dict[str, Any], field: str
) -> None:
    answer = await problem(
        await api.post("/api/v1/watches", json=body, headers=MINE), 400, "invalid-body"
    )
    assert answer["field"] == field
    assert await (await api.get("/api/v1/watches", headers=MINE)).json() == {"watches": []}


async def test_a_pattern_re2_refuses_is_an_invalid_pattern(api: Client) -> None:
    resp = await api.post(
        "/api/v1/watches", json={"usernames": ["a"], "pattern": "(a"}, headers=MINE
    )
    await problem(resp, 400, "invalid-pattern")
