"""The GraphQL transport against a small server answering as GitHub does: what it sends
(the token, the query, to the endpoint), what it counts in /metrics, and GraphQL's own
gate (a RATE_LIMITED answer or a spent budget stops the next batch before it leaves)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import generate_latest

from gistcache.github.client import GitHubClient
from gistcache.github.errors import GitHubRateLimited, GitHubUnavailable
from gistcache.github.gate import Block
from gistcache.github.graphql import Batch, GistAsked
from gistcache.observability.metrics import Metrics

TOKEN = "t0ken"
UPDATED = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
ASKED = GistAsked("G_kwDOAAAB", "aa5a315d61ae9438b18d", UPDATED, (("hello.py", 5),))
TEXT_NODE = {
    "name": "aa5a315d61ae9438b18d",
    "updatedAt": "2024-03-01T12:00:00Z",
    "files": [{"name": "hello.py", "isTruncated": False, "text": "print"}],
}


class Upstream:
    """A GraphQL endpoint that answers each POST with the next of ``answers``."""

    def __init__(self, *answers: tuple[int, dict[str, str], Any]) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[str, dict[str, str], Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, dict(request.headers), await request.json()))
        status, headers, body = self.answers.pop(0)
        return web.Response(status=status, headers=headers, text=json.dumps(body))


def points(remaining: int, reset: float | None = None) -> dict[str, str]:
    return {
        "x-ratelimit-resource": "graphql",
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-used": str(5000 - remaining),
        "x-ratelimit-reset": str(int(reset or time.time() + 3600)),
    }


async def client_for(
    aiohttp_server: Any,
    upstream: Upstream,
    token: str | None = TOKEN,
    path: str = "",
    rate_limit: Any = None,
) -> tuple[GitHubClient, Metrics, aiohttp.ClientSession]:
    app = web.Application()
    app.router.add_post(path + "/graphql", upstream.handle)
    app.router.add_post("/api/graphql", upstream.handle)
    if rate_limit is not None:
        app.router.add_get("/rate_limit", rate_limit)
    server = await aiohttp_server(app)
    session = aiohttp.ClientSession()
    metrics = Metrics()
    github = GitHubClient(
        session,
        str(server.make_url(path or "/")),
        token,
        user_agent="gistcache-test",
        metrics=metrics,
    )
    return github, metrics, session


def metric(metrics: Metrics, line_start: str) -> str:
    text = generate_latest(metrics.registry).decode()
    return next((line for line in text.splitlines() if line.startswith(line_start)), "")


async def test_a_batch_is_posted_with_the_token_and_counted(aiohttp_server: Any) -> None:
    body = {"data": {"rateLimit": {"cost": 1}, "nodes": [TEXT_NODE]}}
    upstream = Upstream((200, points(4999), body))
    github, metrics, session = await client_for(aiohttp_server, upstream)
    async with session:
        assert github.graphql is not None
        got = await github.graphql.texts(Batch((ASKED,)))
    assert got.texts == {(ASKED.gist_id, "hello.py"): "print"}
    ((path, headers, sent),) = upstream.seen
    assert path == "/graphql"
    assert headers["Authorization"] == "Bearer t0ken"
    assert sent["variables"] == {"ids": ["G_kwDOAAAB"], "files": 1}
    assert metric(metrics, 'gistcache_github_requests_total{kind="graphql",status="200"}').endswith(
        " 1.0"
    )
    assert metric(metrics, "gistcache_github_graphql_points_total").endswith(" 1.0")
    assert metric(metrics, "gistcache_github_graphql_rate_limit_remaining").endswith(" 4999.0")
    # GraphQL's points are a budget apart: REST's gauge is not told of them
    assert metric(metrics, "gistcache_github_rate_limit_remaining") == ""


async def test_an_enterprise_base_posts_to_its_graphql_endpoint(aiohttp_server: Any) -> None:
    body = {"data": {"rateLimit": {"cost": 1}, "nodes": [TEXT_NODE]}}
    upstream = Upstream((200, points(4999), body))
    github, _, session = await client_for(aiohttp_server, upstream, path="/api/v3")
    async with session:
        assert github.graphql is not None
        await github.graphql.texts(Batch((ASKED,)))
    assert [path for path, _, _ in upstream.seen] == ["/api/graphql"]


@pytest.mark.parametrize(
    "refusal",
    [
        # the points spent: RATE_LIMITED as a 200, the headers naming the reset
        (200, points(0), {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit"}]}),
        # a secondary limit, as a 403 naming its wait
        (403, {"retry-after": "120"}, {"message": "You have exceeded a secondary rate limit"}),
    ],
)
async def test_a_rate_limit_stops_the_next_batch_before_it_leaves(
    aiohttp_server: Any, refusal: tuple[int, dict[str, str], Any]
) -> None:
    upstream = Upstream(refusal)
    github, _, session = await client_for(aiohttp_server, upstream)
    async with session:
        assert github.graphql is not None
        with pytest.raises(GitHubRateLimited):
            await github.graphql.texts(Batch((ASKED,)))
        with pytest.raises(GitHubRateLimited):
            await github.graphql.texts(Batch((ASKED,)))
        assert github.graphql.gate.blocked_for() > 0
        assert not github.gate.blocked_for()  # REST's budget is another
    assert len(upstream.seen) == 1


async def test_an_answer_that_spends_the_last_point_blocks_the_next(aiohttp_server: Any) -> None:
    body = {"data": {"rateLimit": {"cost": 1}, "nodes": [TEXT_NODE]}}
    upstream = Upstream((200, points(0, time.time() + 600), body))
    github, _, session = await client_for(aiohttp_server, upstream)
    async with session:
        assert github.graphql is not None
        got = await github.graphql.texts(Batch((ASKED,)))
        assert got.texts  # the answer itself is whole
        with pytest.raises(GitHubRateLimited):
            await github.graphql.texts(Batch((ASKED,)))
    assert len(upstream.seen) == 1


async def test_a_timeout_as_a_200_is_a_failed_batch(aiohttp_server: Any) -> None:
    body = {
        "data": None,
        "errors": [
            {
                "message": "Something went wrong while executing your query. This may "
                "be the result of a timeout, or it could be a GitHub bug."
            }
        ],
    }
    upstream = Upstream((200, points(4990), body))
    github, _, session = await client_for(aiohttp_server, upstream)
    async with session:
        assert github.graphql is not None
        with pytest.raises(GitHubUnavailable):
            await github.graphql.texts(Batch((ASKED,)))
        assert not github.graphql.gate.blocked_for()


async def test_without_a_token_or_turned_off_there_is_no_graphql(aiohttp_server: Any) -> None:
    upstream = Upstream()
    github, _, session = await client_for(aiohttp_server, upstream, token=None)
    async with session:
        assert github.graphql is None
        off = GitHubClient(
            session, "https://api.github.com", "t0ken", user_agent="test", graphql=False
        )
        assert off.graphql is None


class Exchange:
    """A block exchange of one server alone, whose probe is always this server's."""

    def __init__(self) -> None:
        self.lifted: list[Block] = []

    async def load(self) -> Block | None:
        return None

    async def save(self, block: Block) -> None:
        pass

    async def claim_probe(self, every: float) -> bool:
        return True

    async def lift(self, block: Block) -> None:
        self.lifted.append(block)


@pytest.mark.parametrize(("left", "lifted"), [(4000, True), (0, False)])
async def test_spent_points_are_asked_of_get_rate_limit_and_lifted_once_renewed(
    aiohttp_server: Any, left: int, lifted: bool
) -> None:
    spent = (200, points(0), {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit"}]})
    whole = (200, points(4999), {"data": {"rateLimit": {"cost": 1}, "nodes": [TEXT_NODE]}})
    upstream = Upstream(spent, whole)
    asked_budget: list[str] = []

    async def rate_limit(request: web.Request) -> web.Response:
        asked_budget.append(request.path)
        reset = int(time.time()) + 3600
        resources = {
            "core": {"limit": 5000, "remaining": 5000, "used": 0, "reset": reset},
            "graphql": {"limit": 5000, "remaining": left, "used": 5000 - left, "reset": reset},
        }
        return web.json_response({"resources": resources})

    github, _, session = await client_for(aiohttp_server, upstream, rate_limit=rate_limit)
    exchange = Exchange()
    async with session:
        assert github.graphql is not None
        with pytest.raises(GitHubRateLimited):
            await github.graphql.texts(Batch((ASKED,)))
        async with github.graphql.gate.shared(exchange):
            if lifted:
                got = await github.graphql.texts(Batch((ASKED,)))
                assert got.texts == {(ASKED.gist_id, "hello.py"): "print"}
            else:
                with pytest.raises(GitHubRateLimited):
                    await github.graphql.texts(Batch((ASKED,)))
    assert asked_budget == ["/rate_limit"]
    assert len(upstream.seen) == (2 if lifted else 1)
    assert len(exchange.lifted) == (1 if lifted else 0)
