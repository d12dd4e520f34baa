"""POST /api/v1/search: what a pattern finds, the lines listed for it, and paging."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from tests.support.search import add_alices_gists, search

Client = TestClient[Any, Any]


@pytest.fixture
def gists(fake: FakeGitHub) -> dict[str, str]:
    return add_alices_gists(fake)


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


async def test_every_page_lists_its_gists_as_the_whole_answer_does(
    client: Client, fake: FakeGitHub
) -> None:
    # matching and other gists, matches in a gist's second file only, a binary file:
    # the gists of a page are listed in full (lines, counts), the others only counted
    for n in range(9):
        files: dict[str, str | bytes] = {
            "a.txt": f"needle {n}\nneedle again\n" if n % 3 else "hay\n"
        }
        if n % 4 == 1:
            files = {"a.txt": "hay\n", "b.txt": f"x\nneedle {n}\n", "c.bin": b"\x00needle"}
        fake.add_gist("ivy", files)
    whole = await search(client, username="ivy", pattern="needle")  # cold: downloads
    assert whole["total"] == len(whole["matches"]) == 6
    for per_page in (1, 2, 4):
        for page in range(1, 8 // per_page + 1):
            part = await search(
                client, username="ivy", pattern="needle", page=page, per_page=per_page
            )
            first = (page - 1) * per_page
            assert part["total"] == 6
            assert part["matches"] == whole["matches"][first : first + per_page]
            assert part["skipped"] == whole["skipped"]
