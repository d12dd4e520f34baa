"""Three maintained GitHub clients (PyGithub, githubkit, gidgethub) work against
gistcache's /api/v3 by changing only their base URL: each gets what it gets
from the fake GitHub directly, a second run costs GitHub nothing while the cache is
fresh, and the client's token never reaches GitHub."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import github
import pytest
from aiohttp.test_utils import TestClient, TestServer
from gidgethub.aiohttp import GitHubAPI
from githubkit import GitHub
from githubkit_schemas.v2022_11_28.models import BaseGist, GistSimple

from gistcache.testing.fake_github import FakeGitHub
from tests.api.test_ghcompat import _rewritten
from tests.support.conformance import conforms
from tests.support.github import many_gists

Client = TestClient[Any, Any]
TOKEN = "ghp_theClientsOwnToken0123456789"
GISTS = 7
PER_PAGE = 3  # three pages of the list


@pytest.fixture
def seeded(fake: FakeGitHub) -> list[str]:
    ids = many_gists(fake, "prolific", GISTS - 1)
    # one gist of two files, one of them past GitHub's 1 MB of content
    big = fake.add_gist("prolific", {"big.txt": "ab\n" * 400_000, "small.md": "# hi\n"})
    return [big.id, *ids]


def _base(server: Any, prefix: str = "") -> str:
    return str(server.make_url(prefix)).rstrip("/")


class Counter:
    """How many requests reached the fake GitHub since the last look."""

    def __init__(self, fake: FakeGitHub) -> None:
        self._fake = fake
        self._seen = len(fake.requests)

    def take(self) -> tuple[int, int]:
        """(API requests, raw downloads) since the last call."""
        new = self._fake.requests[self._seen :]
        self._seen = len(self._fake.requests)
        return (
            sum(1 for r in new if r.kind == "api"),
            sum(1 for r in new if r.kind == "raw"),
        )


def _no_token_reached(fake: FakeGitHub, since: int) -> None:
    for seen in fake.requests[since:]:
        assert TOKEN not in json.dumps(seen.headers), seen.path


# --- PyGithub (synchronous: run in a thread, beside the servers' event loop) ----------


def _pygithub(base_url: str) -> dict[str, Any]:
    gh = github.Github(
        base_url=base_url, auth=github.Auth.Token(TOKEN), per_page=PER_PAGE, retry=None
    )
    try:
        user = gh.get_user("prolific", lazy=True)
        listed = list(user.get_gists())
        first = listed[0]
        # a listed gist's files: PyGithub completes the gist through its url for them
        listed_files = {name: f.content for name, f in first.files.items()}
        gist = gh.get_gist(first.id)
        return {
            "ids": [g.id for g in listed],
            "descriptions": [g.description for g in listed],
            "updated": [g.updated_at for g in listed],
            "owners": {g.owner.login for g in listed},
            "listed_files": listed_files,
            "files": {
                name: (f.size, f.language, f.raw_url, f.content) for name, f in gist.files.items()
            },
            "public": gist.public,
        }
    finally:
        gh.close()


async def test_pygithub(
    client: Client, fake: FakeGitHub, fake_server: TestServer, seeded: list[str]
) -> None:
    counter = Counter(fake)
    direct = await asyncio.to_thread(_pygithub, _base(fake_server))
    counter.take()

    start = len(fake.requests)
    cached = await asyncio.to_thread(_pygithub, _base(client.server, "/api/v3"))
    assert cached == direct
    assert cached["ids"] == seeded
    assert len(cached["files"]["big.txt"][3].encode()) == 1024 * 1024
    # one walk of the list (gistcache asks 100 at a time), each file downloaded once
    assert counter.take() == (1, 2)
    again = await asyncio.to_thread(_pygithub, _base(client.server, "/api/v3"))
    assert again == direct
    assert counter.take() == (0, 0)
    _no_token_reached(fake, start)


def _pygithub_everyday(base_url: str) -> dict[str, Any]:
    """PyGithub's everyday call, without ``lazy``: it asks ``GET /users/{login}`` first."""
    gh = github.Github(
        base_url=base_url, auth=github.Auth.Token(TOKEN), per_page=PER_PAGE, retry=None
    )
    try:
        user = gh.get_user("prolific")
        return {
            "login": user.login,
            "id": user.id,
            "public_gists": user.public_gists,
            "gists_url": user.gists_url.split("/users/")[1],
            "ids": [g.id for g in user.get_gists()],
        }
    finally:
        gh.close()


async def test_pygithub_get_user_without_lazy(
    client: Client, fake: FakeGitHub, fake_server: TestServer, seeded: list[str]
) -> None:
    counter = Counter(fake)
    direct = await asyncio.to_thread(_pygithub_everyday, _base(fake_server))
    counter.take()
    start = len(fake.requests)
    cached = await asyncio.to_thread(_pygithub_everyday, _base(client.server, "/api/v3"))
    assert cached == direct
    assert cached["ids"] == seeded
    assert counter.take() == (2, 0)  # the user, then one walk of the list
    again = await asyncio.to_thread(_pygithub_everyday, _base(client.server, "/api/v3"))
    assert again == direct
    assert counter.take() == (0, 0)
    _no_token_reached(fake, start)
    with pytest.raises(github.UnknownObjectException):
        await asyncio.to_thread(
            lambda: github.Github(base_url=_base(client.server, "/api/v3")).get_user("nobody")
        )


def _pygithub_gist(base_url: str, gist_id: str) -> dict[str, Any]:
    gh = github.Github(base_url=base_url, auth=github.Auth.Token(TOKEN), retry=None)
    try:
        gist = gh.get_gist(gist_id)
        return {
            name: (f.size, f.raw_data.get("truncated"), f.raw_data.get("encoding"), f.content)
            for name, f in gist.files.items()
        }
    finally:
        gh.close()


async def test_pygithub_gets_a_binary_gist_while_github_is_unreachable(
    client: Client, fake: FakeGitHub, fake_server: TestServer, clock: Any
) -> None:
    picture = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 5000  # 1.2 MiB
    gist = fake.add_gist("octocat", {"picture.png": picture, "read.me": "a picture\n"})
    direct = await asyncio.to_thread(_pygithub_gist, _base(fake_server), gist.id)
    assert direct["picture.png"][1:3] == (True, "base64")
    cached = await asyncio.to_thread(_pygithub_gist, _base(client.server, "/api/v3"), gist.id)
    assert cached == direct
    counter = Counter(fake)
    fake.fail_next(503, times=100)  # GitHub unreachable: its API and its raw files
    fake.fail_next(503, times=100, kind="raw")
    clock.advance(3600)  # the list is stale: it cannot be revalidated
    down = await asyncio.to_thread(_pygithub_gist, _base(client.server, "/api/v3"), gist.id)
    assert down == direct
    assert counter.take()[1] == 0  # no raw download: every file came from the cache


# --- githubkit ---------------------------------------------------------------------


async def _githubkit(base_url: str) -> dict[str, Any]:
    # the client's own HTTP cache off: what is measured is gistcache's
    async with GitHub(TOKEN, base_url=base_url + "/", http_cache=False, auto_retry=False) as gh:
        listed = [
            gist
            async for gist in gh.rest.paginate(
                gh.rest.gists.async_list_for_user, username="prolific", per_page=PER_PAGE
            )
        ]
        got = (await gh.rest.gists.async_get(gist_id=listed[0].id)).parsed_data
        return {
            "listed": [(g.id, g.description, g.updated_at, sorted(g.files)) for g in listed],
            "files": got.files.model_dump(mode="json") if got.files else None,
            "owner": got.owner.login if got.owner else None,
        }


async def test_githubkit(
    client: Client, fake: FakeGitHub, fake_server: TestServer, seeded: list[str]
) -> None:
    counter = Counter(fake)
    direct = await _githubkit(_base(fake_server))
    counter.take()

    start = len(fake.requests)
    cached = await _githubkit(_base(client.server, "/api/v3"))
    assert cached == direct
    assert [g[0] for g in cached["listed"]] == seeded
    assert cached["files"]["big.txt"]["truncated"] is True
    assert cached["files"]["small.md"]["content"] == "# hi\n"
    assert counter.take() == (1, 2)
    assert await _githubkit(_base(client.server, "/api/v3")) == direct
    assert counter.take() == (0, 0)
    _no_token_reached(fake, start)


async def test_gistcaches_answers_conform_to_githubs_rest_description(
    client: Client, fake: FakeGitHub, seeded: list[str]
) -> None:
    page = await client.get(f"/api/v3/users/prolific/gists?per_page={PER_PAGE}")
    conforms(list[BaseGist], await page.json())
    following = await client.get(f"/api/v3/user/{fake.user('prolific').id}/gists?page=2")
    conforms(list[BaseGist], await following.json())
    gist = await client.get(f"/api/v3/gists/{seeded[0]}")
    conforms(GistSimple, await gist.json())


# --- gidgethub ---------------------------------------------------------------------


async def _gidgethub(base_url: str, gist_id: str) -> tuple[list[Any], Any]:
    async with aiohttp.ClientSession() as session:
        gh = GitHubAPI(session, "compat-test", oauth_token=TOKEN, base_url=base_url)
        listed = [item async for item in gh.getiter(f"/users/prolific/gists?per_page={PER_PAGE}")]
        got = await gh.getitem(f"/gists/{gist_id}")
        return listed, got


async def test_gidgethub(
    client: Client, fake: FakeGitHub, fake_server: TestServer, seeded: list[str]
) -> None:
    counter = Counter(fake)
    fake_base, ours = _base(fake_server), _base(client.server, "/api/v3")
    direct_list, direct_gist = await _gidgethub(fake_base, seeded[0])
    counter.take()

    start = len(fake.requests)
    listed, got = await _gidgethub(ours, seeded[0])
    # the very items GitHub sent, in its order, keys in its order, URLs pointing back
    assert listed == _rewritten(direct_list, fake_base, ours)
    assert [list(item) for item in listed] == [list(item) for item in direct_list]
    # the gist as GitHub gives it, but for what only GitHub's own GET /gists/{id} knows
    # (forks and history are not in the list gistcache keeps)
    expected = {
        k: v
        for k, v in _rewritten(direct_gist, fake_base, ours).items()
        if k not in ("forks", "history")
    }
    assert got == expected
    assert list(got) == list(expected)
    assert counter.take() == (1, 2)
    assert await _gidgethub(ours, seeded[0]) == (listed, got)
    assert counter.take() == (0, 0)
    _no_token_reached(fake, start)
