"""The search page over HTTP: routes under /-/, server-rendered results that
need no JavaScript, plain-word errors with the proper status, escaping, the CSP and the
hashed, immutable assets."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gistcache.services.listing import ListingService
from gistcache.testing.fake_github import FakeGitHub
from tests.support.clock import FakeClock
from tests.support.http import ClientFactory

Client = TestClient[Any, Any]
CSP = "default-src 'self'"


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]

    @property
    def words(self) -> str:
        return re.sub(r"\s+", " ", "".join(self.text))


async def html(client: Client, path: str, status: int = 200) -> tuple[str, Tags]:
    resp = await client.get(path)
    body = await resp.text()
    assert resp.status == status, body
    assert resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "Traceback" not in body
    tags = Tags()
    tags.feed(body)
    return body, tags


async def test_the_search_page_is_at_the_root_with_the_csp_and_no_inline_code(
    client: Client,
) -> None:
    body, tags = await html(client, "/")
    [form] = tags.find("form", id="search")
    assert form["action"] == "/-/search"
    assert form["method"] == "get"
    names = {a["name"] for t, a in tags.tags if t == "input"}
    assert names == {"user", "q", "i", "literal", "context", "glob"}
    scripts = tags.find("script")
    assert scripts, "the page has its module"
    assert all(s.get("src") for s in scripts)  # no inline script
    assert not [a for _, a in tags.tags if "style" in a]  # no inline style
    assert not tags.find("style")
    assert re.search(r"<script[^>]*>\s*</script>", body)


async def test_assets_are_named_by_their_hash_and_cached_for_ever(client: Client) -> None:
    _, tags = await html(client, "/")
    [script] = tags.find("script")
    [sheet] = tags.find("link", rel="stylesheet")
    for url, kind in ((script["src"], "text/javascript"), (sheet["href"], "text/css")):
        assert url is not None
        match = re.fullmatch(r"/-/static/page\.([0-9a-f]{12})\.(js|css)", url)
        assert match, url
        resp = await client.get(url)
        assert resp.status == 200
        assert resp.content_type == kind
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        body = await resp.read()
        assert hashlib.sha256(body).hexdigest()[:12] == match[1]
    # the shipped name, or a stale hash, is no asset
    for path in ("/-/static/page.js", "/-/static/page.000000000000.js"):
        _, tags = await html(client, path, 404)
        assert "There is no page at this address" in tags.words


async def test_unknown_paths_under_the_dash_are_html_404s_and_logins_stay_free(
    client: Client,
) -> None:
    _, tags = await html(client, "/-/nothing-here", 404)
    assert "There is no page at this address" in tags.words
    resp = await client.post("/-/search")
    assert resp.status == 405
    assert resp.content_type == "text/html"
    # /{username} is still the JSON list, even for a login that looks like a page's word
    resp = await client.get("/octocat")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    resp = await client.get("/search")
    assert resp.content_type == "application/problem+json"  # a login, unknown to GitHub


async def test_results_are_rendered_on_the_server(client: Client, fake: FakeGitHub) -> None:
    gist = fake.add_gist(
        "alice",
        {"app.py": "import os\nprint('needle one')\nx = 1\nneedle = 2\n", "notes.md": "none\n"},
        description="tools of mine",
    )
    fake.add_gist("alice", {"other.txt": "nothing\n"}, description="unrelated")
    body, tags = await html(client, "/-/search?user=alice&q=needle")
    words = tags.words
    assert "1 gist match" in words
    assert "tools of mine" in words
    assert "unrelated" not in words
    assert tags.find("a", href=gist_url(gist.id))
    assert "app.py" in words
    assert "Python" in words
    assert "2 matching lines" in words
    assert "notes.md" not in words
    lines = [a for t, a in tags.tags if t == "li" and (a.get("class") or "").startswith("line")]
    assert len(lines) == 2
    assert "print('<mark>needle</mark> one')" in body.replace("&#39;", "'")
    assert "checked with GitHub just now" in words
    # the form says what was searched
    [q] = tags.find("input", name="q")
    assert q["value"] == "needle"


async def test_the_form_options_reach_the_search(client: Client, fake: FakeGitHub) -> None:
    fake.add_gist("bob", {"a.py": "Needle\n"}, description="two")
    _, tags = await html(client, "/-/search?user=bob&q=needle")
    assert "0 gists match" in tags.words  # case-sensitive
    [box] = tags.find("input", name="i")
    assert "checked" not in box
    _, tags = await html(client, "/-/search?user=bob&q=needle&i=1&context=3&glob=*.py")
    assert "1 gist match" in tags.words
    [box] = tags.find("input", name="i")
    assert "checked" in box
    [context] = tags.find("input", name="context")
    assert context["value"] == "3"
    [glob] = tags.find("input", name="glob")
    assert glob["value"] == "*.py"


async def test_hostile_gists_show_as_text(client: Client, fake: FakeGitHub) -> None:
    fake.add_gist(
        "mallory",
        {"<img src=x onerror=alert(1)>.html": "<script>alert('content')</script> needle\n"},
        description="<script>alert('description')</script>",
    )
    body, tags = await html(client, "/-/search?user=mallory&q=needle")
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert "&lt;script&gt;alert(&#39;description&#39;)&lt;/script&gt;" in body
    assert "&lt;img src=x onerror=alert(1)&gt;.html" in body
    assert [s for s in tags.find("script") if not s.get("src")] == []
    assert not tags.find("img")
    _, tags = await html(client, "/-/users/mallory")
    assert "<script>alert('description')</script>" in tags.words  # as text
    assert not tags.find("img")


@pytest.mark.parametrize(
    ("query", "status", "said", "field"),
    [
        ("user=alice&q=needle&context=99", 400, "context must be from 0 to 10", "context"),
        ("user=alice&q=needle&context=lots", 400, "context lines must be a whole number", None),
        ("user=alice&q=(needle", 400, "missing )", "q"),
        ("user=alice&q=%20", 400, "pattern is required", "q"),
        # (a space parts several users: "al ice" is al and ice)
        ("user=al%2Fice&q=needle", 400, "a GitHub user name is 1 to 39", "user"),
        ("user=al%20i%2Fce&q=needle", 400, "or org:NAME for an organisation", "user"),
        ("q=needle", 400, "a GitHub user is required", "user"),
        ("user=alice&q=x&glob=a/b", 400, "the file-name glob is a glob on file names", "glob"),
        ("user=alice&q=x&i=maybe", 400, "ignore case is either on (1) or off (0)", None),
        ("user=nobody-here&q=needle", 404, "GitHub has no user called “nobody-here”", None),
    ],
)
async def test_bad_input_and_unknown_users_are_words_with_the_status(
    client: Client,
    fake: FakeGitHub,
    query: str,
    status: int,
    said: str,
    field: str | None,
) -> None:
    fake.add_gist("alice", {"a.txt": "needle\n"})
    before = len(fake.requests)
    _, tags = await html(client, f"/-/search?{query}", status)
    assert said in tags.words
    [box] = tags.find("section", id="trouble")
    assert box["data-status"] == str(status)
    if field is not None:
        invalid = [a["name"] for _, a in tags.tags if a.get("aria-invalid") == "true"]
        assert invalid == [field]
    if status == 400:
        assert len(fake.requests) == before  # nothing reached GitHub


async def test_githubs_rate_limit_says_when_to_try_again(client: Client, fake: FakeGitHub) -> None:
    fake.exhaust_rate_limit()
    resp = await client.get("/-/search?user=alice&q=needle")
    assert resp.status == 503
    assert int(resp.headers["Retry-After"]) > 0
    tags = Tags()
    tags.feed(await resp.text())
    assert "GitHub's rate limit is reached" in tags.words
    assert re.search(
        r"Try again in \d+ (minutes|hours?|seconds) \(after [0-9: -]+ UTC\)", tags.words
    )


async def test_github_down_is_said_and_a_stale_copy_is_dated(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    client = await make_client(cache_ttl=600)
    fake.fail_next(502, times=50)
    _, tags = await html(client, "/-/search?user=octocat&q=Hello", 502)
    assert "GitHub is not answering" in tags.words
    fake.failures.clear()

    _, tags = await html(client, "/-/search?user=octocat&q=Hello")
    assert "checked with GitHub just now" in tags.words
    clock.advance(120)
    _, tags = await html(client, "/-/search?user=octocat&q=Hello")
    assert "checked with GitHub 2 minutes ago" in tags.words
    clock.advance(600)
    fake.fail_next(502, times=50)
    _, tags = await html(client, "/-/search?user=octocat&q=Hello")
    assert "GitHub is unreachable: showing the copy from 12:00 UTC" in tags.words
    assert "1 gist match" in tags.words


async def test_a_users_gists_as_a_table_with_a_search_box(client: Client, fake: FakeGitHub) -> None:
    fake.add_gist("carol", {"x.py": "1\n", "y.rb": "2\n"}, description="polyglot")
    fake.add_gist("carol", {"z.md": "3\n"}, description=None)
    _, tags = await html(client, "/-/users/carol")
    words = tags.words
    assert "Gists of carol" in words
    assert "2 public gists" in words
    assert "polyglot" in words
    assert "(no description)" in words
    assert "x.py, y.rb" in words
    assert "Python, Ruby" in words
    assert len(tags.find("tr")) == 3  # the head and two gists
    [form] = tags.find("form", id="search")
    assert form["action"] == "/-/search"
    [user] = tags.find("input", name="user")
    assert user["value"] == "carol"

    _, tags = await html(client, "/-/users/nobody-here", 404)
    assert "GitHub has no user called “nobody-here”" in tags.words
    _, tags = await html(client, "/-/users/not%20a%20login", 400)
    assert "a GitHub user name is 1 to 39" in tags.words


async def test_the_freshness_words_for_the_script(client: Client) -> None:
    resp = await client.get("/-/freshness?user=octocat")
    assert resp.status == 404  # nothing cached yet
    await client.get("/octocat")
    resp = await client.get("/-/freshness?user=octocat")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert await resp.json() == {"text": "checked with GitHub just now"}


async def test_the_freshness_words_only_read_the_cache(
    make_client: ClientFactory, fake: FakeGitHub, clock: FakeClock
) -> None:
    client = await make_client(cache_ttl=60)
    await client.get("/octocat")
    asked = len(fake.api_requests())
    clock.advance(600)  # long stale: a list request would revalidate it
    resp = await client.get("/-/freshness?user=octocat")
    assert await resp.json() == {"text": "checked with GitHub 10 minutes ago"}
    assert len(fake.api_requests()) == asked

    # GitHub failing for a stale list: it is served STALE, and the words say so
    fake.fail_next(502, times=50)
    assert (await client.get("/octocat")).headers["X-Cache"] == "STALE"
    fake.failures.clear()
    asked = len(fake.api_requests())
    resp = await client.get("/-/freshness?user=octocat")
    assert (await resp.json())["text"].startswith("GitHub is unreachable: showing the copy")
    assert len(fake.api_requests()) == asked

    # a user never listed, or one GitHub does not know, is never looked up
    resp = await client.get("/-/freshness?user=never-listed")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"] == "urn:gistcache:problem:not-cached"
    assert problem["instance"] == "/-/freshness"
    assert problem["request_id"] == resp.headers["X-Request-ID"]
    assert len(fake.api_requests()) == asked

    assert (await client.get("/nobody-here")).status == 404
    asked = len(fake.api_requests())
    resp = await client.get("/-/freshness?user=nobody-here")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["type"] == "urn:gistcache:problem:user-not-found"
    assert len(fake.api_requests()) == asked


async def test_a_bug_in_the_freshness_words_is_an_opaque_problem(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: ListingService, login: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ListingService, "last_checked", broken)
    resp = await client.get("/-/freshness?user=octocat")
    assert resp.status == 500
    assert resp.content_type == "application/problem+json"
    body = await resp.text()
    assert "secret internals" not in body
    assert "Traceback" not in body


@pytest.mark.parametrize("query", ["", "?user=", "?user=not%20a%20login", "?user=a..b"])
async def test_the_freshness_words_refuse_a_bad_user_as_a_problem(
    client: Client, fake: FakeGitHub, query: str
) -> None:
    resp = await client.get("/-/freshness" + query)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["type"] == "urn:gistcache:problem:invalid-username"
    assert problem["parameter"] == "user"
    assert problem["detail"]
    assert fake.requests == []


async def test_marks_context_and_globs_in_the_servers_rendering(
    client: Client, fake: FakeGitHub
) -> None:
    gist = fake.add_gist(
        "amelie",
        {"Menu File.txt": "une tarte\nla crème brûlée 🎉 crème\nfin\n", "b.py": "crème\n"},
    )
    body, tags = await html(client, "/-/search?user=amelie&q=cr%C3%A8me&context=1&glob=*.txt")
    assert "b.py" not in tags.words  # not searched
    assert body.count("<mark>crème</mark>") == 2
    assert "la <mark>crème</mark> brûlée 🎉 <mark>crème</mark>" in body
    assert tags.find("a", href=f"{gist_url(gist.id)}#file-menu-file-txt-L2")
    classes = [a["class"] for t, a in tags.tags if t == "li" and "line" in (a["class"] or "")]
    assert classes == ["line context", "line match", "line context"]


def gist_url(gist_id: str) -> str:
    return f"https://gist.github.com/{gist_id}"


@pytest.mark.parametrize("path", ["/", "/-/search?user=octocat&q=x"])
async def test_the_client_rate_limit_on_the_page_is_a_page_with_its_csp(
    make_client: ClientFactory, path: str
) -> None:
    from limits import RateLimitItemPerMinute

    client = await make_client(rate_limit=RateLimitItemPerMinute(1))
    assert (await client.get(path)).status == 200
    resp = await client.get(path)
    assert resp.status == 429
    assert resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == "default-src 'self'"
    assert resp.headers["Retry-After"].isdigit()
    # the API's answer to the same limit stays problem+json
    api = await client.get("/octocat")
    assert api.status == 429
    assert api.content_type == "application/problem+json"


async def test_several_users_or_an_organisation_are_rendered_user_by_user(
    client: Client, fake: FakeGitHub
) -> None:
    from gistcache.testing.fake_github.rest import set_public_members

    a = fake.add_gist("amy", {"a.py": "needle\n"}, description="amy's")
    b = fake.add_gist("ben", {"b.py": "needle\n"}, description="ben's")
    body, tags = await html(client, "/-/search?user=ben,+nobody+amy&q=needle")
    users = [
        attrs["data-user"] for t, attrs in tags.tags if t == "section" and "data-user" in attrs
    ]
    assert users == ["ben", "nobody", "amy"]  # in the order given
    assert body.index("ben&#39;s") < body.index("amy&#39;s")
    assert tags.find("a", href=gist_url(a.id))
    assert tags.find("a", href=gist_url(b.id))
    assert "2 gists match among 3 users" in tags.words
    assert "GitHub has no user called “nobody”." in tags.words  # one failing user alone
    # the link that searched is the page's own: shareable, as any search's
    [user] = tags.find("input", name="user")
    assert user["value"] == "ben, nobody amy"

    set_public_members(fake, "crew", ["amy", "ben"])
    _, tags = await html(client, "/-/search?user=org:crew&q=needle")
    users = [
        attrs["data-user"] for t, attrs in tags.tags if t == "section" and "data-user" in attrs
    ]
    assert users == ["amy", "ben"]

    _, tags = await html(client, "/-/search?user=amy,a..b&q=needle", status=400)
    assert "org:NAME" in tags.words
