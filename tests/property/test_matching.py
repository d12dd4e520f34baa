"""The matcher against a reference: for patterns in the subset RE2 and Python's ``re``
share (literals, classes, ``.``, ``*``, ``+``, ``?``, alternation, ``^`` and ``$``), the
lines that match, their numbers and text, the match ranges and their windows agree with
``re`` applied to each line on its own, whatever chunks the file arrives in."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from gistcache.domain.chunking import chunk_stream
from gistcache.domain.matching import (
    FileHits,
    any_match,
    compile_pattern,
    fixed_text,
    line_ranges,
    match_finder,
    scan_chunk,
    window_ranges,
)
from tests.property.support import collect, pieces, run

# a few letters in both cases, one of two bytes and one of four, space, punctuation
LETTERS = "abAB-é É😀"
METACHARACTERS = ".*+?()[]{}|^$\\"

_ATOMS = st.one_of(
    st.sampled_from(LETTERS).map(re.escape),
    st.sampled_from(METACHARACTERS).map(re.escape),  # a metacharacter, escaped
    st.just("."),
    st.sampled_from(["[ab]", "[^a]", "[a-c]", "[^b-c]", "[é-]", "[A-Z]", "[^ ]"]),
)


def _repeat(pattern: str, quantifier: str) -> str:
    # a repeated group that can match the empty string is where backtracking engines and
    # RE2 part ways ("(?:a*|.)*\\?" on "A??": re stops at an empty iteration, RE2 goes on),
    # so it is outside the common subset: such a group is left unrepeated
    return pattern if re.fullmatch(pattern, "") else pattern + quantifier


def _quantified(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    quantifiers = st.sampled_from(["", "", "*", "+", "?", "*?", "+?", "??"])
    return st.tuples(inner, quantifiers).map(lambda repeated: _repeat(*repeated))


def _patterns() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        group = inner.map(lambda p: f"(?:{p})")
        return st.one_of(
            st.lists(_quantified(st.one_of(_ATOMS, group)), min_size=1, max_size=4).map("".join),
            st.lists(inner, min_size=2, max_size=3).map("|".join).map(lambda p: f"(?:{p})"),
        )

    body = st.recursive(_quantified(_ATOMS), extend, max_leaves=8)
    anchored = st.tuples(st.sampled_from(["", "", "^"]), body, st.sampled_from(["", "", "$"]))
    branch = anchored.map("".join)
    return st.lists(branch, min_size=1, max_size=3).map("|".join)


PATTERNS = _patterns()
LINES = st.lists(st.text(alphabet=LETTERS + METACHARACTERS, max_size=12), max_size=8)


def reference_spans(regexp: re.Pattern[str], line: str) -> list[tuple[int, int]]:
    """Every match on ``line`` as Python's ``re`` finds them, stepping as ``line_ranges``
    documents: on from the end of a match, one character on past an empty one."""
    spans = []
    pos = 0
    while pos <= len(line):
        found = regexp.search(line, pos)
        if found is None:
            break
        spans.append(found.span())
        pos = found.end() if found.end() > found.start() else found.end() + 1
    return spans


def scanned(
    regexp: Any,
    data: bytes,
    chunk_bytes: int,
    public_api: bool,
    text: bytes | None = None,
    slice_bytes: int | None = None,
) -> FileHits:
    """The file's hits as the search service gathers them, chunk by chunk (lines are never
    cut: the line cap is above the file's size), each chunk in slices of ``slice_bytes``
    when given."""
    hits = FileHits(limit=None, chars=None)
    find = match_finder(regexp, _force_public_api=public_api, text=text)
    stream = chunk_stream(
        pieces([data]), max_bytes=len(data), chunk_bytes=chunk_bytes, max_line_bytes=len(data) + 1
    )
    for chunk in run(collect(stream)):
        if slice_bytes is None:
            scan_chunk(regexp, chunk.data, chunk.first_line, hits, find)
        else:
            scan_chunk(
                regexp,
                chunk.data,
                chunk.first_line,
                hits,
                find,
                stop=lambda: False,
                slice_bytes=slice_bytes,
            )
    return hits


def python(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


def file_lines(text: str) -> list[str]:
    """A file's lines as grep counts them: a final newline ends the last line, it does
    not begin another."""
    return text.removesuffix("\n").split("\n") if text else []


def line_offsets(data: bytes) -> list[tuple[int, int]]:
    """Each line's ``[start, end)`` in ``data``, its newline left out."""
    offsets = []
    start = 0
    for line in file_lines(data.decode()):
        size = len(line.encode())
        offsets.append((start, start + size))
        start += size + 1
    return offsets


def check_against_reference(
    compiled: Any,
    reference: re.Pattern[str],
    lines: list[str],
    chunk_bytes: int,
    public_api: bool,
    text: bytes | None = None,
    slice_bytes: int | None = None,
) -> None:
    """With ``text`` the matcher is the fixed-string search ``fixed_text`` allows; with
    ``slice_bytes`` each chunk is scanned in slices of about that size."""
    data = "\n".join(lines).encode()
    text_lines = file_lines(data.decode())
    expected = [
        {"line_number": number, "column": 1, "text": line}
        for number, line in enumerate(text_lines, 1)
        if reference.search(line)
    ]
    hits = scanned(compiled, data, chunk_bytes, public_api, text, slice_bytes)
    assert hits.lines == expected
    assert hits.match_count == len(expected)
    find = match_finder(compiled, _force_public_api=public_api, text=text)
    for (start, end), line in zip(line_offsets(data), text_lines, strict=True):
        spans = line_ranges(find, data, start, end)
        assert spans == (reference_spans(reference, line) if reference.search(line) else [])


@given(
    pattern=PATTERNS,
    lines=LINES,
    ignore_case=st.booleans(),
    chunk_bytes=st.integers(1, 32),
    public_api=st.booleans(),
    slice_bytes=st.one_of(st.none(), st.integers(1, 16)),
)
@example(
    pattern="[^a]",
    lines=["a", "a"],
    ignore_case=False,
    chunk_bytes=32,
    public_api=False,
    slice_bytes=None,
)
@example(
    pattern="é", lines=["É"], ignore_case=True, chunk_bytes=1, public_api=True, slice_bytes=None
)
@example(
    pattern="|a", lines=["a"], ignore_case=False, chunk_bytes=8, public_api=False, slice_bytes=None
)
@example(
    pattern="^$",
    lines=["", "a", ""],
    ignore_case=False,
    chunk_bytes=1,
    public_api=False,
    slice_bytes=None,
)
@example(  # a slice ends before "b": $ must not match there
    pattern="a$",
    lines=["ab", "x"],
    ignore_case=False,
    chunk_bytes=32,
    public_api=False,
    slice_bytes=1,
)
@example(  # ^$ at the start of a slice whose line is not empty
    pattern="^$",
    lines=["a", "b", ""],
    ignore_case=False,
    chunk_bytes=32,
    public_api=True,
    slice_bytes=1,
)
def test_lines_and_ranges_agree_with_python_re(
    pattern: str,
    lines: list[str],
    ignore_case: bool,
    chunk_bytes: int,
    public_api: bool,
    slice_bytes: int | None,
) -> None:
    compiled = compile_pattern(pattern, ignore_case=ignore_case)
    reference = python(pattern, ignore_case)
    check_against_reference(compiled, reference, lines, chunk_bytes, public_api, None, slice_bytes)
    text = fixed_text(pattern, ignore_case=ignore_case)
    if text is not None:  # a pattern of plain letters: the substring search agrees too
        check_against_reference(compiled, reference, lines, chunk_bytes, False, text, slice_bytes)


@given(
    needle=st.text(alphabet=LETTERS + METACHARACTERS, max_size=4),
    lines=LINES,
    ignore_case=st.booleans(),
    chunk_bytes=st.integers(1, 32),
)
@example(needle="a.b", lines=["axb", "a.b"], ignore_case=False, chunk_bytes=4)
@example(needle="\\E(", lines=["\\E("], ignore_case=True, chunk_bytes=4)
def test_a_literal_pattern_matches_itself_only(
    needle: str, lines: list[str], ignore_case: bool, chunk_bytes: int
) -> None:
    compiled = compile_pattern(needle, ignore_case=ignore_case, literal=True)
    reference = python(re.escape(needle), ignore_case)
    check_against_reference(compiled, reference, lines, chunk_bytes, public_api=False)
    text = fixed_text(needle, ignore_case=ignore_case, literal=True)
    assert (text is None) == (ignore_case or not needle)
    if text is not None:
        check_against_reference(compiled, reference, lines, chunk_bytes, False, text)


@given(
    pattern=PATTERNS,
    line=st.text(alphabet=LETTERS + METACHARACTERS, max_size=30),
    ignore_case=st.booleans(),
    chars=st.integers(1, 12),
)
def test_a_long_line_is_listed_as_a_window_around_its_first_match(
    pattern: str, line: str, ignore_case: bool, chars: int
) -> None:
    compiled = compile_pattern(pattern, ignore_case=ignore_case)
    reference = python(pattern, ignore_case)
    data = line.encode()
    hits = FileHits(limit=1, chars=chars)
    scan_chunk(compiled, data, 7, hits)
    first = reference.search(line)
    if first is None or not line:  # an empty file has no line, not one empty line
        assert hits.lines == []
        assert hits.match_count == 0
        return
    [listed] = hits.lines
    begin = listed["column"] - 1
    assert listed["line_number"] == 7
    assert listed["text"] == line[begin : begin + chars]
    assert len(listed["text"]) == min(len(line), chars)
    if first.end() - first.start() <= chars:  # a match that fits is wholly in the window
        assert begin <= first.start()
        assert first.end() <= begin + chars
    else:  # a longer one is shown from its start
        assert begin == min(first.start(), len(line) - chars)
    # the window's ranges: each match's part inside the window, in the window's terms
    spans = reference_spans(reference, line)
    ranges = window_ranges(spans, begin, chars)
    covered = {i - begin for s, e in spans for i in range(s, e) if begin <= i < begin + chars}
    assert {i for s, e in ranges for i in range(s, e)} == covered
    assert all(0 <= s <= e <= chars for s, e in ranges)
    assert ranges == sorted(ranges)
    for s, e in ranges:
        if s < e:
            assert line[begin + s : begin + e] in {line[a:b] for a, b in spans} or any(
                a <= begin + s and begin + e <= b for a, b in spans
            )
    empty_inside = [(s - begin, s - begin) for s, e in spans if s == e and 0 <= s - begin <= chars]
    assert [r for r in ranges if r[0] == r[1]] == empty_inside


@given(
    pattern=PATTERNS,
    lines=LINES,
    ignore_case=st.booleans(),
    chunk_bytes=st.integers(1, 32),
    slice_bytes=st.integers(1, 16),
    final_newline=st.booleans(),
)
@example(
    pattern="^$", lines=["a", ""], ignore_case=False, chunk_bytes=32, slice_bytes=1,
    final_newline=True,
)  # fmt: skip
@example(
    pattern="$", lines=["a"], ignore_case=False, chunk_bytes=32, slice_bytes=4,
    final_newline=False,
)  # fmt: skip
def test_any_match_says_whether_scan_chunk_finds_a_line(
    pattern: str,
    lines: list[str],
    ignore_case: bool,
    chunk_bytes: int,
    slice_bytes: int,
    final_newline: bool,
) -> None:
    # what a search that only counts a gist asks of each chunk of its files
    compiled = compile_pattern(pattern, ignore_case=ignore_case)
    find = match_finder(compiled, text=fixed_text(pattern, ignore_case=ignore_case))
    data = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    stream = chunk_stream(
        pieces([data]), max_bytes=len(data), chunk_bytes=chunk_bytes, max_line_bytes=len(data) + 1
    )
    for chunk in run(collect(stream)):
        hits = FileHits(limit=None, chars=None)
        scan_chunk(compiled, chunk.data, chunk.first_line, hits, find)
        found = any_match(find, chunk.data, stop=lambda: False, slice_bytes=slice_bytes)
        assert found == (hits.match_count > 0), chunk.data
