"""GitHub's headers on any input: the ``Link`` header's next page is None, a URL on the
configured API's origin, or GitHubUnavailable, never anything else; the rate-limit
headers (``x-ratelimit-*``, ``retry-after``) give a rate limit or None and a bounded wait
or None, and never raise."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from hypothesis import example, given
from hypothesis import strategies as st
from multidict import CIMultiDict
from yarl import URL

from gistcache.github.errors import GitHubError, GitHubRateLimited, GitHubUnavailable
from gistcache.github.parse import (
    MAX_RATE_LIMIT_WAIT,
    RateLimit,
    failure,
    names_a_wait,
    next_page,
    parse_rate_limit,
    rate_limit_retry_after,
    request_target,
)

APIS = st.sampled_from(
    ["https://api.github.com", "https://ghe.example/api/v3", "http://127.0.0.1:9000"]
)
_HOSTS = st.sampled_from(
    [
        "api.github.com",
        "API.GitHub.com",
        "api.github.com.",
        "api.github.com.evil.example",
        "evil.example",
        "ghe.example",
        "127.0.0.1",
        "127.0.0.1:9000",
        "127.0.0.1:9001",
        "[::1]",
        "[::1",
        "\u0430pi.github.com",  # a Cyrillic "a" first
        "xn--pi-7ba.github.com",
        "api.github.com:443",
        "api.github.com:444",
        "api.github.com:99999",
        "api.github.com:x",
        "",
    ]
)
_USERINFO = st.sampled_from(["", "", "user@", "user:secret@", "api.github.com@", ":@", "%40@"])
_SCHEMES = st.sampled_from(["https://", "http://", "HTTPS://", "ftp://", "//", "https:", ""])
_PATHS = st.sampled_from(
    ["/users/octocat/gists", "/api/v3/users/octocat/gists", "", "/", "/a b", "/%zz", "/../..", "\\"]
)
_QUERIES = st.sampled_from(["", "?page=2", "?per_page=100&page=3", "?page=2#frag", "?a=<b>"])
_ODD = st.sampled_from(
    [
        "\\\\evil.example/x",
        "https:\\\\evil.example/",
        "https:evil.example",
        "https:/evil.example/x",
        "javascript:alert(1)",
        "data:,x",
        "///evil.example/",
        "https://api.github.com\\@evil.example/",
        "https://api.github.com%2F@evil.example/",
        "http://evil.example%00.api.github.com/",
    ]
)
TARGETS = st.one_of(
    st.tuples(_SCHEMES, _USERINFO, _HOSTS, _PATHS, _QUERIES).map("".join),
    _PATHS.flatmap(lambda path: _QUERIES.map(lambda query: path + query)),
    _ODD,
    st.text(max_size=30),
)
_PARAMS = st.sampled_from(
    [
        '; rel="next"',
        "; rel=next",
        '; rel="prev next"',
        '; REL="NEXT"',
        ';rel="next"',
        '; rel="last"',
        '; rel="last"; rel="next"',
        '; title="next"; rel="first"',
        "; rel=",
        "",
    ]
)
LINK_VALUES = st.tuples(TARGETS, st.one_of(_PARAMS, st.text(max_size=12))).map(
    lambda value: f"<{value[0]}>{value[1]}"
)
LINK_HEADERS = st.one_of(
    st.lists(
        st.lists(LINK_VALUES, max_size=3).map(", ".join).map(lambda v: v.replace(", <", ",<", 1)),
        max_size=3,
    ),
    st.lists(st.text(max_size=40), max_size=3),
)


def same_origin(url: str, api: URL) -> bool:
    """Whether a parser other than yarl's reads ``url`` as on the API's origin, with no
    credentials."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}
    expected = urlsplit(str(api))
    return (
        parts.scheme == expected.scheme
        and parts.hostname == expected.hostname
        and (parts.port or default[parts.scheme]) == (expected.port or default[expected.scheme])
        and parts.username is None
        and parts.password is None
    )


@given(headers=LINK_HEADERS, api=APIS)
@example(
    headers=['<https://api.github.com\\@evil.example/>; rel="next"'], api="https://api.github.com"
)
@example(
    headers=['<//evil.example/users/octocat/gists?page=2>; rel="next"'],
    api="https://api.github.com",
)
@example(headers=["<https://user:secret@api.github.com/x>; rel=next"], api="https://api.github.com")
def test_a_next_link_never_leads_to_another_origin(headers: list[str], api: str) -> None:
    base = URL(api)
    request = URL(f"{api}/users/octocat/gists?per_page=100", encoded=True)
    try:
        following = next_page(headers, request, base)
    except GitHubUnavailable:
        return
    if following is None:
        return
    assert following.origin() == base.origin()
    assert following.user is None
    assert following.password is None
    # as the client sends it: the next request's target, read by another parser
    sent = request_target(str(following))
    assert same_origin(sent, base), sent
    assert URL(str(following), encoded=True).origin() == base.origin()


@given(
    api=APIS,
    page=st.integers(2, 10_000),
    others=st.lists(st.sampled_from(["prev", "last", "first"]), max_size=3, unique=True),
    before=st.booleans(),
)
def test_the_next_link_on_the_api_is_followed(
    api: str, page: int, others: list[str], before: bool
) -> None:
    """GitHub's own shape: the next page among prev, last and first, in any order."""
    base = URL(api)
    target = f"{api}/users/octocat/gists?per_page=100&page={page}"
    values = [f'<{api}/users/octocat/gists?page={n}>; rel="{rel}"' for n, rel in enumerate(others)]
    nxt = f'<{target}>; rel="next"'
    values = [nxt, *values] if before else [*values, nxt]
    request = URL(f"{api}/users/octocat/gists?per_page=100", encoded=True)
    assert next_page([", ".join(values)], request, base) == URL(target)
    assert next_page(values, request, base) == URL(target)  # one header per value
    assert next_page([", ".join(values[:-1] if not before else values[1:])], request, base) is None


_NUMBERS = st.one_of(
    st.integers(-5, 2**40).map(str),
    st.sampled_from(["", " 5 ", "+5", "5.0", "0x10", "1_000", "²", "٣", "9" * 30, "9" * 5000]),
    st.text(max_size=8),
)
_HEADER_NAMES = st.sampled_from(
    [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
        "retry-after",
        "X-RateLimit-Reset",
        "Retry-After",
    ]
)
HEADERS = st.lists(st.tuples(_HEADER_NAMES, _NUMBERS), max_size=8).map(CIMultiDict)
NOW = st.floats(0, 2e9)
DEFECT = {"x-ratelimit-limit": "60", "x-ratelimit-remaining": "0"}


@given(headers=HEADERS)
@example(headers=CIMultiDict({**DEFECT, "x-ratelimit-reset": "²"}))  # was ValueError
@example(headers=CIMultiDict({**DEFECT, "x-ratelimit-used": "²"}))  # was ValueError
@example(headers=CIMultiDict({**DEFECT, "x-ratelimit-reset": "9" * 20}))  # was OverflowError
def test_rate_limit_headers_parse_or_are_ignored(headers: CIMultiDict[str]) -> None:
    parsed = parse_rate_limit(headers)
    assert parsed is None or isinstance(parsed, RateLimit)
    limit, remaining = headers.get("x-ratelimit-limit"), headers.get("x-ratelimit-remaining")
    numbers = [value for value in (limit, remaining) if value is not None]
    if len(numbers) == 2 and all(v.isascii() and v.isdecimal() and len(v) < 20 for v in numbers):
        assert parsed is not None
        assert (parsed.limit, parsed.remaining) == (int(numbers[0]), int(numbers[1]))


@given(
    status=st.sampled_from([200, 304, 401, 403, 404, 422, 429, 500, 502, 503]),
    headers=HEADERS,
    message=st.one_of(st.sampled_from(["API rate limit exceeded", ""]), st.text(max_size=10)),
    now=NOW,
)
@example(status=403, headers=CIMultiDict({"retry-after": "²"}), message="", now=0.0)
@example(status=429, headers=CIMultiDict({**DEFECT, "x-ratelimit-reset": "²"}), message="", now=0.0)
@example(status=403, headers=CIMultiDict({"retry-after": "9" * 5000}), message="", now=0.0)
def test_a_rate_limit_wait_is_bounded_and_never_raises(
    status: int, headers: CIMultiDict[str], message: str, now: float
) -> None:
    wait = rate_limit_retry_after(status, headers, message, now)
    if status not in (403, 429):
        assert wait is None
    assert wait is None or 1 <= wait <= MAX_RATE_LIMIT_WAIT
    assert names_a_wait(headers) in (True, False)
    body: Any = {"message": message}
    error = failure(status, headers, body, now)
    assert isinstance(error, GitHubError)
    if isinstance(error, GitHubRateLimited):
        assert 1 <= error.retry_after <= MAX_RATE_LIMIT_WAIT
