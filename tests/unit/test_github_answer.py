"""A whole answer of GitHub's API read at once, with no server
(gistcache.github.parse.read_answer): a 200's JSON and the pages its Link header names, a
304's ETag, and every other answer as the GitHubError it means."""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict
from yarl import URL

from gistcache.github.errors import GitHubNotFound, GitHubUnavailable
from gistcache.github.parse import DEFAULT_RETRY_AFTER, RateLimitedAnswer, read_answer

NOW = 1_800_000_000.0
API = URL("https://api.github.com")
ASKED = URL("https://api.github.com/users/octocat/gists?per_page=100")
NEXT = "https://api.github.com/user/583231/gists?per_page=100&page=2"
LAST = "https://api.github.com/user/583231/gists?per_page=100&page=7"
ETAG = 'W/"0b1c2d3e4f5a6b7c8d9e"'


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


def test_a_200_gives_its_json_its_etag_and_the_pages_its_link_names() -> None:
    link = f'<{NEXT}>; rel="next", <{LAST}>; rel="last"'
    answer = read_answer(200, headers(("ETag", ETAG), ("Link", link)), b"[]", ASKED, API, NOW)
    assert (answer.status, answer.etag, answer.body) == (200, ETAG, [])
    assert (answer.next, answer.last) == (URL(NEXT), URL(LAST))
    assert not answer.not_modified


def test_a_200_without_a_link_is_the_last_page() -> None:
    answer = read_answer(200, headers(), b'[{"id": "1"}]', ASKED, API, NOW)
    assert answer.body == [{"id": "1"}]
    assert (answer.etag, answer.next, answer.last) == (None, None, None)


def test_a_last_link_to_another_host_is_ignored_but_a_next_one_is_refused() -> None:
    link = f'<{NEXT}>; rel="next", <https://evil.example/x?page=7>; rel="last"'
    answer = read_answer(200, headers(("Link", link)), b"[]", ASKED, API, NOW)
    assert (answer.next, answer.last) == (URL(NEXT), None)
    foreign = '<https://evil.example/x?page=2>; rel="next"'
    with pytest.raises(GitHubUnavailable, match="another host"):
        read_answer(200, headers(("Link", foreign)), b"[]", ASKED, API, NOW)


def test_a_304_gives_its_etag_alone() -> None:
    answer = read_answer(304, headers(("ETag", ETAG)), b"", ASKED, API, NOW)
    assert answer.not_modified
    assert (answer.etag, answer.body, answer.next, answer.last) == (ETAG, None, None, None)


@pytest.mark.parametrize("raw", [b"", b"<html>Unicorn!</html>"])
def test_a_200_without_json_is_unavailable(raw: bytes) -> None:
    with pytest.raises(GitHubUnavailable, match="empty or malformed JSON body"):
        read_answer(200, headers(), raw, ASKED, API, NOW)


def test_a_404_is_not_found_with_githubs_message() -> None:
    body = json.dumps({"message": "Not Found", "documentation_url": "https://docs.github.com"})
    with pytest.raises(GitHubNotFound, match="Not Found"):
        read_answer(404, headers(), body.encode(), ASKED, API, NOW)


def test_a_502_is_unavailable_and_worth_retrying() -> None:
    with pytest.raises(GitHubUnavailable) as raised:
        read_answer(502, headers(), b"", ASKED, API, NOW)
    assert raised.value.retryable


@pytest.mark.parametrize(
    ("sent", "wait", "named", "spent"),
    [
        ((("Retry-After", "37"),), 37, True, False),
        (
            (("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", str(int(NOW) + 754))),
            754,
            True,
            True,
        ),
        ((("X-RateLimit-Remaining", "4100"),), DEFAULT_RETRY_AFTER, False, False),
    ],
)
def test_a_rate_limit_says_what_the_gate_needs(
    sent: tuple[tuple[str, str], ...], wait: int, named: bool, spent: bool
) -> None:
    body = b'{"message": "You have exceeded a secondary rate limit."}'
    with pytest.raises(RateLimitedAnswer) as raised:
        read_answer(403, headers(*sent), body, ASKED, API, NOW)
    assert (raised.value.retry_after, raised.value.named, raised.value.spent) == (
        wait,
        named,
        spent,
    )
