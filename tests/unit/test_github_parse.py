"""Reading GitHub's answers without a server (gistcache.github.parse), on samples shaped
like GitHub's documented examples and like answers recorded from the real API: gist
items old and new, rate-limit headers as GitHub spells them, errors and their waits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from multidict import CIMultiDict
from yarl import URL

from gistcache.github.client import credential_fingerprint
from gistcache.github.errors import GitHubNotFound, GitHubRateLimited, GitHubUnavailable
from gistcache.github.parse import (
    DEFAULT_RETRY_AFTER,
    MAX_RATE_LIMIT_WAIT,
    error_message,
    failure,
    json_body,
    names_a_wait,
    next_page,
    page_key,
    pages_between,
    parse_gist,
    parse_rate_limit,
    public_gists,
    rate_limit_retry_after,
)

NOW = 1_800_000_000.0

# one item of GET /users/{username}/gists as GitHub documents it today: "owner" set,
# "user" null, files without contents
TODAY_ITEM: dict[str, Any] = {
    "url": "https://api.github.com/gists/5f0c1d2e3b4a59687a8b",
    "forks_url": "https://api.github.com/gists/5f0c1d2e3b4a59687a8b/forks",
    "id": "5f0c1d2e3b4a59687a8b",
    "node_id": "G_kwDOAAbcdE2gisT",
    "git_pull_url": "https://gist.github.com/5f0c1d2e3b4a59687a8b.git",
    "html_url": "https://gist.github.com/5f0c1d2e3b4a59687a8b",
    "files": {
        "notes.md": {
            "filename": "notes.md",
            "type": "text/markdown",
            "language": "Markdown",
            "raw_url": "https://gist.githubusercontent.com/marguerite/5f0c1d2e3b4a59687a8b/raw/0a1b2c3d4e5f60718293a4b5c6d7e8f901234567/notes.md",
            "size": 812,
        },
        "build.sh": {
            "filename": "build.sh",
            "type": "application/x-sh",
            "language": "Shell",
            "raw_url": "https://gist.githubusercontent.com/marguerite/5f0c1d2e3b4a59687a8b/raw/89abcdef0123456789abcdef0123456789abcdef/build.sh",
            "size": 95,
        },
    },
    "public": True,
    "created_at": "2019-03-08T07:41:02Z",
    "updated_at": "2021-11-30T18:05:44Z",
    "description": "Release notes and the script that builds them",
    "comments": 4,
    "user": None,
    "comments_url": "https://api.github.com/gists/5f0c1d2e3b4a59687a8b/comments",
    "owner": {
        "login": "marguerite",
        "id": 583231,
        "node_id": "MDQ6VXNlcjU4MzIzMQ==",
        "type": "User",
        "site_admin": False,
    },
    "truncated": False,
}

# the 2012 shape, as recorded with the owner's token: the owner only under "user", raw
# URLs on gist.github.com, numeric ids; one of the two is secret
OLD_PAGE = json.dumps(
    [
        {
            "updated_at": "2012-06-02T09:14:40Z",
            "url": "https://api.github.com/gists/4481516",
            "comments": 1,
            "public": True,
            "git_pull_url": "git://gist.github.com/4481516.git",
            "files": {
                "hello.txt": {
                    "type": "text/plain",
                    "raw_url": "https://gist.github.com/raw/4481516/5e1f0a9c3b7d2e4f6a8c0b1d3e5f7a9c1b3d5e7f/hello.txt",
                    "size": 31,
                    "filename": "hello.txt",
                    "language": "Text",
                }
            },
            "user": {
                "url": "https://api.github.com/users/thibault",
                "login": "thibault",
                "id": 90417,
            },
            "description": "Said hello",
            "created_at": "2012-06-01T21:03:12Z",
            "id": "4481516",
            "html_url": "https://gist.github.com/4481516",
        },
        {
            "updated_at": "2012-05-11T16:20:09Z",
            "url": "https://api.github.com/gists/77ab09c3e1d2f4a5b6c7",
            "comments": 0,
            "public": False,
            "files": {
                "private.txt": {
                    "type": "text/plain",
                    "raw_url": "https://gist.github.com/raw/77ab09c3e1d2f4a5b6c7/aa11bb22cc33dd44ee55ff66aa77bb88cc99dd00/private.txt",
                    "size": 12,
                    "filename": "private.txt",
                    "language": "Text",
                }
            },
            "user": {
                "url": "https://api.github.com/users/thibault",
                "login": "thibault",
                "id": 90417,
            },
            "description": "Not for everyone",
            "created_at": "2012-05-11T16:20:09Z",
            "id": "77ab09c3e1d2f4a5b6c7",
            "html_url": "https://gist.github.com/77ab09c3e1d2f4a5b6c7",
        },
    ]
).encode()


def item(**changes: Any) -> dict[str, Any]:
    return {**TODAY_ITEM, **changes}


def test_a_documented_gist_item_becomes_a_gist() -> None:
    gist = parse_gist(TODAY_ITEM)
    assert gist.id == "5f0c1d2e3b4a59687a8b"
    assert gist.html_url == "https://gist.github.com/5f0c1d2e3b4a59687a8b"
    assert gist.description == "Release notes and the script that builds them"
    assert gist.public is True
    assert gist.owner == "marguerite"
    assert gist.comments == 4
    assert gist.truncated is False
    assert gist.created_at == datetime(2019, 3, 8, 7, 41, 2, tzinfo=UTC)
    assert gist.updated_at == datetime(2021, 11, 30, 18, 5, 44, tzinfo=UTC)
    assert [(f.filename, f.language, f.type, f.size) for f in gist.files] == [
        ("notes.md", "Markdown", "text/markdown", 812),
        ("build.sh", "Shell", "application/x-sh", 95),
    ]
    assert gist.files[1].raw_url == TODAY_ITEM["files"]["build.sh"]["raw_url"]


def test_an_old_item_names_its_owner_under_user() -> None:
    [old, _] = json_body(OLD_PAGE)
    gist = parse_gist(old)
    assert gist.owner == "thibault"
    assert gist.id == "4481516"
    assert gist.files[0].raw_url is not None
    assert gist.files[0].raw_url.startswith("https://gist.github.com/raw/4481516/")
    assert gist.truncated is False  # an old item has no "truncated"


def test_owner_wins_over_user_and_an_unusable_login_is_none() -> None:
    both = item(user={"login": "someone-else"})
    assert parse_gist(both).owner == "marguerite"
    assert parse_gist(item(owner=None, user=None)).owner is None
    assert parse_gist(item(owner={"login": "x" * 40})).owner is None
    assert parse_gist(item(owner={"login": 7})).owner is None


def test_secret_gists_are_dropped_from_a_page() -> None:
    listed = public_gists(json_body(OLD_PAGE))
    assert [gist.id for gist in listed] == ["4481516"]


@pytest.mark.parametrize("public", [False, None, "true", 1])
def test_only_a_plain_true_is_public(public: Any) -> None:
    assert public_gists([item(public=public), item(id="b" * 20)]) == [parse_gist(item(id="b" * 20))]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"message": "Not Found"}, "not a JSON array"),
        (None, "not a JSON array"),
        ([item(), item(id="../../etc")], "malformed gist list"),
        ([item(files=["notes.md"])], "malformed gist list"),
        ([item(comments="4")], "malformed gist list"),
        ([{"id": "abc"}], "malformed gist list"),
    ],
)
def test_a_page_that_is_not_a_list_of_gists_is_github_failing(body: Any, message: str) -> None:
    with pytest.raises(GitHubUnavailable, match=message):
        public_gists(body)


def test_nul_in_text_is_replaced_for_both_databases() -> None:
    gist = parse_gist(item(description="a\x00b"))
    assert gist.description == "a\ufffdb"


def recorded(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    """Headers as an aiohttp client holds them: names in GitHub's own spelling."""
    return CIMultiDict(pairs)


def test_rate_limit_headers_as_github_spells_them() -> None:
    headers = recorded(
        ("Server", "GitHub.com"),
        ("X-Ratelimit-Limit", "5000"),
        ("X-Ratelimit-Remaining", "4712"),
        ("X-Ratelimit-Reset", "1475150000"),
        ("Etag", 'W/"0f1e2d3c4b5a69788796a5b4c3d2e1f0"'),
    )
    limit = parse_rate_limit(headers)
    assert limit is not None
    assert (limit.limit, limit.remaining, limit.used, limit.resource) == (5000, 4712, None, None)
    assert limit.reset == datetime.fromtimestamp(1475150000, UTC)


def test_todays_rate_limit_headers_name_used_and_resource() -> None:
    headers = recorded(
        ("x-ratelimit-limit", "60"),
        ("x-ratelimit-remaining", "57"),
        ("x-ratelimit-reset", "1800003600"),
        ("x-ratelimit-used", "3"),
        ("x-ratelimit-resource", "core"),
    )
    limit = parse_rate_limit(headers)
    assert limit is not None
    assert (limit.limit, limit.remaining, limit.used, limit.resource) == (60, 57, 3, "core")


def test_old_and_malformed_rate_limit_headers() -> None:
    # 2012: a limit and what remains of it, no reset
    old = parse_rate_limit(
        recorded(("x-ratelimit-remaining", "4967"), ("x-ratelimit-limit", "5000"))
    )
    assert old is not None
    assert (old.remaining, old.reset, old.used) == (4967, None, None)
    assert parse_rate_limit(recorded()) is None
    assert (
        parse_rate_limit(recorded(("X-RateLimit-Limit", "lots"), ("X-RateLimit-Remaining", "1")))
        is None
    )
    odd = parse_rate_limit(
        recorded(
            ("X-RateLimit-Limit", "60"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "soon"),
            ("X-RateLimit-Used", "-1"),
        )
    )
    assert odd is not None
    assert (odd.remaining, odd.reset, odd.used) == (0, None, None)


SECONDARY = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before "
    "you try again. If you reach out to GitHub Support for help, please include the "
    "request ID 0A1B:2C3D:4E5F60:718293:6A7B8C9D.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}
PRIMARY = {
    "message": "API rate limit exceeded for 203.0.113.9. (But here's the good news: "
    "Authenticated requests get a higher rate limit.)",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}


def limited(status: int, headers: CIMultiDict[str], body: Any) -> GitHubRateLimited:
    error = failure(status, headers, body, NOW)
    assert isinstance(error, GitHubRateLimited)
    return error


def test_a_secondary_limit_with_retry_after_waits_as_told() -> None:
    headers = recorded(("Retry-After", "37"), ("Content-Type", "application/json"))
    assert limited(403, headers, SECONDARY).retry_after == 37
    assert names_a_wait(headers)


def test_a_secondary_limit_without_a_hint_waits_the_default() -> None:
    headers = recorded(("X-RateLimit-Limit", "5000"), ("X-RateLimit-Remaining", "4100"))
    assert limited(403, headers, SECONDARY).retry_after == DEFAULT_RETRY_AFTER
    assert not names_a_wait(headers)
    assert limited(429, recorded(), None).retry_after == DEFAULT_RETRY_AFTER


def test_a_spent_primary_limit_waits_for_the_reset() -> None:
    headers = recorded(
        ("X-RateLimit-Limit", "60"),
        ("X-RateLimit-Remaining", "0"),
        ("X-RateLimit-Reset", str(int(NOW) + 754)),
        ("X-RateLimit-Resource", "core"),
    )
    assert limited(403, headers, PRIMARY).retry_after == 754
    assert names_a_wait(headers)
    no_reset = recorded(("X-RateLimit-Remaining", "0"))
    assert limited(429, no_reset, PRIMARY).retry_after == DEFAULT_RETRY_AFTER
    passed = recorded(("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", str(int(NOW) - 5)))
    assert limited(403, passed, PRIMARY).retry_after == 1


@pytest.mark.parametrize(
    "headers",
    [
        recorded(("Retry-After", "946080000")),
        recorded(("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "99999999999")),
    ],
)
def test_no_wait_is_longer_than_githubs_window(headers: CIMultiDict[str]) -> None:
    assert limited(403, headers, PRIMARY).retry_after == MAX_RATE_LIMIT_WAIT


def test_an_unknown_user_is_not_found_with_githubs_message() -> None:
    body = json_body(
        b'{"message":"Not Found","documentation_url":'
        b'"https://docs.github.com/rest/gists/gists#list-gists-for-a-user","status":"404"}'
    )
    error = failure(404, recorded(("X-RateLimit-Remaining", "4968")), body, NOW)
    assert isinstance(error, GitHubNotFound)
    assert str(error) == "Not Found"
    assert str(failure(404, recorded(), None, NOW)) == "Not Found"


@pytest.mark.parametrize(
    ("status", "body", "text", "retryable"),
    [
        (401, {"message": "Bad credentials"}, "GitHub refused the request (401)", False),
        (
            403,
            {"message": "Resource not accessible by integration"},
            "refused the request (403)",
            False,
        ),
        (500, None, "GitHub answered 500", False),
        (502, None, "GitHub answered 502", True),
        (503, {"message": "Service Unavailable"}, "GitHub answered 503", True),
        (504, None, "GitHub answered 504", True),
        (422, {"message": "Validation Failed"}, "GitHub answered 422", False),
    ],
)
def test_other_failures_and_whether_to_retry_them(
    status: int, body: Any, text: str, retryable: bool
) -> None:
    error = failure(status, recorded(), body, NOW)
    assert isinstance(error, GitHubUnavailable)
    assert text in str(error)
    assert error.retryable is retryable


def test_error_bodies_and_json_that_is_not() -> None:
    assert error_message(SECONDARY).startswith("You have exceeded a secondary rate limit")
    assert error_message({"message": ["not", "text"]}) == ""
    assert error_message([{"message": "in a list"}]) == ""
    assert error_message(None) == ""
    assert json_body(b"") is None
    assert json_body(b"<html>Unicorn!</html>") is None
    assert json_body(b'{"message": "ok"}') == {"message": "ok"}


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


def minimal_item(**changes: Any) -> dict[str, Any]:
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


def test_odd_but_usable_fields_are_softened() -> None:
    gist = parse_gist(
        minimal_item(
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
        minimal_item(files=[]),
        minimal_item(files={"a": "text"}),
        minimal_item(id="../etc"),
        minimal_item(id=7),
        minimal_item(html_url=None),
        minimal_item(comments="3"),
        minimal_item(comments=True),
        {k: v for k, v in minimal_item().items() if k != "created_at"},
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


def test_pages_between_next_and_last_change_only_the_page_number() -> None:
    base = "https://api.github.com/user/1/gists?per_page=100&page="
    assert pages_between(URL(base + "2"), URL(base + "5"), 10) == [
        base + str(n) for n in (2, 3, 4, 5)
    ]
    assert pages_between(URL(base + "2"), URL(base + "999999"), 3) == [
        base + str(n) for n in (2, 3, 4)
    ]  # at most the limit, whatever the link says
    assert pages_between(URL(base + "2"), URL(base + "2"), 10) == []
    assert pages_between(URL(base + "3"), URL(base + "2"), 10) == []  # last before next


@pytest.mark.parametrize(
    "last",
    [
        "https://api.github.com/user/2/gists?per_page=100&page=5",  # another user
        "https://api.github.com/user/1/gists?per_page=30&page=5",  # another page size
        "https://api.github.com/user/1/gists?per_page=100",  # no page number
        "https://api.github.com/user/1/gists?per_page=100&page=5x",
    ],
)
def test_pages_between_is_nothing_when_the_links_differ_otherwise(last: str) -> None:
    following = URL("https://api.github.com/user/1/gists?per_page=100&page=2")
    assert pages_between(following, URL(last), 10) == []


def test_pages_are_one_whatever_the_order_of_their_query() -> None:
    later = "https://api.github.com/user/2/gists?page=3&per_page=100"
    assert page_key("https://api.github.com/user/2/gists?per_page=100&page=3") == page_key(later)
    assert page_key("HTTPS://API.github.com/user/2/gists?page=3&per_page=100") == page_key(later)
    assert page_key("https://api.github.com/user/2/gists?page=2&per_page=100") != page_key(later)
    assert page_key("https://api.github.com/user/3/gists?page=3&per_page=100") != page_key(later)
    following = URL("https://api.github.com/user/2/gists?per_page=100&page=2")
    assert pages_between(following, URL(later), 10) == [
        "https://api.github.com/user/2/gists?per_page=100&page=2",
        "https://api.github.com/user/2/gists?per_page=100&page=3",
    ]


def test_next_page_reads_other_rels_too() -> None:
    api = URL("https://api.github.com")
    asked = URL("https://api.github.com/user/1/gists?per_page=100")
    links = [
        '<https://api.github.com/user/1/gists?per_page=100&page=2>; rel="next", '
        '<https://api.github.com/user/1/gists?per_page=100&page=7>; rel="last"'
    ]
    assert str(next_page(links, asked, api, rel="last")).endswith("page=7")
    assert str(next_page(links, asked, api)).endswith("page=2")
