"""What a client sees when GitHub fails, with and without something cached."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from yarl import URL

from gistcache.github.parse import DEFAULT_RETRY_AFTER
from gistcache.settings import Settings
from gistcache.store.models import github_blocks
from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.app_keys import GITHUB, LISTING, SESSIONS
from tests.support.clock import FakeClock
from tests.support.github import many_gists
from tests.support.http import ClientFactory, problem

Client = TestClient[Any, Any]


async def let_the_wait_pass(client: Client) -> None:
    """As if GitHub's rate limit had reset, in this server and in the shared database."""
    client.app[GITHUB].gate._blocked_until = 0
    async with client.app[SESSIONS]() as session, session.begin():
        await session.execute(
            update(github_blocks).values(blocked_until=datetime.fromtimestamp(0, UTC))
        )


async def test_github_5xx_with_nothing_cached_is_502(client: Client, fake: FakeGitHub) -> None:
    fake.fail_next(500)
    await problem(await client.get("/octocat"), 502, "github-unavailable")
    # the failure was not remembered: the next request asks again and succeeds
    resp = await client.get("/octocat")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "MISS"


async def test_github_refusing_connections_is_502(make_client: ClientFactory) -> None:
    client = await make_client(github_api_url="http://127.0.0.1:1")
    await problem(await client.get("/octocat"), 502, "github-unavailable")


async def test_github_too_slow_is_504(make_client: ClientFactory, fake: FakeGitHub) -> None:
    fake.latency = 2.0
    client = await make_client(github_timeout=0.2)
    await problem(await client.get("/octocat"), 504, "github-timeout")


async def test_primary_rate_limit_with_nothing_cached_is_503_with_retry_after(
    client: Client, fake: FakeGitHub
) -> None:
    fake.exhaust_rate_limit()
    resp = await client.get("/octocat")
    await problem(resp, 503, "github-rate-limited")
    assert 0 < int(resp.headers["Retry-After"]) <= 3600


@pytest.mark.parametrize(
    "headers",
    [
        {"x-ratelimit-reset": "\u00b2", "x-ratelimit-used": "\u00b2"},  # isdigit(), not int()
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9" * 20},  # past any datetime
    ],
    ids=["superscript-digit", "reset-past-datetime"],
)
async def test_malformed_rate_limit_headers_on_a_list_are_ignored(
    client: Client, fake: FakeGitHub, headers: dict[str, str]
) -> None:
    """Found by the property tests: these raised out of the client, a 500."""
    fake.fail_next(200, body=[], headers=headers)
    resp = await client.get("/octocat")
    assert resp.status == 200
    assert await resp.json() == []
    assert len(fake.api_requests()) == 1


async def test_a_secondary_limit_with_a_malformed_retry_after_waits_the_default(
    client: Client, fake: FakeGitHub
) -> None:
    """Found by the property tests: a ``retry-after`` of "²" raised (a 500); it names no
    wait GitHub's way, so the default wait applies."""
    fake.fail_next(
        403,
        body={"message": "You have exceeded a secondary rate limit."},
        headers={"retry-after": "\u00b2"},
    )
    resp = await client.get("/octocat")
    await problem(resp, 503, "github-rate-limited")
    assert int(resp.headers["Retry-After"]) == DEFAULT_RETRY_AFTER
    assert len(fake.api_requests()) == 1


async def test_429_with_remaining_zero_is_503(client: Client, fake: FakeGitHub) -> None:
    reset = int(time.time()) + 30
    fake.fail_next(
        429,
        body={"message": "API rate limit exceeded"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    resp = await client.get("/octocat")
    await problem(resp, 503, "github-rate-limited")
    assert 25 <= int(resp.headers["Retry-After"]) <= 30


async def test_secondary_rate_limit_passes_retry_after_on(client: Client, fake: FakeGitHub) -> None:
    fake.secondary_rate_limit(retry_after=42)
    resp = await client.get("/octocat")
    await problem(resp, 503, "github-rate-limited")
    assert resp.headers["Retry-After"] == "42"


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (200, {"not": "a list"}, {}),
        (200, [{"id": 5}], {}),
        (401, {"message": "Bad credentials"}, {}),
        (403, {"message": "Forbidden"}, {}),
        (200, [], {"Link": '<http://elsewhere.invalid/steal?page=2>; rel="next"'}),
        (200, [], {"Link": '<http://[::1/gists?page=2>; rel="next"'}),
    ],
    ids=[
        "not-a-list",
        "malformed-gist",
        "bad-credentials",
        "forbidden",
        "foreign-next-link",
        "malformed-next-link",
    ],
)
async def test_unusable_github_answers_are_502(
    client: Client, fake: FakeGitHub, status: int, body: Any, headers: dict[str, str]
) -> None:
    fake.fail_next(status, body=body, headers=headers)
    await problem(await client.get("/octocat"), 502, "github-unavailable")
    assert len(fake.api_requests()) == 1


async def test_a_next_link_carrying_credentials_is_502(
    client: Client, fake: FakeGitHub, settings: Settings
) -> None:
    """A next page on the API's own origin, but with a user and password in it: sent, it
    would clash with (or replace) our own Authorization; it is refused like a foreign one."""
    api = URL(settings.github_api_url)
    steered = api.with_user("someone").with_password("secret") / "users/octocat/gists"
    fake.fail_next(200, body=[], headers={"Link": f'<{steered}?page=2>; rel="next"'})
    await problem(await client.get("/octocat"), 502, "github-unavailable")
    assert len(fake.api_requests()) == 1


@pytest.mark.parametrize(
    ("inject", "tries"),
    [
        (lambda fake: fake.fail_next(503, times=3), 3),  # the request and its two retries
        (lambda fake: fake.fail_next(500), 1),  # not a retryable status
        (lambda fake: fake.exhaust_rate_limit(), 1),
        (lambda fake: fake.secondary_rate_limit(), 1),
        (lambda fake: setattr(fake, "latency", 2.0), 1),  # timeouts are not retried
    ],
    ids=["503", "500", "rate-limit", "secondary-limit", "timeout"],
)
async def test_cached_list_is_served_stale_when_github_fails(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, inject: Any, tries: int
) -> None:
    client = await make_client(github_timeout=0.5)
    cached = await (await client.get("/octocat")).json()
    clock.advance(90)
    inject(fake)
    resp = await client.get("/octocat")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "STALE"
    assert resp.headers["Age"] == "90"
    assert resp.headers["Cache-Control"] == "public, max-age=0, must-revalidate"
    assert await resp.json() == cached
    asked = len(fake.api_requests())
    assert asked == 1 + tries

    # while GitHub is failing, further requests are answered without asking it again,
    # even when the client insists
    clock.advance(2)
    again = await client.get("/octocat", headers={"Cache-Control": "no-cache"})
    assert again.headers["X-Cache"] == "STALE"
    assert len(fake.api_requests()) == asked


async def test_a_transient_failure_is_retried_and_hidden(client: Client, fake: FakeGitHub) -> None:
    fake.fail_next(502, times=2)
    resp = await client.get("/octocat")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "MISS"
    assert [r.status for r in fake.api_requests()] == [502, 502, 200]


@pytest.mark.parametrize("status", [400, 401, 403, 422, 500])
async def test_other_failures_are_not_retried(
    client: Client, fake: FakeGitHub, status: int
) -> None:
    fake.fail_next(status, times=5, body={"message": "nope"})
    await problem(await client.get("/octocat"), 502, "github-unavailable")
    assert len(fake.api_requests()) == 1


async def test_a_secondary_limit_without_a_hint_backs_off_exponentially(
    client: Client, fake: FakeGitHub
) -> None:
    waits = []
    for _ in range(3):
        fake.secondary_rate_limit(retry_after=None)
        await let_the_wait_pass(client)
        resp = await client.get("/someone", headers={"Cache-Control": "no-cache"})
        await problem(resp, 503, "github-rate-limited")
        waits.append(int(resp.headers["Retry-After"]))
    assert waits == [60, 120, 240]
    await let_the_wait_pass(client)
    assert (await client.get("/octocat")).status == 200  # success resets the back-off
    fake.secondary_rate_limit(retry_after=None)
    resp = await client.get("/someone")
    assert resp.headers["Retry-After"] == "60"


async def test_a_walk_that_fails_halfway_changes_nothing(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    ids = many_gists(fake, "prolific", 150)
    cached = await (await client.get("/prolific")).json()
    fake.update_gist(ids[0], description="changed on page one")
    clock.advance(61)
    fake.fail_next(502, path_contains="/user/", times=3)  # page two fails, retries too

    resp = await client.get("/prolific")
    assert resp.headers["X-Cache"] == "STALE"
    assert await resp.json() == cached

    # the cache was not half written: once the back-off has passed, the next walk
    # still sees page one as changed
    clock.advance(6)
    resp = await client.get("/prolific")
    assert resp.headers["X-Cache"] == "UPDATED"
    assert (await resp.json())[0]["description"] == "changed on page one"


async def test_the_token_never_reaches_logs_or_clients(
    make_client: ClientFactory, fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    token = "ghp_TOPSECRETtoken0123456789"
    caplog.set_level(logging.DEBUG)
    client = await make_client(github_token=token)
    bodies = [await (await client.get("/octocat")).text()]
    fake.fail_next(401, body={"message": "Bad credentials"})
    bodies.append(
        await (await client.get("/octocat", headers={"Cache-Control": "no-cache"})).text()
    )
    bodies.append(await (await client.get("/nobody")).text())
    assert fake.api_requests()[0].headers["Authorization"] == f"Bearer {token}"
    assert caplog.records
    assert token not in caplog.text
    assert all(token not in body for body in bodies)


async def test_a_spent_rate_limit_stops_all_requests_until_it_resets(
    client: Client, fake: FakeGitHub
) -> None:
    fake.exhaust_rate_limit()
    await problem(await client.get("/octocat"), 503, "github-rate-limited")
    resp = await client.get("/someone-else")
    await problem(resp, 503, "github-rate-limited")
    assert 3500 < int(resp.headers["Retry-After"]) <= 3600
    # the spent budget, then one look at GET /rate_limit (which costs none): still spent
    assert [r.path for r in fake.api_requests()] == ["/users/octocat/gists", "/rate_limit"]


async def test_a_spent_rate_limit_is_lifted_once_github_says_requests_remain(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    one = await make_client()
    other = await make_client()  # a second server on the same database
    many_gists(fake, "prolific", 1)
    fake.exhaust_rate_limit()
    await problem(await one.get("/octocat"), 503, "github-rate-limited")
    # the other server asks GET /rate_limit (which costs no budget): still spent
    await problem(await other.get("/octocat"), 503, "github-rate-limited")
    assert [r.path for r in fake.api_requests()] == ["/users/octocat/gists", "/rate_limit"]

    # GitHub renews the budget (a fake restarted with --anonymous-limit 5000)
    fake.anonymous_limit = 5000
    fake.budgets.clear()
    # asked again within the minute by any server: GitHub is not asked
    for client in (one, other, one):
        resp = await client.get("/octocat")
        await problem(resp, 503, "github-rate-limited")
        assert int(resp.headers["Retry-After"]) > 3000
    assert len(fake.api_requests()) == 2

    clock.advance(61)  # a minute on: one server asks, and the block ends for every one
    resp = await one.get("/octocat")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "MISS"
    assert (await other.get("/prolific")).status == 200
    assert [r.path for r in fake.api_requests()[2:]] == [
        "/rate_limit",
        "/users/octocat/gists",
        "/users/prolific/gists",
    ]


async def test_a_cached_user_served_stale_while_blocked_is_fresh_again_once_lifted(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    many_gists(fake, "prolific", 2)
    assert (await client.get("/prolific")).headers["X-Cache"] == "MISS"
    fake.exhaust_rate_limit()
    clock.advance(61)
    assert (await client.get("/prolific")).headers["X-Cache"] == "STALE"  # the 403
    fake.budgets.clear()  # GitHub renews the budget
    clock.advance(61)
    resp = await client.get("/prolific")
    assert resp.headers["X-Cache"] == "REVALIDATED"
    assert [r.path for r in fake.api_requests()][-2:] == ["/rate_limit", "/users/prolific/gists"]


async def test_a_secondary_rate_limit_is_never_lifted_by_get_rate_limit(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    fake.secondary_rate_limit(retry_after=600)
    await problem(await client.get("/octocat"), 503, "github-rate-limited")
    clock.advance(61)
    await problem(await client.get("/octocat"), 503, "github-rate-limited")
    # GET /rate_limit cannot see a secondary limit: it is not asked
    assert [r.path for r in fake.api_requests()] == ["/users/octocat/gists"]


async def test_the_last_request_of_the_budget_blocks_the_next(
    client: Client, fake: FakeGitHub
) -> None:
    fake.anonymous_limit = 1  # the first answer says remaining: 0
    assert (await client.get("/octocat")).status == 200
    await problem(await client.get("/someone-else"), 503, "github-rate-limited")
    assert [r.path for r in fake.api_requests()] == ["/users/octocat/gists", "/rate_limit"]


async def test_the_database_password_never_reaches_logs_or_clients(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = await make_client(
        database_url="postgresql+asyncpg://app:S3cretPassw0rd@127.0.0.1:1/cache"
    )
    bodies = [await (await client.get(path)).text() for path in ("/octocat", "/readyz")]
    assert caplog.records
    assert "S3cretPassw0rd" not in caplog.text
    assert all("S3cretPassw0rd" not in body for body in bodies)


async def test_a_cut_off_body_is_502_or_stale(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    listing = [{"id": "x" * 20}] * 50
    fake.fail_next(200, body=listing, cut_off=True, times=3)
    await problem(await client.get("/octocat"), 502, "github-unavailable")
    assert len(fake.api_requests()) == 3  # a broken-off answer is retried

    cached = await (await client.get("/octocat")).json()
    clock.advance(61)
    fake.fail_next(200, body=listing, cut_off=True, times=3)
    resp = await client.get("/octocat")
    assert resp.headers["X-Cache"] == "STALE"
    assert await resp.json() == cached


async def test_an_oversized_github_answer_is_refused(fake_server: Any) -> None:
    import aiohttp

    from gistcache.github.client import GitHubClient
    from gistcache.github.errors import GitHubUnavailable

    async with aiohttp.ClientSession() as session:
        github = GitHubClient(
            session,
            str(fake_server.make_url("")).rstrip("/"),
            user_agent="test",
            max_json_bytes=1000,  # octocat's list is larger than this
        )
        with pytest.raises(GitHubUnavailable, match="larger than we accept"):
            await github.list_user_gists("octocat")


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "946080000"},  # thirty years
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "99999999999"},
    ],
)
async def test_an_absurd_wait_from_github_is_cut_to_an_hour(
    client: Client, fake: FakeGitHub, headers: dict[str, str]
) -> None:
    fake.fail_next(403, body={"message": "API rate limit exceeded"}, headers=headers)
    resp = await client.get("/octocat")
    await problem(resp, 503, "github-rate-limited")
    assert 3500 <= int(resp.headers["Retry-After"]) <= 3600
    async with client.app[LISTING].store.read() as db:
        block = await db.leases.github_block(client.app[GITHUB].credential)
    assert block is not None
    assert block.until.timestamp() <= time.time() + 3600


async def test_a_shared_block_is_never_shortened(client: Client) -> None:
    store = client.app[LISTING].store
    later = datetime.fromtimestamp(time.time() + 600, UTC)
    sooner = datetime.fromtimestamp(time.time() + 60, UTC)
    async with store.write() as db:
        await db.leases.save_github_block("anonymous", later, 2)
    async with store.write() as db:
        await db.leases.save_github_block("anonymous", sooner, 0)  # another server's news
    async with store.read() as db:
        block = await db.leases.github_block("anonymous")
        assert block is not None
        assert (block.until, block.strikes) == (later, 0)
