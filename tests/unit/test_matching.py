"""Line matching over chunks: RE2's own call and the binding's public search agree."""

from __future__ import annotations

import pytest

from gistcache.domain.errors import PatternError
from gistcache.domain.matching import (
    MAX_PROGRAM_SIZE,
    FileHits,
    Pattern,
    ScanStopped,
    compile_pattern,
    fixed_text,
    line_ranges,
    match_finder,
    scan_chunk,
)
from gistcache.domain.requests import SearchRequest, search_request

TEXTS = [
    b"",
    b"\n",
    b"\n\n\n",
    b"one\ntwo\nthree",
    b"one\ntwo\nthree\n",
    b"TODO first\nnothing\nTODO TODO twice\n\nlast TODO",
    "caf\u00e9 na\u00efve\r\n\u00fcber TODO\r\n".encode(),
]
PATTERNS = ["TODO", "^", "$", "^$", "o", "t.o", "[0-9]*", "(?i)todo", "\u00fcber|caf\u00e9", "x"]


def scanned(pattern: str, data: bytes, *, public_api_only: bool) -> list[tuple[int, str]]:
    regexp = compile_pattern(pattern)
    hits = FileHits(limit=None, chars=None)
    find = match_finder(regexp, _force_public_api=public_api_only)
    scan_chunk(regexp, data, 7, hits, find)
    assert hits.match_count == len(hits.lines)
    return [(line["line_number"], line["text"]) for line in hits.lines]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_fast_finder_and_the_public_search_find_the_same_lines(pattern: str) -> None:
    for data in TEXTS:
        fast = scanned(pattern, data, public_api_only=False)
        assert fast == scanned(pattern, data, public_api_only=True), data


def test_lines_are_numbered_from_the_chunks_first_line() -> None:
    data = b"TODO first\nnothing\nTODO TODO twice\n\nlast TODO"
    assert scanned("TODO", data, public_api_only=False) == [
        (7, "TODO first"),
        (9, "TODO TODO twice"),
        (11, "last TODO"),
    ]
    assert scanned("^$", data, public_api_only=False) == [(10, "")]


def test_the_installed_binding_offers_the_fast_path() -> None:
    # if an upgrade of google-re2 drops it, searches still work, only slower: notice it
    regexp = compile_pattern("x")
    assert match_finder(regexp).__name__ == "find"


@pytest.mark.parametrize("public_api_only", [False, True])
def test_a_long_line_is_cut_to_a_window_holding_its_first_match(public_api_only: bool) -> None:
    data = "ñ".encode() * 20 + b"abc" + b"z" * 20 + b"\nshort abc\n"
    regexp = compile_pattern("abc|z+")
    hits = FileHits(limit=None, chars=9)
    scan_chunk(regexp, data, 1, hits, match_finder(regexp, _force_public_api=public_api_only))
    assert hits.lines == [
        {"line_number": 1, "column": 18, "text": "ñññabczzz", "line_length": 43},
        {"line_number": 2, "column": 1, "text": "short abc"},
    ]


@pytest.mark.parametrize(
    ("pattern", "options", "text"),
    [
        ("TODO", {}, b"TODO"),
        ("caf\u00e9 # x-y", {}, "caf\u00e9 # x-y".encode()),
        ("a.b", {}, None),  # "." is any character
        ("a.b", {"literal": True}, b"a.b"),
        ("(?i)x", {"literal": True}, b"(?i)x"),
        ("TODO", {"ignore_case": True}, None),
        ("", {"literal": True}, None),  # matches every line
        ("a\nb", {"literal": True}, None),  # never matches: lines have no newline
    ],
)
def test_fixed_text_is_offered_only_where_every_match_is_the_patterns_bytes(
    pattern: str, options: dict[str, bool], text: bytes | None
) -> None:
    assert fixed_text(pattern, **options) == text


@pytest.mark.parametrize("pattern", ["TODO", "o", "x", "\u00fcber"])
def test_the_substring_finder_finds_the_lines_and_ranges_re2_finds(pattern: str) -> None:
    regexp = compile_pattern(pattern)
    text = fixed_text(pattern)
    assert text is not None
    fast = match_finder(regexp, text=text)
    assert fast.__name__ == "find_text"
    for data in TEXTS:
        hits = FileHits(limit=None, chars=None, find=fast)
        scan_chunk(regexp, data, 7, hits, fast)
        reference = FileHits(limit=None, chars=None, find=match_finder(regexp))
        scan_chunk(regexp, data, 7, reference)
        assert hits.lines == reference.lines, data


def test_a_lines_ranges_are_searched_within_that_line() -> None:
    # the finder is asked for the line only: a match on a later line is not looked for
    asked: list[tuple[int, int]] = []
    inner = match_finder(compile_pattern("b"))

    def find(data: bytes, pos: int, endpos: int) -> tuple[int, int]:
        asked.append((pos, endpos))
        return inner(data, pos, endpos)

    data = b"ab b\nxx\nb"
    assert line_ranges(find, data, 0, 4) == [(1, 2), (3, 4)]
    assert all(endpos == 4 for _, endpos in asked)


def test_a_scan_told_to_stop_stops_at_the_next_slice() -> None:
    data = b"".join(b"line %d\n" % n for n in range(1, 1001))
    asked = 0

    def stop() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3  # three slices, then stop

    hits = FileHits(limit=None, chars=None)
    with pytest.raises(ScanStopped):
        scan_chunk(compile_pattern("line"), data, 1, hits, stop=stop, slice_bytes=1000)
    # three slices of about 1,000 bytes (each ending at a line's end) were scanned
    assert 3 * 1000 // 10 <= hits.match_count < 4 * 1000 // 9
    assert [line["line_number"] for line in hits.lines] == list(range(1, hits.match_count + 1))


@pytest.mark.parametrize(
    "pattern", ["(.{20}){50}q", "[^\\n]{900}Z", ".{501}", "\\pL{5}", "(?i)[a-z\\pL]{4}"]
)
def test_a_pattern_compiled_beyond_the_program_size_bound_is_refused(pattern: str) -> None:
    with pytest.raises(PatternError, match="too complex") as refused:
        compile_pattern(pattern)
    assert f"more than the {MAX_PROGRAM_SIZE:,} allowed" in str(refused.value)


@pytest.mark.parametrize(
    "pattern", ["\\pL+", "[\\pL\\pN_]+", ".{400}x", "\\S{200}", "(.{20}){12}q", "\\pL{3}"]
)
def test_patterns_within_the_bound_compile(pattern: str) -> None:
    assert compile_pattern(pattern).programsize <= MAX_PROGRAM_SIZE


def test_a_literal_pattern_is_never_too_complex() -> None:
    # a fixed string matches fast at any length; case folding makes "k" three characters
    assert (
        compile_pattern("k" * 1000, literal=True, ignore_case=True).programsize > MAX_PROGRAM_SIZE
    )


def test_a_refused_pattern_is_told_in_re2s_words_about_the_pattern_as_written() -> None:
    with pytest.raises(PatternError) as refused:
        compile_pattern("(abc")
    assert str(refused.value) == "invalid regular expression: missing ): (abc"


def test_an_unclosed_quote_quotes_the_rest_of_the_pattern_as_re2_says() -> None:
    # \Q without \E runs to the pattern's end: nothing of the search's own follows it
    assert scanned("\\Qa.b", b"axb\na.b\n", public_api_only=False) == [(8, "a.b")]


def test_a_pattern_is_compiled_once_with_its_finder() -> None:
    fixed = Pattern.compile("needle")
    assert fixed.fixed == b"needle"
    assert fixed.find(b"a needle", 0, 8) == (2, 8)
    assert Pattern.compile("needle", ignore_case=True).fixed is None


def test_a_search_request_carries_the_pattern_its_rules_compiled() -> None:
    request = search_request("alice", "x|y", ignore_case=True)
    assert request.compiled is not None
    assert request.matcher() is request.compiled
    # a job's request read back is compiled when it is searched
    stored = SearchRequest(**request.to_json())
    assert stored == request
    assert stored.compiled is None
    assert stored.matcher().regexp.programsize == request.compiled.regexp.programsize
