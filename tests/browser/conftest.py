"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (nothing is
downloaded), against the service and the fake GitHub, both on real sockets.

Without a Chromium the tests skip, saying why; under CI=true that is a failure."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gistcache.testing.browser import CHROMIUM_ARGS, chromium_path
from gistcache.testing.fake_github import FakeGitHub
from tests.support.database import CI
from tests.support.http import ClientFactory


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        reason = "no Chromium: install Debian's chromium package (apt-get install chromium)"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        version = f"unknown ({exc})"
    # the report names the browser the run used (Playwright is pinned in the lock)
    print(f"browser tests use {path}: {version}")
    return path


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The browser tests run on SQLite only: the page's views call the same services the
    API tests prove on both databases."""
    sqlite: Path = request.getfixturevalue("sqlite_template")
    path = tmp_path / "cache.sqlite3"
    shutil.copy(sqlite, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def base_url(make_client: ClientFactory) -> str:
    """The service on a real socket (talking to the fake GitHub, also on one)."""
    client = await make_client(cache_ttl=600)
    return str(client.make_url("")).rstrip("/")


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Tab:
    """A browser page, and what it did that a test must see: dialogs, script errors."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
async def open_tab(browser: Any, base_url: str) -> AsyncIterator[Callable[..., Awaitable[Tab]]]:
    """Pages in fresh contexts (``java_script_enabled=False``, a viewport ...); no dialog
    (an injected alert) and no script error may happen in any of them."""
    contexts: list[Any] = []
    tabs: list[Tab] = []

    async def open_(**options: Any) -> Tab:
        context = await browser.new_context(base_url=base_url, **options)
        contexts.append(context)
        tab = Tab(await context.new_page())
        tabs.append(tab)

        async def dialog(d: Any) -> None:
            tab.dialogs.append(d.message)
            await d.dismiss()

        tab.page.on("dialog", dialog)
        tab.page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
        return tab

    try:
        yield open_
    finally:
        for context in contexts:
            await context.close()
    for tab in tabs:
        assert tab.dialogs == [], "a script ran from a gist's data"
        assert tab.errors == [], "the page's script failed"


@pytest.fixture
def accents(fake: FakeGitHub) -> str:
    """amelie's gist of accents and an emoji (the gist's id)."""
    return fake.add_gist(
        "amelie",
        {
            "menu.txt": "Le café crème à 2 €\nune tarte\nla crème brûlée 🎉 crème\n",
            "notes.py": "# nothing here\n",
        },
        description="Menu du café",
    ).id


@pytest.fixture
async def tab(open_tab: Callable[..., Awaitable[Tab]]) -> Tab:
    return await open_tab()
