"""POST /api/v1/search with Accept: application/x-ndjson: the search as it goes."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.app_keys import SEARCHES
from tests.support.http import ClientFactory
from tests.support.waiting import eventually

Client = TestClient[Any, Any]
NDJSON = {"Accept": "application/x-ndjson"}


async def open_stream(client: Client, **body: Any) -> ClientResponse:
    resp = await client.post(
        "/api/v1/search", json=body, headers={**NDJSON, "X-Request-ID": "stream-1"}
    )
    assert resp.status == 200, await resp.text()
    return resp


async def next_event(resp: ClientResponse) -> dict[str, Any]:
    line = await asyncio.wait_for(resp.content.readline(), timeout=20)
    assert line.endswith(b"\n"), line
    event: dict[str, Any] = json.loads(line)
    return event


async def read_all(resp: ClientResponse) -> list[dict[str, Any]]:
    events = []
    while True:
        event = await next_event(resp)
        events.append(event)
        if event["event"] in ("done", "error"):
            assert await resp.content.read() == b""  # nothing after the last event
            return events


def raw_names(fake: FakeGitHub) -> list[str]:
    return sorted(r.path.rsplit("/", 1)[-1] for r in fake.raw_requests())


async def test_the_stream_tells_progress_matches_and_done_in_order(
    client: Client, fake: FakeGitHub
) -> None:
    tools = fake.add_gist("alice", {"fetch.py": "import requests\n", "README.md": "# x\n"})
    fake.add_gist("alice", {"notes.txt": "nothing\n"})
    web = fake.add_gist("alice", {"app.js": "import x from 'y'\n"})
    resp = await open_stream(client, username="alice", pattern="import")
    assert resp.headers["Content-Type"].startswith("application/x-ndjson")
    assert resp.headers["X-Accel-Buffering"] == "no"
    assert resp.headers["X-Request-ID"] == "stream-1"  # set when the stream was prepared
    assert resp.headers["X-Cache"] == "MISS"
    events = await read_all(resp)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "progress"
    assert events[0]["files_total"] == 4
    assert events[0]["files_done"] == 0
    assert kinds[-1] == "done"
    assert events[-1] == {"event": "done", "total": 2, "status": "success", "cut": None}
    assert set(kinds) == {"progress", "match", "done"}
    matches = [e for e in events if e["event"] == "match"]
    assert sorted((e["index"], e["gist"]["id"]) for e in matches) == [
        (0, web.id),
        (2, tools.id),
    ]
    progress = [e for e in events if e["event"] == "progress"]
    assert [p["files_done"] for p in progress] == sorted(p["files_done"] for p in progress)
    assert len(fake.raw_requests()) == 4

    # the same gist objects as the matches array of the plain answer
    plain = await client.post("/api/v1/search", json={"username": "alice", "pattern": "import"})
    body = await plain.json()
    by_index = [e["gist"] for e in sorted(matches, key=lambda e: e["index"])]
    assert by_index == body["matches"]

    # warm: everything is in at once
    events = await read_all(await open_stream(client, username="alice", pattern="import"))
    first = events[0]
    assert first["event"] == "progress"
    assert first["files_done"] == first["files_total"] == 4
    assert first["bytes"] == sum(
        len(text.encode())
        for text in ("import requests\n", "# x\n", "nothing\n", "import x from 'y'\n")
    )
    assert [e["gist"] for e in events if e["event"] == "match"] == body["matches"]
    assert len(fake.raw_requests()) == 4


async def test_each_progress_event_tells_something_new(client: Client, fake: FakeGitHub) -> None:
    # downloads that end within one progress interval of the last progress told: the
    # last counts are told once, on time, before done (the race that told them twice
    # is lost only some of the time, hence several users)
    fake.latency = 0.02
    sizes = sum(len(f"import m{n}\n") for n in range(6))
    for user in range(8):
        for n in range(6):
            fake.add_gist(f"user{user}", {f"f{n}.py": f"import m{n}\n"})
        resp = await open_stream(client, username=f"user{user}", pattern="import")
        events = await read_all(resp)
        progress = [
            (e["files_done"], e["files_total"], e["bytes"])
            for e in events
            if e["event"] == "progress"
        ]
        assert len(progress) == len(set(progress)), progress
        assert progress[-1] == (6, 6, sizes)


async def test_a_gist_is_told_as_soon_as_its_own_files_are_in(
    client: Client, fake: FakeGitHub
) -> None:
    fake.latency = 0.05
    fake.add_gist("alice", {"fast.txt": "needle fast\n"})
    fake.add_gist("alice", {"slow.txt": "needle slow\n", "other.txt": "x\n"})  # newest
    fake.hold_raw("slow.txt")
    resp = await open_stream(client, username="alice", pattern="needle")
    seen = []
    while True:
        event = await next_event(resp)
        seen.append(event)
        if event["event"] == "match":
            break
    # the second gist of the list came first: the first still waits for slow.txt
    assert event["index"] == 1
    assert event["gist"]["files"][0]["filename"] == "fast.txt"
    [slow] = [r for r in fake.raw_requests() if r.path.endswith("/slow.txt")]
    assert slow.status is None  # asked for, not answered yet
    fake.release_raw()
    rest = await read_all(resp)
    matches = [e for e in rest if e["event"] == "match"]
    assert [(e["index"], e["gist"]["files"][0]["filename"]) for e in matches] == [(0, "slow.txt")]
    assert rest[-1] == {"event": "done", "total": 2, "status": "success", "cut": None}
    assert slow.status == 200


async def test_skipped_files_are_events_of_their_own(client: Client, fake: FakeGitHub) -> None:
    gist = fake.add_gist("alice", {"bin.dat": b"\0\0binary", "a.txt": "needle\n"})
    events = await read_all(await open_stream(client, username="alice", pattern="needle"))
    [skipped] = [e for e in events if e["event"] == "skipped"]
    assert skipped == {
        "event": "skipped",
        "index": 0,
        "id": gist.id,
        "filename": "bin.dat",
        "reason": "binary",
    }
    assert events[-1]["total"] == 1


async def test_github_failing_mid_way_is_told_in_the_stream(
    client: Client, fake: FakeGitHub
) -> None:
    gist = fake.add_gist("alice", {"a.txt": "needle\n"})
    fake.add_gist("alice", {"b.txt": "needle\n"})
    fake.fail_next(502, times=20, kind="raw", path_contains="/a.txt")
    events = await read_all(await open_stream(client, username="alice", pattern="needle"))
    assert [e for e in events if e["event"] == "skipped"] == [
        {
            "event": "skipped",
            "index": 1,
            "id": gist.id,
            "filename": "a.txt",
            "reason": "unavailable",
        }
    ]
    assert events[-1] == {"event": "done", "total": 1, "status": "success", "cut": None}


async def test_a_failure_after_the_stream_began_is_an_error_event(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    fake.add_gist("alice", {"a.txt": "needle\n"})
    fake.hold_raw("a.txt")
    client = await make_client(search_timeout=3)
    resp = await open_stream(client, username="alice", pattern="needle")
    events = await read_all(resp)
    fake.release_raw()
    assert events[0]["event"] == "progress"
    error = events[-1]
    assert error["event"] == "error"
    problem = error["problem"]
    assert problem["type"] == "urn:gistcache:problem:search-timeout"
    assert problem["status"] == 504
    assert problem["request_id"] == "stream-1"
    assert "Traceback" not in json.dumps(events)


async def test_errors_before_the_stream_are_ordinary_problems(
    client: Client, fake: FakeGitHub
) -> None:
    for body, status, kind in [
        ({"username": "alice", "pattern": "("}, 400, "invalid-pattern"),
        ({"username": "alice", "pattern": "x", "context": 11}, 400, "invalid-body"),
        ({"username": "nobody-here", "pattern": "x"}, 404, "user-not-found"),
    ]:
        resp = await client.post("/api/v1/search", json=body, headers=NDJSON)
        assert resp.status == status
        assert resp.headers["Content-Type"] == "application/problem+json"
        problem = await resp.json()
        assert problem["type"] == f"urn:gistcache:problem:{kind}"
    assert fake.raw_requests() == []


async def test_page_and_per_page_do_not_apply_to_the_stream(
    client: Client, fake: FakeGitHub
) -> None:
    for n in range(3):
        fake.add_gist("alice", {f"f{n}.txt": "needle\n"})
    events = await read_all(
        await open_stream(client, username="alice", pattern="needle", page=2, per_page=1)
    )
    assert sorted(e["index"] for e in events if e["event"] == "match") == [0, 1, 2]
    assert events[-1]["total"] == 3


async def test_a_client_that_goes_away_stops_the_downloads_it_alone_wanted(
    make_client: ClientFactory, fake: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gistcache.access")
    for n in range(5, 0, -1):  # f1 first in the list
        fake.add_gist("alice", {f"f{n}.txt": "needle\n"})
    fake.add_gist("bob", {"b.txt": "needle\n"})
    client = await make_client(fetch_concurrency=1, max_searches=1)
    fake.hold_raw("f1.txt")
    resp = await open_stream(client, username="alice", pattern="needle")
    assert (await next_event(resp))["event"] == "progress"
    await eventually(lambda: _async(raw_names(fake)), lambda names: names == ["f1.txt"])
    resp.close()  # the client goes away

    async def other_search() -> int:
        answer = await client.post("/api/v1/search", json={"username": "bob", "pattern": "x"})
        return answer.status

    # the only search slot is free again once the stream's search has stopped
    await eventually(other_search, lambda status: status == 200, what="the slot freed")
    fake.release_raw()
    await asyncio.sleep(0.2)
    assert "f2.txt" not in raw_names(fake)
    assert raw_names(fake).count("f1.txt") <= 1
    # what was not fetched is fetched by the next search that wants it
    plain = await client.post("/api/v1/search", json={"username": "alice", "pattern": "needle"})
    assert (await plain.json())["total"] == 5
    # the stream broken off is still one access line, told as nginx tells it
    told = [
        r.fields["status"]  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "gistcache.access" and r.fields["request_id"] == "stream-1"  # type: ignore[attr-defined]
    ]
    assert told == [499]


async def test_a_download_shared_with_another_search_goes_on(
    client: Client, fake: FakeGitHub
) -> None:
    fake.add_gist("alice", {"shared.txt": "needle\n"})
    fake.hold_raw("shared.txt")
    resp = await open_stream(client, username="alice", pattern="needle")
    assert (await next_event(resp))["event"] == "progress"
    plain = asyncio.ensure_future(
        client.post("/api/v1/search", json={"username": "alice", "pattern": "needle"})
    )
    await eventually(lambda: _async(raw_names(fake)), lambda names: names == ["shared.txt"])
    flights = client.app[SEARCHES]._contents._flights
    await eventually(lambda: _async(sum(flights._waiters.values())), lambda n: n == 2)
    resp.close()
    await eventually(
        lambda: _async(sum(flights._waiters.values())), lambda n: n == 1
    )  # the stream's search notices and stops
    fake.release_raw()
    answer = await asyncio.wait_for(plain, timeout=20)
    body = await answer.json()
    assert body["total"] == 1
    assert body["skipped"] == []
    assert raw_names(fake) == ["shared.txt"]  # the one download, not begun again


async def _async(value: Any) -> Any:
    return value


@pytest.mark.parametrize("ask", ["body", "prefer"])
async def test_a_job_asked_for_wins_over_the_stream(
    client: Client, fake: FakeGitHub, ask: str
) -> None:
    fake.add_gist("alice", {"a.txt": "needle\n"})
    headers = {"Accept": "application/x-ndjson"}
    body: dict[str, Any] = {"username": "alice", "pattern": "needle"}
    if ask == "body":
        body["async"] = True
    else:
        headers["Prefer"] = "respond-async"
    resp = await client.post("/api/v1/search", json=body, headers=headers)
    assert resp.status == 202
    assert resp.headers["Location"].startswith("/api/v1/search/")
    job_id = (await resp.json())["request_id"]

    async def status() -> str:
        answer = await (await client.get(f"/api/v1/search/{job_id}")).json()
        return str(answer["status"])

    # the job runs to its end (and the server stops with no job running)
    await eventually(status, lambda s: s == "SUCCESS", what="the job to succeed")
