"""Abuse protection: per-client rate limits, hostile input."""

from __future__ import annotations

import asyncio
import io
import time
from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from limits import RateLimitItemPerMinute

from gistcache.settings import ConfigError, Settings
from gistcache.testing.fake_github import FakeGitHub
from tests.support.http import ClientFactory
from tests.support.waiting import eventually


async def test_a_client_over_its_limit_gets_429_with_retry_after(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    client = await make_client(rate_limit=RateLimitItemPerMinute(3))
    for remaining in (2, 1, 0):
        resp = await client.get("/octocat")
        assert resp.status == 200
        assert resp.headers["RateLimit-Limit"] == "3"
        assert resp.headers["RateLimit-Remaining"] == str(remaining)
    over = await client.get("/octocat")
    assert over.status == 429
    assert over.content_type == "application/problem+json"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["RateLimit-Remaining"] == "0"
    assert len(fake.api_requests()) == 1
    # health, readiness and metrics stay reachable
    for path in ("/healthz", "/readyz", "/metrics", "/ping"):
        assert (await client.get(path)).status == 200


async def test_every_limited_answer_carries_the_budget_errors_too(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    client = await make_client(rate_limit=RateLimitItemPerMinute(5))
    answers = [
        await client.get("/octocat"),
        await client.get("/bad..name"),  # 400
        await client.get("/a/b/c"),  # 404, no such route
        await client.post("/api/v1/search", data=b"{"),  # 400, malformed JSON
    ]
    assert [r.status for r in answers] == [200, 400, 404, 400]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["4", "3", "2", "1"]
    assert all(r.headers["RateLimit-Limit"] == "5" for r in answers)
    assert all(0 <= int(r.headers["RateLimit-Reset"]) <= 60 for r in answers)


async def test_forwarded_for_is_trusted_only_from_trusted_proxies(
    make_client: ClientFactory,
) -> None:
    untrusted = await make_client(rate_limit=RateLimitItemPerMinute(2))
    for n in range(2):
        resp = await untrusted.get("/octocat", headers={"X-Forwarded-For": f"10.0.0.{n}"})
        assert resp.status == 200
    # a spoofed header does not buy a new budget
    resp = await untrusted.get("/octocat", headers={"X-Forwarded-For": "10.0.0.99"})
    assert resp.status == 429

    proxied = await make_client(
        rate_limit=RateLimitItemPerMinute(2), trusted_proxies=(ip_network("127.0.0.0/8"),)
    )
    for _ in range(2):
        resp = await proxied.get("/octocat", headers={"X-Forwarded-For": "203.0.113.7"})
        assert resp.status == 200
    assert (await proxied.get("/octocat", headers={"X-Forwarded-For": "203.0.113.7"})).status == 429
    # another client behind the same proxy has its own budget
    other = await proxied.get("/octocat", headers={"X-Forwarded-For": "198.51.100.1, 127.0.0.1"})
    assert other.status == 200


async def test_one_ipv6_client_has_one_budget_however_its_address_is_spelt(
    make_client: ClientFactory,
) -> None:
    proxied = await make_client(
        rate_limit=RateLimitItemPerMinute(3), trusted_proxies=(ip_network("127.0.0.0/8"),)
    )

    async def status(forwarded_for: str) -> int:
        resp = await proxied.get("/octocat", headers={"X-Forwarded-For": forwarded_for})
        return resp.status

    # three spellings of one address, then a fourth: one bucket
    assert [await status(a) for a in ("::1", "0::1", "0:0:0:0:0:0:0:1")] == [200, 200, 200]
    assert await status("::0:1") == 429
    # IPv6 is bucketed by /64, the block one subscriber or host holds
    for address in ("2001:db8::1", "2001:DB8::2", "2001:db8::ffff:1"):
        assert await status(address) == 200
    assert await status("2001:db8:0:0:abcd::9") == 429
    assert await status("2001:db8:0:1::1") == 200  # the next /64 is someone else
    # an IPv4 address written as IPv4-mapped IPv6 is that IPv4 client
    for address in ("203.0.113.7", "::ffff:203.0.113.7", "::ffff:cb00:7107"):
        assert await status(address) == 200
    assert await status("203.0.113.7") == 429


@pytest.mark.parametrize(
    ("name", "value"),
    [("GISTCACHE_RATE_LIMIT", "lots"), ("GISTCACHE_TRUSTED_PROXIES", "10.0.0.0/8, proxy")],
)
def test_bad_limits_are_configuration_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


async def test_a_10_mb_body_is_refused_before_it_is_read(
    client: TestClient[Any, Any], fake: FakeGitHub
) -> None:
    body = io.BytesIO(b"x" * (10 * 1024 * 1024))
    resp = await client.post(
        "/api/v1/search", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"
    assert fake.requests == []


async def test_pathological_patterns_over_a_1_mb_adversarial_file(
    client: TestClient[Any, Any], fake: FakeGitHub
) -> None:
    fake.add_gist("mallory", {"evil.txt": "a" * (1024 * 1024) + "!"})
    await client.post("/api/v1/search", json={"username": "mallory", "pattern": "warm"})
    for pattern in ["(a+)+$", "(a|aa)+$", "(a*)*b", "(.*a){20}", "^(a|a?)+$", "(x+x+)+y"]:
        started = time.monotonic()
        resp = await client.post("/api/v1/search", json={"username": "mallory", "pattern": pattern})
        assert resp.status == 200
        assert time.monotonic() - started < 1.0, pattern


async def test_a_search_past_its_time_budget_fails_clearly(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("slow", {"a.txt": "x\n"})
    fake.latency = 1.0
    client = await make_client(search_timeout=0.3)
    resp = await client.post("/api/v1/search", json={"username": "slow", "pattern": "x"})
    assert resp.status == 504
    body = await resp.json()
    assert body["type"] == "urn:gistcache:problem:search-timeout"
    assert "time budget of 0.3 s" in body["detail"]

    job = await client.post(
        "/api/v1/search", json={"username": "slow", "pattern": "x", "async": True}
    )
    job_id = (await job.json())["request_id"]

    async def state() -> Any:
        return await (await client.get(f"/api/v1/search/{job_id}")).json()

    status = await eventually(state, lambda body: body["status"] == "FAILURE", what="FAILURE")
    assert status["status"] == "FAILURE"
    assert status["error"]["type"] == "urn:gistcache:problem:search-timeout"


async def test_searches_beyond_the_bound_are_turned_away(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("busy", {"a.txt": "x\n"})
    fake.latency = 0.3
    client = await make_client(max_searches=1)
    query = {"username": "busy", "pattern": "x"}
    first = asyncio.ensure_future(client.post("/api/v1/search", json=query))
    await asyncio.sleep(0.1)
    second = await client.post("/api/v1/search", json=query)
    assert second.status == 503
    assert second.headers["Retry-After"] == "2"
    assert (await second.json())["type"] == "urn:gistcache:problem:searches-busy"
    assert (await first).status == 200
