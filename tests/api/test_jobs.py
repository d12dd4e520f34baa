"""Search jobs: the lifecycle, restarts, and several servers sharing one database."""

from __future__ import annotations

import json
import logging
import uuid
from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.store.jobs import Jobs
from gistcache.store.models import search_jobs
from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.app_keys import JOBS, SEARCHES
from tests.support.clock import FakeClock
from tests.support.http import ClientFactory
from tests.support.waiting import eventually

Client = TestClient[Any, Any]
QUERY = {"username": "alice", "pattern": "needle"}


@pytest.fixture
def alice(fake: FakeGitHub) -> str:
    fake.add_gist("alice", {"hay.txt": "hay\n"})
    return fake.add_gist("alice", {"n.txt": "a needle\n"}).id


async def submit(client: Client, **extra: Any) -> str:
    resp = await client.post("/api/v1/search", json={**QUERY, "async": True, **extra})
    assert resp.status == 202
    job_id: str = (await resp.json())["request_id"]
    assert str(uuid.UUID(job_id)) == job_id
    assert resp.headers["Location"] == f"/api/v1/search/{job_id}"
    return job_id


async def wait_for(client: Client, job_id: str, *states: str) -> dict[str, Any]:
    async def status() -> dict[str, Any]:
        resp = await client.get(f"/api/v1/search/{job_id}")
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body

    return await eventually(
        status, lambda body: body["status"] in states, interval=0.025, what=f"job {job_id} {states}"
    )


async def left_by_dead_runners(
    make_client: ClientFactory, engine: AsyncEngine, clock: FakeClock, **row: Any
) -> str:
    """A job submitted to a server that runs none, then marked STARTED with ``row`` and a
    lease that has just run out, as a runner killed while holding it leaves it; its id."""
    client = await make_client(search_workers=0)
    job_id = await submit(client)
    async with engine.begin() as conn:
        await conn.execute(
            search_jobs.update().values(status="STARTED", lease_until=clock(), **row)
        )
    clock.advance(1)
    return job_id


async def test_job_lifecycle_and_result(client: Client, alice: str) -> None:
    job_id = await submit(client)
    status = await wait_for(client, job_id, "SUCCESS", "FAILURE")
    assert status["status"] == "SUCCESS"
    assert status["request_id"] == job_id
    assert status["error"] is None
    assert status["created_at"] <= status["started_at"] <= status["finished_at"]

    resp = await client.get(f"/api/v1/search_result/{job_id}")
    assert resp.status == 200
    result = await resp.json()
    assert [m["id"] for m in result["matches"]] == [alice]
    sync = await (await client.post("/api/v1/search", json=QUERY)).json()
    assert result == sync


async def test_a_job_that_failed_before_an_upgrade_reads_as_it_did(
    make_client: ClientFactory, clock: FakeClock, engine: AsyncEngine
) -> None:
    # the previous version stored a failed job's problem JSON; a job that failed just
    # before the upgrade is read after it, beside one that fails after it
    client = await make_client(search_workers=0)
    before = await submit(client, username="nobody")
    problem = {
        "type": "urn:gistcache:problem:user-not-found",
        "title": "User not found",
        "status": 404,
        "detail": "GitHub has no user by this login",
    }
    async with engine.begin() as conn:
        await conn.execute(
            search_jobs.update()
            .where(search_jobs.c.id == before)
            .values(status="FAILURE", finished_at=clock(), error=json.dumps(problem))
        )
    runner = await make_client(search_workers=1)
    after = await submit(runner, username="nobody")
    await wait_for(runner, after, "FAILURE")

    for job_id in (before, after):
        status = await wait_for(runner, job_id, "FAILURE")
        assert status["error"] == problem
        result = await runner.get(f"/api/v1/search_result/{job_id}")
        assert result.status == 404
        assert result.content_type == "application/problem+json"
        assert "Retry-After" not in result.headers
        assert await result.json() == {
            **problem,
            "instance": f"/api/v1/search_result/{job_id}",
            "request_id": result.headers["X-Request-ID"],
        }


async def test_prefer_respond_async_makes_a_job(client: Client, alice: str) -> None:
    resp = await client.post(
        "/api/v1/search", json=QUERY, headers={"Prefer": "respond-async, wait=5"}
    )
    assert resp.status == 202
    assert resp.headers["Preference-Applied"] == "respond-async"
    job_id = (await resp.json())["request_id"]
    assert (await wait_for(client, job_id, "SUCCESS"))["status"] == "SUCCESS"


async def test_result_of_an_unfinished_job_is_409(
    make_client: ClientFactory, alice: str, fake: FakeGitHub
) -> None:
    client = await make_client(search_workers=0)  # queues, never runs
    job_id = await submit(client)
    status = await (await client.get(f"/api/v1/search/{job_id}")).json()
    assert status["status"] == "PENDING"
    assert status["started_at"] is None
    resp = await client.get(f"/api/v1/search_result/{job_id}")
    assert resp.status == 409
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["job_status"] == "PENDING"
    assert fake.requests == []


@pytest.mark.parametrize(
    "job_id", [str(uuid.uuid4()), "not-a-uuid", "../../etc", str(uuid.uuid4()).upper()]
)
async def test_unknown_or_malformed_ids_are_404(client: Client, job_id: str) -> None:
    for path in ("/api/v1/search/", "/api/v1/search_result/"):
        resp = await client.get(path + job_id)
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"


async def test_a_failed_job_answers_with_its_problem(client: Client) -> None:
    resp = await client.post(
        "/api/v1/search", json={"username": "nobody", "pattern": "x", "async": True}
    )
    job_id = (await resp.json())["request_id"]
    status = await wait_for(client, job_id, "SUCCESS", "FAILURE")
    assert status["status"] == "FAILURE"
    assert status["error"]["status"] == 404
    result = await client.get(f"/api/v1/search_result/{job_id}")
    assert result.status == 404
    assert result.content_type == "application/problem+json"
    assert (await result.json())["type"] == "urn:gistcache:problem:user-not-found"


async def test_a_job_queued_before_a_restart_finishes_after_it(
    make_client: ClientFactory, alice: str
) -> None:
    before = await make_client(search_workers=0)
    job_id = await submit(before)
    await before.close()
    after = await make_client(search_workers=2)
    assert (await wait_for(after, job_id, "SUCCESS"))["status"] == "SUCCESS"


async def test_a_job_running_at_shutdown_is_handed_back_and_finished_later(
    make_client: ClientFactory, alice: str, fake: FakeGitHub, engine: AsyncEngine
) -> None:
    fake.latency = 0.5  # GitHub is slow: the job is mid-flight when the server stops
    before = await make_client(search_workers=1)
    job_id = await submit(before)
    await wait_for(before, job_id, "STARTED")
    await before.close()

    fake.latency = 0
    after = await make_client(search_workers=0)
    assert (await wait_for(after, job_id, "PENDING"))["started_at"] is None
    async with engine.connect() as conn:  # a graceful stop is not a failed attempt
        assert await conn.scalar(select(search_jobs.c.attempts)) == 0
    await after.close()
    again = await make_client(search_workers=1)
    assert (await wait_for(again, job_id, "SUCCESS"))["status"] == "SUCCESS"


async def test_a_job_whose_runner_died_is_taken_over_after_its_lease(
    make_client: ClientFactory, alice: str, clock: FakeClock, engine: AsyncEngine
) -> None:
    # as if a process claimed it and was killed
    job_id = await left_by_dead_runners(make_client, engine, clock, started_at=clock())
    runner = await make_client(search_workers=1)
    assert (await wait_for(runner, job_id, "SUCCESS"))["status"] == "SUCCESS"


async def test_two_servers_on_one_database_run_each_job_once(
    make_client: ClientFactory, alice: str, engine: AsyncEngine
) -> None:
    first = await make_client(search_workers=0)
    job_ids = [await submit(first) for _ in range(12)]
    servers = [await make_client(search_workers=3) for _ in range(2)]
    for job_id in job_ids:
        await wait_for(servers[0], job_id, "SUCCESS")
    async with engine.connect() as conn:
        attempts = (await conn.execute(select(search_jobs.c.attempts))).scalars().all()
    assert sorted(attempts) == [1] * 12


async def test_finished_jobs_expire(
    make_client: ClientFactory, alice: str, clock: FakeClock
) -> None:
    client = await make_client(search_result_ttl=3600)
    job_id = await submit(client)
    await wait_for(client, job_id, "SUCCESS")
    clock.advance(3601)
    assert (await client.get(f"/api/v1/search/{job_id}")).status == 404
    assert (await client.get(f"/api/v1/search_result/{job_id}")).status == 404


async def test_a_job_failing_on_a_bug_stores_an_opaque_problem(
    client: Client, alice: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail at /srv/secret")

    monkeypatch.setattr(client.app[SEARCHES], "search", broken)
    job_id = await submit(client)
    status = await wait_for(client, job_id, "SUCCESS", "FAILURE")
    assert status["status"] == "FAILURE"
    assert status["error"] == {
        "type": "urn:gistcache:problem:internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the search failed unexpectedly",
    }
    result = await client.get(f"/api/v1/search_result/{job_id}")
    assert result.status == 500
    assert result.content_type == "application/problem+json"
    assert "secret" not in await result.text()
    # the operator gets the traceback
    assert "RuntimeError: internal detail at /srv/secret" in caplog.text


async def test_a_runner_that_lost_its_lease_drops_its_outcome(
    make_client: ClientFactory,
    alice: str,
    fake: FakeGitHub,
    caplog: pytest.LogCaptureFixture,
    engine: AsyncEngine,
) -> None:
    caplog.set_level(logging.INFO, logger="gistcache.services.jobs")
    fake.latency = 0.3
    client = await make_client(search_workers=1)
    job_id = await submit(client)
    await wait_for(client, job_id, "STARTED")
    async with engine.begin() as conn:  # another server took the job over meanwhile
        await conn.execute(search_jobs.update().values(lease_token="someone-else"))

    async def logged() -> str:
        return caplog.text

    # until the runner has tried to record its outcome
    await eventually(logged, lambda text: "outcome dropped" in text, what="outcome dropped")
    assert "outcome dropped" in caplog.text
    # the log does not claim an outcome this runner did not record
    assert f"search job {job_id} finished" not in caplog.text
    assert f"search job {job_id} failed" not in caplog.text
    async with engine.connect() as conn:
        row = (await conn.execute(select(search_jobs))).one()
    assert row.status == "STARTED"  # still the other server's to finish
    assert row.lease_token == "someone-else"
    assert row.result is None


async def test_a_job_that_keeps_failing_its_runner_is_given_up(
    make_client: ClientFactory, alice: str, clock: FakeClock, engine: AsyncEngine
) -> None:
    # three runners died holding it
    job_id = await left_by_dead_runners(make_client, engine, clock, attempts=3)
    runner = await make_client(search_workers=1)
    status = await wait_for(runner, job_id, "SUCCESS", "FAILURE")
    assert status["status"] == "FAILURE"
    assert "given up" in status["error"]["detail"]
    result = await runner.get(f"/api/v1/search_result/{job_id}")
    assert result.status == 500
    assert result.content_type == "application/problem+json"


async def test_expired_jobs_are_deleted(
    make_client: ClientFactory, alice: str, clock: FakeClock, engine: AsyncEngine
) -> None:
    client = await make_client(search_result_ttl=3600)
    done = await submit(client)
    await wait_for(client, done, "SUCCESS")
    clock.advance(3601)
    jobs = client.app[JOBS]
    assert await jobs.purge() == 1
    async with engine.connect() as conn:
        assert (await conn.execute(select(search_jobs.c.id))).scalars().all() == []


async def test_a_stored_result_is_the_text_jobs_always_stored_and_old_ones_are_served_as_stored(
    client: Client, alice: str, engine: AsyncEngine
) -> None:
    job_id = await submit(client)
    await wait_for(client, job_id, "SUCCESS")
    async with engine.connect() as conn:
        stored = (await conn.execute(select(search_jobs.c.result))).scalar_one()
    # the text json.dumps(..., ensure_ascii=False) makes, as before the answers were typed
    assert stored == json.dumps(json.loads(stored), ensure_ascii=False)
    sync = await (await client.post("/api/v1/search", json=QUERY)).json()
    assert json.loads(stored) == sync

    # a result stored by an older version (its lines had no column) is served as it is
    old = (
        '{"status": "success", "username": "alice", "pattern": "needle", "total": 1, '
        '"matches": [{"id": "x", "html_url": "h", "description": null, "updated_at": '
        '"2020-01-01T00:00:00Z", "files": [{"filename": "n.txt", "language": null, '
        '"size": 9, "raw_url": null, "match_count": 1, "lines": [{"line_number": 1, '
        '"text": "a needle"}]}]}], "skipped": []}'
    )
    async with engine.begin() as conn:
        await conn.execute(search_jobs.update().values(result=old))
    resp = await client.get(f"/api/v1/search_result/{job_id}")
    assert resp.status == 200
    assert await resp.text() == old


async def test_a_running_job_reports_its_progress(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("alice", {"quick.txt": "needle\n"})
    fake.add_gist("alice", {"slow.txt": "needle\n", "other.txt": "hay\n"})
    queue_only = await make_client(search_workers=0)
    job_id = await submit(queue_only)
    status = await (await queue_only.get(f"/api/v1/search/{job_id}")).json()
    assert status["status"] == "PENDING"
    assert status["progress"] is None  # not known before the search starts

    fake.latency = 0.05
    fake.hold_raw("slow.txt")
    runner = await make_client()  # another server on the same database runs it

    async def progress() -> Any:
        body = await (await queue_only.get(f"/api/v1/search/{job_id}")).json()
        return body["status"], body["progress"]

    # stored by the server running the job, read by the other one
    seen = await eventually(
        progress, lambda s: s[1] is not None and s[1]["files_done"] == 2, what="2 of 3 done"
    )
    assert seen == ("STARTED", {"files_done": 2, "files_total": 3})
    fake.release_raw()
    final = await wait_for(runner, job_id, "SUCCESS")
    assert final["progress"] == {"files_done": 3, "files_total": 3}


async def test_the_job_workers_log_a_database_outage_once_when_it_begins_and_ends(
    make_client: ClientFactory,
    alice: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gistcache.services.jobs")
    client = await make_client(search_workers=2)
    claim = Jobs.claim
    refused = 0

    async def unreachable(*args: Any, **kwargs: Any) -> Any:
        nonlocal refused
        refused += 1
        raise sa_exc.OperationalError("UPDATE search_jobs", {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(Jobs, "claim", unreachable)

    async def attempts() -> int:
        return refused

    # each worker tried several times while the database was away
    await eventually(attempts, lambda n: n >= 6, what="six refused claims")
    monkeypatch.setattr(Jobs, "claim", claim)
    job_id = await submit(client)
    assert (await wait_for(client, job_id, "SUCCESS"))["status"] == "SUCCESS"

    records = [r for r in caplog.records if r.name == "gistcache.services.jobs"]
    assert not [r for r in records if r.exc_info], "no traceback for an outage"
    told = [r.getMessage() for r in records if "database" in r.getMessage()]
    assert len(told) == 2, told
    assert "not answering" in told[0]
    assert "answers again" in told[1]


async def test_a_client_may_have_only_so_many_jobs_waiting_on_all_servers(
    make_client: ClientFactory, alice: str, engine: AsyncEngine
) -> None:
    proxies = (ip_network("127.0.0.0/8"),)
    servers = [
        await make_client(search_workers=0, max_jobs_per_client=2, trusted_proxies=proxies)
        for _ in range(2)
    ]
    body = {**QUERY, "async": True}
    mallory = {"X-Forwarded-For": "203.0.113.7"}
    for server in servers:  # one job on each server: two for this client in all
        assert (await server.post("/api/v1/search", json=body, headers=mallory)).status == 202
    refused = await servers[0].post("/api/v1/search", json=body, headers=mallory)
    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    assert int(refused.headers["Retry-After"]) > 0
    problem = await refused.json()
    assert problem["type"] == "urn:gistcache:problem:too-many-jobs"
    assert "2 search jobs waiting or running, as many as one client may" in problem["detail"]
    # another client is not held back by this one's jobs
    other = {"X-Forwarded-For": "198.51.100.1"}
    assert (await servers[1].post("/api/v1/search", json=body, headers=other)).status == 202
    async with engine.connect() as conn:  # the refused job was not queued
        assert await conn.scalar(select(func.count()).select_from(search_jobs)) == 3

    # once its jobs have run, the client may queue more
    runner = await make_client(search_workers=2, trusted_proxies=proxies)
    async with engine.connect() as conn:
        ids = (await conn.execute(select(search_jobs.c.id))).scalars().all()
    for job_id in ids:
        await wait_for(runner, job_id, "SUCCESS")
    assert (await servers[0].post("/api/v1/search", json=body, headers=mallory)).status == 202


async def test_the_job_queue_holds_only_so_many_jobs_in_all(
    make_client: ClientFactory, alice: str, engine: AsyncEngine
) -> None:
    client = await make_client(search_workers=0, max_queued_jobs=3)
    for _ in range(3):
        await submit(client)
    refused = await client.post("/api/v1/search", json={**QUERY, "async": True})
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) > 0
    problem = await refused.json()
    assert problem["type"] == "urn:gistcache:problem:job-queue-full"
    assert "3 search jobs are waiting or running" in problem["detail"]
    # a search without a job is still answered
    assert (await client.post("/api/v1/search", json=QUERY)).status == 200
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(search_jobs)) == 3
