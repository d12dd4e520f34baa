"""The search body's documented rules (the regular expressions of its JSON Schema) say
what the domain's rules say, and the answers rendered from typed results match the
documented shapes."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gistcache.domain.errors import InvalidInput
from gistcache.domain.gists import Gist, GistFile
from gistcache.domain.requests import (
    GLOB_PATTERN,
    MAX_GLOB_LENGTH,
    NOT_BLANK_PATTERN,
    USERNAME_PATTERN,
    SearchRequest,
    validate_glob,
    validate_username,
)
from gistcache.domain.results import (
    ContextLine,
    FileMatch,
    GistMatch,
    LineMatch,
    SearchResult,
    Skipped,
    SkipReason,
)
from gistcache.web.api.openapi import OPENAPI
from gistcache.web.api.render import render_search, search_body, search_json, search_pieces
from gistcache.web.api.schemas import SEARCH_RESULT

# JSON Schema (ECMA 262) anchors ^ and $ at the string's ends only: re.fullmatch does
TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["*.py", "a/b", "a\nb", " ", "\t*", "é", "x\n", "\x7f", "test_*", "[ab]?.md"]
)


def _accepted(rule: Any, raw: str) -> bool:
    try:
        rule(raw)
    except InvalidInput:
        return False
    return True


@given(TEXT)
def test_the_documented_glob_is_the_domains(raw: str) -> None:
    assert len(raw) <= MAX_GLOB_LENGTH
    assert bool(re.fullmatch(GLOB_PATTERN, raw)) == _accepted(validate_glob, raw)


@given(TEXT | st.from_regex(USERNAME_PATTERN))
def test_the_documented_login_is_the_domains(raw: str) -> None:
    assert bool(re.fullmatch(USERNAME_PATTERN, raw)) == _accepted(validate_username, raw)


@given(TEXT)
def test_a_blank_pattern_is_what_the_document_calls_blank(raw: str) -> None:
    assert bool(re.search(NOT_BLANK_PATTERN, raw)) == bool(raw.strip())


def _result() -> SearchResult:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    file = GistFile("a.py", "Python", "text/x-python", 20, "https://gist.githubusercontent.com/a")
    gist = Gist("g1", "https://gist.github.com/g1", None, True, when, when, 0, "alice", (file,))
    line = LineMatch(
        3,
        1,
        "x = needle(needle)",
        ranges=((4, 10), (11, 17)),
        url="https://gist.github.com/g1#file-a-py-L3",
        before=(ContextLine(2, "# before"),),
        after=(ContextLine(4, "é after"),),
    )
    plain = LineMatch(9, 1, "needle")
    return SearchResult(
        SearchRequest("alice", "needle", context=1),
        1,
        (GistMatch(gist, (FileMatch(file, 2, (line, plain)),)),),
        (Skipped("g2", None, SkipReason.FILE_LIST_TRUNCATED),),
    )


def test_a_line_carries_its_ranges_url_and_context_even_when_empty() -> None:
    [gist] = search_json(_result())["matches"]
    first, plain = gist["files"][0]["lines"]
    assert first == {
        "line_number": 3,
        "column": 1,
        "text": "x = needle(needle)",
        "ranges": [[4, 10], [11, 17]],
        "url": "https://gist.github.com/g1#file-a-py-L3",
        "before": [{"line_number": 2, "text": "# before"}],
        "after": [{"line_number": 4, "text": "é after"}],
    }
    # every line has every field: a client never tests for a missing one
    assert plain == {
        "line_number": 9,
        "column": 1,
        "text": "needle",
        "ranges": [],
        "url": "",
        "before": [],
        "after": [],
    }


def test_the_rendered_answer_matches_the_documented_search_result() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import json

    document = {
        "components": OPENAPI["components"],
        **OPENAPI["components"]["schemas"]["SearchResult"],
    }
    values = search_json(_result())
    jsonschema.Draft202012Validator(document).validate(values)
    assert json.loads(search_body(_result())) == values
    assert values["skipped"] == [{"id": "g2", "filename": None, "reason": "file_list_truncated"}]
    assert render_search(_result())["status"] == "success"


def test_the_answer_is_written_as_the_schema_writes_it_whole_or_in_pieces() -> None:
    # text that JSON escapes (quotes, backslashes, control characters), text beyond
    # ASCII, a long line's window with its length, context: the bytes sent are the
    # ones the documented shape's own serializer writes
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    file = GistFile('q"\\.py', None, None, 20, None)
    gist = Gist(
        "g1", "https://gist.github.com/g1", "tab\there é\x01", True, when, when, 0, None, (file,)
    )
    odd = LineMatch(
        7,
        40,
        'say "hi" \\ </script>\u2028 é \x7f\x00',
        ranges=((5, 7),),
        url="u#L7",
        before=(ContextLine(6, "x" * 10, 900),),
        line_length=900,
    )
    result = dataclasses.replace(
        _result(), matches=(*_result().matches, GistMatch(gist, (FileMatch(file, 1, (odd,)),)))
    )
    expected = SEARCH_RESULT.dump_json(render_search(result))
    assert search_body(result) == expected
    assert b"".join(search_pieces(result)) == expected
