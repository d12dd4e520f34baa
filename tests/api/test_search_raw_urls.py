"""The raw URLs a search downloads: only from the allowed origins, sent percent-encoded."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from gistcache.github.parse import request_target
from gistcache.testing.fake_github import FakeGitHub
from tests.support.http import ClientFactory
from tests.support.search import search

Client = TestClient[Any, Any]


async def test_a_raw_url_on_a_foreign_host_is_refused(
    make_client: ClientFactory, fake: FakeGitHub, fake_server: Any
) -> None:
    # the fake serves raw files under another name of itself: were the URL fetched,
    # the fake would count the request
    fake.raw_base = f"http://localhost:{fake_server.port}/gist-raw"
    gist = fake.add_gist("eve", {"x.txt": "secret\n"})
    client = await make_client()
    body = await search(client, username="eve", pattern="secret")
    assert body["matches"] == []
    assert body["skipped"] == [{"id": gist.id, "filename": "x.txt", "reason": "forbidden_host"}]
    assert fake.raw_requests() == []


@pytest.mark.parametrize(
    "raw_base",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:5432/gist-raw",
        "https://gist.githubusercontent.com:6379/gist-raw",
        "http://gist.githubusercontent.com/gist-raw",
        "https://user:pw@gist.githubusercontent.com/gist-raw",
        "file:///etc/passwd#",
    ],
)
async def test_raw_urls_off_the_allowed_origins_are_refused(
    client: Client, fake: FakeGitHub, raw_base: str
) -> None:
    fake.raw_base = raw_base
    fake.add_gist("eve", {"x.txt": "secret\n"})
    body = await search(client, username="eve", pattern="secret")
    assert [s["reason"] for s in body["skipped"]] == ["forbidden_host"]
    assert fake.raw_requests() == []


async def test_extra_raw_hosts_can_be_allowed(
    make_client: ClientFactory, fake: FakeGitHub, fake_server: Any
) -> None:
    fake.raw_base = f"http://localhost:{fake_server.port}/gist-raw"
    fake.add_gist("frank", {"x.txt": "found\n"})
    client = await make_client(raw_hosts=(URL(f"http://localhost:{fake_server.port}"),))
    assert (await search(client, username="frank", pattern="found"))["total"] == 1
    assert len(fake.raw_requests()) == 1


@pytest.mark.parametrize("as_github_sends_it", [True, False], ids=["encoded", "literal"])
async def test_raw_urls_are_sent_percent_encoded(
    client: Client, fake: FakeGitHub, as_github_sends_it: bool
) -> None:
    # GitHub sends a space as %20; a raw_url may also hold it (and non-ASCII) as typed
    fake.quote_raw_urls = as_github_sends_it
    names = {
        "my notes ü.txt": "my%20notes%20%C3%BC.txt",
        "100% [done].md": "100%25%20%5Bdone%5D.md",
    }
    gist = fake.add_gist("fay", {name: f"needle in {name}\n" for name in names})
    body = await search(client, username="fay", pattern="needle")
    assert body["skipped"] == []
    [match] = body["matches"]
    assert [(f["filename"], f["lines"][0]["text"]) for f in match["files"]] == [
        (name, f"needle in {name}") for name in names
    ]
    targets = sorted(r.target.rsplit("/", 1)[1] for r in fake.raw_requests())
    assert targets == sorted(names.values())
    assert all(f"/{gist.id}/raw/" in r.target for r in fake.raw_requests())


@pytest.mark.parametrize(
    ("raw_url", "sent"),
    [
        ("https://h.example/a%20b/c d", "https://h.example/a%20b/c%20d"),
        ("https://h.example/%e6%97%a5/日", "https://h.example/%e6%97%a5/%E6%97%A5"),
        ("https://h.example/50%/x%zz%4", "https://h.example/50%25/x%25zz%254"),
        ("https://h.example/a(b)*,'!$&+;=:@~-._", "https://h.example/a(b)*,'!$&+;=:@~-._"),
        ('https://h.example/a"<>\\^`{|}[]', "https://h.example/a%22%3C%3E%5C%5E%60%7B%7C%7D%5B%5D"),
        ("https://h.example/./a/../b%2Fc", "https://h.example/./a/../b%2Fc"),  # not normalised
        (
            "https://h.example:8443/p?q=a b&r=/?ü#frag",
            "https://h.example:8443/p?q=a%20b&r=/?%C3%BC",
        ),
        ("https://h.example", "https://h.example/"),
    ],
)
def test_the_request_target_encodes_only_what_must_be(raw_url: str, sent: str) -> None:
    assert request_target(raw_url) == sent
