"""The input rules on any input: what the validators accept meets the documented rules,
and anything else raises InvalidInput (InvalidLogin for a login) naming the field; a
pattern RE2 refuses raises PatternError, its own documented failure. Nothing else."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gistcache.domain.errors import InvalidInput, InvalidLogin, PatternError
from gistcache.domain.matching import MAX_PATTERN_LENGTH
from gistcache.domain.requests import (
    MAX_CONTEXT,
    MAX_GLOB_LENGTH,
    MAX_PAGE,
    MAX_PER_PAGE,
    ManySearchRequest,
    SearchRequest,
    parse_paging,
    validate_glob,
    validate_username,
)
from gistcache.web.api.schemas import SEARCH_FIELDS, parse_search
from gistcache.web.problems import problem_for

LOGIN_CHARACTERS = string.ascii_letters + string.digits + "-_"
# near misses: non-ASCII letters and digits, whitespace, a newline at the end, separators
_NEAR = "é٣²ｆ \t\n./:@%\x00"
LOGINS = st.one_of(
    st.text(alphabet=LOGIN_CHARACTERS, max_size=45),
    st.text(alphabet=LOGIN_CHARACTERS + _NEAR, max_size=45),
    st.text(max_size=45),
    st.text(alphabet=LOGIN_CHARACTERS, min_size=1, max_size=39).map(lambda s: s + "\n"),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


def is_login(value: object) -> bool:
    """The documented rule: 1 to 39 characters of ASCII letters, digits, '-' and '_'."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 39
        and all(c in LOGIN_CHARACTERS for c in value)
    )


@given(raw=st.one_of(LOGINS, JSON))
@example(raw="octocat\n")
@example(raw="a" * 40)
@example(raw="\u0661")  # an Arabic-Indic digit one
def test_a_login_is_accepted_only_by_the_rule(raw: Any) -> None:
    if is_login(raw):
        assert validate_username(raw) == raw
    else:
        with pytest.raises(InvalidLogin) as refused:
            validate_username(raw)
        assert refused.value.field == "username"


_PAGE_NUMBERS = st.one_of(
    st.integers(-3, MAX_PAGE + 3).map(str),
    st.integers(0, 10**12).map(str),
    st.sampled_from(["", " 1", "1 ", "+1", "1.0", "0x1", "1_0", "²", "٣", "007", "1e3"]),
    st.text(max_size=5),
)
QUERIES = st.dictionaries(
    st.sampled_from(["page", "per_page", "q", "PAGE"]), _PAGE_NUMBERS, max_size=4
)


def reads_as(raw: str | None, default: int, high: int) -> int | None:
    """The documented rule: a plain decimal integer from 1 to ``high`` (or absent), in at
    most 9 digits (leading zeros count)."""
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= 9 and 1 <= int(raw) <= high:
        return int(raw)
    return None


@given(query=QUERIES)
@example(query={"page": "²"})
@example(query={"per_page": "٣"})
@example(query={"page": "0000000001"})
def test_paging_is_accepted_only_by_the_rule(query: dict[str, str]) -> None:
    if "page" not in query and "per_page" not in query:
        assert parse_paging(query) is None
        return
    page = reads_as(query.get("page"), 1, MAX_PAGE)
    per_page = reads_as(query.get("per_page"), 30, MAX_PER_PAGE)
    if page is not None and per_page is not None:
        assert parse_paging(query) == (page, per_page)
    else:
        with pytest.raises(InvalidInput) as refused:
            parse_paging(query)
        assert refused.value.field == ("page" if page is None else "per_page")


GLOBS = st.one_of(
    st.none(),
    st.text(alphabet="*?[]!ab.-_ /\\\x00\x1f\x7f\t", max_size=10),
    st.text(max_size=12),
    st.text(alphabet="ab*", min_size=MAX_GLOB_LENGTH - 2, max_size=MAX_GLOB_LENGTH + 2),
)


def is_glob(value: str) -> bool:
    """The documented rule: not blank, at most 255 characters, no '/', no control
    character and no lone surrogate (no text)."""
    return (
        bool(value.strip())
        and len(value) <= MAX_GLOB_LENGTH
        and "/" not in value
        and all(ord(c) >= 32 and ord(c) != 127 for c in value)
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    )


@given(raw=GLOBS)
@example(raw="\ud800.py")  # a lone surrogate: no text
def test_a_glob_is_accepted_only_by_the_rule(raw: str | None) -> None:
    if raw is None:
        assert validate_glob(raw) is None
    elif is_glob(raw):
        assert validate_glob(raw) == raw
    else:
        with pytest.raises(InvalidInput) as refused:
            validate_glob(raw)
        assert refused.value.field == "filename"


_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "username": st.one_of(LOGINS, JSON),
    "usernames": st.one_of(st.lists(st.one_of(LOGINS, JSON), max_size=3), JSON),
    "org": st.one_of(LOGINS, JSON),
    "pattern": st.one_of(
        st.sampled_from(["def", "a|b", "(", "a{2000}", "(?=x)", "\\1", " ", "", "x" * 1001]),
        st.text(max_size=8),
        JSON,
    ),
    "ignore_case": st.one_of(st.booleans(), JSON),
    "literal": st.one_of(st.booleans(), JSON),
    "async": st.one_of(st.booleans(), JSON),
    "page": st.one_of(st.integers(-1, MAX_PAGE + 1), st.booleans(), JSON),
    "per_page": st.one_of(st.integers(-1, MAX_PER_PAGE + 1), st.booleans(), JSON),
    "context": st.one_of(st.integers(-1, MAX_CONTEXT + 1), st.booleans(), JSON),
    "filename": st.one_of(GLOBS, JSON),
}
# near the rules' edges: mostly accepted, the bounds on either side
_NEAR_VALID = st.fixed_dictionaries(
    {
        "username": st.text(alphabet=LOGIN_CHARACTERS, min_size=1, max_size=40),
        "pattern": st.text(alphabet="ab.*|()[] \\", min_size=1, max_size=10),
    },
    optional={
        "ignore_case": st.booleans(),
        "literal": st.booleans(),
        "async": st.booleans(),
        "page": st.integers(0, MAX_PAGE + 1),
        "per_page": st.integers(0, MAX_PER_PAGE + 1),
        "context": st.integers(-1, MAX_CONTEXT + 1),
        "filename": GLOBS,
    },
)
BODIES = st.one_of(
    _NEAR_VALID,
    st.fixed_dictionaries(
        {"username": st.sampled_from(["octocat", "a-b_c"]), "pattern": st.just("def")},
        optional={
            **{k: v for k, v in _FIELD_VALUES.items() if k not in ("username", "pattern")},
            "extra": JSON,
        },
    ),
    st.fixed_dictionaries({}, optional=_FIELD_VALUES),
    JSON,
)


def outcome(
    body: Any,
) -> tuple[SearchRequest | ManySearchRequest, bool] | InvalidInput | PatternError:
    """What the API's ``parse_search`` returns, or the documented failure it raised: a
    400 problem naming the field (here as the domain's InvalidInput) or a PatternError
    (any other exception fails the test)."""
    try:
        return parse_search(body)
    except PatternError as failure:
        return failure
    except InvalidInput as caught:
        problem = problem_for(caught)
    assert problem is not None
    assert problem.status == 400
    if problem.kind == "invalid-username":
        return InvalidInput(problem.members["field"], problem.detail)
    assert problem.kind == "invalid-body"
    unknown = problem.members.get("fields", ())
    return InvalidInput(problem.members.get("field"), problem.detail, unknown=unknown)


@given(body=BODIES)
@example(body={"username": "octocat", "pattern": "def", "page": True})
@example(body={"username": "octocat", "pattern": "def", "filename": "\ud800"})
@example(body={"username": "octocat", "pattern": "\ud800"})
def test_a_search_body_is_accepted_only_by_the_rules(body: Any) -> None:
    parsed = outcome(body)
    if isinstance(parsed, PatternError):
        assert isinstance(body, dict)
        assert isinstance(body.get("pattern"), str)
        return
    if isinstance(parsed, InvalidInput):
        assert parsed.field is None or parsed.field in SEARCH_FIELDS
        if parsed.unknown:
            assert set(parsed.unknown) == set(body) - set(SEARCH_FIELDS)
        return
    request, run_as_job = parsed
    assert isinstance(body, dict)
    assert set(body) <= set(SEARCH_FIELDS)
    assert isinstance(request, SearchRequest)
    assert is_login(request.username)
    assert request.username == body["username"]
    assert request.pattern == body["pattern"]
    assert request.pattern.strip()
    assert len(request.pattern) <= MAX_PATTERN_LENGTH
    assert 1 <= request.page <= MAX_PAGE
    assert 1 <= request.per_page <= MAX_PER_PAGE
    assert 0 <= request.context <= MAX_CONTEXT
    assert request.filename is None or is_glob(request.filename)
    for name in ("ignore_case", "literal", "async"):
        assert body.get(name, False) in (True, False)
    for name in ("page", "per_page", "context"):
        assert name not in body or type(body[name]) is int
    assert run_as_job is body.get("async", False)
    assert SearchRequest(**request.to_json()) == request  # stored with a job and read back
