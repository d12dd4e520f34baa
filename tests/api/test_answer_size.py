"""How large a search answer may be: past GISTCACHE_MAX_ANSWER_BYTES the answer (a
page, a stream) stops, says where in ``cut``, and names the page that holds the rest;
large answers are bounded in flight."""

from __future__ import annotations

import asyncio
import html
import json
from typing import Any

from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from gistcache.web.app_keys import ANSWERS
from tests.api.test_jobs import wait_for
from tests.support.http import ClientFactory, problem
from tests.support.waiting import eventually

Client = TestClient[Any, Any]
LIMIT = 64 * 1024
# 20 matching lines of 500 characters, each with its own 3 lines of context: about 40 KB
# of a search's answer per file
LINE = "needle " + "x" * 493
FILE = "".join(f"{LINE}\n" + "\n".join(["y" * 500] * 3) + "\n" for _ in range(20))


def wide_user(fake: FakeGitHub, login: str, gists: int, files: int = 1) -> None:
    for n in range(gists):
        fake.add_gist(login, {f"f{n}-{k}.txt": FILE for k in range(files)})


async def search(client: Client, **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/search", json={"pattern": "needle", "context": 3, **body})
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def test_a_page_past_the_answer_limit_is_cut_and_names_the_page_of_the_rest(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    wide_user(fake, "wide", 7)
    client = await make_client(max_answer_bytes=LIMIT)
    whole = await search(await make_client(), username="wide")
    assert whole["cut"] is None
    assert len(whole["matches"]) == 7

    cut = await search(client, username="wide")
    assert cut["total"] == 7
    listed = cut["cut"]["listed"]
    assert 0 < listed < 7
    assert [g["id"] for g in cut["matches"]] == [g["id"] for g in whole["matches"][:listed]]
    assert cut["matches"] == whole["matches"][:listed]  # whole gists, as they are
    assert cut["cut"]["limit_bytes"] == LIMIT
    assert cut["cut"]["lines_cut"] is False
    assert len(json.dumps(cut)) <= LIMIT * 1.2
    # the page it names starts with the first gist not listed
    following = cut["cut"]["next"]
    rest = await search(client, username="wide", **following)
    assert rest["matches"][0] == whole["matches"][listed]


async def test_a_single_gist_over_the_limit_is_listed_with_fewer_lines(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    wide_user(fake, "huge", 1, files=4)
    client = await make_client(max_answer_bytes=LIMIT)
    answer = await search(client, username="huge")
    assert answer["total"] == 1
    assert answer["cut"] == {"limit_bytes": LIMIT, "listed": 1, "lines_cut": True, "next": None}
    files = answer["matches"][0]["files"]
    assert len(files) == 4
    assert all(f["match_count"] == 20 for f in files)
    assert sum(len(f["lines"]) for f in files) < 80
    assert len(json.dumps(answer)) <= LIMIT * 1.2


async def test_a_stream_past_the_answer_limit_says_so_in_its_done_event(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    wide_user(fake, "wide", 7)
    client = await make_client(max_answer_bytes=LIMIT)
    resp = await client.post(
        "/api/v1/search",
        json={"username": "wide", "pattern": "needle", "context": 3},
        headers={"Accept": "application/x-ndjson"},
    )
    events = [json.loads(line) for line in (await resp.read()).splitlines()]
    matches = [e for e in events if e["event"] == "match"]
    done = events[-1]
    assert done["event"] == "done"
    assert done["total"] == 7
    assert done["cut"] == {
        "limit_bytes": LIMIT,
        "listed": len(matches),
        "lines_cut": False,
        "next": None,
    }
    assert 0 < len(matches) < 7


async def test_large_answers_past_the_bound_in_flight_are_503_with_retry_after(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    wide_user(fake, "wide", 7)
    client = await make_client()
    assert (await search(client, username="wide"))["cut"] is None  # cached now
    answers = client.app[ANSWERS]
    with answers.hold(answers.max_bytes):  # as if large answers filled the bound
        resp = await client.post(
            "/api/v1/search", json={"username": "wide", "pattern": "needle", "context": 3}
        )
        body = await problem(resp, 503, "answers-busy")
        assert "retry" in body["detail"]
        assert int(resp.headers["Retry-After"]) > 0
        # a small answer is never held back
        small = await client.post("/api/v1/search", json={"username": "wide", "pattern": "zz"})
        assert small.status == 200
    assert answers.held == 0
    await asyncio.sleep(0)
    assert (await search(client, username="wide"))["cut"] is None


async def test_the_page_says_in_words_where_its_results_were_cut(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    wide_user(fake, "wide", 7)
    client = await make_client(max_answer_bytes=LIMIT)
    answer = await search(client, username="wide")
    listed = answer["cut"]["listed"]
    resp = await client.get("/-/search", params={"user": "wide", "q": "needle", "context": "3"})
    assert resp.status == 200
    text = html.unescape(await resp.text())
    shown = "first matching gist is" if listed == 1 else f"first {listed} matching gists are"
    assert (
        f"Only the {shown} listed: the answer reached this server's limit of 0.0625 MiB."
    ) in text
    whole = await (await make_client()).get(
        "/-/search", params={"user": "wide", "q": "needle", "context": "3"}
    )
    assert "the answer reached" not in await whole.text()


async def test_a_large_job_result_is_counted_in_the_bound_in_flight(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    wide_user(fake, "wide", 7)
    client = await make_client()
    resp = await client.post(
        "/api/v1/search",
        json={"username": "wide", "pattern": "needle", "context": 3, "async": True},
    )
    assert resp.status == 202
    job_id = (await resp.json())["request_id"]

    async def status() -> str:
        state: str = (await (await client.get(f"/api/v1/search/{job_id}")).json())["status"]
        return state

    assert await eventually(status, lambda s: s in ("SUCCESS", "FAILURE")) == "SUCCESS"
    answers = client.app[ANSWERS]
    with answers.hold(answers.max_bytes):  # as if large answers filled the bound
        busy = await client.get(f"/api/v1/search_result/{job_id}")
        body = await problem(busy, 503, "answers-busy")
        assert "retry" in body["detail"]
        assert int(busy.headers["Retry-After"]) > 0
    assert answers.held == 0
    resp = await client.get(f"/api/v1/search_result/{job_id}")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    result = await resp.json()
    assert len(result["matches"]) == 7
    assert result == await search(client, username="wide")


async def test_a_large_search_page_is_counted_in_the_bound_in_flight(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    wide_user(fake, "wide", 7)
    client = await make_client()
    query = {"user": "wide", "q": "needle", "context": "3"}
    whole = await client.get("/-/search", params=query)
    assert whole.status == 200
    assert whole.headers["Content-Type"] == "text/html; charset=utf-8"
    assert whole.headers["Content-Security-Policy"] == "default-src 'self'"
    assert (await whole.text()).count("needle") >= 7 * 20
    answers = client.app[ANSWERS]
    with answers.hold(answers.max_bytes):  # as if large answers filled the bound
        busy = await client.get("/-/search", params=query)
        assert busy.status == 503
        assert int(busy.headers["Retry-After"]) > 0
        assert busy.headers["Content-Type"].startswith("text/html")
        assert "Too many large answers in flight" in await busy.text()
        # a small page is never held back
        small = await client.get("/-/search", params={"user": "wide", "q": "zz"})
        assert small.status == 200
    assert answers.held == 0


async def test_an_answer_over_control_characters_stays_within_the_limit(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    # each control character takes six bytes in the JSON (\u0001)
    line = "needle " + "\x01" * 493
    controls = "".join(f"{line}\n" + "\n".join(["\x02" * 500] * 3) + "\n" for _ in range(20))
    for n in range(7):
        fake.add_gist("ctl", {f"c{n}.txt": controls})
    client = await make_client(max_answer_bytes=LIMIT)
    resp = await client.post(
        "/api/v1/search", json={"username": "ctl", "pattern": "needle", "context": 3}
    )
    assert resp.status == 200
    body = await resp.read()
    assert len(body) <= LIMIT * 1.2
    answer = json.loads(body)
    assert answer["total"] == 7
    assert answer["cut"]["limit_bytes"] == LIMIT
    assert answer["matches"][0]["files"][0]["lines"][0]["text"].startswith("needle \x01")


USERS = ["wide-a", "wide-b", "wide-c"]


async def test_a_many_user_answer_stays_within_the_limit_in_all_and_says_where_it_was_cut(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    for login in USERS:
        wide_user(fake, login, 2)  # about 80 KB of answer each: over the limit alone
    client = await make_client(max_answer_bytes=LIMIT)
    whole = await search(await make_client(), usernames=USERS)
    assert [len(u["matches"]) for u in whole["users"]] == [2, 2, 2]

    cut = await search(client, usernames=USERS)
    assert len(json.dumps(cut)) <= LIMIT * 1.2
    assert cut["total"] == 6  # the users past the limit are still searched and counted
    assert [u["total"] for u in cut["users"]] == [2, 2, 2]
    a, b, c = cut["users"]
    assert a["matches"] == whole["users"][0]["matches"][:1]
    assert a["cut"] == {
        "limit_bytes": LIMIT,
        "listed": 1,
        "lines_cut": False,
        "next": {"page": 2, "per_page": 1},
    }
    # the users after the limit was reached list nothing, and name the page to ask for
    assert b["matches"] == c["matches"] == []
    assert (
        b["cut"]
        == c["cut"]
        == {
            "limit_bytes": LIMIT,
            "listed": 0,
            "lines_cut": False,
            "next": {"page": 1, "per_page": 100},
        }
    )
    rest = await search(client, username="wide-b", **b["cut"]["next"])
    assert rest["matches"][0] == whole["users"][1]["matches"][0]

    # a job's result is the same answer
    resp = await client.post(
        "/api/v1/search",
        json={"usernames": USERS, "pattern": "needle", "context": 3, "async": True},
    )
    assert resp.status == 202
    job_id = (await resp.json())["request_id"]
    state = await wait_for(client, job_id, "SUCCESS", "FAILURE")
    assert state["status"] == "SUCCESS"
    resp = await client.get(f"/api/v1/search_result/{job_id}")
    assert await resp.json() == cut


async def test_a_many_user_stream_stays_within_the_limit_in_all(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    for login in USERS:
        wide_user(fake, login, 2)
    client = await make_client(max_answer_bytes=LIMIT)
    resp = await client.post(
        "/api/v1/search",
        json={"usernames": USERS, "pattern": "needle", "context": 3},
        headers={"Accept": "application/x-ndjson"},
    )
    events = [json.loads(line) for line in (await resp.read()).splitlines()]
    matches = [e for e in events if e["event"] == "match"]
    assert sum(len(json.dumps(e)) for e in matches) <= LIMIT * 1.2
    assert len(matches) == 1  # one gist fits; every other is left out
    assert events[-1] == {"event": "done", "total": 6, "status": "success", "users": 3}
    users = {e["username"]: e for e in events if e["event"] == "user"}
    assert [users[login]["total"] for login in USERS] == [2, 2, 2]
    # every user says how many of its matches were listed before the cut
    for login in USERS:
        listed = sum(1 for e in matches if e["username"] == login)
        assert users[login]["cut"] == {
            "limit_bytes": LIMIT,
            "listed": listed,
            "lines_cut": False,
            "next": None,
        }
