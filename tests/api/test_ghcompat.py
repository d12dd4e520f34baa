"""The GitHub-compatible API under /api/v3: GitHub's items, paging, Link
headers and errors, URLs pointing back at gistcache, ETags, the client's rate limit in
GitHub's headers; a client's token never leaves gistcache."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from githubkit_schemas.v2022_11_28.models import (
    BaseGist,
    BasicError,
    GistSimple,
    PublicUser,
    RateLimitOverview,
)
from limits import parse
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.conformance import conforms
from tests.support.github import many_gists
from tests.support.http import ClientFactory

Client = TestClient[Any, Any]
UA = {"User-Agent": "compat-test"}


async def _from_fake(fake_server: TestServer, path: str) -> tuple[Any, Any]:
    """What the fake GitHub itself answers ``path``: the JSON and the headers."""
    async with aiohttp.ClientSession(headers=UA) as http:
        resp = await http.get(fake_server.make_url(path))
        return await resp.json(), resp.headers


def _origin(server: Any) -> str:
    return str(server.make_url("")).rstrip("/")


def _rewritten(value: Any, fake: str, ours: str, key: str | None = None) -> Any:
    """``value`` with the fake's API URLs moved under ``ours`` (raw and html ones kept)."""
    if isinstance(value, str):
        keep = key in {"raw_url", "html_url", "git_pull_url", "git_push_url"}
        return value if keep or not value.startswith(fake + "/") else ours + value[len(fake) :]
    if isinstance(value, dict):
        return {k: _rewritten(v, fake, ours, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewritten(v, fake, ours) for v in value]
    return value


async def test_a_list_is_githubs_items_in_order_with_urls_pointing_back(
    client: Client, fake: FakeGitHub, fake_server: TestServer
) -> None:
    many_gists(fake, "prolific", 5)
    resp = await client.get("/api/v3/users/prolific/gists")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    text = await resp.text()
    body = json.loads(text)
    expected, _ = await _from_fake(fake_server, "/users/prolific/gists")
    ours = _origin(client.server) + "/api/v3"
    assert body == _rewritten(expected, _origin(fake_server), ours)
    # every key in GitHub's order, every item in the list's order
    assert [list(item) for item in body] == [list(item) for item in expected]
    assert body[0]["url"] == f"{ours}/gists/{body[0]['id']}"
    assert body[0]["owner"]["url"] == f"{ours}/users/prolific"
    raw_url = body[0]["files"]["f4.py"]["raw_url"]
    assert raw_url.startswith(_origin(fake_server) + "/gist-raw/")  # raw URLs are left alone
    assert body[0]["html_url"].startswith("https://gist.github.com/")
    assert _origin(fake_server) + "/users" not in text  # no API URL of GitHub's left
    conforms(list[BaseGist], body)
    assert "Link" not in resp.headers  # one page


async def test_paging_and_link_headers_in_githubs_form(
    client: Client, fake: FakeGitHub, fake_server: TestServer
) -> None:
    ids = many_gists(fake, "prolific", 7)
    user_id = fake.user("prolific").id
    ours = _origin(client.server) + "/api/v3"

    first = await client.get("/api/v3/users/prolific/gists?per_page=3")
    assert [g["id"] for g in await first.json()] == ids[:3]
    assert first.headers["Link"] == (
        f'<{ours}/user/{user_id}/gists?per_page=3&page=2>; rel="next", '
        f'<{ours}/user/{user_id}/gists?per_page=3&page=3>; rel="last"'
    )
    middle = await client.get(f"/api/v3/user/{user_id}/gists?page=2&per_page=3")
    assert [g["id"] for g in await middle.json()] == ids[3:6]
    assert middle.headers["Link"] == (
        f'<{ours}/user/{user_id}/gists?page=3&per_page=3>; rel="next", '
        f'<{ours}/user/{user_id}/gists?page=3&per_page=3>; rel="last", '
        f'<{ours}/user/{user_id}/gists?page=1&per_page=3>; rel="first", '
        f'<{ours}/user/{user_id}/gists?page=1&per_page=3>; rel="prev"'
    )
    last = await client.get(f"/api/v3/user/{user_id}/gists?page=3&per_page=3")
    assert [g["id"] for g in await last.json()] == ids[6:]
    assert last.headers["Link"] == (
        f'<{ours}/user/{user_id}/gists?page=1&per_page=3>; rel="first", '
        f'<{ours}/user/{user_id}/gists?page=2&per_page=3>; rel="prev"'
    )
    beyond = await client.get("/api/v3/users/prolific/gists?page=9&per_page=3")
    assert await beyond.json() == []
    # GitHub's default page size is 30, its largest 100
    many_gists(fake, "huge", 130)
    default = await client.get("/api/v3/users/huge/gists")
    assert len(await default.json()) == 30
    assert 'page=5>; rel="last"' in default.headers["Link"]
    capped = await client.get("/api/v3/users/huge/gists?per_page=500")
    assert len(await capped.json()) == 100
    # the whole list was walked once, by gistcache's own pages of 100
    assert len(fake.api_requests("/gists")) == 1 + 2


async def test_since_filters_on_updated_at_as_github_does(
    client: Client, fake: FakeGitHub, fake_server: TestServer
) -> None:
    ids = many_gists(fake, "prolific", 4)
    edited = fake.update_gist(ids[3], {"f0.py": "changed\n"})
    since = edited.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    resp = await client.get("/api/v3/users/prolific/gists", params={"since": since})
    body = await resp.json()
    expected, _ = await _from_fake(fake_server, f"/users/prolific/gists?since={since}")
    assert [g["id"] for g in body] == [g["id"] for g in expected] == [ids[3]]

    bad = await client.get("/api/v3/users/prolific/gists?since=yesterday")
    assert bad.status == 422
    error = await bad.json()
    assert error["message"] == "Validation Failed"
    assert error["status"] == "422"


async def test_etag_is_a_strong_hash_of_the_body_and_answers_304(
    client: Client, fake: FakeGitHub
) -> None:
    many_gists(fake, "prolific", 2)
    first = await client.get("/api/v3/users/prolific/gists")
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert not etag.startswith("W/")
    again = await client.get("/api/v3/users/prolific/gists", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""
    other = await client.get("/api/v3/users/prolific/gists?per_page=1")
    assert other.headers["ETag"] != etag
    gist = await client.get(f"/api/v3/gists/{(await first.json())[0]['id']}")
    unchanged = await client.get(
        gist.request_info.url.path, headers={"If-None-Match": gist.headers["ETag"]}
    )
    assert unchanged.status == 304
    assert len(fake.api_requests()) == 1  # the list, once: the gist came from it


async def test_a_user_is_githubs_user_cached_and_revalidated_like_a_list(
    client: Client, fake: FakeGitHub, fake_server: TestServer, clock: FakeClock
) -> None:
    resp = await client.get("/api/v3/users/OctoCat")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "MISS"
    body = await resp.json()
    expected, _ = await _from_fake(fake_server, "/users/octocat")
    ours = _origin(client.server) + "/api/v3"
    assert body == _rewritten(expected, _origin(fake_server), ours)
    assert list(body) == list(expected)  # GitHub's fields, in GitHub's order
    assert body["url"] == f"{ours}/users/octocat"
    assert body["html_url"] == "https://github.com/octocat"
    conforms(PublicUser, body)
    etag = resp.headers["ETag"]
    assert resp.headers["Cache-Control"].startswith("public, max-age=")

    del fake.requests[1:]  # the test's own look at the fake
    hit = await client.get("/api/v3/users/octocat")
    assert hit.headers["X-Cache"] == "HIT"
    assert await hit.json() == body
    assert [r.path for r in fake.api_requests()] == ["/users/octocat"]

    clock.advance(61)  # stale: asked again with If-None-Match, GitHub answers 304
    again = await client.get("/api/v3/users/octocat", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.headers["X-Cache"] == "REVALIDATED"
    calls = fake.api_requests()
    assert [c.status for c in calls] == [200, 304]
    assert calls[1].headers["If-None-Match"].startswith('W/"')

    fake.add_gist("octocat", {"more.txt": "more\n"})  # public_gists changes
    clock.advance(61)
    updated = await client.get("/api/v3/users/octocat")
    assert updated.headers["X-Cache"] == "UPDATED"
    assert (await updated.json())["public_gists"] == body["public_gists"] + 1
    assert updated.headers["ETag"] != etag


async def test_an_unknown_user_is_404_and_remembered_with_the_lists(
    client: Client, fake: FakeGitHub
) -> None:
    for path in ("/api/v3/users/nobody", "/api/v3/users/nobody/gists", "/api/v3/users/nobody"):
        resp = await client.get(path)
        assert resp.status == 404, path
        error = await resp.json()
        conforms(BasicError, error)
        assert error["message"] == "Not Found"
    assert [r.path for r in fake.api_requests()] == ["/users/nobody"]  # one 404 for both
    for path in ("/api/v3/users/not..valid", "/api/v3/users/" + "a" * 40):
        assert (await client.get(path)).status == 404  # never asked of GitHub
    assert len(fake.api_requests()) == 1


async def test_a_cached_user_is_served_stale_while_github_fails(
    client: Client, fake: FakeGitHub, clock: FakeClock
) -> None:
    body = await (await client.get("/api/v3/users/octocat")).json()
    clock.advance(61)
    fake.fail_next(500, times=10)
    resp = await client.get("/api/v3/users/octocat")
    assert resp.status == 200
    assert resp.headers["X-Cache"] == "STALE"
    assert "must-revalidate" in resp.headers["Cache-Control"]
    assert await resp.json() == body
    asked = len(fake.api_requests())
    assert (await client.get("/api/v3/users/octocat")).headers["X-Cache"] == "STALE"
    assert len(fake.api_requests()) == asked  # left alone for a while, as a list is
    uncached = await client.get("/api/v3/users/someone")
    assert uncached.status == 502
    assert (await uncached.json())["status"] == "502"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v3/users/prolific/gists",
        "/api/v3/users/prolific/gists?per_page=2&page=2",
        "/api/v3/user/{user_id}/gists",
        "/api/v3/gists/{gist_id}",
        "/api/v3/users/prolific",
        "/api/v3/rate_limit",
    ],
)
async def test_a_weak_etag_matches_on_every_endpoint_that_answers_304(
    make_client: ClientFactory, fake: FakeGitHub, path: str
) -> None:
    # caching clients (hishel, which githubkit uses) send back W/"…" for a strong tag
    client = await make_client(client_github_budget=parse("100/hour"))
    many_gists(fake, "prolific", 5)
    listed = await (await client.get("/api/v3/users/prolific/gists")).json()
    path = path.format(user_id=listed[0]["owner"]["id"], gist_id=listed[0]["id"])
    first = await client.get(path)
    assert first.status == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    for offered in (f"W/{etag}", f'"other", W/{etag}'):
        resp = await client.get(path, headers={"If-None-Match": offered})
        assert resp.status == 304, offered
        assert await resp.read() == b""
        assert resp.headers["ETag"] == etag
    changed = await client.get(path, headers={"If-None-Match": 'W/"other"'})
    assert changed.status == 200


async def test_a_gist_with_its_contents_as_github_gives_it(
    client: Client, fake: FakeGitHub, fake_server: TestServer
) -> None:
    big = fake.add_gist(
        "octocat", {"big.txt": "x" + "é" * (700 * 1024), "b.py": "pass\n", "empty.txt": ""}
    )
    resp = await client.get(f"/api/v3/gists/{big.id}")
    assert resp.status == 200
    body = await resp.json()
    expected, _ = await _from_fake(fake_server, f"/gists/{big.id}")
    ours = _origin(client.server) + "/api/v3"
    for name, meta in _rewritten(expected, _origin(fake_server), ours)["files"].items():
        assert body["files"][name] == meta
    assert body["files"]["big.txt"]["truncated"] is True
    assert len(body["files"]["big.txt"]["content"].encode()) <= 1024 * 1024
    assert body["files"]["b.py"]["content"] == "pass\n"
    assert body["url"] == f"{ours}/gists/{big.id}"
    conforms(GistSimple, body)
    # the list was asked for once, each file once (from its raw URL, costing no budget);
    # the second time all comes from the cache
    assert len(fake.raw_requests()) == 3
    api_before = len(fake.api_requests())
    again = await client.get(f"/api/v3/gists/{big.id}")
    assert await again.json() == body
    assert len(fake.raw_requests()) == 3
    assert len(fake.api_requests()) == api_before


PNG = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 8


async def test_a_binary_or_oversized_gist_is_answered_from_the_cache(
    make_client: ClientFactory, fake: FakeGitHub, fake_server: TestServer, clock: FakeClock
) -> None:
    # files over GISTCACHE_MAX_FILE_BYTES are never downloaded whole: only their head
    client = await make_client(max_file_bytes=2 * 1024 * 1024)
    huge = "é" * (1536 * 1024) + "\n"  # 3 MiB of text, over the cache's limit
    gist = fake.add_gist(
        "octocat", {"logo.png": PNG, "big.png": PNG * 600, "notes.txt": "hi\n", "huge.txt": huge}
    )
    resp = await client.get(f"/api/v3/gists/{gist.id}")
    assert resp.status == 200
    body = await resp.json()
    expected, _ = await _from_fake(fake_server, f"/gists/{gist.id}")
    for name, meta in expected["files"].items():
        assert body["files"][name] == meta, name  # as GitHub gives each file
    logo = body["files"]["logo.png"]
    assert (logo["encoding"], logo["truncated"]) == ("base64", False)
    assert base64.b64decode(logo["content"]) == PNG
    big = body["files"]["big.png"]
    assert big["truncated"] is True
    assert base64.b64decode(big["content"]) == (PNG * 600)[: 1024 * 1024]
    assert body["files"]["huge.txt"]["truncated"] is True
    assert "encoding" not in body["files"]["huge.txt"]
    conforms(GistSimple, body)
    raw_first = len(fake.raw_requests())
    # the three files the cache downloads (huge.txt is over its limit), then the head of
    # each file it holds no text of
    assert raw_first == 3 + 3
    api_first = len(fake.api_requests())

    # a repeat costs GitHub nothing, and GitHub unreachable changes nothing
    again = await client.get(f"/api/v3/gists/{gist.id}")
    assert again.headers["X-Cache"] == "HIT"
    assert await again.json() == body
    assert (len(fake.raw_requests()), len(fake.api_requests())) == (raw_first, api_first)
    fake.fail_next(500, times=100)
    fake.fail_next(500, times=100, kind="raw")
    clock.advance(61)  # the list is stale too: GitHub fails to revalidate it
    down = await client.get(f"/api/v3/gists/{gist.id}")
    assert down.status == 200
    assert down.headers["X-Cache"] == "STALE"
    assert await down.json() == body
    assert len(fake.raw_requests()) == raw_first


async def test_a_gist_newer_than_the_cached_list_is_found(client: Client, fake: FakeGitHub) -> None:
    assert (await client.get("/api/v3/users/octocat/gists")).status == 200  # cached, fresh
    new = fake.add_gist("octocat", {"new.py": "new\n"})
    resp = await client.get(f"/api/v3/gists/{new.id}")
    assert resp.status == 200
    assert (await resp.json())["files"]["new.py"]["content"] == "new\n"
    # the list, GitHub's GET /gists/{id} to learn whose gist it is, the list again
    assert [r.path for r in fake.api_requests()] == [
        "/users/octocat/gists",
        f"/gists/{new.id}",
        "/users/octocat/gists",
    ]


async def test_a_gist_larger_than_a_github_answer_may_be_is_found_by_its_id(
    client: Client, fake: FakeGitHub, fake_server: TestServer
) -> None:
    # each control character is six bytes in GitHub's JSON: six files of 1 MiB make a
    # GET /gists/{id} of 36 MiB, over the 32 MiB any GitHub answer may have, with the
    # owner named after every file's contents (as GitHub orders the fields)
    files = {f"f{n}.txt": "\x01" * (1024 * 1024) for n in range(6)}
    large = fake.add_gist("octocat", files)
    raw, _ = await _from_fake(fake_server, f"/gists/{large.id}")
    assert list(raw).index("owner") > list(raw).index("files")
    asked_before = len(fake.api_requests())

    resp = await client.get(f"/api/v3/gists/{large.id}")
    assert resp.status == 200
    body = await resp.json()
    assert body["owner"]["login"] == "octocat"
    assert body["files"]["f0.txt"]["content"] == files["f0.txt"]
    asked = [r.path for r in fake.api_requests()[asked_before:]]
    assert asked == [f"/gists/{large.id}", "/users/octocat/gists"]


async def test_an_unknown_secret_or_malformed_gist_is_404_in_githubs_shape(
    client: Client, fake: FakeGitHub
) -> None:
    secret = fake.add_gist("octocat", {"s.py": "secret\n"}, public=False)
    for path in (f"/api/v3/gists/{secret.id}", "/api/v3/gists/0000", "/api/v3/gists/a%20b"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert resp.content_type == "application/json"
        error = await resp.json()
        conforms(BasicError, error)
        assert error["message"] == "Not Found"
        assert error["status"] == "404"
    assert not [r for r in fake.raw_requests() if secret.id in r.path]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v3/users/nobody/gists", 404),
        ("GET", "/api/v3/users/not..valid/gists", 404),
        ("GET", "/api/v3/user/999999/gists", 404),
        ("GET", "/api/v3/repos/octocat/hello", 404),
        ("GET", "/api/v3", 404),
        ("POST", "/api/v3/users/octocat/gists", 405),
        ("DELETE", "/api/v3/gists/aa5a315d61ae9438b18d", 405),
    ],
)
async def test_unsupported_requests_answer_in_githubs_error_shape(
    client: Client, method: str, path: str, status: int
) -> None:
    resp = await client.request(method, path)
    assert resp.status == status
    assert resp.content_type == "application/json"  # never problem+json
    error = await resp.json()
    conforms(BasicError, error)
    assert error["status"] == str(status)
    assert error["documentation_url"].startswith("https://docs.github.com/rest")
    if status == 405:
        assert resp.headers["Allow"] == "GET, HEAD"


async def test_github_failing_with_nothing_cached_is_a_github_shaped_5xx(
    client: Client, fake: FakeGitHub
) -> None:
    fake.fail_next(500, times=10)
    resp = await client.get("/api/v3/users/octocat/gists")
    assert resp.status == 502
    error = await resp.json()
    assert set(error) == {"message", "documentation_url", "status"}
    assert error["status"] == "502"
    assert "Traceback" not in error["message"]


async def test_the_clients_token_is_accepted_and_never_forwarded(
    client: Client, fake: FakeGitHub
) -> None:
    token = {"Authorization": "Bearer ghp_clientsOwnSecret"}
    resp = await client.get("/api/v3/users/octocat/gists", headers=token)
    assert resp.status == 200
    gist = await client.get("/api/v3/gists/aa5a315d61ae9438b18d", headers=token)
    assert gist.status == 200
    missing = await client.get("/api/v3/gists/cafe0000", headers=token)
    assert missing.status == 404
    assert fake.requests
    for seen in fake.requests:
        assert "ghp_clientsOwnSecret" not in json.dumps(seen.headers)
        assert "Authorization" not in seen.headers  # gistcache has no token of its own here


async def test_with_a_token_of_its_own_gistcache_sends_only_that(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    client = await make_client(github_token="gistcache-own-token")
    token = {"Authorization": "token ghp_clientsOwnSecret"}
    assert (await client.get("/api/v3/users/octocat/gists", headers=token)).status == 200
    assert (await client.get("/api/v3/gists/cafe0000", headers=token)).status == 404
    api = fake.api_requests()
    assert len(api) == 2
    assert {r.headers["Authorization"] for r in api} == {"Bearer gistcache-own-token"}
    for seen in fake.requests:
        assert "ghp_clientsOwnSecret" not in json.dumps(seen.headers)


async def test_urls_follow_the_host_and_a_trusted_proxys_forwarded_origin(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    direct = await make_client()
    resp = await direct.get("/api/v3/users/octocat/gists", headers={"Host": "cache.example:8080"})
    assert (await resp.json())[0]["url"].startswith("http://cache.example:8080/api/v3/gists/")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gists.example"}
    untrusted = await direct.get("/api/v3/users/octocat/gists", headers=forwarded)
    assert (await untrusted.json())[0]["url"].startswith(_origin(direct.server))
    bad_host = await direct.get("/api/v3/users/octocat/gists", headers={"Host": "a b<c>"})
    assert bad_host.status == 400
    assert set(await bad_host.json()) == {"message", "documentation_url", "status"}

    behind = await make_client(trusted_proxies=(__import__("ipaddress").ip_network("127.0.0.1"),))
    resp = await behind.get("/api/v3/users/octocat/gists", headers=forwarded)
    assert (await resp.json())[0]["url"].startswith("https://gists.example/api/v3/gists/")


async def test_rate_limit_headers_and_endpoint_describe_the_clients_github_budget(
    make_client: ClientFactory, fake: FakeGitHub
) -> None:
    # the budget counts GitHub API requests, as GitHub's own headers do
    limited = await make_client(client_github_budget=parse("3/minute"))
    first = await limited.get("/api/v3/users/octocat/gists")  # not cached: one request
    assert first.headers["x-ratelimit-limit"] == "3"
    assert first.headers["x-ratelimit-remaining"] == "2"
    assert first.headers["x-ratelimit-used"] == "1"
    assert first.headers["x-ratelimit-resource"] == "core"
    assert int(first.headers["x-ratelimit-reset"]) > 1_700_000_000  # a Unix time
    status = await limited.get("/api/v3/rate_limit")
    assert status.status == 200
    overview = await status.json()
    conforms(RateLimitOverview, overview)
    assert overview["rate"]["remaining"] == 2  # asking spends none, as on GitHub
    assert overview["resources"]["core"] == overview["rate"]
    missing = await limited.get("/api/v3/nothing-here")  # even an error says it
    assert missing.headers["x-ratelimit-remaining"] == "2"
    cached = await limited.get("/api/v3/users/octocat/gists")  # costs GitHub nothing
    assert cached.headers["x-ratelimit-remaining"] == "2"
    for login in ("user-a", "user-b"):  # unknown users: one request each
        assert (await limited.get(f"/api/v3/users/{login}/gists")).status == 404
    over = await limited.get("/api/v3/users/user-c/gists")
    assert over.status == 429
    assert over.content_type == "application/json"
    error = await over.json()
    assert error["message"].startswith("API rate limit exceeded")
    assert "3 GitHub API requests per 60 s" in error["message"]
    assert error["status"] == "429"
    assert over.headers["x-ratelimit-remaining"] == "0"
    assert int(over.headers["Retry-After"]) >= 1
    assert not fake.api_requests("user-c")
    # what is cached is still answered
    assert (await limited.get("/api/v3/users/octocat/gists")).status == 200

    # without a budget: as GitHub Enterprise with rate limiting off
    unlimited = await make_client(client_github_budget=None)
    resp = await unlimited.get("/api/v3/users/octocat/gists")
    assert "x-ratelimit-limit" not in resp.headers
    off = await unlimited.get("/api/v3/rate_limit")
    assert off.status == 404
    assert (await off.json())["message"] == "Rate limiting is not enabled."


async def test_rate_limit_answers_in_the_shape_of_the_api_version_asked_for(
    make_client: ClientFactory,
) -> None:
    from githubkit_schemas.v2026_03_10.models import RateLimitOverview as RateLimitOverview2026

    client = await make_client(client_github_budget=parse("3/minute"))
    for headers in ({}, {"X-GitHub-Api-Version": "2022-11-28"}):
        resp = await client.get("/api/v3/rate_limit", headers=headers)
        assert resp.status == 200
        body = await resp.json()
        conforms(RateLimitOverview, body)
        assert body["rate"] == body["resources"]["core"]
        assert "X-GitHub-Api-Version" in resp.headers.getall("Vary")
    newest = await client.get("/api/v3/rate_limit", headers={"X-GitHub-Api-Version": "2026-03-10"})
    assert newest.status == 200
    body = await newest.json()
    assert "rate" not in body  # removed in 2026-03-10
    conforms(RateLimitOverview2026, body)
    assert body["resources"]["core"]["limit"] == 3
    assert newest.headers["ETag"] != resp.headers["ETag"]


async def test_list_items_take_the_shape_of_the_api_version_asked_for(
    client: Client, fake: FakeGitHub
) -> None:
    from githubkit_schemas.v2026_03_10.models import BaseGist as BaseGist2026

    many_gists(fake, "prolific", 2)
    old = await (await client.get("/api/v3/users/prolific/gists")).json()
    assert all("user" in item for item in old)
    resp = await client.get(
        "/api/v3/users/prolific/gists", headers={"X-GitHub-Api-Version": "2026-03-10"}
    )
    assert resp.status == 200
    new = await resp.json()
    assert new == [{k: v for k, v in item.items() if k != "user"} for item in old]
    conforms(list[BaseGist2026], new)
    gist = await client.get(
        f"/api/v3/gists/{new[0]['id']}", headers={"X-GitHub-Api-Version": "2026-03-10"}
    )
    assert "user" in await gist.json()  # a single gist keeps it
    assert len(fake.api_requests()) == 1  # one cached list answers both versions


@pytest.mark.parametrize(
    "path",
    [
        "/api/v3/rate_limit",
        "/api/v3/users/octocat/gists",
        "/api/v3/gists/aa5a315d61ae9438b18d",
        "/api/v3/nothing-here",
    ],
)
async def test_an_unsupported_api_version_is_githubs_400_on_every_endpoint(
    make_client: ClientFactory, fake: FakeGitHub, path: str
) -> None:
    client = await make_client(client_github_budget=parse("3/minute"))
    for version in ("v3", "2021-01-01", "x" * 200):
        resp = await client.get(path, headers={"X-GitHub-Api-Version": version})
        assert resp.status == 400, (path, version)
        assert resp.content_type == "application/json"
        error = await resp.json()
        conforms(BasicError, error)
        assert error["status"] == "400"
        assert f'"{version[:64]}", is not a supported version' in error["message"]
        assert '"2026-03-10" (most recent), "2022-11-28"' in error["message"]
        assert "x" * 65 not in error["message"]
    assert not fake.api_requests()  # refused before anything is asked of GitHub


async def test_a_list_cached_before_items_were_kept_is_fetched_for_an_answer(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock, engine: AsyncEngine
) -> None:
    from sqlalchemy import update

    from gistcache.store.models import gists, users

    client = await make_client(memory_cache_mb=0)
    many_gists(fake, "prolific", 2)
    assert (await client.get("/prolific")).status == 200
    async with engine.begin() as conn:
        await conn.execute(update(gists).values(raw=None))
        await conn.execute(update(users).values(github_id=None))
    # fresh, but without GitHub's items: asked for again, unconditionally
    resp = await client.get("/api/v3/users/prolific/gists")
    assert resp.status == 200
    assert len(await resp.json()) == 2
    calls = fake.api_requests()
    assert len(calls) == 2
    assert "If-None-Match" not in calls[1].headers
    assert (await client.get("/api/v3/users/prolific/gists")).headers["X-Cache"] == "HIT"
    assert len(fake.api_requests()) == 2


async def test_a_clients_no_cache_does_not_spend_githubs_budget(
    client: Client, fake: FakeGitHub
) -> None:
    # githubkit sends it on every request; GitHub answers alike with or without it
    no_cache = {"Cache-Control": "no-cache", "Pragma": "no-cache"}
    for _ in range(3):
        resp = await client.get("/api/v3/users/octocat/gists", headers=no_cache)
        assert resp.status == 200
    assert len(fake.api_requests()) == 1


def test_the_urls_are_rewritten_only_under_the_configured_api() -> None:
    from gistcache.web.ghcompat.links import Rewriter

    rewriter = Rewriter("https://ghe.example/api/v3", "http://cache:8080/api/v3")
    body = {
        "url": "https://ghe.example/api/v3/gists/1",
        "following_url": "https://ghe.example/api/v3/users/u/following{/other_user}",
        "raw_url": "https://ghe.example/api/v3/raw/x",
        "other": "https://ghe.example/gist/raw/1/x",
        "api": "https://ghe.example/api/v30/x",
        "nested": [{"url": "https://api.github.com/gists/1"}],
    }
    assert rewriter.body(body) == {
        "url": "http://cache:8080/api/v3/gists/1",
        "following_url": "http://cache:8080/api/v3/users/u/following{/other_user}",
        "raw_url": "https://ghe.example/api/v3/raw/x",
        "other": "https://ghe.example/gist/raw/1/x",
        "api": "https://ghe.example/api/v30/x",
        "nested": [{"url": "https://api.github.com/gists/1"}],
    }
    assert urlsplit(rewriter.url("https://ghe.example/api/v3")).path == "/api/v3"
