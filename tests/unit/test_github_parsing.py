"""Reading GitHub's answers without a server: Link headers, rate-limit headers and
hints, gist items, and the credential an ETag belongs to."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gistcache.github.client import (
    DEFAULT_RETRY_AFTER,
    MAX_RATE_LIMIT_WAIT,
    credential_fingerprint,
    parse_gist,
    parse_link_header,
    parse_rate_limit,
    rate_limit_retry_after,
)


def test_link_header_maps_each_rel_to_its_target() -> None:
    value = (
        '<https://api.github.com/user/1/gists?page=2>; rel="next", '
        '<https://api.github.com/user/1/gists?page=5>; rel="last"'
    )
    assert parse_link_header(value) == {
        "next": "https://api.github.com/user/1/gists?page=2",
        "last": "https://api.github.com/user/1/gists?page=5",
    }


def test_link_header_oddities_are_read_or_skipped() -> None:
    assert parse_link_header(None) == {}
    assert parse_link_header("") == {}
    assert parse_link_header("no-brackets; rel=next") == {}
    # several rels in one, any case, and the first target of a rel wins
    value = '<https://a/1>; REL="Next Prev", <https://a/2>; rel=next'
    assert parse_link_header(value) == {"next": "https://a/1", "prev": "https://a/1"}


def test_rate_limit_headers_are_read_and_malformed_ones_ignored() -> None:
    headers = {
        "x-ratelimit-limit": "60",
        "x-ratelimit-remaining": "59",
        "x-ratelimit-used": "1",
        "x-ratelimit-reset": "1767268800",
        "x-ratelimit-resource": "core",
    }
    limit = parse_rate_limit(headers)
    assert limit is not None
    assert (limit.limit, limit.remaining, limit.used, limit.resource) == (60, 59, 1, "core")
    assert limit.reset == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_rate_limit({}) is None
    assert parse_rate_limit({"x-ratelimit-limit": "x", "x-ratelimit-remaining": "1"}) is None
    partial = parse_rate_limit(
        {"x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-used": "n/a"}
    )
    assert partial is not None
    assert (partial.used, partial.reset, partial.resource) == (None, None, None)


@pytest.mark.parametrize(
    ("status", "headers", "message", "wait"),
    [
        (200, {"retry-after": "5"}, "", None),
        (403, {}, "Resource not accessible", None),  # a plain refusal is no rate limit
        (403, {"retry-after": " 30 "}, "", 30),
        (429, {"retry-after": "0"}, "", 1),
        (403, {"retry-after": "999999"}, "", MAX_RATE_LIMIT_WAIT),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1120"}, "", 120),
        (403, {"x-ratelimit-remaining": "0"}, "", DEFAULT_RETRY_AFTER),
        (429, {}, "", DEFAULT_RETRY_AFTER),
        (403, {}, "You have exceeded a secondary Rate Limit", DEFAULT_RETRY_AFTER),
    ],
)
def test_rate_limit_waits(
    status: int, headers: dict[str, str], message: str, wait: int | None
) -> None:
    assert rate_limit_retry_after(status, headers, message, now=1000.0) == wait


def item(**changes: Any) -> dict[str, Any]:
    gist: dict[str, Any] = {
        "id": "aa5a315d61ae9438b18d",
        "html_url": "https://gist.github.com/aa5a315d61ae9438b18d",
        "description": "Hello world!",
        "public": True,
        "created_at": "2010-04-14T02:15:15Z",
        "updated_at": "2011-06-20T11:34:15Z",
        "comments": 0,
        "owner": {"login": "octocat"},
        "files": {
            "hello_world.rb": {
                "filename": "hello_world.rb",
                "type": "application/x-ruby",
                "language": "Ruby",
                "raw_url": "https://gist.githubusercontent.com/octocat/x/raw/hello_world.rb",
                "size": 167,
            }
        },
    }
    gist.update(changes)
    return gist


def test_a_gist_item_becomes_a_gist() -> None:
    gist = parse_gist(item())
    assert (gist.id, gist.owner, gist.description, gist.public) == (
        "aa5a315d61ae9438b18d",
        "octocat",
        "Hello world!",
        True,
    )
    assert gist.created_at == datetime(2010, 4, 14, 2, 15, 15, tzinfo=UTC)
    [file] = gist.files
    assert (file.filename, file.language, file.size) == ("hello_world.rb", "Ruby", 167)
    assert gist.truncated is False


def test_odd_but_usable_fields_are_softened() -> None:
    gist = parse_gist(
        item(
            description="nul\x00inside",
            owner=None,
            files={"a.txt": {"size": True, "language": 5}},
        )
    )
    assert gist.description == "nul\ufffdinside"  # PostgreSQL text cannot hold NUL
    assert gist.owner is None
    [file] = gist.files
    assert (file.filename, file.size, file.language) == ("a.txt", None, None)


@pytest.mark.parametrize(
    "bad",
    [
        [],
        item(files=[]),
        item(files={"a": "text"}),
        item(id="../etc"),
        item(id=7),
        item(html_url=None),
        item(comments="3"),
        item(comments=True),
        {k: v for k, v in item().items() if k != "created_at"},
    ],
)
def test_a_malformed_gist_item_is_a_value_error(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_gist(bad)


def test_the_credential_fingerprint_is_stable_and_does_not_show_the_token() -> None:
    assert credential_fingerprint(None) == credential_fingerprint("") == "anonymous"
    token = "ghp_secret123"
    assert credential_fingerprint(token) == credential_fingerprint(token)
    assert credential_fingerprint(token) != credential_fingerprint("ghp_other")
    assert credential_fingerprint(token).startswith("token:")
    assert token not in credential_fingerprint(token)
