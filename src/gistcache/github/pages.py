"""The walk along a list's pages: ``rel="next"`` links followed in order, the pages known
from an earlier walk asked for again together (conditional on their ETags), and a new
list's pages asked for together once its first page names the last one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from yarl import URL

from gistcache.domain.gists import Gist
from gistcache.github.errors import GitHubUnavailable
from gistcache.github.parse import Answer, PageKey, page_key, pages_between, public_gists

# a stale list's known pages asked for again at once; GitHub asks API clients for no
# more than 100 concurrent requests, and a list rarely has more pages than this
KNOWN_PAGES_AT_ONCE = 4

# GETs one page of a list: its URL, and the ETag to ask with
GetPage = Callable[[str, str | None], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class KnownPage:
    """A page we fetched before: its URL and the ETag GitHub gave it."""

    url: str
    etag: str | None


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a user's gist list as GitHub answered it.

    ``gists`` is None when GitHub answered 304: the page is unchanged since ``etag``.
    """

    url: str
    etag: str | None
    gists: list[Gist] | None

    @property
    def not_modified(self) -> bool:
        return self.gists is None


async def walk_list(
    get: GetPage, first: str, known: Sequence[KnownPage], max_pages: int
) -> list[ListPage]:
    """Every page of a list from its ``first`` URL, following ``rel="next"`` links.

    Pages in ``known`` (from an earlier walk, in order) are asked for with
    ``If-None-Match`` all at once (at most ``KNOWN_PAGES_AT_ONCE`` in flight, well
    within GitHub's guidance of no more than 100 concurrent requests), so that a
    stale list costs one round trip; GitHub answers 304 for those unchanged, and
    then the page that followed last time follows again. The walk still goes by
    the answers, in order: an answer for a page the walk no longer reaches is
    dropped, and a page it reaches that was not known is asked for then. Pages are
    told apart by :func:`~gistcache.github.parse.page_key` (their query's pairs in
    any order), and no page is asked for twice in one walk.
    """
    walk = _Walk(get, known, max_pages)
    if known and page_key(known[0].url) == page_key(first):
        walk.ask_ahead((page.url, page.etag) for page in known)
    try:
        return await walk.run(first)
    finally:
        await walk.drop_unreached()


class _Walk:
    def __init__(self, get: GetPage, known: Sequence[KnownPage], max_pages: int) -> None:
        self._get = get
        self._known = known
        self._max_pages = max_pages
        self._by_key = {page_key(page.url): (index, page.etag) for index, page in enumerate(known)}
        self._ahead: dict[PageKey, asyncio.Task[Answer]] = {}
        self._slots = asyncio.Semaphore(KNOWN_PAGES_AT_ONCE)

    def ask_ahead(self, pages: Iterable[tuple[str, str | None]]) -> None:
        """Ask for these pages now, before the walk reaches them."""
        for url, etag in pages:
            self._ahead[page_key(url)] = asyncio.ensure_future(self._asked(url, etag))

    async def _asked(self, url: str, etag: str | None) -> Answer:
        async with self._slots:
            return await self._get(url, etag)

    async def run(self, url: str | None) -> list[ListPage]:
        pages: list[ListPage] = []
        seen: set[PageKey] = set()
        while url is not None:
            key = page_key(url)
            if key in seen or len(pages) >= self._max_pages:
                raise GitHubUnavailable("GitHub's pagination did not end")
            seen.add(key)
            index, etag = self._by_key.get(key, (None, None))
            asked = self._ahead.get(key)
            answer = await asked if asked is not None else await self._get(url, etag)
            if answer.not_modified:
                if index is None:
                    raise GitHubUnavailable("GitHub answered 304 to an unconditional request")
                # the page as the caller knows it, however this walk's link spelt it
                pages.append(ListPage(self._known[index].url, answer.etag or etag, None))
                url = self._known[index + 1].url if index + 1 < len(self._known) else None
                continue
            gists = public_gists(answer.body)
            if not self._known and not pages:
                self._ask_between(answer.next, answer.last)
            pages.append(ListPage(url, answer.etag, gists))
            url = None if answer.next is None else str(answer.next)
        return pages

    def _ask_between(self, following: URL | None, last: URL | None) -> None:
        """A list not seen before: its first page names the last one, so the pages in
        between are asked for now, together, rather than one after another."""
        if following is not None and last is not None:
            between = pages_between(following, last, self._max_pages)
            self.ask_ahead((url, None) for url in between)

    async def drop_unreached(self) -> None:
        """Cancel the answers the walk did not reach (or left behind when it failed)."""
        for task in self._ahead.values():
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # retrieved: an unreached page's failure is no news
        if self._ahead:
            await asyncio.gather(*self._ahead.values(), return_exceptions=True)
