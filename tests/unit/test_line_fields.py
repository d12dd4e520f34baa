"""The pure parts of a search's line fields: ranges in code points, literal patterns, globs,
line anchors."""

from __future__ import annotations

from gistcache.domain.matching import (
    compile_pattern,
    glob_matches,
    line_anchor,
    line_ranges,
    match_finder,
    window_ranges,
)


def ranges(pattern: str, line: str, **options: bool) -> list[tuple[int, int]]:
    data = line.encode()
    find = match_finder(compile_pattern(pattern, **options))
    return line_ranges(find, data, 0, len(data))


def test_ranges_count_code_points_with_emoji_and_accents() -> None:
    line = "café 🎉 naïve café"
    assert ranges("café", line) == [(0, 4), (13, 17)]
    assert [line[s:e] for s, e in ranges("café", line)] == ["café", "café"]
    assert ranges("🎉", line) == [(5, 6)]
    assert [line[s:e] for s, e in ranges("na.ve", line)] == ["naïve"]


def test_ranges_are_left_to_right_and_do_not_overlap() -> None:
    assert ranges("aa", "aaaaa") == [(0, 2), (2, 4)]


def test_empty_matches_advance_by_whole_characters() -> None:
    assert ranges("x*", "é") == [(0, 0), (1, 1)]


def test_ranges_stay_on_their_line() -> None:
    data = b"ab\nab\n"
    find = match_finder(compile_pattern("b"))
    assert line_ranges(find, data, 0, 2) == [(1, 2)]


def test_a_match_past_char_500_is_relative_to_the_window() -> None:
    line = "x" * 600 + "needle" + "y" * 10
    [(start, end)] = ranges("needle", line)
    assert (start, end) == (600, 606)
    begin = 350  # a window of 500 characters that holds it
    window = line[begin : begin + 500]
    [(ws, we)] = window_ranges([(start, end)], begin, 500)
    assert window[ws:we] == "needle"


def test_window_cuts_ranges_at_its_edges() -> None:
    assert window_ranges([(0, 5), (8, 12), (20, 30)], 3, 7) == [(0, 2), (5, 7)]


def test_literal_metacharacters_match_themselves() -> None:
    assert ranges("a.b*(c)", "a.b*(c) axbbc", literal=True) == [(0, 7)]
    assert ranges("a.b*", "axbbb") == [(0, 5)]
    assert ranges("a.b*", "axbbb", literal=True) == []
    assert ranges("[x]", "A [X]", literal=True, ignore_case=True) == [(2, 5)]


def test_globs_match_file_names_ignoring_case() -> None:
    assert glob_matches("*.py", "Setup.PY")
    assert glob_matches("test_*", "test_app.rb")
    assert not glob_matches("test_*", "my_test.rb")
    assert glob_matches("?.txt", "a.txt")
    assert glob_matches("[ab]*", "Beta")
    assert not glob_matches("*.py", "a.pyc")


def test_line_anchor_is_githubs_form() -> None:
    assert line_anchor("hello_world.rb", 3) == "#file-hello_world-rb-L3"
    assert line_anchor("My File (1).PY", 12) == "#file-my-file--1--py-L12"
    assert line_anchor("café.md", 1) == "#file-caf--md-L1"


def test_context_is_the_same_however_the_file_is_cut_into_chunks() -> None:
    from gistcache.domain.matching import FileHits, scan_chunk

    data = "".join(f"l{n}{' X' if n in (3, 5, 12) else ''}\n" for n in range(1, 16)).encode()
    regexp = compile_pattern("X")
    find = match_finder(regexp)

    def scanned(cuts: list[int]) -> list[dict[str, object]]:
        hits = FileHits(None, None, find=find, context=2)
        start, line = 0, 1
        for cut in [*cuts, len(data)]:
            chunk = data[start:cut]
            scan_chunk(regexp, chunk, line, hits, find)
            line += chunk.count(b"\n")
            start = cut
        return hits.lines

    whole = scanned([])
    assert [(h["line_number"], h["before"], h["after"]) for h in whole] == [
        (3, [(1, "l1", None), (2, "l2", None)], [(4, "l4", None)]),
        (5, [], [(6, "l6", None), (7, "l7", None)]),
        (12, [(10, "l10", None), (11, "l11", None)], [(13, "l13", None), (14, "l14", None)]),
    ]
    ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")][:-1]
    for cut in ends:  # every line boundary, one cut at a time
        assert scanned([cut]) == whole, cut
    assert scanned(ends) == whole  # a chunk per line


def test_a_long_context_line_says_how_long_it_is_whichever_chunk_it_came_from() -> None:
    from gistcache.domain.matching import FileHits, scan_chunk

    data = b"0123456789\nhit\nabcdefghij\n"
    regexp = compile_pattern("hit")
    find = match_finder(regexp)
    expected = ([(1, "01234", 10)], [(3, "abcde", 10)])
    for cut in (0, 11, 15):  # one chunk; the line before, or the hit's, ends the first
        hits = FileHits(None, 5, find=find, context=1)
        line = 1
        for chunk in (data[:cut], data[cut:]):
            if chunk:
                scan_chunk(regexp, chunk, line, hits, find)
                line += chunk.count(b"\n")
        [listed] = hits.lines
        assert (listed["before"], listed["after"]) == expected, cut
        assert "line_length" not in listed  # "hit" is listed whole
