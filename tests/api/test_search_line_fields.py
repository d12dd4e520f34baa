"""The search's line fields: ranges, line URLs, context lines, literal patterns and the
filename glob, through POST /api/v1/search."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from gistcache.testing.fake_github import FakeGitHub
from tests.support.search import search

Client = TestClient[Any, Any]


def only_file(body: dict[str, Any]) -> dict[str, Any]:
    [match] = body["matches"]
    [f] = match["files"]
    return f  # type: ignore[no-any-return]


def marked(line: dict[str, Any]) -> list[str]:
    return [line["text"][start:end] for start, end in line["ranges"]]


async def test_every_line_lists_its_matches_in_code_points_and_its_url(
    client: Client, fake: FakeGitHub
) -> None:
    gist = fake.add_gist("ana", {"Café Notes.md": "café 🎉 naïve café\nplain\n"})
    body = await search(client, username="ana", pattern="café|na.ve")
    f = only_file(body)
    [line] = f["lines"]
    assert line["text"] == "café 🎉 naïve café"
    assert line["ranges"] == [[0, 4], [7, 12], [13, 17]]
    assert marked(line) == ["café", "naïve", "café"]
    # GitHub's anchor: lowercased, every other character than a letter, digit, _ or -
    # replaced by -
    assert line["url"] == f"https://gist.github.com/{gist.id}#file-caf--notes-md-L1"
    assert line["before"] == []
    assert line["after"] == []


async def test_ranges_of_a_long_line_are_relative_to_its_window(
    client: Client, fake: FakeGitHub
) -> None:
    text = "é" * 1000 + "needle" + "x" * 1000 + "needle"
    fake.add_gist("ana", {"long.txt": text + "\n"})
    [line] = only_file(await search(client, username="ana", pattern="needle"))["lines"]
    assert len(line["text"]) == 500
    assert line["text"] == text[line["column"] - 1 : line["column"] - 1 + 500]
    assert marked(line) == ["needle"]  # the second match lies outside the window
    # the window is said: where it starts, and how long the line it is cut from is
    assert line["column"] > 1
    assert line["line_length"] == len(text)


async def test_a_line_listed_whole_has_no_length(client: Client, fake: FakeGitHub) -> None:
    fake.add_gist("ana", {"a.txt": "x" * 499 + "needle\nneedle" + "y" * 494 + "\n"})
    f = only_file(await search(client, username="ana", pattern="needle", context=1))
    cut, whole = f["lines"]
    assert cut["line_length"] == 505
    assert (cut["column"], len(cut["text"])) == (6, 500)  # ends where the line ends
    assert "line_length" not in whole
    assert len(whole["text"]) == 500


async def test_context_lines_surround_listed_lines_and_are_not_repeated(
    client: Client, fake: FakeGitHub
) -> None:
    lines = [f"line {n}" + (" hit" if n in (3, 5, 12) else "") for n in range(1, 16)]
    fake.add_gist("ana", {"a.txt": "\n".join(lines) + "\n"})
    f = only_file(await search(client, username="ana", pattern="hit", context=2))
    assert [line["line_number"] for line in f["lines"]] == [3, 5, 12]
    first, second, third = f["lines"]

    def numbers(context: list[dict[str, Any]]) -> list[int]:
        return [c["line_number"] for c in context]

    assert numbers(first["before"]) == [1, 2]
    assert first["before"][0] == {"line_number": 1, "text": "line 1"}
    assert numbers(first["after"]) == [4]  # line 5 is listed itself
    assert numbers(second["before"]) == []  # line 4 was shown already
    assert numbers(second["after"]) == [6, 7]
    assert numbers(third["before"]) == [10, 11]
    assert numbers(third["after"]) == [13, 14]
    without = only_file(await search(client, username="ana", pattern="hit"))
    assert all(line["before"] == line["after"] == [] for line in without["lines"])


async def test_context_is_cut_at_the_files_ends_and_long_context_lines_shortened(
    client: Client, fake: FakeGitHub
) -> None:
    long = "y" * 2000
    fake.add_gist("ana", {"a.txt": f"hit first\n{long}\nlast hit"})
    f = only_file(await search(client, username="ana", pattern="hit", context=3))
    first, last = f["lines"]
    assert first["before"] == []
    assert first["after"] == [{"line_number": 2, "text": "y" * 500, "line_length": 2000}]
    assert last["before"] == []  # line 2 was shown as the first line's context
    assert last["after"] == []


async def test_context_comes_from_the_cache_on_a_warm_search(
    client: Client, fake: FakeGitHub
) -> None:
    fake.add_gist("ana", {"a.txt": "one\ntwo hit\nthree\n"})
    await search(client, username="ana", pattern="hit")
    fetched = len(fake.raw_requests())
    f = only_file(await search(client, username="ana", pattern="hit", context=1))
    assert len(fake.raw_requests()) == fetched  # nothing downloaded again
    [line] = f["lines"]
    assert line["before"] == [{"line_number": 1, "text": "one"}]
    assert line["after"] == [{"line_number": 3, "text": "three"}]


async def test_literal_patterns_match_metacharacters_as_themselves(
    client: Client, fake: FakeGitHub
) -> None:
    fake.add_gist("ana", {"a.txt": "call f(x) + 1.5\nf x 1x5\n"})
    body = await search(client, username="ana", pattern="f(x) + 1.5", literal=True)
    [line] = only_file(body)["lines"]
    assert line["line_number"] == 1
    assert marked(line) == ["f(x) + 1.5"]
    # as a regular expression the same text means something else
    regex = await search(client, username="ana", pattern="1.5")
    assert [line["line_number"] for line in only_file(regex)["lines"]] == [1, 2]
    literal = await search(client, username="ana", pattern="1.5", literal=True)
    assert [line["line_number"] for line in only_file(literal)["lines"]] == [1]


async def test_a_filename_glob_neither_downloads_nor_lists_the_other_files(
    client: Client, fake: FakeGitHub
) -> None:
    fake.add_gist("ana", {"tool.py": "needle\n", "notes.md": "needle\n", "big.bin": "needle"})
    fake.add_gist("ana", {"TEST_app.PY": "needle\n", "data.csv": "needle\n"})
    body = await search(client, username="ana", pattern="needle", filename="*.py")
    names = [f["filename"] for m in body["matches"] for f in m["files"]]
    assert names == ["TEST_app.PY", "tool.py"]  # list order; the glob ignores case
    assert body["total"] == 2
    assert body["skipped"] == []
    downloaded = sorted(r.path.rsplit("/", 1)[-1] for r in fake.raw_requests())
    assert downloaded == ["TEST_app.PY", "tool.py"]

    body = await search(client, username="ana", pattern="needle", filename="test_*")
    assert [f["filename"] for m in body["matches"] for f in m["files"]] == ["TEST_app.PY"]
    assert len(fake.raw_requests()) == 2  # cached already: nothing more fetched

    body = await search(client, username="ana", pattern="needle", filename="*.nothing")
    assert body["total"] == 0
    assert body["matches"] == []
    assert body["skipped"] == []
    assert len(fake.raw_requests()) == 2


async def test_a_glob_skips_only_the_files_it_lets_through(
    client: Client, fake: FakeGitHub
) -> None:
    gist = fake.add_gist("ana", {"a.py": "needle\n", "b.md": "needle\n"})
    fake.fail_next(500, times=10, kind="raw")
    body = await search(client, username="ana", pattern="needle", filename="*.py")
    assert body["skipped"] == [{"id": gist.id, "filename": "a.py", "reason": "unavailable"}]
    assert [r.path.rsplit("/", 1)[-1] for r in fake.raw_requests()] == ["a.py"] * len(
        fake.raw_requests()
    )
