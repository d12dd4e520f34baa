"""POST /api/v1/search: matching, contents cached on updated_at, validation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from yarl import URL

from gistcache.github.parse import request_target
from gistcache.store.models import file_chunks, file_contents, search_jobs, users
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.database import EngineFactory
from tests.support.http import ClientFactory

Client = TestClient[Any, Any]


async def search(client: Client, status: int = 200, **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/search", json=body)
    assert resp.status == status, await resp.text()
    result: dict[str, Any] = await resp.json()
    return result


@pytest.fixture
def gists(fake: FakeGitHub) -> dict[str, str]:
    """A few gists of alice's, newest first: 'web', 'notes', 'tools'."""
    ids = {}
    ids["tools"] = fake.add_gist(
        "alice",
        {"fetch.py": "import requests\nrequests.get(url)\n", "README.md": "# Tools\n"},
        description="tools",
    ).id
    ids["notes"] = fake.add_gist(
        "alice", {"notes.txt": "Import nothing here\nplain text\n"}, description="notes"
    ).id
    ids["web"] = fake.add_gist(
        "alice", {"app.js": "const x = require('http');\n// no python\n"}, description="web"
    ).id
    return ids


async def test_a_pattern_finds_the_gists_files_and_lines(
    client: Client, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    body = await search(client, username="alice", pattern=r"import \w+")
    assert body["status"] == "success"
    assert body["username"] == "alice"
    assert body["pattern"] == r"import \w+"
    assert body["total"] == 1
    assert body["skipped"] == []
    [match] = body["matches"]
    assert match["id"] == gists["tools"]
    assert match["html_url"] == f"https://gist.github.com/{gists['tools']}"
    assert match["description"] == "tools"
    assert match["updated_at"].endswith("Z")
    [f] = match["files"]
    assert f["filename"] == "fetch.py"
    assert f["language"] == "Python"
    assert f["size"] == len("import requests\nrequests.get(url)\n")
    assert f["raw_url"].endswith("/fetch.py")
    assert f["match_count"] == 1
    assert f["lines"] == [
        {
            "line_number": 1,
            "column": 1,
            "text": "import requests",
            "ranges": [[0, 15]],
            "url": f"https://gist.github.com/{gists['tools']}#file-fetch-py-L1",
            "before": [],
            "after": [],
        }
    ]


async def test_no_match_is_an_empty_list(client: Client, gists: dict[str, str]) -> None:
    body = await search(client, username="alice", pattern="nothing-like-this")
    assert body["matches"] == []
    assert body["total"] == 0


async def test_ignore_case_is_a_flag(client: Client, gists: dict[str, str]) -> None:
    strict = await search(client, username="alice", pattern="import")
    assert [m["id"] for m in strict["matches"]] == [gists["tools"]]
    loose = await search(client, username="alice", pattern="import", ignore_case=True)
    # list order: newest first
    assert [m["id"] for m in loose["matches"]] == [gists["notes"], gists["tools"]]


async def test_multi_file_gists_report_each_matching_file(
    client: Client, gists: dict[str, str]
) -> None:
    body = await search(client, username="alice", pattern="(?i)tools|requests")
    [match] = body["matches"]
    assert [f["filename"] for f in match["files"]] == ["fetch.py", "README.md"]
    assert [f["match_count"] for f in match["files"]] == [2, 1]


async def test_lines_are_capped_but_all_counted(client: Client, fake: FakeGitHub) -> None:
    long_line = "needle " + "x" * 1000
    fake.add_gist("bob", {"many.txt": "needle\n" * 30 + long_line + "\n"})
    body = await search(client, username="bob", pattern="needle")
    [f] = body["matches"][0]["files"]
    assert f["match_count"] == 31
    assert len(f["lines"]) == 20
    assert [line["line_number"] for line in f["lines"]] == list(range(1, 21))

    body = await search(client, username="bob", pattern="needle x")
    [line] = body["matches"][0]["files"][0]["lines"]
    assert line["line_number"] == 31
    assert len(line["text"]) == 500


async def test_a_match_far_into_a_long_line_is_listed_in_a_window_around_it(
    client: Client, fake: FakeGitHub
) -> None:
    # a one-line JSON file: the match lies far past the first 500 characters
    line = '{"k": "' + "é" * 3000 + '", "needle": 1, "t": "' + "x" * 3000 + '"}'
    fake.add_gist("gus", {"min.json": line + "\n", "short.txt": "a needle\n"})
    body = await search(client, username="gus", pattern='"needle"')
    [f] = body["matches"][0]["files"]
    [listed] = f["lines"]
    assert '"needle"' in listed["text"]
    assert len(listed["text"]) == 500
    column = listed["column"]
    assert column > 1
    assert line[column - 1 : column - 1 + 500] == listed["text"]
    # centred on the match: context on both sides
    at = listed["text"].index('"needle"')
    assert abs(at - (500 - at - len('"needle"'))) <= 1

    end = await search(client, username="gus", pattern=r'x"}$')
    [tail] = end["matches"][0]["files"][0]["lines"]
    assert (tail["column"], tail["text"]) == (len(line) - 499, line[-500:])

    longer = await search(client, username="gus", pattern=r"é{600}")  # longer than a window
    [head] = longer["matches"][0]["files"][0]["lines"]
    assert (head["column"], head["text"]) == (8, "é" * 500)

    short = await search(client, username="gus", pattern="a needle")
    gus = short["matches"][0]["id"]
    assert short["matches"][0]["files"][0]["lines"] == [
        {
            "line_number": 1,
            "column": 1,
            "text": "a needle",
            "ranges": [[0, 8]],
            "url": f"https://gist.github.com/{gus}#file-short-txt-L1",
            "before": [],
            "after": [],
        }
    ]


async def test_a_match_only_on_the_second_page_of_gists(client: Client, fake: FakeGitHub) -> None:
    target = fake.add_gist("carol", {"old.txt": "the only needle\n"}).id  # oldest: last page
    for n in range(120):
        fake.add_gist("carol", {f"{n}.txt": "hay\n"})
    body = await search(client, username="carol", pattern="needle")
    assert [m["id"] for m in body["matches"]] == [target]
    assert len(fake.api_requests()) == 2


async def test_non_ascii_and_last_line_without_newline(client: Client, fake: FakeGitHub) -> None:
    fake.add_gist("dora", {"poem.txt": "première ligne\nünïcödé 日本語\nlast line ≠ first"})
    body = await search(client, username="dora", pattern="日本|≠ first$")
    lines = body["matches"][0]["files"][0]["lines"]
    url = f"https://gist.github.com/{body['matches'][0]['id']}#file-poem-txt-L"
    assert lines == [
        {
            "line_number": 2,
            "column": 1,
            "text": "ünïcödé 日本語",
            "ranges": [[8, 10]],
            "url": url + "2",
            "before": [],
            "after": [],
        },
        {
            "line_number": 3,
            "column": 1,
            "text": "last line ≠ first",
            "ranges": [[10, 17]],
            "url": url + "3",
            "before": [],
            "after": [],
        },
    ]
    upper = await search(client, username="dora", pattern="ÜNÏCÖDÉ", ignore_case=True)
    assert upper["total"] == 1


async def test_a_match_never_crosses_a_newline(client: Client, fake: FakeGitHub) -> None:
    fake.add_gist("erin", {"a.txt": "foo\nbar\n"})
    assert (await search(client, username="erin", pattern=r"foo\sbar"))["total"] == 0
    assert (await search(client, username="erin", pattern="foo[^x]bar"))["total"] == 0
    assert (await search(client, username="erin", pattern="^bar$"))["total"] == 1


async def test_a_pathological_pattern_returns_at_once(client: Client, fake: FakeGitHub) -> None:
    fake.add_gist("mallory", {"a.txt": "a" * 100_000 + "!\n" + "a" * 50_000 + "\n"})
    started = time.monotonic()
    body = await search(client, username="mallory", pattern="(a+)+$")
    # linear-time matching: a backtracking engine would not finish this in a lifetime
    assert time.monotonic() - started < 5
    assert body["matches"][0]["files"][0]["lines"][0]["line_number"] == 2


async def test_second_search_fetches_nothing_and_a_changed_gist_only_its_changed_file(
    client: Client, fake: FakeGitHub, clock: FakeClock, gists: dict[str, str]
) -> None:
    await search(client, username="alice", pattern="x")
    assert len(fake.raw_requests()) == 4  # every file once
    assert len(fake.api_requests()) == 1

    await search(client, username="alice", pattern="y")
    assert len(fake.raw_requests()) == 4  # nothing changed: nothing fetched
    assert len(fake.api_requests()) == 1  # and the list was fresh

    fake.update_gist(gists["tools"], {"fetch.py": "import httpx\n"})
    clock.advance(61)
    body = await search(client, username="alice", pattern="import httpx")
    assert [m["id"] for m in body["matches"]] == [gists["tools"]]
    fetched = [r.path.rsplit("/", 1)[-1] for r in fake.raw_requests()[4:]]
    assert fetched == ["fetch.py"]  # README.md kept its raw URL: its contents were reused
    body = await search(client, username="alice", pattern="^# Tools$")
    assert [f["filename"] for m in body["matches"] for f in m["files"]] == ["README.md"]
    assert len(fake.raw_requests()) == 5


async def test_a_gist_edited_but_not_its_files_downloads_nothing(
    client: Client,
    fake: FakeGitHub,
    clock: FakeClock,
    gists: dict[str, str],
    settings: Any,
    make_engine: EngineFactory,
) -> None:
    await search(client, username="alice", pattern="x")
    assert len(fake.raw_requests()) == 4
    fake.update_gist(gists["tools"], description="tools, renamed")  # updated_at moves
    fake.update_gist(gists["notes"], {"notes.txt": None, "new.txt": "Import later\n"})
    clock.advance(61)
    body = await search(client, username="alice", pattern="(?i)^import")
    tools = next(m for m in body["matches"] if m["id"] == gists["tools"])
    assert tools["description"] == "tools, renamed"
    assert [f["filename"] for f in tools["files"]] == ["fetch.py"]
    notes = next(m for m in body["matches"] if m["id"] == gists["notes"])
    assert [f["filename"] for f in notes["files"]] == ["new.txt"]
    # the renamed gist's files were not fetched again; only the new file was
    assert [r.path.rsplit("/", 1)[-1] for r in fake.raw_requests()[4:]] == ["new.txt"]
    clock.advance(61)
    await search(client, username="alice", pattern="y")
    assert len(fake.raw_requests()) == 5  # and the reused contents stay current
    engine = make_engine(settings.database_url)
    async with engine.connect() as conn:
        for table in (file_chunks, file_contents):
            kept = await conn.execute(
                select(table.c.filename).distinct().where(table.c.gist_id == gists["notes"])
            )
            assert kept.scalars().all() == ["new.txt"]  # the deleted file's contents went


async def test_contents_survive_a_restart(
    make_client: ClientFactory, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    first = await make_client()
    before = await search(first, username="alice", pattern="requests")
    await first.close()
    second = await make_client()
    after = await search(second, username="alice", pattern="requests")
    assert after == before
    assert len(fake.raw_requests()) == 4


async def test_gists_that_leave_the_list_take_their_contents(
    client: Client,
    fake: FakeGitHub,
    clock: FakeClock,
    gists: dict[str, str],
    settings: Any,
    make_engine: EngineFactory,
) -> None:
    await search(client, username="alice", pattern="x")
    fake.delete_gist(gists["tools"])
    clock.advance(61)
    body = await search(client, username="alice", pattern="requests")
    assert body["total"] == 0
    engine = make_engine(settings.database_url)
    async with engine.connect() as conn:
        for table in (file_chunks, file_contents):
            count = await conn.scalar(
                select(func.count()).select_from(table).where(table.c.gist_id == gists["tools"])
            )
            assert count == 0


async def test_a_raw_url_on_a_foreign_host_is_refused(
    make_client: ClientFactory, fake: FakeGitHub, fake_server: Any
) -> None:
    # the fake serves raw files under another name of itself: were the URL fetched,
    # the fake would count the request
    fake.raw_base = f"http://localhost:{fake_server.port}/gist-raw"
    gist = fake.add_gist("eve", {"x.txt": "secret\n"})
    client = await make_client()
    body = await search(client, username="eve", pattern="secret")
    assert body["matches"] == []
    assert body["skipped"] == [{"id": gist.id, "filename": "x.txt", "reason": "forbidden_host"}]
    assert fake.raw_requests() == []


@pytest.mark.parametrize(
    "raw_base",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:5432/gist-raw",
        "https://gist.githubusercontent.com:6379/gist-raw",
        "http://gist.githubusercontent.com/gist-raw",
        "https://user:pw@gist.githubusercontent.com/gist-raw",
        "file:///etc/passwd#",
    ],
)
async def test_raw_urls_off_the_allowed_origins_are_refused(
    client: Client, fake: FakeGitHub, raw_base: str
) -> None:
    fake.raw_base = raw_base
    fake.add_gist("eve", {"x.txt": "secret\n"})
    body = await search(client, username="eve", pattern="secret")
    assert [s["reason"] for s in body["skipped"]] == ["forbidden_host"]
    assert fake.raw_requests() == []


async def test_extra_raw_hosts_can_be_allowed(
    make_client: ClientFactory, fake: FakeGitHub, fake_server: Any
) -> None:
    fake.raw_base = f"http://localhost:{fake_server.port}/gist-raw"
    fake.add_gist("frank", {"x.txt": "found\n"})
    client = await make_client(raw_hosts=(URL(f"http://localhost:{fake_server.port}"),))
    assert (await search(client, username="frank", pattern="found"))["total"] == 1
    assert len(fake.raw_requests()) == 1


@pytest.mark.parametrize("as_github_sends_it", [True, False], ids=["encoded", "literal"])
async def test_raw_urls_are_sent_percent_encoded(
    client: Client, fake: FakeGitHub, as_github_sends_it: bool
) -> None:
    # GitHub sends a space as %20; a raw_url may also hold it (and non-ASCII) as typed
    fake.quote_raw_urls = as_github_sends_it
    names = {
        "my notes ü.txt": "my%20notes%20%C3%BC.txt",
        "100% [done].md": "100%25%20%5Bdone%5D.md",
    }
    gist = fake.add_gist("fay", {name: f"needle in {name}\n" for name in names})
    body = await search(client, username="fay", pattern="needle")
    assert body["skipped"] == []
    [match] = body["matches"]
    assert [(f["filename"], f["lines"][0]["text"]) for f in match["files"]] == [
        (name, f"needle in {name}") for name in names
    ]
    targets = sorted(r.target.rsplit("/", 1)[1] for r in fake.raw_requests())
    assert targets == sorted(names.values())
    assert all(f"/{gist.id}/raw/" in r.target for r in fake.raw_requests())


@pytest.mark.parametrize(
    ("raw_url", "sent"),
    [
        ("https://h.example/a%20b/c d", "https://h.example/a%20b/c%20d"),
        ("https://h.example/%e6%97%a5/日", "https://h.example/%e6%97%a5/%E6%97%A5"),
        ("https://h.example/50%/x%zz%4", "https://h.example/50%25/x%25zz%254"),
        ("https://h.example/a(b)*,'!$&+;=:@~-._", "https://h.example/a(b)*,'!$&+;=:@~-._"),
        ('https://h.example/a"<>\\^`{|}[]', "https://h.example/a%22%3C%3E%5C%5E%60%7B%7C%7D%5B%5D"),
        ("https://h.example/./a/../b%2Fc", "https://h.example/./a/../b%2Fc"),  # not normalised
        (
            "https://h.example:8443/p?q=a b&r=/?ü#frag",
            "https://h.example:8443/p?q=a%20b&r=/?%C3%BC",
        ),
        ("https://h.example", "https://h.example/"),
    ],
)
def test_the_request_target_encodes_only_what_must_be(raw_url: str, sent: str) -> None:
    assert request_target(raw_url) == sent


async def test_empty_lines_crlf_and_empty_files(client: Client, fake: FakeGitHub) -> None:
    fake.add_gist("lena", {"a.txt": "one\n\nthree\n", "b.txt": "x\r\ny\r\n", "c.txt": ""})
    blank = await search(client, username="lena", pattern="^$")
    [f] = blank["matches"][0]["files"]
    lena = blank["matches"][0]["id"]

    def listed(number: int, text: str, ranges: list[list[int]], name: str) -> dict[str, Any]:
        url = f"https://gist.github.com/{lena}#file-{name}-L{number}"
        return {
            "line_number": number,
            "column": 1,
            "text": text,
            "ranges": ranges,
            "url": url,
            "before": [],
            "after": [],
        }

    assert (f["filename"], f["lines"]) == ("a.txt", [listed(2, "", [[0, 0]], "a-txt")])
    crlf = await search(client, username="lena", pattern="^y")
    assert crlf["matches"][0]["files"][0]["lines"] == [listed(2, "y", [[0, 1]], "b-txt")]
    assert (await search(client, username="lena", pattern=".*"))["total"] == 1


async def test_a_failed_download_is_retried_only_after_a_growing_back_off(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    gist = fake.add_gist("hal", {"a.txt": "needle\n"})
    fake.fail_next(502, kind="raw", times=2)
    unavailable = [{"id": gist.id, "filename": "a.txt", "reason": "unavailable"}]

    async def attempt() -> tuple[list[dict[str, Any]], int]:
        body = await search(client, username="hal", pattern="needle")
        return body["skipped"], len(fake.raw_requests())

    assert await attempt() == (unavailable, 1)  # the first failure: 30 s before the next try
    assert await attempt() == (unavailable, 1)
    clock.advance(29)
    assert await attempt() == (unavailable, 1)
    clock.advance(2)
    assert await attempt() == (unavailable, 2)  # the second failure: 60 s now
    clock.advance(59)
    assert await attempt() == (unavailable, 2)
    clock.advance(2)
    body = await search(client, username="hal", pattern="needle")
    assert (body["skipped"], body["total"], len(fake.raw_requests())) == ([], 1, 3)
    await search(client, username="hal", pattern="needle")
    assert len(fake.raw_requests()) == 3  # cached now


async def test_a_file_that_changed_since_its_download_failed_is_tried_at_once(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    client = await make_client(cache_ttl=10)
    gist = fake.add_gist("ida", {"a.txt": "hay\n"})
    fake.fail_next(502, kind="raw")
    body = await search(client, username="ida", pattern="needle")
    assert body["skipped"] == [{"id": gist.id, "filename": "a.txt", "reason": "unavailable"}]
    fake.update_gist(gist.id, {"a.txt": "needle\n"})
    clock.advance(11)  # the list is stale, the failed download's back-off is not over
    body = await search(client, username="ida", pattern="needle")
    assert (body["skipped"], body["total"], len(fake.raw_requests())) == ([], 1, 2)


async def test_binary_and_oversized_files_are_reported(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    gist = fake.add_gist(
        "grace",
        {
            "img.png": b"\x89PNG\r\n\x1a\n\x00\x00needle",
            "big.txt": "needle\n" * 200,
            "ok.txt": "needle\n",
        },
    )
    client = await make_client(max_file_bytes=1000)
    body = await search(client, username="grace", pattern="needle")
    assert [f["filename"] for f in body["matches"][0]["files"]] == ["ok.txt"]
    assert sorted(body["skipped"], key=lambda s: s["filename"]) == [
        {"id": gist.id, "filename": "big.txt", "reason": "too_large"},
        {"id": gist.id, "filename": "img.png", "reason": "binary"},
    ]
    raw_names = sorted(r.path.rsplit("/", 1)[-1] for r in fake.raw_requests())
    assert raw_names == ["img.png", "ok.txt"]  # big.txt was skipped by its listed size
    # and it is remembered: a second search fetches nothing
    again = await search(client, username="grace", pattern="needle")
    assert again == body
    assert len(fake.raw_requests()) == 2


async def test_a_truncated_file_list_is_reported(client: Client, fake: FakeGitHub) -> None:
    gist = fake.add_gist("henry", {f"f{n:03}.txt": "needle\n" for n in range(301)})
    body = await search(client, username="henry", pattern="needle")
    assert {"id": gist.id, "filename": None, "reason": "file_list_truncated"} in body["skipped"]
    assert len(body["matches"][0]["files"]) == 300


async def test_matches_are_paged(client: Client, fake: FakeGitHub) -> None:
    ids = [fake.add_gist("ivy", {"a.txt": f"needle {n}\n"}).id for n in range(5)][::-1]
    page = await search(client, username="ivy", pattern="needle", page=2, per_page=2)
    assert page["total"] == 5
    assert [m["id"] for m in page["matches"]] == ids[2:4]
    beyond = await search(client, username="ivy", pattern="needle", page=9, per_page=2)
    assert beyond["matches"] == []
    assert beyond["total"] == 5


async def test_unknown_user_is_404(client: Client) -> None:
    resp = await client.post("/api/v1/search", json={"username": "nobody", "pattern": "x"})
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"


async def test_fetches_respect_the_concurrency_limit(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    for n in range(12):
        fake.add_gist("jack", {"a.txt": f"{n}\n"})
    fake.latency = 0.05
    client = await make_client(fetch_concurrency=3)
    await search(client, username="jack", pattern="1")
    assert len(fake.raw_requests()) == 12
    assert fake.raw_peak_concurrency == 3


BAD_BODIES: list[tuple[Any, str]] = [
    ("not json", "invalid-json"),
    ([1, 2], "invalid-body"),
    ({"username": "alice", "pattern": "x", "colour": "red"}, "invalid-body"),
    ({"username": 5, "pattern": "x"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "ignore_case": "yes"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "page": True}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "page": 0}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "per_page": 101}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "page": 1.5}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "per_page": None}, "invalid-body"),
    ({"username": None, "pattern": "x"}, "invalid-body"),
    ({"pattern": "x"}, "invalid-body"),
    ({"username": "a..b", "pattern": "x"}, "invalid-username"),
    ({"username": "alice"}, "invalid-body"),
    ({"username": "alice", "pattern": ""}, "invalid-body"),
    ({"username": "alice", "pattern": "  \t"}, "invalid-body"),
    ({"username": "alice", "pattern": "x" * 1001}, "invalid-body"),
    ({"username": "alice", "pattern": "(unclosed"}, "invalid-pattern"),
    ({"username": "alice", "pattern": r"(a)\1"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "foo(?=bar)"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "(?<!x)y"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "(?P<n>x)(?P=n)"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "\ud800"}, "invalid-pattern"),
    ({"username": "alice", "pattern": "a\udc80b", "literal": True}, "invalid-pattern"),
    ('{"username": "alice", "pattern": ' + "[" * 60_000, "invalid-json"),
    ({"username": "alice", "pattern": "x", "async": "yes"}, "invalid-body"),
    ({"username": "alice", "pattern": "(x", "async": True}, "invalid-pattern"),
    ({"username": "alice", "pattern": "x", "context": 11}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "context": -1}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "context": "2"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "context": False}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "literal": "yes"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "literal": None}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": ""}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": "a/b.py"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": "a\nb"}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": "*" * 256}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": 3}, "invalid-body"),
    ({"username": "alice", "pattern": "x", "filename": "\udc80.py"}, "invalid-body"),
]


@pytest.mark.parametrize(("body", "slug"), BAD_BODIES)
async def test_invalid_requests_are_400_and_change_nothing(
    client: Client,
    fake: FakeGitHub,
    settings: Any,
    body: Any,
    slug: str,
    make_engine: EngineFactory,
) -> None:
    if isinstance(body, str):
        resp = await client.post("/api/v1/search", data=body)
    else:
        resp = await client.post("/api/v1/search", json=body)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"] == f"urn:gistcache:problem:{slug}"
    assert problem["detail"]
    assert fake.requests == []
    engine = make_engine(settings.database_url)
    async with engine.connect() as conn:  # no job was queued, nothing was cached
        for table in (search_jobs, users):
            assert await conn.scalar(select(func.count()).select_from(table)) == 0


FIELD_FAULTS: list[tuple[dict[str, Any], str]] = [
    ({"username": "a..b", "pattern": "x"}, "username"),
    ({"username": "ali ce", "pattern": "x"}, "username"),
    ({"username": 5, "pattern": "x"}, "username"),
    ({"pattern": "x"}, "username"),
    ({"username": "alice", "pattern": "  "}, "pattern"),
    ({"username": "alice", "pattern": "(unclosed"}, "pattern"),
    ({"username": "alice", "pattern": "x", "context": 11}, "context"),
]


@pytest.mark.parametrize(("body", "field"), FIELD_FAULTS)
async def test_a_refused_field_is_named_in_the_problem(
    client: Client, body: dict[str, Any], field: str
) -> None:
    # malformed or wrongly typed, the field at fault is named alike, as the README says
    resp = await client.post("/api/v1/search", json=body)
    assert resp.status == 400
    assert (await resp.json())["field"] == field


async def test_unsupported_constructs_say_so(client: Client) -> None:
    resp = await client.post("/api/v1/search", json={"username": "a", "pattern": r"(x)\1"})
    assert "backreferences or lookaround" in (await resp.json())["detail"]


async def test_a_body_over_64_kib_is_413(client: Client, fake: FakeGitHub) -> None:
    body = b'{"username": "alice", "pattern": "' + b"x" * (70 * 1024) + b'"}'
    resp = await client.post(
        "/api/v1/search", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"
    assert fake.requests == []


async def test_concurrent_searches_download_each_file_once(
    client: Client, fake: FakeGitHub, gists: dict[str, str]
) -> None:
    fake.latency = 0.05
    patterns = ("import", "x", "text", "python")
    bodies = await asyncio.gather(*(search(client, username="alice", pattern=p) for p in patterns))
    assert [b["total"] for b in bodies] == [1, 2, 1, 1]
    assert len(fake.raw_requests()) == 4
    assert len(fake.api_requests()) == 1
    # the same answers as one at a time, from the cache
    assert [await search(client, username="alice", pattern=p) for p in patterns] == bodies


async def test_a_cold_search_costs_one_api_request_per_hundred_gists(
    client: Client, fake: FakeGitHub
) -> None:
    for n in range(210):
        fake.add_gist("many", {f"{n}.txt": f"line {n}\n"})
    body = await search(client, username="many", pattern="^line 7$")
    assert body["total"] == 1
    assert len(fake.api_requests()) == 3  # the list's pages; contents come from raw URLs
    assert len(fake.raw_requests()) == 210


async def test_search_says_how_fresh_its_list_was_and_survives_github_failing(
    client: Client, fake: FakeGitHub, clock: FakeClock, gists: dict[str, str]
) -> None:
    first = await client.post("/api/v1/search", json={"username": "alice", "pattern": "import"})
    assert first.headers["X-Cache"] == "MISS"
    again = await client.post("/api/v1/search", json={"username": "alice", "pattern": "import"})
    assert again.headers["X-Cache"] == "HIT"
    clock.advance(100)
    fake.fail_next(503, times=3)
    stale = await client.post("/api/v1/search", json={"username": "alice", "pattern": "import"})
    assert stale.status == 200
    assert stale.headers["X-Cache"] == "STALE"
    assert stale.headers["Age"] == "100"
    assert await stale.json() == await first.json()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("context", 11),
        ("context", "2"),
        ("literal", 1),
        ("filename", ""),
        ("filename", "dir/*.py"),
    ],
)
async def test_a_bad_search_option_is_named_in_the_problem(
    client: Client, fake: FakeGitHub, field: str, value: Any
) -> None:
    resp = await client.post(
        "/api/v1/search", json={"username": "alice", "pattern": "x", field: value}
    )
    assert resp.status == 400
    problem = await resp.json()
    assert problem["field"] == field
    assert field in problem["detail"]
    assert fake.requests == []


VALID_BODIES: list[dict[str, Any]] = [
    {"username": "alice", "pattern": "x"},
    {
        "username": "al-ice_9",
        "pattern": r"import \w+",
        "ignore_case": True,
        "page": 2,
        "per_page": 100,
        "context": 10,
        "literal": False,
        "filename": "*.py",
        "async": True,
    },
]


def test_the_documented_search_request_agrees_with_the_validation() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from gistcache.web.api import schemas
    from gistcache.web.api.openapi import OPENAPI

    document = OPENAPI["components"]["schemas"]
    documented = document["SearchRequest"]
    accepted = {field.alias or name for name, field in schemas.SearchRequest.model_fields.items()}
    assert set(documented["properties"]) == accepted
    assert set(VALID_BODIES[1]) == accepted
    assert documented["additionalProperties"] is False
    assert set(documented["required"]) == {"username", "pattern"}
    validator = jsonschema.Draft202012Validator(documented)
    for body in VALID_BODIES:
        assert list(validator.iter_errors(body)) == []
        schemas.parse_search(body)
    for body, slug in BAD_BODIES:
        if isinstance(body, str):
            continue  # not JSON
        refused = not validator.is_valid(body)
        # what RE2 refuses is beyond a JSON Schema: the document says RE2 syntax
        assert refused == (slug != "invalid-pattern"), body


async def test_a_refused_body_is_told_in_plain_words(client: Client) -> None:
    for body, _ in BAD_BODIES:
        if isinstance(body, str):
            continue
        resp = await client.post("/api/v1/search", json=body)
        text = await resp.text()
        assert resp.status == 400
        assert "pydantic" not in text.lower()
        assert "Input should" not in text  # pydantic's own wording
