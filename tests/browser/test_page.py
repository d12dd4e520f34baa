"""The search page in a real browser: marks, streaming in list order, links
that reproduce a search, the same results without JavaScript, hostile gists as text,
errors in words, the keyboard, a narrow screen and axe-core's accessibility rules."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gistcache.testing.fake_github import FakeGitHub
from tests.browser.conftest import Tab

OpenTab = Callable[..., Awaitable[Tab]]


# the results' markup as a tree of [tag, attributes, children], whitespace collapsed:
# what the server renders and what the script builds must give the same tree
STRUCTURE = """(selector) => {
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.replace(/\\s+/g, " ").trim();
      return text ? text : null;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return null;
    const attributes = {};
    for (const a of node.attributes) attributes[a.name] = a.value;
    const children = Array.from(node.childNodes).map(walk).filter((c) => c !== null);
    return [node.tagName.toLowerCase(), attributes, children];
  };
  const found = document.querySelector(selector);
  return found ? walk(found) : null;
}"""


async def structure(tab: Tab, selector: str = "#results .gists") -> Any:
    if selector == "#results":
        # the script asks for the freshness words once the search is done
        freshness = tab.page.locator("#results .freshness")
        await freshness.filter(has_text=re.compile("GitHub")).wait_for()
    return await tab.page.evaluate(STRUCTURE, selector)


async def search_with_the_form(tab: Tab, user: str, pattern: str, **options: Any) -> None:
    page = tab.page
    await page.fill("#user", user)
    await page.fill("#q", pattern)
    if options.get("ignore_case"):
        await page.check("input[name=i]")
    if options.get("literal"):
        await page.check("input[name=literal]")
    if "context" in options:
        await page.fill("#context", str(options["context"]))
    if "glob" in options:
        await page.fill("#glob", options["glob"])
    await page.press("#q", "Enter")


async def finished(tab: Tab) -> str:
    """The results' summary once the search is over."""
    summary = tab.page.locator("#results .summary")
    await summary.filter(has_text=re.compile(r"\d+ gists? match")).wait_for()
    return str(await summary.text_content())


async def test_marks_cover_exactly_the_matched_text(tab: Tab, accents: str) -> None:
    await tab.page.goto("/")
    await search_with_the_form(tab, "amelie", "crème|brûlée 🎉|€")
    assert await finished(tab) == "1 gist matches"
    lines = tab.page.locator("#results li.line.match")
    assert await lines.count() == 2
    first = lines.nth(0)
    assert await first.locator("mark").all_text_contents() == ["crème", "€"]
    assert await first.locator("code").text_content() == "Le café crème à 2 €"
    second = lines.nth(1)
    assert await second.locator("mark").all_text_contents() == ["crème", "brûlée 🎉", "crème"]
    # each line number links to the line on GitHub
    href = await second.locator("a.ln").get_attribute("href")
    assert href == f"https://gist.github.com/{accents}#file-menu-txt-L3"


async def test_code_point_ranges_become_javascript_string_positions(tab: Tab) -> None:
    await tab.page.goto("/")
    src = await tab.page.locator("script[type=module]").get_attribute("src")
    pieces = await tab.page.evaluate(
        """async (src) => {
            const { marked } = await import(src);
            return [
              marked("a🎉b🎉c", [[1, 2], [3, 4]]),
              marked("e\\u0301té", [[0, 2]]),
              marked("plain", []),
            ];
        }""",
        src,
    )
    assert pieces == [
        [["a", False], ["🎉", True], ["b", False], ["🎉", True], ["c", False]],
        [["e\u0301", True], ["té", False]],  # e and a combining accent: two code points
        [["plain", False]],
    ]


async def test_the_rest_of_a_long_listing_is_counted(tab: Tab, fake: FakeGitHub) -> None:
    text = "".join(f"line {n}{' hit' if n % 2 == 0 else ''}\n" for n in range(1, 400))
    fake.add_gist("counter", {"long.txt": text}, description="many hits")
    await tab.page.goto("/")
    await search_with_the_form(tab, "counter", "hit")
    await finished(tab)
    listed = await tab.page.locator("#results li.line.match").count()
    assert listed < 199
    assert await tab.page.locator("#results .file-count").text_content() == "199 matching lines"
    more = await tab.page.locator("#results .more").text_content()
    assert more == f"{199 - listed} more matching lines"


async def test_context_lines_are_set_apart(tab: Tab, fake: FakeGitHub) -> None:
    fake.add_gist("counter", {"short.txt": "one\ntwo hit\nthree\nfour\n"}, description="x")
    await tab.page.goto("/")
    await search_with_the_form(tab, "counter", "hit", context=1)
    await finished(tab)
    lines = tab.page.locator("#results li.line")
    assert await lines.evaluate_all("(ls) => ls.map((l) => l.className)") == [
        "line context",
        "line match",
        "line context",
    ]
    assert await lines.all_text_contents() == ["1one", "2two hit", "3three"]


async def server_and_script(open_tab: OpenTab, path: str) -> tuple[Tab, Any]:
    """The results of ``path`` as the server renders them (JavaScript off) and their
    markup, which the script's streamed rendering of the same search must equal."""
    without = await open_tab(java_script_enabled=False)
    await without.page.goto(path)
    rendered = await structure(without, "#results")
    with_js = await open_tab()
    await with_js.page.goto("/")
    query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))
    await search_with_the_form(
        with_js, query["user"], query["q"], context=int(query.get("context", "0"))
    )
    await finished(with_js)
    assert await structure(with_js, "#results") == rendered
    return with_js, rendered


async def test_groups_of_lines_apart_are_set_apart(open_tab: OpenTab, fake: FakeGitHub) -> None:
    text = "".join(f"line {n}{' hit' if n in (3, 5, 12, 14) else ''}\n" for n in range(1, 21))
    fake.add_gist("grouper", {"a.txt": text, "b.txt": "b hit\n"}, description="groups")
    tab, _ = await server_and_script(open_tab, "/-/search?user=grouper&q=hit&context=1")
    rows = tab.page.locator("#results .file").first.locator("li")
    numbers = await rows.evaluate_all(
        "(rows) => rows.map((r) => r.classList.contains('gap') ? '--'"
        " : r.querySelector('.ln').textContent)"
    )
    # as grep -C1 prints them: 2-6, then 11-15, -- between
    assert numbers == ["2", "3", "4", "5", "6", "--", "11", "12", "13", "14", "15"]
    gap = tab.page.locator("#results li.gap")
    assert await gap.count() == 1  # never between files, nor before a file's first line
    assert await gap.text_content() == "⋮lines not shown"

    # without context lines, every listed line stands alone: nothing to set apart
    tab, _ = await server_and_script(open_tab, "/-/search?user=grouper&q=hit")
    assert await tab.page.locator("#results li.gap").count() == 0
    assert await tab.page.locator("#results li.line").count() == 5


async def test_a_long_line_shows_where_it_is_cut(open_tab: OpenTab, fake: FakeGitHub) -> None:
    long = "a" * 1500 + " needle " + "b" * 1500  # listed as a window around its match
    start = "needle " + "c" * 800  # listed from its start
    end = "d" * 800 + " needle"  # a window that reaches the line's end
    context = "e" * 900  # a context line: its first 500 characters
    text = f"{long}\n{context}\n\n{start}\n\n{end}\n"
    fake.add_gist("longlines", {"min.js": text}, description="minified")
    tab, _ = await server_and_script(open_tab, "/-/search?user=longlines&q=needle&context=1")
    page = tab.page
    lines = page.locator("#results li.line")
    # each line's text and its column, when it says one (before its text)
    codes = await lines.evaluate_all(
        "(rows) => rows.map((r) => Array.from(r.querySelector('code').childNodes)"
        ".filter((n) => !n.classList?.contains('column')).map((n) => n.textContent).join(''))"
    )
    columns = await lines.evaluate_all(
        "(rows) => rows.map((r) => r.querySelector('code > .column:first-child')?.textContent"
        " ?? null)"
    )
    window = long[1254 : 1254 + 500]  # centred on the match
    assert codes[0] == f"…{window}…"
    assert columns[0] == "column 1255"
    assert codes[1] == "e" * 500 + "…"  # the context line after it, cut at its end
    assert columns[1] is None
    assert codes[3] == start[:500] + "…"  # from its start: cut at its end only
    assert columns[3] is None
    assert codes[5] == "…" + end[-500:]  # reaches the end: cut at its start only
    assert columns[5] == f"column {len(end) - 500 + 1}"
    assert await lines.nth(0).locator("mark").all_text_contents() == ["needle"]


async def test_results_stream_in_with_progress_and_keep_the_lists_order(
    tab: Tab, fake: FakeGitHub
) -> None:
    for n in range(6):
        fake.add_gist(
            "streamer",
            {f"f{n}_{k}.txt": f"gist {n} file {k} needle\n" for k in range(3)},
            description=f"gist {n}",
        )
    fake.latency = 0.25  # every request to GitHub takes a while: the stream is seen
    page = tab.page
    await page.goto("/")
    # every insertion is recorded: the list must be in order at every step
    await page.evaluate(
        """() => {
            window.orders = [];
            const list = document.querySelector("#results .gists");
            new MutationObserver(() => {
              window.orders.push(Array.from(list.children).map((li) => Number(li.dataset.index)));
            }).observe(list, { childList: true });
        }"""
    )
    await search_with_the_form(tab, "streamer", "needle")
    await (
        page.locator("#progress").filter(has_text=re.compile(r"fetched \d+ of 18 files")).wait_for()
    )
    assert await finished(tab) == "6 gists match"
    orders = await page.evaluate("window.orders")
    assert len(orders) >= 2, "the gists arrived one by one"
    assert all(order == sorted(order) for order in orders)
    assert orders[-1] == list(range(6))
    titles = await page.locator("#results .gist-title").all_text_contents()
    assert titles == [f"gist {n}" for n in reversed(range(6))]  # GitHub's order


async def test_the_address_is_a_link_that_reproduces_the_results(tab: Tab, accents: str) -> None:
    page = tab.page
    await page.goto("/")
    await search_with_the_form(tab, "amelie", "crème", ignore_case=True, context=1)
    await finished(tab)
    assert re.search(r"/-/search\?user=amelie&q=cr%C3%A8me&i=1&context=1&glob=$", page.url)
    streamed = await structure(tab, "#results")
    await page.reload()
    await finished(tab)
    assert await structure(tab, "#results") == streamed  # now rendered by the server
    # Back goes to the empty page, Forward to the search again
    await page.go_back()
    await page.wait_for_url(re.compile(r"/$"))
    await page.go_forward()
    await finished(tab)
    assert await structure(tab, "#results") == streamed


async def test_back_and_forward_between_two_searches(tab: Tab, accents: str) -> None:
    page = tab.page
    await page.goto("/")
    await search_with_the_form(tab, "amelie", "tarte")
    await finished(tab)
    await search_with_the_form(tab, "amelie", "nothing")
    await finished(tab)
    assert "q=nothing" in page.url
    await page.go_back()
    await page.wait_for_url(re.compile(r"q=tarte"))
    assert await page.input_value("#q") == "tarte"
    await page.locator("#results .gist").first.wait_for()
    assert await page.locator("#results li.line.match").all_text_contents() == ["2une tarte"]
    await page.go_forward()
    await page.wait_for_url(re.compile(r"q=nothing"))
    assert await finished(tab) == "1 gist matches"
    assert await page.input_value("#q") == "nothing"


async def test_the_same_results_without_javascript(open_tab: OpenTab, accents: str) -> None:
    with_js = await open_tab()
    await with_js.page.goto("/")
    await search_with_the_form(with_js, "amelie", "crème", ignore_case=True, context=1)
    await finished(with_js)
    streamed = await structure(with_js, "#results")

    without = await open_tab(java_script_enabled=False)
    await without.page.goto("/")
    await search_with_the_form(without, "amelie", "crème", ignore_case=True, context=1)
    await without.page.wait_for_url(re.compile(r"/-/search\?"))
    assert without.page.url == with_js.page.url
    assert await structure(without, "#results") == streamed


async def test_a_hostile_gist_is_shown_as_text(tab: Tab, fake: FakeGitHub) -> None:
    fake.add_gist(
        "mallory",
        {
            "<img src=x onerror=alert('file')>.html": (
                "<script>alert('content')</script> needle <img src=x onerror=alert(2)>\n"
            ),
        },
        description="<script>alert('description')</script><b>bold</b>",
    )
    page = tab.page
    await page.goto("/")
    await search_with_the_form(tab, "mallory", "needle")
    await finished(tab)
    title = await page.locator("#results .gist-title").text_content()
    assert title == "<script>alert('description')</script><b>bold</b>"
    name = await page.locator("#results .file-name").text_content()
    assert name == "<img src=x onerror=alert('file')>.html"
    code = await page.locator("#results li.line.match code").text_content()
    assert code == "<script>alert('content')</script> needle <img src=x onerror=alert(2)>"
    assert await page.locator("#results img, #results b, #results script").count() == 0
    await page.reload()  # the server's rendering too
    await finished(tab)
    assert await page.locator("#results img, #results b, #results script").count() == 0
    await page.goto("/-/users/mallory")
    assert await page.locator("table img, table b").count() == 0
    # (the fixture fails the test if any dialog opened)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_each_error_is_shown_in_words(
    open_tab: OpenTab, fake: FakeGitHub, javascript: bool
) -> None:
    tab = await open_tab(java_script_enabled=javascript)
    page = tab.page
    trouble = page.locator("#trouble")
    fake.add_gist("alice", {"a.txt": "needle\n"})

    await page.goto("/")
    await search_with_the_form(tab, "alice", "(needle")
    await trouble.wait_for()
    assert "RE2 does not accept this pattern" in str(await trouble.text_content())
    assert "missing )" in str(await trouble.text_content())
    assert await page.get_attribute("#q", "aria-invalid") == "true"

    await search_with_the_form(tab, "nobody-at-all", "needle")
    await trouble.filter(has_text="No such user").wait_for()
    assert "GitHub has no user called “nobody-at-all”" in str(await trouble.text_content())

    fake.fail_next(502, times=100)
    await search_with_the_form(tab, "bob", "needle")
    await trouble.filter(has_text="GitHub is not answering").wait_for()
    fake.failures.clear()

    fake.exhaust_rate_limit()
    await search_with_the_form(tab, "carol", "needle")
    await trouble.filter(has_text="GitHub's rate limit is reached").wait_for()
    assert re.search(r"Try again in \d+ \w+ \(after .* UTC\)", str(await trouble.text_content()))

    response = await page.goto("/-/search?user=alice&q=needle&context=99")
    assert response is not None
    assert response.status == 400
    assert "context must be from 0 to 10" in str(await trouble.text_content())


async def test_the_keyboard_path(tab: Tab, accents: str) -> None:
    page = tab.page
    await page.goto("/")
    await page.keyboard.press("/")
    assert await page.evaluate("document.activeElement.id") == "q"
    await page.keyboard.type("crème")
    await page.keyboard.press("Shift+Tab")
    assert await page.evaluate("document.activeElement.id") == "user"
    await page.keyboard.type("amelie")
    await page.keyboard.press("Enter")
    await finished(tab)
    # Tab walks from the form into the results: the gist's link, then its line links
    reached = []
    for _ in range(30):
        await page.keyboard.press("Tab")
        reached.append(await page.evaluate("document.activeElement.closest('.gist') !== null"))
        if reached[-1]:
            break
    assert reached[-1], "a result is reachable with Tab"
    # "/" from the results goes back to the pattern
    await page.keyboard.press("/")
    assert await page.evaluate("document.activeElement.id") == "q"


async def test_usable_at_375_pixels_wide(open_tab: OpenTab, accents: str) -> None:
    tab = await open_tab(viewport={"width": 375, "height": 800})
    page = tab.page
    await page.goto("/")
    await search_with_the_form(tab, "amelie", "crème", context=2)
    await finished(tab)
    out = Path(os.environ.get("GISTCACHE_SCREENSHOTS", "var/screenshots"))
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(out / "results-375.png"), full_page=True)
    widths = await page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 375, "no horizontal scrolling"
    await page.goto("/-/users/amelie")
    assert await page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


async def test_no_serious_accessibility_violation(tab: Tab, accents: str) -> None:
    from axe_playwright_python.async_playwright import Axe

    axe = Axe()
    page = tab.page
    found: dict[str, list[str]] = {}
    for name, path in (
        ("empty page", "/"),
        ("results", "/-/search?user=amelie&q=cr%C3%A8me&context=1"),
        ("error", "/-/search?user=amelie&q=(x"),
        ("user's gists", "/-/users/amelie"),
        ("not found", "/-/nothing"),
    ):
        await page.goto(path)
        results = await axe.run(page)
        found[name] = [
            f"{v['id']} ({v['impact']}): {v['help']}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
    assert found == {name: [] for name in found}
