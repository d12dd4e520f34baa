"""The list refresher on its own, over each database, with GitHub's answers made up:
pages GitHub answered 304 merged with the stored gists of those pages, an item GitHub
lists twice kept once, and a list confirmed page by page saved nowhere but its check."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from gistcache.domain.gists import Gist, GistFile
from gistcache.domain.results import CacheStatus, GistList
from gistcache.github.client import GitHubClient
from gistcache.github.pages import KnownPage, ListPage
from gistcache.services.lease import Lease
from gistcache.services.refresh import ListRefresher, Refreshed
from gistcache.services.shared_block import SharedBlock
from gistcache.store.bound import SiteSession, SiteStore
from gistcache.store.engine import Sessions, create_engine, create_sessionmaker
from gistcache.store.sites import Site
from gistcache.store.users import PageOfGists, UserState
from tests.support.clock import FakeClock
from tests.support.database import reads_of

CREDENTIAL = "anonymous"
PAGE_1, PAGE_2 = (
    "https://api.github.com/user/1/gists?page=1",
    "https://api.github.com/user/1/gists?page=2",
)


def gist(gist_id: str, description: str = "") -> Gist:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    files = (GistFile(f"{gist_id}.txt", None, "text/plain", 1, None),)
    url = f"https://gist.github.com/{gist_id}"
    return Gist(gist_id, url, description, True, when, when, 0, "u", files, raw="{}")


class GitHubAnswering:
    """Stands for the GitHub client: the walk answers ``pages`` and records the ETags
    it was asked with."""

    credential = CREDENTIAL

    def __init__(self, pages: list[ListPage]) -> None:
        self.pages = pages
        self.asked: list[list[KnownPage]] = []
        self.gate = self

    def shared(self, block: Any) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    async def list_user_gists(
        self, login: str, known: list[KnownPage], *, cached: bool
    ) -> list[ListPage]:
        self.asked.append(known)
        return self.pages


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SiteStore]:
    engine = create_engine(database_url)
    sessions: Sessions = create_sessionmaker(engine)
    yield SiteStore(sessions, Site(sessions, "https://api.github.com"))
    await engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def stored(store: SiteStore, clock: FakeClock, *pages: Sequence[Gist]) -> UserState:
    """The user "u" cached with ``pages`` (ETags "e1", "e2" ...)."""
    listed = [
        PageOfGists(url, f'"e{n}"', list(gists))
        for n, (url, gists) in enumerate(zip((PAGE_1, PAGE_2), pages, strict=False), start=1)
    ]
    async with store.write() as db:
        await db.users.save_list("u", CREDENTIAL, clock(), listed)
        user = await db.users.get("u")
    assert user is not None
    return user


async def in_memory(store: SiteStore, clock: FakeClock) -> GistList:
    """The stored list as the listing service holds it in memory once it read it."""
    async with store.read() as db:
        read = await db.users.read_list("u")
    assert read.fingerprint is not None
    return GistList("u", read.listed(), CacheStatus.HIT, clock(), 60, None, read.fingerprint)


def claimed(store: SiteStore, clock: FakeClock) -> Lease[SiteSession]:
    return Lease(
        store.write,
        claim=lambda db, now, until: db.leases.claim_refresh("u", "me", now, until),
        renew=lambda db, until: db.leases.renew_refresh("u", "me", until),
        release=lambda db: db.leases.release_refresh("u", "me"),
        length=timedelta(seconds=10),
        clock=clock,
        what="u",
    )


async def refresh(
    store: SiteStore,
    clock: FakeClock,
    github: GitHubAnswering,
    user: UserState,
    held: GistList | None = None,
) -> tuple[Refreshed, Lease[SiteSession]]:
    refresher = ListRefresher(
        store, cast(GitHubClient, github), SharedBlock(store, CREDENTIAL, clock), clock
    )
    lease = claimed(store, clock)
    assert await lease.claim()
    async with lease:
        return await refresher.refresh("u", user, lease, held), lease


async def stored_ids(store: SiteStore) -> list[str]:
    async with store.read() as db:
        return [g.id for _, g in await db.users.gists("u")]


async def test_a_page_answered_304_keeps_the_stored_gists_of_that_page(
    store: SiteStore, clock: FakeClock
) -> None:
    user = await stored(store, clock, [gist("a"), gist("b")], [gist("c"), gist("d")])
    clock.advance(61)
    github = GitHubAnswering(
        [
            ListPage(PAGE_1, '"e1"', None),
            ListPage(PAGE_2, '"e2-new"', [gist("c", "changed"), gist("e")]),
        ]
    )
    refreshed, lease = await refresh(store, clock, github, user)
    assert github.asked == [[KnownPage(PAGE_1, '"e1"'), KnownPage(PAGE_2, '"e2"')]]
    assert refreshed.cache is CacheStatus.UPDATED
    assert [(g.id, g.description) for g in refreshed.gists] == [
        ("a", ""),
        ("b", ""),
        ("c", "changed"),
        ("e", ""),
    ]
    assert refreshed.user.checked_at == clock()
    assert await stored_ids(store) == ["a", "b", "c", "e"]
    async with store.read() as db:
        assert [p.etag for p in await db.users.pages("u")] == ['"e1"', '"e2-new"']
    assert not lease.held  # handed back with the save


async def test_a_list_held_in_memory_is_merged_with_the_stored_gists_of_a_page_answered_304(
    store: SiteStore, clock: FakeClock
) -> None:
    user = await stored(store, clock, [gist("a"), gist("b")], [gist("c")])
    held = await in_memory(store, clock)
    github = GitHubAnswering([ListPage(PAGE_1, '"e1"', None), ListPage(PAGE_2, '"e2"', None)])
    with reads_of("gist_files") as reads:
        refreshed, _ = await refresh(store, clock, github, user, held)
    assert refreshed.cache is CacheStatus.REVALIDATED
    assert [g.id for g in refreshed.gists] == ["a", "b", "c"]
    assert reads == []  # the copy held is the stored list: nothing read but its pages

    github.pages = [
        ListPage(PAGE_1, '"e1-new"', [gist("a", "changed"), gist("b")]),
        ListPage(PAGE_2, '"e2"', None),
    ]
    with reads_of("gist_files") as reads:
        refreshed, _ = await refresh(store, clock, github, user, held)
    assert reads  # page two's stored gists, which the copy in memory does not tell apart
    assert [(g.id, g.description) for g in refreshed.gists] == [
        ("a", "changed"),
        ("b", ""),
        ("c", ""),
    ]
    assert refreshed.cache is CacheStatus.UPDATED


async def test_a_gist_github_lists_twice_as_its_list_shifts_is_kept_once(
    store: SiteStore, clock: FakeClock
) -> None:
    user = await stored(store, clock, [gist("a"), gist("b")], [gist("c")])
    # a gist made between the two pages' requests pushed "b" onto page two
    github = GitHubAnswering(
        [
            ListPage(PAGE_1, '"e1-new"', [gist("new"), gist("a")]),
            ListPage(PAGE_2, '"e2-new"', [gist("b"), gist("c")]),
        ]
    )
    refreshed, _ = await refresh(store, clock, github, user)
    assert [g.id for g in refreshed.gists] == ["new", "a", "b", "c"]
    github.pages = [
        ListPage(PAGE_1, '"e1-newer"', [gist("a"), gist("b")]),
        ListPage(PAGE_2, '"e2-newer"', [gist("b"), gist("c")]),  # "b" again, one page on
    ]
    refreshed, _ = await refresh(store, clock, github, refreshed.user)
    assert [g.id for g in refreshed.gists] == ["a", "b", "c"]
    assert await stored_ids(store) == ["a", "b", "c"]


async def test_a_list_github_confirms_page_by_page_is_revalidated_not_saved(
    store: SiteStore, clock: FakeClock
) -> None:
    user = await stored(store, clock, [gist("a")], [gist("b")])
    clock.advance(61)
    github = GitHubAnswering([ListPage(PAGE_1, '"e1"', None), ListPage(PAGE_2, '"e2"', None)])
    refreshed, lease = await refresh(store, clock, github, user)
    assert refreshed.cache is CacheStatus.REVALIDATED
    assert [g.id for g in refreshed.gists] == ["a", "b"]
    # still the stored pages' list
    assert refreshed.fingerprint == ((PAGE_1, '"e1"'), (PAGE_2, '"e2"'))
    async with store.read() as db:
        after = await db.users.get("u")
    assert after is not None
    assert (after.checked_at, after.fetched_at) == (clock(), user.fetched_at)
    assert not lease.held
