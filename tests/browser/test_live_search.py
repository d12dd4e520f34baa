"""Live search on the page: once a user's search has completed, their
contents are cached, and editing the pattern or an option searches again after a pause,
without GitHub, one search per pause, errors in words in place, never for a user whose
search has not completed."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.async_api import expect

from gistcache.testing.fake_github import FakeGitHub
from tests.browser.conftest import Tab
from tests.browser.test_page import finished, search_with_the_form

SETTLE_MS = 700  # well past the page's pause (about 275 ms) after the last keystroke


def count_searches(tab: Tab) -> list[str]:
    """The page's requests to the search API, as they are made."""
    posts: list[str] = []

    def seen(request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/api/v1/search"):
            posts.append(request.post_data or "")

    tab.page.on("request", seen)
    return posts


async def serious_violations(tab: Tab) -> list[str]:
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(tab.page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def retype(tab: Tab, text: str) -> None:
    """Select the pattern and type ``text`` over it, key by key, as a person does."""
    await tab.page.locator("#q").select_text()
    await tab.page.keyboard.type(text)


async def test_typing_searches_again_without_asking_github(
    tab: Tab, fake: FakeGitHub, accents: str
) -> None:
    page = tab.page
    await page.goto("/")
    hint = page.locator("#live-hint")
    await expect(hint).to_be_hidden()  # nothing is known to be cached yet
    await search_with_the_form(tab, "amelie", "tarte")
    assert await finished(tab) == "1 gist matches"
    await expect(hint).to_be_visible()
    await expect(hint).to_have_text(re.compile("update as you type"))
    assert await serious_violations(tab) == []
    assert "live-hint" in str(await page.get_attribute("#q", "aria-describedby"))
    asked = len(fake.requests)
    history = await page.evaluate("history.length")

    await retype(tab, "crème")  # no Enter
    lines = page.locator("#results li.line.match code")
    await expect(lines).to_have_text(["Le café crème à 2 €", "la crème brûlée 🎉 crème"])
    assert await finished(tab) == "1 gist matches"
    await expect(page.locator("#results .freshness")).to_have_text(re.compile("checked with"))
    assert re.search(r"/-/search\?user=amelie&q=cr%C3%A8me&context=0&glob=$", page.url)
    assert await page.title() == "crème in amelie's gists · gistcache"
    assert await page.evaluate("document.activeElement.id") == "q"
    assert await page.input_value("#q") == "crème"

    # the options search again too
    await retype(tab, "TARTE")
    await expect(page.locator("#results .summary")).to_have_text("0 gists match")
    await page.check("input[name=i]")
    await expect(page.locator("#results .summary")).to_have_text("1 gist matches")
    await expect(lines).to_have_text(["une tarte"])
    assert "i=1" in page.url

    # the contents were cached: GitHub was not asked again, for the list or a file
    assert fake.requests[asked:] == []
    # the address was replaced, not pushed: Back leaves the search page
    assert await page.evaluate("history.length") == history
    await page.go_back()
    await page.wait_for_url(re.compile(r"/$"))


async def test_quick_keystrokes_make_one_search(tab: Tab, accents: str) -> None:
    page = tab.page
    searches = count_searches(tab)
    await page.goto("/")
    await search_with_the_form(tab, "amelie", "tarte")
    await finished(tab)
    assert len(searches) == 1

    await retype(tab, "brûlée")  # six keystrokes, no pause between them
    await expect(page.locator("#results li.line.match mark")).to_have_text(["brûlée"])
    await page.wait_for_timeout(SETTLE_MS)
    assert len(searches) == 2, "one search for the six keystrokes"
    assert json.loads(searches[-1])["pattern"] == "brûlée"

    # an empty pattern clears the results and asks nothing
    await retype(tab, "")
    await page.keyboard.press("Backspace")
    await expect(page.locator("#results")).to_be_hidden()
    await page.wait_for_timeout(SETTLE_MS)
    assert len(searches) == 2


async def test_an_invalid_pattern_while_typing_is_said_in_place(tab: Tab, accents: str) -> None:
    page = tab.page
    await page.goto("/")
    await search_with_the_form(tab, "amelie", "tarte")
    await finished(tab)
    address = page.url
    await page.focus("#q")

    await page.fill("#q", "a(")
    trouble = page.locator("#trouble")
    await expect(trouble).to_contain_text("RE2 does not accept this pattern")
    await expect(trouble).to_contain_text("missing )")
    assert await page.get_attribute("#q", "aria-invalid") == "true"
    assert "trouble" in str(await page.get_attribute("#q", "aria-describedby"))
    await expect(page.locator("#results")).to_be_hidden()
    # still here, with what was typed, the focus in the field
    assert page.url == address
    assert await page.input_value("#q") == "a("
    assert await page.evaluate("document.activeElement.id") == "q"
    assert await serious_violations(tab) == []

    # typing on mends it
    await page.keyboard.type("rte)")
    await expect(page.locator("#results li.line.match mark")).to_have_text(["arte"])
    await expect(trouble).to_have_count(0)
    assert await page.get_attribute("#q", "aria-invalid") is None
    assert "q=a%28rte%29" in page.url

    # a form field out of bounds is said the same way, at its field
    await page.fill("#context", "12")
    await expect(trouble).to_contain_text("context must be from 0 to 10")
    assert await page.get_attribute("#context", "aria-invalid") == "true"
    assert await page.get_attribute("#q", "aria-invalid") is None
    assert await page.evaluate("document.activeElement.id") == "context"
    assert await page.input_value("#context") == "12"
    assert "q=a%28rte%29&context=0" in page.url


async def test_another_user_waits_for_enter(tab: Tab, fake: FakeGitHub, accents: str) -> None:
    fake.add_gist("bob", {"b.txt": "a tarte and a needle\n"}, description="bob's")
    page = tab.page
    searches = count_searches(tab)
    await page.goto("/")
    await search_with_the_form(tab, "amelie", "tarte")
    await finished(tab)
    hint = page.locator("#live-hint")
    await expect(hint).to_be_visible()

    await page.fill("#user", "bob")
    await expect(hint).to_be_hidden()
    await page.focus("#q")
    await retype(tab, "needle")
    await page.wait_for_timeout(SETTLE_MS)
    assert len(searches) == 1, "no search for a user whose contents may not be cached"
    assert await page.locator("#results .gist-title").all_text_contents() == ["Menu du café"]

    await page.keyboard.press("Enter")  # Enter still searches
    await expect(page.locator("#results .gist-title")).to_have_text(["bob's"])
    assert await finished(tab) == "1 gist matches"
    await expect(hint).to_be_visible()  # bob's search completed: live for bob now
    await retype(tab, "tarte")
    await expect(page.locator("#results li.line.match mark")).to_have_text(["tarte"])
    assert len(searches) == 3


async def test_a_page_the_server_rendered_is_live(tab: Tab, fake: FakeGitHub, accents: str) -> None:
    page = tab.page
    await page.goto("/-/search?user=amelie&q=tarte")
    assert await finished(tab) == "1 gist matches"
    await expect(page.locator("#live-hint")).to_be_visible()
    asked = len(fake.requests)
    await page.focus("#q")
    await retype(tab, "café")
    await expect(page.locator("#results li.line.match mark")).to_have_text(["café"])
    assert fake.requests[asked:] == []

    # an error page has no answer: not live
    await page.goto("/-/search?user=amelie&q=(x")
    await expect(page.locator("#trouble")).to_be_visible()
    await expect(page.locator("#live-hint")).to_be_hidden()
