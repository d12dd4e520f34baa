"""The fake GitHub's GraphQL API answers as GitHub's does: its schema, its limits, its
budget in points and its failures, so that gistcache's GraphQL client is tested against
what the real one will meet."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gistcache.testing.fake_github import FakeGitHub, main
from gistcache.testing.fake_github import graphql as fake_graphql
from gistcache.testing.fake_github.graphql import TEXT_LIMIT
from gistcache.testing.fake_github.schema import SchemaMissing

UA = {"User-Agent": "fidelity-test"}
TOKEN = {"Authorization": "bearer t0ken"}
GISTS = """
query($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Gist {
      id name updatedAt isPublic
      files { name encodedName extension size isImage isTruncated text }
    }
  }
  rateLimit { cost remaining resetAt limit used nodeCount }
}
"""


@pytest.fixture
async def http(fake_server: TestServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=fake_server.make_url("/"), headers=UA) as session:
        yield session


async def ask(
    http: aiohttp.ClientSession,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    path: str = "/graphql",
) -> tuple[aiohttp.ClientResponse, Any]:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    resp = await http.post(path, json=body, headers=TOKEN if headers is None else headers)
    return resp, await resp.json()


def node_id(fake: FakeGitHub, gist_id: str) -> str:
    """The gist's node_id as its REST item gives it."""
    return f"G_fake{fake.gist(gist_id).id}"


async def test_nodes_give_gists_files_with_their_text_and_the_rest_items_node_id(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    gist = fake.add_gist("ada", {"a b.py": "print('hi')\n", "notes.md": "# notes\n"})
    listed = await (await http.get("/users/ada/gists")).json()
    resp, body = await ask(http, GISTS, {"ids": [listed[0]["node_id"]]})
    assert resp.status == 200
    assert "errors" not in body
    (node,) = body["data"]["nodes"]
    assert node["id"] == listed[0]["node_id"]
    assert node["name"] == gist.id == listed[0]["id"]
    assert node["updatedAt"] == listed[0]["updated_at"]
    assert node["isPublic"] is True
    assert node["files"] == [
        {
            "name": "a b.py",
            "encodedName": "a%20b.py",
            "extension": ".py",
            "size": 12,
            "isImage": False,
            "isTruncated": False,
            "text": "print('hi')\n",
        },
        {
            "name": "notes.md",
            "encodedName": "notes.md",
            "extension": ".md",
            "size": 8,
            "isImage": False,
            "isTruncated": False,
            "text": "# notes\n",
        },
    ]
    # the name in the raw URL is the encoded name
    assert listed[0]["files"]["a b.py"]["raw_url"].endswith("/a%20b.py")
    # what was asked is recorded, for tests of the batches a client sends
    (recorded,) = fake.graphql_requests()
    assert recorded.body == {"query": GISTS, "variables": {"ids": [listed[0]["node_id"]]}}
    assert recorded.status == 200


async def test_a_query_github_would_refuse_fails_against_the_schema(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    gist = fake.add_gist("ada", {"a.py": "x\n"})
    wrong = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Gist { files { content } } } }"
    resp, body = await ask(http, wrong, {"ids": [node_id(fake, gist.id)]})
    assert resp.status == 200  # as GitHub: a refused query is still a 200
    assert "data" not in body
    assert body["errors"][0]["message"] == "Field 'content' doesn't exist on type 'GistFile'"
    assert body["errors"][0]["extensions"]["code"] == "undefinedField"
    # a wrong argument, a wrong variable type, bad syntax, a variable missing, two
    # operations and no name
    for query, variables in [
        ("{ viewer { login(size: 3) } }", None),
        ("query($ids: [Int!]!) { nodes(ids: $ids) { id } }", {"ids": [1]}),
        ("{ viewer { login }", None),
        ("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {}),  # a variable missing
        ("query a { viewer { login } } query b { viewer { login } }", None),  # which one?
    ]:
        resp, body = await ask(http, query, variables)
        assert resp.status == 200
        assert "data" not in body
        assert len(body["errors"]) == 1, query
    # none of them spent a point
    resp, _ = await ask(http, "{ viewer { login } }")
    assert resp.headers["x-ratelimit-used"] == "1"


async def test_without_a_token_graphql_is_401_and_counts_nothing(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    resp, body = await ask(http, "{ viewer { login } }", headers={})
    assert resp.status == 401
    assert body["message"] == "This endpoint requires you to be authenticated."
    assert body["documentation_url"].startswith("https://docs.github.com/graphql")
    assert fake.graphql_points == 0
    assert len(fake.graphql_requests()) == 1
    assert fake.api_requests() == []  # REST's counts are REST's


async def test_files_gives_ten_unless_told_and_limit_changes_it(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    gist = fake.add_gist("ada", {f"f{n:02}.txt": f"{n}\n" for n in range(13)})
    ids = {"ids": [node_id(fake, gist.id)]}
    _, body = await ask(http, GISTS, ids)
    assert [f["name"] for f in body["data"]["nodes"][0]["files"]] == [
        f"f{n:02}.txt" for n in range(10)
    ]
    many = GISTS.replace("files {", "files(limit: 20) {")
    _, body = await ask(http, many, ids)
    assert len(body["data"]["nodes"][0]["files"]) == 13


async def test_a_binary_file_has_no_text_and_a_big_one_is_cut_where_it_says(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    big = ("é" * (TEXT_LIMIT // 2 + 10)).encode()  # 2 bytes a character, cut mid-way
    gist = fake.add_gist("ada", {"pic.png": b"\x89PNG\r\n\x1a\n\0\0", "big.txt": big})
    _, body = await ask(http, GISTS, {"ids": [node_id(fake, gist.id)]})
    files = {f["name"]: f for f in body["data"]["nodes"][0]["files"]}
    assert files["pic.png"]["text"] is None
    assert files["pic.png"]["isImage"] is True
    assert files["pic.png"]["isTruncated"] is False
    assert files["big.txt"]["isTruncated"] is True
    assert files["big.txt"]["size"] == len(big)
    assert files["big.txt"]["text"] == "é" * (TEXT_LIMIT // 2)
    # text(truncate:) gives at most that many characters
    short = (
        "query($ids: [ID!]!) { nodes(ids: $ids) { ... on Gist { files { text(truncate: 3) } } } }"
    )
    _, body = await ask(http, short, {"ids": [node_id(fake, gist.id)]})
    assert {f["text"] for f in body["data"]["nodes"][0]["files"]} == {None, "ééé"}


async def test_unknown_deleted_and_secret_gists_are_null_with_not_found(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.add_user("ada", token="ada-token")
    public = fake.add_gist("ada", {"a.py": "public\n"})
    secret = fake.add_gist("ada", {"s.py": "the secret\n"}, public=False)
    gone = fake.add_gist("ada", {"g.py": "gone\n"})
    fake.delete_gist(gone.id)
    ids = [node_id(fake, public.id), f"G_fake{secret.id}", f"G_fake{gone.id}", "G_nothing"]
    resp, body = await ask(http, GISTS, {"ids": ids})
    assert resp.status == 200
    nodes = body["data"]["nodes"]
    assert nodes[0]["files"][0]["text"] == "public\n"
    assert nodes[1:] == [None, None, None]
    assert "the secret" not in await resp.text()
    assert [(e["type"], e["path"]) for e in body["errors"]] == [
        ("NOT_FOUND", ["nodes", 1]),
        ("NOT_FOUND", ["nodes", 2]),
        ("NOT_FOUND", ["nodes", 3]),
    ]
    assert body["errors"][2]["message"] == (
        "Could not resolve to a node with the global id of 'G_nothing'."
    )
    # its owner's token sees it
    _, body = await ask(
        http, GISTS, {"ids": ids[1:2]}, headers={"Authorization": "token ada-token"}
    )
    assert body["data"]["nodes"][0]["files"][0]["text"] == "the secret\n"
    # node(id:) the same
    _, body = await ask(http, '{ node(id: "G_nothing") { id } }')
    assert body["data"] == {"node": None}
    assert body["errors"][0]["type"] == "NOT_FOUND"
    assert body["errors"][0]["path"] == ["node"]


async def test_points_are_githubs_and_reported_in_headers_and_rate_limit(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    gist = fake.add_gist("ada", {"a.py": "x\n"})
    resp, body = await ask(http, GISTS, {"ids": [node_id(fake, gist.id)] * 100})
    # no connection: the minimum, 1 point
    assert body["data"]["rateLimit"]["cost"] == 1
    assert body["data"]["rateLimit"]["remaining"] == 4999
    assert body["data"]["rateLimit"]["limit"] == 5000
    assert body["data"]["rateLimit"]["used"] == 1
    assert resp.headers["x-ratelimit-resource"] == "graphql"
    assert resp.headers["x-ratelimit-limit"] == "5000"
    assert resp.headers["x-ratelimit-remaining"] == "4999"
    assert resp.headers["x-ratelimit-used"] == "1"
    assert int(resp.headers["x-ratelimit-reset"]) > 0
    # a connection asked of 100 parents: 1 + 100 requests, /100 -> 1 point... and
    # GitHub's own example of 50 repositories x 20 pull requests x 10 comments is 1,051
    # requests: 11 points (the fake counts any connection the same way)
    nested = """{ viewer { gists(first: 100) { nodes { comments(first: 100) { totalCount } } } }
      rateLimit { cost nodeCount } }"""
    resp, body = await ask(http, nested)
    # the cost is known before execution (the fake does not model User.gists' data)
    assert body["errors"][0]["message"] == "User.gists is not modelled by the fake GitHub"
    assert body["data"] is None
    assert resp.headers["x-ratelimit-used"] == "2"  # 101 requests / 100 = 1
    deep = """{ viewer { gists(first: 50) { nodes { forks(first: 20) { nodes {
      comments(first: 10) { totalCount } } } } } } }"""
    resp, _ = await ask(http, deep)
    assert resp.headers["x-ratelimit-used"] == str(2 + 11)  # 1 + 50 + 1,000 = 1,051
    # the REST budget is another one
    rest = await http.get("/rate_limit", headers=TOKEN)
    resources = (await rest.json())["resources"]
    assert resources["graphql"]["used"] == 13
    assert resources["core"]["used"] == 0


async def test_pagination_and_node_limits_are_githubs(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    _, body = await ask(http, "{ viewer { gists { totalCount } } }")
    assert body["errors"][0]["type"] == "MISSING_PAGINATION_BOUNDARIES"
    _, body = await ask(http, "{ viewer { gists(first: 101) { totalCount } } }")
    assert body["errors"][0]["type"] == "EXCESSIVE_PAGINATION"
    assert body["errors"][0]["message"] == (
        "Requesting 101 records on the `gists` connection exceeds the `first` limit of 100 records."
    )
    _, body = await ask(http, GISTS, {"ids": [f"G_{n}" for n in range(101)]})
    assert body["data"] is None
    assert body["errors"][0]["type"] == "ARGUMENT_LIMIT"
    assert body["errors"][0]["message"] == (
        "You may not provide more than 100 node ids; you provided 101."
    )
    huge = """{ viewer { gists(first: 100) { nodes { forks(first: 100) { nodes {
      stargazers(first: 100) { totalCount } } } } } } }"""
    _, body = await ask(http, huge)
    assert body["errors"][0]["type"] == "MAX_NODE_LIMIT_EXCEEDED"
    assert fake.graphql_points == 0  # refused before it ran: no point spent


async def test_a_spent_budget_answers_rate_limited_with_200(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.exhaust_graphql_budget("t0ken")
    resp, body = await ask(http, "{ viewer { login } }")
    assert resp.status == 200
    assert "data" not in body
    # as GitHub answers it now (its docs say RATE_LIMITED: see the next test)
    assert body["errors"][0]["type"] == "RATE_LIMIT"
    assert body["errors"][0]["code"] == "graphql_rate_limit"
    assert body["errors"][0]["message"].startswith("API rate limit already exceeded for user ID")
    assert resp.headers["x-ratelimit-remaining"] == "0"
    # another token has its own
    resp, body = await ask(http, "{ viewer { login } }", headers={"Authorization": "bearer other"})
    assert body["data"]["viewer"]["login"]
    assert resp.headers["x-ratelimit-remaining"] == "4999"


async def test_the_graphql_endpoint_of_an_enterprise_base(
    fake: FakeGitHub,
) -> None:
    ghe = FakeGitHub(api_prefix="/api/v3")
    gist = ghe.add_gist("ada", {"a.py": "on enterprise\n"})
    server = TestServer(ghe.app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=server.make_url("/"), headers=UA) as http:
            _, body = await ask(http, GISTS, {"ids": [f"G_fake{gist.id}"]}, path="/api/graphql")
            assert body["data"]["nodes"][0]["files"][0]["text"] == "on enterprise\n"
            missing = await http.post("/graphql", json={"query": "{ viewer { login } }"})
            assert missing.status == 404
    finally:
        await server.close()
    assert len(ghe.graphql_requests()) == 1


class Waits:
    """The fake's waits, recorded instead of waited."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


async def test_told_rate_limited_it_answers_so_once_and_spends_nothing(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.graphql_fault("rate_limited")
    fake.graphql_fault("rate_limited", error_type="RATE_LIMITED")
    for kind in ("RATE_LIMIT", "RATE_LIMITED"):
        resp, body = await ask(http, "{ viewer { login } }")
        assert resp.status == 200
        assert body["errors"][0]["type"] == kind
        assert resp.headers["x-ratelimit-remaining"] == "0"
    resp, body = await ask(http, "{ viewer { login } }")
    assert body["data"]["viewer"]["login"]
    assert resp.headers["x-ratelimit-remaining"] == "4999"


async def test_told_to_time_out_it_answers_githubs_502_or_200(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.graphql_fault("timeout")
    fake.graphql_fault("timeout", status=200)
    for status in (502, 200):
        resp, body = await ask(http, "{ viewer { login } }")
        assert resp.status == status
        assert body["data"] is None
        assert body["errors"][0]["message"].startswith(
            "Something went wrong while executing your query. This may be the result of a timeout"
        )
    resp, body = await ask(http, "{ viewer { login } }")
    assert resp.status == 200
    assert body["data"]["viewer"]["login"]


async def test_told_partial_it_answers_the_other_nodes_and_an_error_per_null(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    one = fake.add_gist("ada", {"a.py": "one\n"})
    two = fake.add_gist("ada", {"b.py": "two\n"})
    ids = [node_id(fake, one.id), node_id(fake, two.id)]
    fake.graphql_fault("partial", node_ids=[ids[1]])
    resp, body = await ask(http, GISTS, {"ids": ids})
    assert resp.status == 200
    nodes = body["data"]["nodes"]
    assert nodes[0]["files"][0]["text"] == "one\n"
    assert nodes[1] is None
    assert [e["path"] for e in body["errors"]] == [["nodes", 1]]
    _, body = await ask(http, GISTS, {"ids": ids})
    assert "errors" not in body
    # a file's text alone, over HTTP
    fault = {"kind": "partial", "file_names": ["b.py"], "error_type": "SERVICE_UNAVAILABLE"}
    assert (await http.post("/_fake/graphql/faults", json=fault)).status == 204
    _, body = await ask(http, GISTS, {"ids": ids})
    assert body["data"]["nodes"][0]["files"][0]["text"] == "one\n"
    assert body["data"]["nodes"][1]["files"][0]["name"] == "b.py"
    assert body["data"]["nodes"][1]["files"][0]["text"] is None
    assert [(e["type"], e["path"]) for e in body["errors"]] == [
        ("SERVICE_UNAVAILABLE", ["nodes", 1, "files", 0, "text"])
    ]


async def test_a_secondary_limit_is_403_or_429_with_retry_after(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.graphql_fault("secondary", retry_after=30)
    fake.graphql_fault("secondary", status=429, retry_after=None)
    resp, body = await ask(http, "{ viewer { login } }")
    assert resp.status == 403
    assert resp.headers["retry-after"] == "30"
    assert body["message"].startswith("You have exceeded a secondary rate limit.")
    resp, body = await ask(http, "{ viewer { login } }")
    assert resp.status == 429
    assert "retry-after" not in resp.headers
    assert fake.graphql_points == 0


async def test_points_a_minute_past_the_limit_are_a_secondary_limit() -> None:
    fake = FakeGitHub(graphql_points_per_minute=2)
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=server.make_url("/"), headers=UA) as http:
            for _ in range(2):
                resp, _ = await ask(http, "{ viewer { login } }")
                assert resp.status == 200
            resp, body = await ask(http, "{ viewer { login } }")
            assert resp.status == 403
            assert 1 <= int(resp.headers["retry-after"]) <= 60
            assert "secondary rate limit" in body["message"]
            # another token's minute is its own
            other = {"Authorization": "bearer other"}
            resp, _ = await ask(http, "{ viewer { login } }", headers=other)
            assert resp.status == 200
    finally:
        await server.close()
    assert fake.graphql_points == 3  # the refused request was charged nothing


async def test_told_slow_it_answers_late_and_whole(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    waits = Waits()
    fake.sleep = waits
    fake.graphql_fault("slow", delay=7.5)
    _, body = await ask(http, "{ viewer { login } }")
    assert body["data"]["viewer"]["login"]
    assert waits.seconds == [7.5]


async def test_the_time_model_is_a_floor_and_a_cost_per_text_and_githubs_cap() -> None:
    fake = FakeGitHub(latency=0.05, graphql_floor=0.3, graphql_per_file=0.02)
    waits = Waits()
    fake.sleep = waits
    texts = fake.add_gist("ada", {"a.py": "a\n", "b.py": "b\n", "c.bin": b"\0"})
    many = fake.add_gist("ada", {f"f{n}.txt": "x\n" for n in range(10)})
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=server.make_url("/"), headers=UA) as http:
            await ask(http, GISTS, {"ids": [f"G_fake{texts.id}"]})
            # the latency, then 0.3 s and 2 texts (the binary file has none)
            assert waits.seconds == [0.05, pytest.approx(0.34)]
            fake.graphql_per_file = 1.0  # 10 texts: 10.3 s, past GitHub's 10-second cap
            waits.seconds.clear()
            resp, body = await ask(http, GISTS, {"ids": [f"G_fake{many.id}"]})
            assert resp.status == 502
            assert body["errors"][0]["message"].startswith("Something went wrong")
            assert waits.seconds == [0.05, 10.0]
    finally:
        await server.close()
    # without latency (the tests' fake) there is no time model
    assert FakeGitHub().graphql_time_model is False
    assert FakeGitHub(latency=0.05, graphql_time_model=False).graphql_time_model is False


async def test_the_raw_host_refuses_past_its_hourly_budget_with_retry_after() -> None:
    fake = FakeGitHub(raw_hourly_limit=2, raw_block_seconds=600)
    gist = fake.add_gist("ada", {"a.py": "a\n"})
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=server.make_url("/"), headers=UA) as http:
            items = await (await http.get("/users/ada/gists")).json()
            raw_url = items[0]["files"]["a.py"]["raw_url"]
            for _ in range(2):
                assert (await http.get(raw_url)).status == 200
            refused = await http.get(raw_url)
            assert refused.status == 429
            assert refused.headers["Retry-After"] == "600"
            again = await http.get(raw_url)
            assert again.status == 429
            assert 1 <= int(again.headers["Retry-After"]) <= 600
            stats = await (await http.get("/_fake/stats")).json()
    finally:
        await server.close()
    assert stats["raw_requests"] == 4
    assert stats["raw_refused"] == 2
    assert gist.id in raw_url


async def test_faults_can_be_set_over_http_and_the_stats_count_graphql(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    resp = await http.post("/_fake/graphql/faults", json={"kind": "timeout", "times": 2})
    assert resp.status == 204
    for _ in range(2):
        resp, _ = await ask(http, "{ viewer { login } }")
        assert resp.status == 502
    resp, _ = await ask(http, "{ viewer { login } }")
    assert resp.status == 200
    wrongs: list[Any] = [{"kind": "explode"}, {"kind": "timeout", "times": 0}, [], {"times": 1}]
    for wrong in wrongs:
        resp = await http.post("/_fake/graphql/faults", json=wrong)
        assert resp.status == 422
    assert fake.graphql_faults == []
    stats = await (await http.get("/_fake/stats")).json()
    assert stats["graphql_requests"] == 3
    assert stats["graphql_points"] == 1  # the timeouts were charged nothing
    assert stats["api_requests"] == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["--graphql-limit", "0"],
        ["--graphql-points-per-minute", "0"],
        ["--graphql-floor-ms", "-1"],
        ["--graphql-per-file-ms", "-5"],
        ["--raw-hourly-limit", "-1"],
        ["--raw-block-seconds", "0"],
    ],
)
def test_the_command_line_refuses_a_limit_or_time_that_cannot_be(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert argv[0] in capsys.readouterr().err


async def test_files_of_a_revision_named_by_the_gists_history(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    gist = fake.add_gist("ada", {"a.py": "first\n"})
    fake.update_gist(gist.id, {"a.py": "second\n"})
    full = await (await http.get(f"/gists/{gist.id}")).json()
    newest, oldest = (entry["version"] for entry in full["history"])
    query = """query($id: ID!, $oid: GitObjectID) {
      node(id: $id) { ... on Gist { files(oid: $oid) { name text } } } }"""
    texts = []
    for oid in (oldest, newest, None, "0" * 40):
        _, body = await ask(http, query, {"id": node_id(fake, gist.id), "oid": oid})
        files = body["data"]["node"]["files"]
        texts.append(None if files is None else [f["text"] for f in files])
    assert texts == [["first\n"], ["second\n"], ["second\n"], None]


async def test_the_command_line_fake_answers_graphql_while_it_builds_the_schema() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gistcache.testing.fake_github", "--port", str(port),
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}", headers=UA) as http:
            for _ in range(200):
                try:
                    listed = await (await http.get("/users/octocat/gists")).json()
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            _, body = await ask(http, GISTS, {"ids": [listed[0]["node_id"]]})
    finally:
        proc.terminate()
        await proc.wait()
    assert body["data"]["nodes"][0]["files"][0]["name"] == "hello_world.rb"


async def test_without_the_installed_schema_graphql_says_to_run_make_install(
    fake: FakeGitHub, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise SchemaMissing("GitHub's GraphQL schema is not installed at X: run `make install`")

    monkeypatch.setattr(fake_graphql, "github_schema", missing)
    resp, body = await ask(http, "{ viewer { login } }")
    assert resp.status == 500
    assert "make install" in body["message"]
    assert fake.graphql_points == 0


async def test_the_documented_rate_limited_type_when_told() -> None:
    fake = FakeGitHub(graphql_limit=1, graphql_rate_limit_type="RATE_LIMITED")
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=server.make_url("/"), headers=UA) as http:
            first, _ = await ask(http, "{ viewer { login } }")
            assert first.headers["x-ratelimit-remaining"] == "0"
            resp, body = await ask(http, "{ viewer { login } }")
    finally:
        await server.close()
    assert resp.status == 200
    assert body["errors"][0]["type"] == "RATE_LIMITED"
    assert resp.headers["x-ratelimit-remaining"] == "0"
