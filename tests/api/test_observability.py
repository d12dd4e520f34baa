"""Metrics and logs an operator relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from limits import RateLimitItemPerMinute
from prometheus_client.parser import text_string_to_metric_families

from gistcache.app import create_app
from gistcache.settings import Settings
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.processes import start, stop


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_requests_cache_results_github_and_jobs(
    client: TestClient[Any, Any], fake: FakeGitHub
) -> None:
    await client.get("/octocat")
    await client.get("/octocat")
    await client.get("/no/such/path")
    await client.get("/random-one/x")
    for method in ("PROPFIND", "MKCOL", "PURGE"):  # odd methods share one label
        await client.request(method, "/octocat")
    await client.post("/api/v1/search", json={"username": "octocat", "pattern": "def"})
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    got = samples(await resp.text())

    def value(name: str, **labels: str) -> float:
        return got[(name, tuple(sorted(labels.items())))]

    route = {"method": "GET", "route": "/{username}"}
    assert value("gistcache_http_requests_total", **route, status="200") == 2
    # unknown paths share one label, whatever their number
    assert (
        value("gistcache_http_requests_total", method="GET", route="unmatched", status="404") == 2
    )
    assert value("gistcache_http_request_duration_seconds_count", **route) == 2
    assert (
        value("gistcache_http_requests_total", method="other", route="unmatched", status="405") == 3
    )
    assert value("gistcache_cache_results_total", result="MISS") == 1
    # the list's second request and the search, which found the list fresh
    assert value("gistcache_cache_results_total", result="HIT") == 2
    assert value("gistcache_github_requests_total", kind="api", status="200") == 1
    assert value("gistcache_github_requests_total", kind="raw", status="200") == 1
    assert value("gistcache_github_rate_limit_remaining") == 59
    assert value("gistcache_github_rate_limit_reset_timestamp_seconds") > 0
    assert value("gistcache_content_fetched_bytes_total") == 107
    assert value("gistcache_search_jobs", state="PENDING") == 0


async def test_githubs_rate_limit_is_absent_from_metrics_until_github_said_it(
    client: TestClient[Any, Any], fake: FakeGitHub
) -> None:
    # a fresh server has not heard from GitHub: a 0 here would fire the budget alert
    # of the operations guide on every deploy
    before = samples(await (await client.get("/metrics")).text())
    names = {name for name, _ in before}
    assert "gistcache_github_rate_limit_remaining" not in names
    assert "gistcache_github_rate_limit_reset_timestamp_seconds" not in names
    assert (await client.get("/octocat")).status == 200
    after = samples(await (await client.get("/metrics")).text())
    assert after[("gistcache_github_rate_limit_remaining", ())] == 59
    assert after[("gistcache_github_rate_limit_reset_timestamp_seconds", ())] > 0


async def test_json_logs_carry_request_ids_and_never_the_token(
    tmp_path: Path, database_url: str, fake_server: TestServer
) -> None:
    token = "ghp_NEVERLOGGEDtoken123456789"
    proc, port = await start(
        tmp_path,
        database_url,
        github=str(fake_server.make_url("")).rstrip("/"),
        env={
            "GISTCACHE_GITHUB_TOKEN": token,
            "GISTCACHE_LOG_FORMAT": "json",
            "GISTCACHE_LOG_LEVEL": "DEBUG",
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/octocat", "/octocat", "/nobody", "/bad..name"):
                async with http.get(base + path, headers={"X-Request-ID": "trace-42"}):
                    pass
            async with http.post(
                f"{base}/api/v1/search", json={"username": "octocat", "pattern": "x"}
            ):
                pass
    finally:
        code, stderr = await stop(proc)
    lines = stderr.splitlines()
    entries = [json.loads(line) for line in lines]  # every line is JSON
    access = [e for e in entries if e["logger"] == "gistcache.access"]
    assert [(e["path"], e["status"], e["request_id"]) for e in access[1:5]] == [
        ("/octocat", 200, "trace-42"),
        ("/octocat", 200, "trace-42"),
        ("/nobody", 404, "trace-42"),
        ("/bad..name", 400, "trace-42"),
    ]
    assert access[1]["route"] == "/{username}"
    assert access[1]["cache"] == "MISS"
    assert all(token not in line for line in lines)
    assert code == 0


async def test_a_value_from_outside_cannot_forge_a_line_of_the_text_log(
    tmp_path: Path, database_url: str, fake: FakeGitHub, fake_server: TestServer
) -> None:
    forged = "2030-01-01 00:00:00,000 ERROR gistcache.web: forged by a file name"
    fake.add_gist("forger", {f"a.txt\n{forged}\r": "needle\n"})
    fake.fail_next(500, kind="raw", times=10)  # its download fails: the name is logged
    proc, port = await start(
        tmp_path,
        database_url,
        github=str(fake_server.make_url("")).rstrip("/"),
        env={"GISTCACHE_LOG_FORMAT": "text", "GISTCACHE_LOG_LEVEL": "INFO"},
    )
    try:
        async with aiohttp.ClientSession() as http:
            search = {"username": "forger", "pattern": "needle"}
            async with http.post(f"http://127.0.0.1:{port}/api/v1/search", json=search) as resp:
                assert resp.status == 200
                assert [s["reason"] for s in (await resp.json())["skipped"]] == ["unavailable"]
    finally:
        code, stderr = await stop(proc)
    lines = stderr.splitlines()
    assert not [line for line in lines if line.startswith("2030-")]
    [logged] = [line for line in lines if "forged by a file name" in line]
    assert f"a.txt\\n{forged}\\r" in logged  # the name, escaped, on the line that logs it
    assert " WARNING " in logged
    assert code == 0


async def test_a_streamed_answer_carries_the_request_id_and_is_counted(
    settings: Settings, clock: FakeClock
) -> None:
    app = create_app(
        settings.model_copy(update={"rate_limit": RateLimitItemPerMinute(5)}), clock=clock
    )

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)  # the headers leave here, before the handler returns
        await response.write(b"streamed")
        return response

    app.router.add_get("/-/test-stream", stream)  # a test-only route
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.get("/-/test-stream", headers={"X-Request-ID": "stream-1"})
        assert resp.status == 200
        assert await resp.read() == b"streamed"
        assert resp.headers["X-Request-ID"] == "stream-1"
        assert resp.headers["RateLimit-Remaining"] == "4"
        made = await client.get("/-/test-stream")
        assert len(made.headers["X-Request-ID"]) == 32
        got = samples(await (await client.get("/metrics")).text())
    key = (
        "gistcache_http_requests_total",
        (("method", "GET"), ("route", "/-/test-stream"), ("status", "200")),
    )
    assert got[key] == 2


async def test_every_request_without_an_id_is_given_a_new_random_one(
    client: TestClient[Any, Any],
) -> None:
    # ids are drawn from the OS in batches: past the end of one, they are still new
    ids = [(await client.get("/ping")).headers["X-Request-ID"] for _ in range(600)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch("[0-9a-f]{32}", rid) for rid in ids)
    offered = await client.get("/ping", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch("[0-9a-f]{32}", offered.headers["X-Request-ID"])


async def test_the_http_metrics_are_exact_after_a_known_set_of_requests(
    settings: Settings, clock: FakeClock, fake: FakeGitHub
) -> None:
    app = create_app(settings, clock=clock)

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"streamed")
        return response

    app.router.add_get("/-/test-stream", stream)  # a test-only route
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for path in ("/octocat", "/octocat", "/octocat", "/no/such/path", "/-/test-stream"):
            await (await client.get(path)).read()
        assert (await client.head("/octocat")).status == 200
        await (await client.get("/-/test-stream")).read()
        text = await (await client.get("/metrics")).text()
        # the scrape is counted once answered: the next one sees it
        again = samples(await (await client.get("/metrics")).text())
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["gistcache_http_requests"].type == "counter"
    assert families["gistcache_http_request_duration_seconds"].type == "histogram"
    assert families["gistcache_http_request_duration_seconds"].documentation == (
        "Time to answer an HTTP request"
    )
    got = samples(text)

    def series(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {labels: value for (n, labels), value in got.items() if n == name}

    def labels(**these: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(these.items()))

    assert series("gistcache_http_requests_total") == {
        labels(method="GET", route="/{username}", status="200"): 3,
        labels(method="HEAD", route="/{username}", status="200"): 1,
        labels(method="GET", route="unmatched", status="404"): 1,
        labels(method="GET", route="/-/test-stream", status="200"): 2,
    }
    counts = {
        labels(method="GET", route="/{username}"): 3,
        labels(method="HEAD", route="/{username}"): 1,
        labels(method="GET", route="unmatched"): 1,
        labels(method="GET", route="/-/test-stream"): 2,
    }
    assert series("gistcache_http_request_duration_seconds_count") == counts
    assert set(series("gistcache_http_request_duration_seconds_sum")) == set(counts)
    buckets = series("gistcache_http_request_duration_seconds_bucket")
    bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5"]
    bounds += ["1.0", "2.5", "5.0", "10.0", "30.0", "+Inf"]
    for key, count in counts.items():
        cumulative = [buckets[tuple(sorted((*key, ("le", le))))] for le in bounds]
        assert cumulative == sorted(cumulative)  # each bucket holds the ones below it
        assert cumulative[-1] == count
    assert len(buckets) == len(bounds) * len(counts)
    assert series("gistcache_cache_results_total") == {
        labels(result="MISS"): 1,
        labels(result="HIT"): 3,
    }
    assert (
        again[
            ("gistcache_http_requests_total", labels(method="GET", route="/metrics", status="200"))
        ]
        == 1
    )
