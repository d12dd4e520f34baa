"""POST /api/v1/search with usernames or org: one pattern over several users' gists,
grouped by user in the order given, each user with its own status; at once, streamed
and as a job."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from gistcache.testing.fake_github.rest import set_public_members
from tests.api.test_jobs import wait_for
from tests.api.test_search_stream import NDJSON, read_all
from tests.support.search import search

Client = TestClient[Any, Any]


@pytest.fixture
def gists(fake: FakeGitHub) -> dict[str, str]:
    """alice has two gists with a needle and one without; bob one with; carol none."""
    return {
        "alice-1": fake.add_gist("alice", {"a.py": "needle = 1\n"}).id,
        "alice-0": fake.add_gist("alice", {"b.txt": "hay\n"}).id,
        "alice-2": fake.add_gist("alice", {"c.md": "a needle\nhay\n"}).id,
        "bob": fake.add_gist("bob", {"d.py": "# needle\n"}).id,
        "carol": fake.add_gist("carol", {"e.txt": "hay only\n"}).id,
    }


def list_requests(fake: FakeGitHub, login: str) -> int:
    return sum(1 for r in fake.requests if r.path.lower() == f"/users/{login}/gists")


async def test_usernames_are_answered_by_user_in_the_order_given(
    client: Client, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    body = await search(
        client, usernames=["bob", "ghost", "Alice", "carol", "ALICE", "bob"], pattern="needle"
    )
    assert body["status"] == "success"
    assert body["pattern"] == "needle"
    assert body["org"] is None
    # duplicates, in any case, are searched once, under the first spelling given
    assert body["usernames"] == ["bob", "ghost", "Alice", "carol"]
    assert body["total"] == 3
    users = body["users"]
    assert [(u["username"], u["status"], u["total"]) for u in users] == [
        ("bob", "success", 1),
        ("ghost", "user-not-found", 0),
        ("Alice", "success", 2),
        ("carol", "success", 0),
    ]
    assert [m["id"] for m in users[0]["matches"]] == [gists["bob"]]
    # each user's matches in the user's list order (newest first)
    assert [m["id"] for m in users[2]["matches"]] == [gists["alice-2"], gists["alice-1"]]
    # the unknown user's problem, as a search of that user alone would answer it
    problem = users[1]["problem"]
    assert problem["type"] == "urn:gistcache:problem:user-not-found"
    assert problem["status"] == 404
    assert users[1]["matches"] == []
    assert "problem" not in users[0]
    assert list_requests(fake, "alice") == 1  # alice searched once
    assert list_requests(fake, "bob") == 1


async def test_a_user_github_fails_for_does_not_fail_the_others(
    client: Client, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    await search(client, username="alice", pattern="needle")  # alice is cached
    fake.fail_next(500)  # the one request GitHub is asked next: bob's list
    body = await search(client, usernames=["alice", "bob"], pattern="needle")
    assert [(u["username"], u["status"]) for u in body["users"]] == [
        ("alice", "success"),
        ("bob", "github-unavailable"),
    ]
    assert body["users"][1]["problem"]["status"] == 502
    assert body["total"] == 2


async def test_an_organisations_public_members_are_searched_in_githubs_order(
    client: Client, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    set_public_members(fake, "Acme", ["carol", "Bob", "alice"])
    body = await search(client, org="acme", pattern="needle")
    assert body["org"] == "acme"
    assert body["usernames"] == ["carol", "bob", "alice"]
    assert [(u["username"], u["total"]) for u in body["users"]] == [
        ("carol", 0),
        ("bob", 1),
        ("alice", 2),
    ]
    assert body["total"] == 3
    assert body["left_out"] == 0


async def test_an_organisations_first_100_members_are_searched(
    client: Client, fake: FakeGitHub
) -> None:
    members = [f"m{n}" for n in range(102)]
    set_public_members(fake, "big", members)
    fake.add_gist("m0", {"x.txt": "needle\n"})
    fake.add_gist("m100", {"x.txt": "needle\n"})
    # 100 lists not cached cost more than the fake's 60 requests an hour: proceed anyway
    body = await search(client, org="big", pattern="needle", proceed_cached=True)
    assert body["usernames"] == members[:100]
    assert body["left_out"] == 2
    assert body["users"][0]["total"] == 1  # m0's
    assert body["total"] == 1  # m100 was not searched
    assert list_requests(fake, "m100") == 0


async def test_an_unknown_organisation_is_404(client: Client, fake: FakeGitHub) -> None:
    resp = await client.post("/api/v1/search", json={"org": "no-such-org", "pattern": "x"})
    assert resp.status == 404
    assert (await resp.json())["type"] == "urn:gistcache:problem:user-not-found"


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"username": "a", "usernames": ["b"], "pattern": "x"}, "usernames", "invalid-body"),
        ({"usernames": ["b"], "org": "o", "pattern": "x"}, "org", "invalid-body"),
        ({"username": "a", "org": "o", "pattern": "x"}, "org", "invalid-body"),
        ({"usernames": [], "pattern": "x"}, "usernames", "invalid-body"),
        ({"usernames": ["a"] * 101, "pattern": "x"}, "usernames", "invalid-body"),
        ({"usernames": "alice", "pattern": "x"}, "usernames", "invalid-body"),
        ({"usernames": ["alice", "a..b"], "pattern": "x"}, "usernames", "invalid-username"),
        ({"usernames": ["alice", 5], "pattern": "x"}, "usernames", "invalid-username"),
        ({"org": "a b", "pattern": "x"}, "org", "invalid-username"),
        ({"org": 5, "pattern": "x"}, "org", "invalid-body"),
        ({"usernames": ["alice"], "pattern": " "}, "pattern", "invalid-body"),
        ({"usernames": ["alice"], "pattern": "x", "context": 11}, "context", "invalid-body"),
    ],
)
async def test_a_refused_many_user_body_names_the_field(
    client: Client, fake: FakeGitHub, body: dict[str, Any], field: str, kind: str
) -> None:
    resp = await client.post("/api/v1/search", json=body)
    assert resp.status == 400
    problem = await resp.json()
    assert problem["field"] == field
    assert problem["type"] == f"urn:gistcache:problem:{kind}"
    assert fake.requests == []


async def test_the_stream_tells_each_users_part_and_counts_users_and_files(
    client: Client, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/search",
        json={"usernames": ["alice", "ghost", "bob"], "pattern": "needle"},
        headers=NDJSON,
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    events = await read_all(resp)
    assert events[0] == {"event": "users", "usernames": ["alice", "ghost", "bob"], "left_out": 0}
    done = events[-1]
    assert done == {"event": "done", "total": 3, "status": "success", "users": 3}
    told = {(e["username"], e["status"], e["total"]) for e in events if e["event"] == "user"}
    assert told == {("alice", "success", 2), ("ghost", "user-not-found", 0), ("bob", "success", 1)}
    ghost = next(e for e in events if e["event"] == "user" and e["username"] == "ghost")
    assert ghost["problem"]["status"] == 404
    matches = {(e["username"], e["gist"]["id"]) for e in events if e["event"] == "match"}
    assert matches == {
        ("alice", gists["alice-1"]),
        ("alice", gists["alice-2"]),
        ("bob", gists["bob"]),
    }
    # each user's matches come before the line that says its part is complete
    for login in ("alice", "bob"):
        complete = next(
            n for n, e in enumerate(events) if e["event"] == "user" and e["username"] == login
        )
        assert all(
            n < complete
            for n, e in enumerate(events)
            if e["event"] == "match" and e["username"] == login
        )
    progress = [e for e in events if e["event"] == "progress"]
    assert [p["users_done"] for p in progress] == sorted(p["users_done"] for p in progress)
    last = progress[-1]
    assert (last["users_done"], last["users_total"]) == (3, 3)
    assert last["files_done"] == last["files_total"] == 4  # alice's 3 files, bob's 1


async def test_a_many_user_search_runs_as_a_job(
    client: Client, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/search",
        json={"usernames": ["bob", "ghost", "alice"], "pattern": "needle", "async": True},
    )
    assert resp.status == 202
    job_id = (await resp.json())["request_id"]
    state = await wait_for(client, job_id, "SUCCESS", "FAILURE")
    assert state["status"] == "SUCCESS"
    assert state["progress"] == {"files_done": 4, "files_total": 4}
    resp = await client.get(f"/api/v1/search_result/{job_id}")
    assert resp.status == 200
    body = await resp.json()
    assert body == await search(client, usernames=["bob", "ghost", "alice"], pattern="needle")
    assert [(u["username"], u["status"]) for u in body["users"]] == [
        ("bob", "success"),
        ("ghost", "user-not-found"),
        ("alice", "success"),
    ]


async def test_the_single_user_answer_is_unchanged(client: Client, gists: dict[str, str]) -> None:
    body = await search(client, username="alice", pattern="needle")
    assert set(body) == {"status", "username", "pattern", "total", "matches", "skipped", "cut"}
    assert body["username"] == "alice"
    assert body["total"] == 2


async def test_a_search_that_would_cost_more_than_githubs_rate_limit_has_left_says_so(
    client: Client, fake: FakeGitHub
) -> None:
    logins = [f"u{n}" for n in range(10)]
    for login in ["amy", *logins]:
        fake.add_gist(login, {"x.txt": "needle\n"})
    budget = fake.budget_for(None)
    budget.remaining = 14
    await search(client, username="amy", pattern="needle")  # GitHub's budget is known now
    left = budget.remaining
    reserve = budget.limit * 10 // 100  # GISTCACHE_GITHUB_RESERVE_PERCENT's default
    sent = len(fake.requests)

    resp = await client.post(
        "/api/v1/search", json={"usernames": ["amy", *logins], "pattern": "needle"}
    )
    assert resp.status == 429
    problem = await resp.json()
    assert problem["type"] == "urn:gistcache:problem:github-cost"
    # amy's list is cached and fresh: the ten others cost a request each
    assert (problem["cost"], problem["available"]) == (10, left - reserve)
    assert "proceed_cached" in problem["detail"]
    assert int(resp.headers["Retry-After"]) >= 1
    assert len(fake.requests) == sent  # said before GitHub was asked anything

    body = await search(client, usernames=["amy", *logins], pattern="needle", proceed_cached=True)
    statuses = [u["status"] for u in body["users"]]
    assert statuses[0] == "success"  # the cached user is answered
    assert "github-reserve" in statuses  # those past the budget fail on their own
    assert len(fake.requests) > sent


async def test_proceed_cached_is_for_several_users_only(client: Client, fake: FakeGitHub) -> None:
    resp = await client.post(
        "/api/v1/search", json={"username": "amy", "pattern": "x", "proceed_cached": True}
    )
    assert resp.status == 400
    assert (await resp.json())["field"] == "proceed_cached"
    assert fake.requests == []
