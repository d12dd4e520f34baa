"""The fake GitHub must behave like the documented API, or every other test lies."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from githubkit_schemas.v2022_11_28.models import (
    BaseGist,
    BasicError,
    GistSimple,
    PublicUser,
    RateLimitOverview,
)
from githubkit_schemas.v2026_03_10.models import RateLimitOverview as RateLimitOverview2026
from pydantic import ValidationError
from yarl import URL

from gistcache.testing.fake_github import FakeGitHub, bulk_file_text
from tests.support.conformance import conforms
from tests.support.waiting import eventually

UA = {"User-Agent": "fidelity-test"}


def test_conformance_catches_a_missing_field_a_wrong_type_and_an_invented_one() -> None:
    error = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
    conforms(BasicError, error)
    with pytest.raises(ValidationError):
        conforms(BasicError, {**error, "status": 404})  # GitHub sends the status as a string
    with pytest.raises(AssertionError, match=r"\$\.reason"):
        conforms(BasicError, {**error, "reason": "gone"})
    user = {"login": "octocat", "id": 1}
    with pytest.raises(ValidationError, match="node_id"):
        conforms(PublicUser, user)


@pytest.fixture
async def http(fake_server: TestServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=fake_server.make_url("/"), headers=UA) as session:
        yield session


async def test_payloads_conform_to_githubs_rest_description(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    big = fake.add_gist("octocat", {"big.txt": "x" * (2 * 1024 * 1024), "b.py": "pass\n"})
    resp = await http.get("/users/octocat/gists")
    items = await resp.json()
    assert len(items) == 2
    conforms(list[BaseGist], items)
    for item in items:
        # a listed file: its metadata, never its content
        for name, meta in item["files"].items():
            assert set(meta) <= {"filename", "type", "language", "raw_url", "size"}
            assert meta["filename"] == name
            assert isinstance(meta["size"], int)
            assert isinstance(meta["raw_url"], str)

    full = await (await http.get(f"/gists/{big.id}")).json()
    conforms(GistSimple, full)
    assert full["files"]["big.txt"]["truncated"] is True
    assert len(full["files"]["big.txt"]["content"]) == 1024 * 1024
    assert full["files"]["b.py"] == {
        **full["files"]["b.py"],
        "truncated": False,
        "content": "pass\n",
    }

    missing = await http.get("/users/nobody/gists")
    assert missing.status == 404
    error = await missing.json()
    conforms(BasicError, error)
    assert error["message"] == "Not Found"
    assert error["status"] == "404"

    user = await (await http.get("/users/octocat")).json()
    conforms(PublicUser, user)
    assert user["public_gists"] == 2  # the seeded gist and the big one

    status = await http.get("/rate_limit")
    conforms(RateLimitOverview, await status.json())
    newest = await http.get("/rate_limit", headers={"X-GitHub-Api-Version": "2026-03-10"})
    conforms(RateLimitOverview2026, await newest.json())


LIMIT = 1024 * 1024  # GitHub: "up to one megabyte of content for each file"


async def test_a_full_gist_has_the_list_items_fields_then_forks_and_history(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    gist = fake.add_gist("octocat", {"a.py": "one\ntwo\n", "b.md": "# b\n"}, description="d")
    [item] = [
        g for g in await (await http.get("/users/octocat/gists")).json() if g["id"] == gist.id
    ]
    fake.update_gist(gist.id, {"a.py": "one\nthree\nfour\n", "b.md": None})
    fake.update_gist(gist.id, description="a description alone is no commit")
    resp = await http.get(f"/gists/{gist.id}")
    assert resp.status == 200
    full = await resp.json()
    conforms(GistSimple, full)
    # GitHub's order: the list item's fields, forks and history before the last, truncated
    listed = [key for key in item if key != "truncated"]
    assert list(full) == [*listed, "forks", "history", "truncated"]
    assert full["id"] == gist.id
    assert full["description"] == "a description alone is no commit"
    assert full["forks"] == []
    assert full["truncated"] is False
    assert list(full["files"]) == ["a.py"]
    assert list(full["files"]["a.py"]) == [
        "filename", "type", "language", "raw_url", "size", "truncated", "content",
    ]  # fmt: skip
    assert full["files"]["a.py"]["content"] == "one\nthree\nfour\n"
    assert full["files"]["a.py"]["size"] == len("one\nthree\nfour\n")
    # history: one entry per commit touching the files, newest first
    newest, first = full["history"]
    assert newest["committed_at"] > first["committed_at"]
    assert newest["version"] != first["version"]
    assert newest["user"] == full["owner"]
    assert newest["url"].endswith(f"/gists/{gist.id}/{newest['version']}")
    assert first["change_status"] == {"total": 3, "additions": 3, "deletions": 0}
    # a.py: +three +four -two; b.md: -"# b"
    assert newest["change_status"] == {"total": 4, "additions": 2, "deletions": 2}


async def test_a_full_gists_file_content_is_cut_at_one_mebibyte(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    exact = b"x" * LIMIT
    over = b"y" * LIMIT + b"the end\n"
    split = b"a" + "\u00e9".encode() * (LIMIT // 2)  # the limit falls inside an é
    gist = fake.add_gist("octocat", {"exact.txt": exact, "over.txt": over, "split.txt": split})
    files = (await (await http.get(f"/gists/{gist.id}")).json())["files"]
    assert files["exact.txt"]["truncated"] is False
    assert files["exact.txt"]["content"] == exact.decode()
    assert files["over.txt"]["truncated"] is True
    assert files["over.txt"]["content"] == "y" * LIMIT
    assert files["over.txt"]["size"] == len(over)
    assert files["split.txt"]["truncated"] is True
    assert files["split.txt"]["content"].encode() == split[: LIMIT - 1]  # whole characters
    # the raw URL still serves the whole file
    assert await (await http.get(files["over.txt"]["raw_url"])).read() == over
    assert await (await http.get(files["split.txt"]["raw_url"])).read() == split


async def test_a_secret_gist_is_served_by_id_to_anyone(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.add_user("shy", token="shy-token")
    secret = fake.add_gist("shy", {"s.txt": "psst\n"}, public=False)
    assert await (await http.get("/users/shy/gists")).json() == []
    resp = await http.get(f"/gists/{secret.id}")  # anonymous
    assert resp.status == 200
    full = await resp.json()
    conforms(GistSimple, full)
    assert full["public"] is False
    assert full["files"]["s.txt"]["content"] == "psst\n"


async def test_an_unknown_gist_is_githubs_404(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    resp = await http.get("/gists/0123456789abcdef")
    assert resp.status == 404
    error = await resp.json()
    conforms(BasicError, error)
    assert error == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/gists/gists#get-a-gist",
        "status": "404",
    }
    assert resp.headers["x-ratelimit-remaining"] == "59"  # a 404 costs a request too
    fake.delete_gist("aa5a315d61ae9438b18d")
    assert (await http.get("/gists/aa5a315d61ae9438b18d")).status == 404


async def test_a_full_gist_answers_304_while_its_etag_matches(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    token = {"Authorization": "Bearer t1"}
    first = await http.get("/gists/aa5a315d61ae9438b18d", headers=token)
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    same = await http.get("/gists/aa5a315d61ae9438b18d", headers={**token, "If-None-Match": etag})
    assert same.status == 304
    assert await same.read() == b""
    assert same.headers["ETag"] == etag
    assert same.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]
    anonymous = await http.get("/gists/aa5a315d61ae9438b18d", headers={"If-None-Match": etag})
    assert anonymous.status == 200  # the ETag differs per credential
    fake.update_gist("aa5a315d61ae9438b18d", {"hello_world.rb": "puts 1\n"})
    changed = await http.get(
        "/gists/aa5a315d61ae9438b18d", headers={**token, "If-None-Match": etag}
    )
    assert changed.status == 200
    assert changed.headers["ETag"] != etag


async def test_a_full_gist_honours_failures_the_rate_limit_and_the_request_log(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.fail_next(502, path_contains="/gists/aa5a")
    assert (await http.get("/users/octocat/gists")).status == 200  # not a match
    failed = await http.get("/gists/aa5a315d61ae9438b18d")
    assert failed.status == 502
    assert (await http.get("/gists/aa5a315d61ae9438b18d")).status == 200
    fake.secondary_rate_limit(retry_after=30)
    limited = await http.get("/gists/aa5a315d61ae9438b18d")
    assert limited.status == 403
    assert limited.headers["retry-after"] == "30"
    fake.exhaust_rate_limit()
    spent = await http.get("/gists/aa5a315d61ae9438b18d")
    assert spent.status == 403
    assert spent.headers["x-ratelimit-remaining"] == "0"
    assert "rate limit" in (await spent.json())["message"]
    log = fake.api_requests("/gists/aa5a315d61ae9438b18d")
    assert [(r.method, r.status) for r in log] == [
        ("GET", 502), ("GET", 200), ("GET", 403), ("GET", 403),
    ]  # fmt: skip
    assert len(fake.api_requests()) == 5


async def test_pagination_links_use_the_numeric_id_form(
    fake: FakeGitHub, http: aiohttp.ClientSession, fake_server: TestServer
) -> None:
    user = fake.add_user("many", 777)
    for n in range(205):
        fake.add_gist("many", {f"{n}.txt": "x"})
    first = await http.get("/users/many/gists?per_page=100")
    links = {rel: str(link["url"]) for rel, link in first.links.items()}
    origin = str(fake_server.make_url("")).rstrip("/")
    assert links == {
        "next": f"{origin}/user/{user.id}/gists?per_page=100&page=2",
        "last": f"{origin}/user/{user.id}/gists?per_page=100&page=3",
        "first": f"{origin}/user/{user.id}/gists?per_page=100&page=1",
    }
    last = await http.get(links["last"])
    assert len(await last.json()) == 5
    assert "next" not in last.links
    assert "prev" in last.links

    default = await http.get("/users/many/gists")
    assert len(await default.json()) == 30
    capped = await http.get("/users/many/gists?per_page=500")
    assert len(await capped.json()) == 100

    single = await http.get("/users/octocat/gists")
    assert "Link" not in single.headers


async def test_since_filters_on_updated_at(fake: FakeGitHub, http: aiohttp.ClientSession) -> None:
    old = fake.add_gist("octocat", {"old.txt": "x"})
    newer = fake.add_gist("octocat", {"new.txt": "y"})
    fake.update_gist(old.id, {"old.txt": "z"})
    since = newer.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    ids = [g["id"] for g in await (await http.get(f"/users/octocat/gists?since={since}")).json()]
    assert sorted(ids) == sorted([old.id, newer.id])
    bad = await http.get("/users/octocat/gists?since=yesterday")
    assert bad.status == 422


async def test_etags_differ_per_credential_and_answer_304(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    anonymous = await http.get("/users/octocat/gists")
    authed = await http.get("/users/octocat/gists", headers={"Authorization": "Bearer t1"})
    assert anonymous.headers["ETag"] != authed.headers["ETag"]
    assert anonymous.headers["ETag"].startswith('W/"')

    again = await http.get(
        "/users/octocat/gists",
        headers={"Authorization": "Bearer t1", "If-None-Match": authed.headers["ETag"]},
    )
    assert again.status == 304
    assert await again.read() == b""
    # an authorised 304 is free; the anonymous one is not
    assert again.headers["x-ratelimit-remaining"] == authed.headers["x-ratelimit-remaining"]
    cross = await http.get(
        "/users/octocat/gists", headers={"If-None-Match": authed.headers["ETag"]}
    )
    assert cross.status == 200


@pytest.mark.parametrize(
    "write",
    [
        "update_gist",
        "add_gist",
        "delete_gist",
        "gist attribute",
        "gist's fields",
        "file's fields",
        "user attribute",
        "a plain dict put in place, then written",
        "quote_raw_urls",
    ],
)
async def test_a_page_the_fake_keeps_is_made_again_after_any_write_to_its_data(
    fake: FakeGitHub, http: aiohttp.ClientSession, write: str
) -> None:
    gist = fake.add_gist("keeper", {"a.txt": "a\n"})
    fake.add_gist("keeper", {"b.txt": "b\n"})
    first = await http.get("/users/keeper/gists")
    etag, body = first.headers["ETag"], await first.json()
    kept = await http.get("/users/keeper/gists", headers={"If-None-Match": etag})
    assert kept.status == 304
    if write == "update_gist":
        fake.update_gist(gist.id, description="new")
    elif write == "add_gist":
        fake.add_gist("keeper", {"c.txt": "c\n"})
    elif write == "delete_gist":
        fake.delete_gist(gist.id)
    elif write == "gist attribute":
        gist.description = "written directly"
    elif write == "gist's fields":
        gist.fields["html_url"] = "https://gist.github.com/elsewhere"
    elif write == "file's fields":
        gist.files["a.txt"].fields["language"] = "Odd"
    elif write == "user attribute":
        fake.user("keeper").id = 4242
    elif write == "a plain dict put in place, then written":
        plain: dict[str, Any] = {}
        gist.fields = plain
        await http.get("/users/keeper/gists")  # made with the plain dict: not kept
        plain["html_url"] = "https://gist.github.com/elsewhere"
    else:
        fake.quote_raw_urls = False
        gist.files["a.txt"] = type(gist.files["a.txt"])("a b.txt", b"a\n")
    after = await http.get("/users/keeper/gists", headers={"If-None-Match": etag})
    assert after.status == 200
    assert after.headers["ETag"] != etag
    assert await after.json() != body


async def test_secret_gists_are_listed_to_their_owners_token_alone(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.add_user("jo", token="ghp_jo")
    shown = fake.add_gist("jo", {"a.txt": "a"})
    secret = fake.add_gist("jo", {"b.txt": "b"}, public=False)

    async def listed(authorization: str | None) -> list[tuple[str, bool]]:
        headers = {"Authorization": authorization} if authorization else {}
        items = await (await http.get("/users/jo/gists", headers=headers)).json()
        return [(item["id"], item["public"]) for item in items]

    mine = [(secret.id, False), (shown.id, True)]
    assert await listed("Bearer ghp_jo") == mine
    assert await listed("token ghp_jo") == mine  # the older scheme, as in recorded traffic
    assert await listed("Bearer someone-else") == [(shown.id, True)]
    assert await listed(None) == [(shown.id, True)]
    by_id = await http.get(
        f"/user/{fake.user('jo').id}/gists", headers={"Authorization": "Bearer ghp_jo"}
    )
    assert [item["id"] for item in await by_id.json()] == [secret.id, shown.id]


async def test_an_old_format_item_names_its_owner_only_in_user(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    old = fake.add_gist("octocat", {"old.txt": "x"}, old_format=True)
    [item, modern] = await (await http.get("/users/octocat/gists")).json()
    assert item["id"] == old.id
    assert "owner" not in item
    assert "truncated" not in item
    assert (item["user"]["login"], item["user"]["id"]) == ("octocat", 1)
    assert item["public"] is True
    assert item["files"]["old.txt"]["raw_url"].endswith("/old.txt")
    assert modern["owner"]["login"] == "octocat"
    assert modern["user"] is None


async def test_raw_urls_percent_encode_file_names_as_github_does(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.add_gist("octocat", {"my notes (ü).txt": "x"})
    [item, _] = await (await http.get("/users/octocat/gists")).json()
    raw_url = item["files"]["my notes (ü).txt"]["raw_url"]
    assert raw_url.endswith("/my%20notes%20(%C3%BC).txt")
    resp = await http.get(URL(raw_url, encoded=True))
    assert await resp.text() == "x"
    assert fake.raw_requests()[-1].target.endswith("/my%20notes%20(%C3%BC).txt")

    fake.quote_raw_urls = False  # as typed: the client must encode it
    [item, _] = await (await http.get("/users/octocat/gists")).json()
    assert item["files"]["my notes (ü).txt"]["raw_url"].endswith("/my notes (ü).txt")


async def test_rate_limit_headers_and_exhaustion(http: aiohttp.ClientSession) -> None:
    fake_limit = 60
    for n in range(fake_limit):
        resp = await http.get("/users/octocat/gists")
        assert resp.status == 200
        assert resp.headers["x-ratelimit-limit"] == "60"
        assert resp.headers["x-ratelimit-remaining"] == str(fake_limit - n - 1)
        assert resp.headers["x-ratelimit-used"] == str(n + 1)
        assert resp.headers["x-ratelimit-resource"] == "core"
        assert int(resp.headers["x-ratelimit-reset"]) > 0
    over = await http.get("/users/octocat/gists")
    assert over.status == 403
    assert over.headers["x-ratelimit-remaining"] == "0"
    assert "rate limit" in (await over.json())["message"]
    # GET /rate_limit is answered whatever is left, and spends none
    for _ in range(2):
        status = await http.get("/rate_limit")
        assert status.status == 200
        body = await status.json()
        assert body["resources"]["core"]["remaining"] == 0
        assert body["rate"] == body["resources"]["core"]
        assert body["resources"]["core"]["used"] == fake_limit
    bad = await http.get("/rate_limit", headers={"X-GitHub-Api-Version": "v3"})
    assert bad.status == 400
    assert "is not a supported version" in (await bad.json())["message"]
    # a token has its own, larger budget
    authed = await http.get("/users/octocat/gists", headers={"Authorization": "Bearer t"})
    assert authed.status == 200
    assert authed.headers["x-ratelimit-limit"] == "5000"


async def test_no_user_agent_is_403(fake_server: TestServer) -> None:
    async with aiohttp.ClientSession(skip_auto_headers=["User-Agent"]) as session:
        resp = await session.get(fake_server.make_url("/users/octocat/gists"))
        assert resp.status == 403
        assert "User-Agent" in (await resp.json())["message"]


async def test_raw_urls_serve_whole_files_and_change_with_the_gist(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    content = "é" * (600 * 1024)  # 1.2 MB of UTF-8, more than the API's 1 MB
    gist = fake.add_gist("octocat", {"big.txt": content})
    listed: Any = await (await http.get("/users/octocat/gists")).json()
    raw_url = next(g for g in listed if g["id"] == gist.id)["files"]["big.txt"]["raw_url"]
    raw = await http.get(raw_url)
    assert raw.status == 200
    assert (await raw.read()).decode() == content
    assert "x-ratelimit-remaining" not in raw.headers
    assert len(fake.raw_requests()) == 1

    fake.update_gist(gist.id, {"big.txt": "new"})
    assert (await http.get(raw_url)).status == 404  # the old revision's URL is gone


async def test_raw_urls_name_each_files_revision_not_the_gists(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    gist = fake.add_gist("octocat", {"a.txt": "one\n", "b.txt": "two\n"})

    async def listed() -> tuple[str, dict[str, str]]:
        items: Any = await (await http.get("/users/octocat/gists")).json()
        item = next(g for g in items if g["id"] == gist.id)
        return item["updated_at"], {name: f["raw_url"] for name, f in item["files"].items()}

    updated_at, urls = await listed()
    fake.update_gist(gist.id, description="only the description")
    moved, same = await listed()
    assert moved != updated_at  # the gist changed ...
    assert same == urls  # ... its files did not, nor did their raw URLs
    fake.update_gist(gist.id, {"b.txt": "three\n"})
    _, edited = await listed()
    assert edited["a.txt"] == urls["a.txt"]
    assert edited["b.txt"] != urls["b.txt"]
    assert (await (await http.get(edited["b.txt"])).read()) == b"three\n"
    assert (await (await http.get(urls["a.txt"])).read()) == b"one\n"


async def test_injected_failures_and_request_log(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.fail_next(502, times=2)
    assert (await http.get("/users/octocat/gists")).status == 502
    assert (await http.get("/users/octocat/gists")).status == 502
    assert (await http.get("/users/octocat/gists")).status == 200
    assert [r.path for r in fake.api_requests()] == ["/users/octocat/gists"] * 3


async def test_429_mode_and_unknown_paths_in_githubs_shape(
    fake_server: TestServer,
) -> None:
    fake = FakeGitHub(anonymous_limit=1, rate_limit_status=429)
    fake.seed_octocat()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(headers=UA) as http:
            assert (await http.get(server.make_url("/users/octocat/gists"))).status == 200
            over = await http.get(server.make_url("/users/octocat/gists"))
            assert over.status == 429
            assert over.headers["x-ratelimit-remaining"] == "0"
            unknown = await http.get(
                server.make_url("/no/such/endpoint"), headers={"Authorization": "Bearer t"}
            )
            assert unknown.status == 404
            conforms(BasicError, await unknown.json())
    finally:
        await server.close()


async def test_bulk_users_have_deterministic_code_like_files(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.seed_bulk_user("bulk", gists=3, files_per_gist=2, file_bytes=2_000)
    gists = fake.user("bulk").gists
    assert len(gists) == 3
    assert [len(g.files) for g in gists] == [2, 2, 2]
    for n, gist in enumerate(gists):
        for f, (name, file) in enumerate(gist.files.items()):
            assert file.content == bulk_file_text("bulk", n, f, 2_000)  # any process agrees
            assert 1_500 < len(file.content) <= 2_000
            assert file.content.endswith(b"\n")
            assert name.startswith(f"file{f}.")
    assert len({f.content for g in gists for f in g.files.values()}) == 6
    assert bulk_file_text("bulk", 0, 0, 3 * 1024 * 1024).count(b"\n") > 50_000  # > corpus

    listed: Any = await (await http.get("/users/bulk/gists")).json()
    raw_url = listed[-1]["files"]["file0.py"]["raw_url"]
    raw = await http.get(raw_url)
    assert await raw.read() == bulk_file_text("bulk", 0, 0, 2_000)


@pytest.mark.parametrize(("args", "limit"), [((), 60), (("--anonymous-limit", "2"), 2)])
async def test_the_command_line_fake_limits_anonymous_requests_as_github_does(
    args: tuple[str, ...], limit: int
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gistcache.testing.fake_github", "--port", str(port), *args,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/users/octocat/gists"
    try:
        async with aiohttp.ClientSession(headers=UA) as http:
            for _ in range(200):
                try:
                    first = await http.get(url)
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            assert first.status == 200
            assert first.headers["x-ratelimit-limit"] == str(limit)
            assert first.headers["x-ratelimit-remaining"] == str(limit - 1)
            if limit == 2:
                assert (await http.get(url)).status == 200
                over = await http.get(url)
                assert over.status == 403
                assert "rate limit exceeded" in (await over.json())["message"]
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_gist_deleted_through_the_control_endpoint_is_gone(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    doomed = fake.add_gist("octocat", {"d.txt": "bye\n"})
    listed: Any = await (await http.get("/users/octocat/gists")).json()
    [raw_url] = [g["files"]["d.txt"]["raw_url"] for g in listed if g["id"] == doomed.id]
    api_before = len(fake.api_requests())

    deleted = await http.delete(f"/_fake/gists/{doomed.id}")
    assert deleted.status == 204
    assert len(fake.api_requests()) == api_before  # a control request is no API request
    ids = [g["id"] for g in await (await http.get("/users/octocat/gists")).json()]
    assert ids == ["aa5a315d61ae9438b18d"]
    assert (await (await http.get("/users/octocat")).json())["public_gists"] == 1
    assert (await http.get(f"/gists/{doomed.id}")).status == 404
    assert (await http.get(raw_url)).status == 404
    again = await http.delete(f"/_fake/gists/{doomed.id}")
    assert again.status == 404


async def test_the_truth_control_gives_a_users_current_public_gists_and_files(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    fake.add_user("tess", 4242, token="tess-token")
    old = fake.add_gist("tess", {"a.py": "one\n", "b.md": "# b\n"}, description="old")
    new = fake.add_gist("tess", {"c.txt": "three\n"})
    fake.add_gist("tess", {"s.txt": "secret\n"}, public=False)
    gone = fake.add_gist("tess", {"g.txt": "gone\n"})
    fake.update_gist(old.id, {"a.py": "uno\n", "b.md": None}, description="edited")
    fake.delete_gist(gone.id)

    resp = await http.get("/_fake/users/TESS/truth")
    assert resp.status == 200
    truth = await resp.json()
    assert truth["login"] == "tess"
    assert truth["id"] == 4242
    assert [g["id"] for g in truth["gists"]] == [new.id, old.id]  # GitHub's order
    # it agrees with what GitHub's own endpoints serve, files and contents alike
    listed: Any = await (await http.get("/users/tess/gists")).json()
    for item, told in zip(listed, truth["gists"], strict=True):
        assert told["updated_at"] == item["updated_at"]
        assert told["description"] == item["description"]
        assert set(told["files"]) == set(item["files"])
        for name, meta in told["files"].items():
            assert meta["raw_url"] == item["files"][name]["raw_url"]
            assert meta["size"] == item["files"][name]["size"]
            assert meta["revision"] in meta["raw_url"]
            content = await (await http.get(meta["raw_url"])).read()
            assert hashlib.sha256(content).hexdigest() == meta["sha256"]
    assert truth["gists"][1]["description"] == "edited"
    assert list(truth["gists"][1]["files"]) == ["a.py"]
    assert (
        truth["gists"][1]["files"]["a.py"]["revision"] == fake.gist(old.id).files["a.py"].revision
    )
    assert (await http.get("/_fake/users/nobody/truth")).status == 404
    assert fake.api_requests("/_fake/") == []


async def test_a_dropped_download_is_one_line_in_the_fakes_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that stops reading a raw file (a cancelled search) is ordinary: the fake
    says so in one line, as the service does, instead of a traceback."""
    caplog.set_level(logging.INFO)
    fake = FakeGitHub()
    gist = fake.add_gist("dropper", {"big.txt": b"x" * 4096 + b"\n" * (16 * 1024 * 1024)})
    # served as `make fake` serves it (run_app's runner: a handler is not cancelled when
    # its client leaves, unlike under TestServer)
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    [address] = runner.addresses
    try:
        async with aiohttp.ClientSession(headers=UA) as http:
            async with http.get(f"http://127.0.0.1:{address[1]}/users/dropper/gists") as resp:
                [item] = await resp.json()
            raw = URL(item["files"]["big.txt"]["raw_url"])
        # a client that reads the start of the file, then closes its socket
        reader, writer = await asyncio.open_connection(raw.host, raw.port)
        writer.write(
            f"GET {raw.raw_path} HTTP/1.1\r\nHost: {raw.host}\r\n"
            "User-Agent: fidelity-test\r\n\r\n".encode()
        )
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        await reader.readexactly(4096)
        writer.close()

        async def told() -> list[logging.LogRecord]:
            # the fake's line, or the traceback it used to print instead
            return [r for r in caplog.records if "went away" in r.getMessage() or r.exc_info]

        await eventually(told, what="the fake's log about the dropped download")
    finally:
        await runner.cleanup()
    assert [
        r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR
    ] == []
    [record] = await told()
    assert record.name == "fake-github"
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith(f"GET /gist-raw/dropper/{gist.id}/raw/")
    assert "the client went away after" in record.getMessage()


async def test_an_organisations_public_members_are_paged_with_etags(
    fake: FakeGitHub, http: aiohttp.ClientSession
) -> None:
    assert (await http.get("/orgs/acme/public_members")).status == 404
    logins = [f"member{n}" for n in range(3)]
    assert (await http.put("/_fake/orgs/Acme/public_members", json=logins)).status == 204
    first = await http.get("/orgs/acme/public_members?per_page=2")
    assert first.status == 200
    assert [u["login"] for u in await first.json()] == logins[:2]
    assert 'rel="next"' in first.headers["Link"]
    following = first.links["next"]["url"]
    second = await http.get(following)
    assert [u["login"] for u in await second.json()] == logins[2:]
    assert 'rel="next"' not in second.headers["Link"]
    etag = first.headers["ETag"]
    again = await http.get("/orgs/acme/public_members?per_page=2", headers={"If-None-Match": etag})
    assert again.status == 304
    bad = await http.put("/_fake/orgs/acme/public_members", json={"not": "a list"})
    assert bad.status == 400
