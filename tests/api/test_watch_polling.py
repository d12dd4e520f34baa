"""Watches' runs, driven by the test (the poller of each app is stopped): the baseline is
recorded and not told, a gist new or edited to match is told once, the same revision
never twice, an edit that still matches again; two servers racing on one database
report once, and a run left by a killed server is run by another once its claim runs
out. A rate-limited run pauses the watch; a change is told once it resumes. An
organisation's members are watched and revalidated; events are pruned after their TTL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.services import watches as service_module
from gistcache.services.watches import WatchService
from gistcache.store.models import watches
from gistcache.testing.fake_github import FakeGitHub
from gistcache.testing.fake_github.rest import set_public_members
from gistcache.web.app_keys import WATCHES
from tests.support.clock import FakeClock
from tests.support.http import ClientFactory, problem

Client = TestClient[Any, Any]
TOKEN = "alpha-token-0123456789"
MINE = {"Authorization": f"Bearer {TOKEN}"}
OTHER = "beta-token-0123456789"
INTERVAL = 300


async def started(make_client: ClientFactory, **settings: Any) -> Client:
    client = await make_client(api_tokens=(TOKEN, OTHER), **settings)
    await client.app[WATCHES].stop()  # the test runs the watches itself
    return client


async def watch(client: Client, **extra: Any) -> str:
    body = {"usernames": ["alice"], "pattern": "needle", "interval": INTERVAL, **extra}
    resp = await client.post("/api/v1/watches", json=body, headers=MINE)
    assert resp.status == 201
    watch_id: str = (await resp.json())["id"]
    return watch_id


async def told(service: WatchService, watch_id: str) -> list[tuple[str, str]]:
    return [(e.gist_id, e.revision) for e in await service.events(watch_id)]


@pytest.fixture
def hay(fake: FakeGitHub) -> str:
    fake.add_gist("alice", {"old.txt": "an old needle\n"})
    return fake.add_gist("alice", {"hay.txt": "hay\n"}).id


async def test_baseline_then_each_new_matching_revision_is_told_once(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, hay: str
) -> None:
    client = await started(make_client)
    service = client.app[WATCHES]
    watch_id = await watch(client)

    first = await service.run_due()
    assert [(r.watch_id, r.told, r.baseline) for r in first] == [(watch_id, (), 1)]
    assert await told(service, watch_id) == []  # the needle already there is the baseline
    assert await service.run_due() == []  # not due again before its interval

    fake.update_gist(hay, {"hay.txt": "hay and a needle\n"})
    clock.advance(INTERVAL)
    second = await service.run_due()
    assert len(second[0].told) == 1
    revision = fake.gist(hay).updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await told(service, watch_id) == [(hay, revision)]

    clock.advance(INTERVAL)  # nothing changed: nothing told
    assert (await service.run_due())[0].told == ()

    fake.update_gist(hay, {"hay.txt": "hay, a needle and another needle\n"})
    clock.advance(INTERVAL)
    assert len((await service.run_due())[0].told) == 1  # edited and matching: told again
    fake.update_gist(hay, {"hay.txt": "hay alone\n"})
    clock.advance(INTERVAL)
    assert (await service.run_due())[0].told == ()  # edited not to match
    new = fake.add_gist("alice", {"n.py": "# needle\n"}).id
    clock.advance(INTERVAL)
    assert len((await service.run_due())[0].told) == 1
    events = await told(service, watch_id)
    assert [gist for gist, _ in events] == [hay, hay, new]
    assert len(set(events)) == 3

    body = await (await client.get(f"/api/v1/watches/{watch_id}", headers=MINE)).json()
    assert body["runs"] == 6
    assert body["last_error"] is None


async def test_report_existing_tells_the_baseline(
    make_client: ClientFactory, fake: FakeGitHub, hay: str
) -> None:
    client = await started(make_client)
    watch_id = await watch(client, report_existing=True)
    [report] = await client.app[WATCHES].run_due()
    assert (len(report.told), report.baseline) == (1, 0)
    assert len(await told(client.app[WATCHES], watch_id)) == 1


async def test_two_servers_racing_report_once(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, hay: str
) -> None:
    one = await started(make_client)
    two = await started(make_client)
    watch_id = await watch(one)
    await one.app[WATCHES].run_due()
    fake.update_gist(hay, {"hay.txt": "a needle\n"})
    clock.advance(INTERVAL)
    reports = await asyncio.gather(one.app[WATCHES].run_due(), two.app[WATCHES].run_due())
    runs = [report for batch in reports for report in batch]
    assert sum(len(report.told) for report in runs) == 1
    assert len(await told(one.app[WATCHES], watch_id)) == 1


async def test_a_run_that_fails_for_a_user_loses_no_change(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, hay: str
) -> None:
    client = await started(make_client)
    service = client.app[WATCHES]
    watch_id = await watch(client, usernames=["alice", "nobody-here"])
    [first] = await service.run_due()
    assert first.failed == ("nobody-here",)
    body = await (await client.get(f"/api/v1/watches/{watch_id}", headers=MINE)).json()
    assert "nobody-here" in body["last_error"]
    fake.update_gist(hay, {"hay.txt": "a needle\n"})
    clock.advance(INTERVAL)
    [second] = await service.run_due()
    assert len(second.told) == 1


async def test_an_organisations_public_members_are_watched_and_revalidated(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, hay: str
) -> None:
    set_public_members(fake, "Acme", ["alice", "Bob"])
    client = await started(make_client)
    service = client.app[WATCHES]
    resp = await client.post(
        "/api/v1/watches",
        json={"org": "acme", "pattern": "needle", "interval": INTERVAL},
        headers=MINE,
    )
    assert resp.status == 201
    watch_id = (await resp.json())["id"]
    [first] = await service.run_due()
    assert (first.told, first.baseline, first.failed) == ((), 1, ())

    new = fake.add_gist("bob", {"b.txt": "needle\n"}).id
    del fake.requests[:]
    clock.advance(INTERVAL)
    [second] = await service.run_due()
    assert len(second.told) == 1
    assert [gist for gist, _ in await told(service, watch_id)] == [new]
    members = [r for r in fake.requests if r.path.endswith("/orgs/acme/public_members")]
    assert [(r.status, "If-None-Match" in r.headers) for r in members] == [(304, True)]

    # a member who joins later starts with a baseline of their own
    fake.add_gist("carol", {"c.txt": "an old needle\n"})
    set_public_members(fake, "acme", ["alice", "Bob", "carol"])
    clock.advance(INTERVAL)
    [third] = await service.run_due()
    assert (third.told, third.baseline) == ((), 1)


async def test_an_organisations_members_past_the_users_cap_are_not_searched(
    make_client: ClientFactory, fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "MAX_USERS", 3)  # instead of 100
    logins = [f"m{n:03}" for n in range(5)]
    for login in logins:
        fake.add_gist(login, {"a.txt": "hay\n"})
    set_public_members(fake, "big", logins)
    client = await started(make_client)
    resp = await client.post(
        "/api/v1/watches", json={"org": "big", "pattern": "needle"}, headers=MINE
    )
    watch_id = (await resp.json())["id"]
    del fake.requests[:]
    [report] = await client.app[WATCHES].run_due()
    assert report.failed == ()
    listed = {r.path.split("/")[2] for r in fake.requests if r.path.endswith("/gists")}
    assert listed == set(logins[:3])  # the first ones in GitHub's order
    body = await (await client.get(f"/api/v1/watches/{watch_id}", headers=MINE)).json()
    assert body["last_error"] == "big: 5 public members, only the first 3 are watched"


async def test_one_token_has_at_most_max_watches(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "MAX_WATCHES", 2)
    client = await started(make_client)
    for _ in range(2):
        await watch(client)
    resp = await client.post(
        "/api/v1/watches", json={"usernames": ["alice"], "pattern": "x"}, headers=MINE
    )
    body = await problem(resp, 429, "too-many-requests")
    assert body["limit"] == 2
    assert "2 watches" in body["detail"]
    listed = await (await client.get("/api/v1/watches", headers=MINE)).json()
    assert len(listed["watches"]) == 2  # the one refused was not made
    # another token has watches of its own
    other = await client.post(
        "/api/v1/watches",
        json={"usernames": ["alice"], "pattern": "x"},
        headers={"Authorization": f"Bearer {OTHER}"},
    )
    assert other.status == 201


async def test_an_unknown_organisation_is_the_watchs_last_error(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    client = await started(make_client)
    resp = await client.post(
        "/api/v1/watches", json={"org": "no-such-org", "pattern": "x"}, headers=MINE
    )
    watch_id = (await resp.json())["id"]
    [report] = await client.app[WATCHES].run_due()
    assert report.failed == ("no-such-org",)
    body = await (await client.get(f"/api/v1/watches/{watch_id}", headers=MINE)).json()
    assert body["last_error"].startswith("no-such-org: ")


async def test_githubs_rate_limit_pauses_a_watch_until_it_resets(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, hay: str
) -> None:
    client = await started(make_client)
    service = client.app[WATCHES]
    watch_id = await watch(client)
    fake.exhaust_rate_limit()
    [paused] = await service.run_due()
    assert paused.failed == ("alice",)
    assert paused.paused_until is not None
    wait = (paused.paused_until - clock()).total_seconds()
    assert wait > INTERVAL  # GitHub's reset, not the watch's interval
    body = await (await client.get(f"/api/v1/watches/{watch_id}", headers=MINE)).json()
    assert body["paused_until"] is not None
    assert "rate limit" in body["last_error"]
    clock.advance(INTERVAL)
    assert await service.run_due() == []  # paused: not run at its interval

    fake.budgets.clear()  # GitHub renews the budget
    fake.update_gist(hay, {"hay.txt": "a needle\n"})  # changed while paused
    clock.advance(wait)
    [resumed] = await service.run_due()
    # the first run that went through is the baseline: both needles are in it
    assert (resumed.told, resumed.baseline, resumed.paused_until) == ((), 2, None)
    fake.add_gist("alice", {"new.txt": "needle\n"})
    clock.advance(INTERVAL)
    [after] = await service.run_due()
    assert len(after.told) == 1

    # a change made while GitHub refuses is told once GitHub answers again
    later = fake.add_gist("alice", {"later.txt": "needle\n"}).id
    fake.exhaust_rate_limit()
    clock.advance(INTERVAL)
    [blocked] = await service.run_due()
    assert blocked.told == ()
    fake.budgets.clear()
    clock.advance(max(wait, INTERVAL))
    [told_later] = await service.run_due()
    assert len(told_later.told) == 1
    assert (await told(service, watch_id))[-1][0] == later


async def test_a_watch_held_by_a_killed_server_is_run_by_another_once_its_claim_runs_out(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, hay: str, engine: AsyncEngine
) -> None:
    one = await started(make_client)
    two = await started(make_client)
    watch_id = await watch(one)
    await one.app[WATCHES].run_due()
    fake.update_gist(hay, {"hay.txt": "a needle\n"})
    clock.advance(INTERVAL)
    # the server that claimed the run was killed (kill -9) before it recorded anything
    async with engine.begin() as conn:
        await conn.execute(
            watches.update().values(
                lease_token="dead", lease_until=clock() + timedelta(seconds=120)
            )
        )
    assert await two.app[WATCHES].run_due() == []  # its claim still holds
    clock.advance(121)
    [report] = await two.app[WATCHES].run_due()
    assert len(report.told) == 1
    assert len(await told(two.app[WATCHES], watch_id)) == 1


async def test_events_are_pruned_after_their_ttl(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, hay: str
) -> None:
    client = await started(make_client, watch_event_ttl=3600)
    service = client.app[WATCHES]
    watch_id = await watch(client)
    await service.run_due()
    fake.update_gist(hay, {"hay.txt": "a needle\n"})
    clock.advance(INTERVAL)
    await service.run_due()
    assert await service.prune() == 0
    clock.advance(3601)
    assert await service.prune() == 1  # the event told; the baseline's record stays
    assert await told(service, watch_id) == []
    clock.advance(INTERVAL)
    [report] = await service.run_due()  # pruned is not forgotten: nothing told again
    assert report.told == ()


async def test_a_run_a_bug_broke_is_logged_and_the_watch_goes_on_at_its_interval(
    make_client: ClientFactory, hay: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await started(make_client)
    service = client.app[WATCHES]
    watch_id = await watch(client)

    async def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "_search_user", broken)
    [report] = await service.run_due()
    assert report.recorded
    body = await (await client.get(f"/api/v1/watches/{watch_id}", headers=MINE)).json()
    assert body["last_error"] == "the run failed unexpectedly (logged)"
    assert "a bug" not in str(body)
    assert await service.run_due() == []  # not again before its interval
    monkeypatch.undo()
    clock.advance(INTERVAL)
    [again] = await service.run_due()
    assert again.baseline == 1
