"""'Watch this search' in a real browser: the search in the form saved as a watch with
the API token typed, then the watch's page; a wrong token is said in words; and no form
when the server has no API tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gistcache.testing.fake_github import FakeGitHub
from tests.browser.conftest import Tab
from tests.support.http import ClientFactory

TOKEN = "alpha-token-0123456789"
OpenTab = Callable[..., Awaitable[Tab]]


@pytest.fixture
async def base_url(make_client: ClientFactory) -> str:
    client = await make_client(cache_ttl=600, api_tokens=(TOKEN,))
    return str(client.make_url("")).rstrip("/")


async def test_watch_this_search_saves_it_and_opens_the_watchs_page(
    open_tab: OpenTab, fake: FakeGitHub
) -> None:
    fake.add_gist("alice", {"n.txt": "a needle\n"})
    tab = await open_tab()
    page = tab.page
    await page.goto("/-/search?user=alice&q=needle")
    await page.fill("#watch-token", "not-the-token-at-all")
    await page.click("#watch button")
    await page.locator(".watch-status").filter(has_text="API token").wait_for()

    await page.fill("#watch-token", TOKEN)
    await page.fill("#watch-interval", "600")
    await page.click("#watch button")
    await page.wait_for_url("**/-/watches/**")
    assert "token=" in page.url
    heading = await page.locator("h1").text_content()
    assert heading is not None
    assert "needle" in heading
    assert "every 600 s" in (await page.locator(".watch").text_content() or "")
    assert tab.errors == []
    assert tab.dialogs == []


async def test_no_watch_form_without_api_tokens(make_client: ClientFactory) -> None:
    client = await make_client(cache_ttl=600)
    resp = await client.get("/-/search?user=alice&q=needle")
    assert 'id="watch"' not in await resp.text()
