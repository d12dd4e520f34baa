"""A user's list refreshed from GitHub, under the refresh lease its caller holds: GitHub
asked with the ETags of the pages the cache holds, the pages it answered 304 merged
with the gists the cache holds for them, the outcome saved (the lease handed back in
the same commit) and labelled. When to refresh is the listing service's decision.

When GitHub confirmed every page, the commit that records the check and hands the lease
back may be left for after the answer (:class:`Afterwards`): nothing GitHub said is lost
if the process dies before it, the check time alone (the lease then lapses within its
length, and the next request revalidates once more)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from gistcache.domain.clock import Clock
from gistcache.domain.errors import UserNotFound
from gistcache.domain.gists import Gist
from gistcache.domain.results import CacheStatus, GistList, PagesFingerprint
from gistcache.github.client import GitHubClient
from gistcache.github.errors import (
    ClientBudgetSpent,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
)
from gistcache.github.gate import PROBE_EVERY
from gistcache.github.pages import KnownPage, ListPage
from gistcache.services.lease import Lease
from gistcache.services.shared_block import SharedBlock
from gistcache.store.bound import SiteSession, SiteStore
from gistcache.store.users import PageOfGists, StoredPage, UserState

log = logging.getLogger(__name__)

# seconds a cached user is served STALE after GitHub failed (not rate-limited) for it
ERROR_BACKOFF = 5
# a user's refresh lease: renewed every REFRESH_RENEW_SECONDS while the refresh runs,
# so a process that died mid-refresh (kill -9) holds it at most this long
REFRESH_LEASE = timedelta(seconds=10)
REFRESH_RENEW_SECONDS = REFRESH_LEASE.total_seconds() / 3


def refresh_lease(
    store: SiteStore, key: str, clock: Clock, owner: str | None = None
) -> Lease[SiteSession]:
    """The lease under which the user ``key``'s list is refreshed, by one process at a
    time among those sharing the database; held by a new owner unless one is named."""
    holder = owner or uuid.uuid4().hex
    return Lease(
        store.write,
        claim=lambda db, now, until: db.leases.claim_refresh(key, holder, now, until),
        renew=lambda db, until: db.leases.renew_refresh(key, holder, until),
        release=lambda db: db.leases.release_refresh(key, holder),
        length=REFRESH_LEASE,
        clock=clock,
        what=f"the refresh of {key}",
        renew_every=REFRESH_RENEW_SECONDS,
    )


@dataclass(frozen=True, slots=True)
class _Known:
    """What the cache holds of a user's list as its refresh starts."""

    pages: list[StoredPage]  # with the ETags GitHub gave them
    gists: Sequence[Gist]  # in GitHub's order
    # the stored gists, each with its page; None when ``gists`` is a copy in memory
    paged: list[tuple[int, Gist]] | None = None
    fingerprint: PagesFingerprint | None = None  # the pages' version, when ``gists`` is it


_NOTHING_KNOWN = _Known([], [])


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What a refresh made of the list: the user's state after it, their gists, how
    they were obtained, and the stored pages' version when the gists are known to be it."""

    user: UserState
    gists: list[Gist]
    cache: CacheStatus
    fingerprint: PagesFingerprint | None = None
    # the commit still owed when the caller chose to answer first (it hands the lease back)
    owed: Callable[[], Awaitable[None]] | None = None


class Afterwards:
    """The commits refreshes left until after their answers, one at a time per user: each
    runs as its own task, then leaves the refresh's lease (its ``then``). ``settled(key)``
    waits for the user's, so that this process reads what it answered; ``close()`` waits
    for all of them (at shutdown)."""

    def __init__(self) -> None:
        self._owed: dict[str, asyncio.Task[None]] = {}  # the latest of each user
        self._running: set[asyncio.Task[None]] = set()

    def start(
        self, key: str, write: Callable[[], Awaitable[None]], then: contextlib.AsyncExitStack
    ) -> None:
        task = asyncio.ensure_future(self._run(key, write, then))
        self._owed[key] = task
        self._running.add(task)
        task.add_done_callback(lambda done: self._finished(key, done))

    async def settled(self, key: str) -> None:
        task = self._owed.get(key)
        if task is not None:
            await asyncio.wait({task})  # a caller that gives up does not cancel the write

    async def close(self) -> None:
        if self._running:
            await asyncio.wait(list(self._running))

    async def _run(
        self, key: str, write: Callable[[], Awaitable[None]], then: contextlib.AsyncExitStack
    ) -> None:
        try:
            async with then:  # the lease: handed back by the write, or else when it failed
                await write()
        except Exception:
            log.exception("could not record the check of %s that GitHub confirmed", key)

    def _finished(self, key: str, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._owed.get(key) is task:
            del self._owed[key]


class ListRefresher:
    def __init__(
        self, store: SiteStore, github: GitHubClient, shared_block: SharedBlock, clock: Clock
    ) -> None:
        self._store = store
        self._github = github
        self._shared_block = shared_block
        self._clock = clock

    async def refresh(
        self,
        key: str,
        user: UserState | None,
        lease: Lease[SiteSession],
        held: GistList | None = None,
        *,
        answer_first: bool = False,
    ) -> Refreshed:
        """Refresh the list of ``key`` (lower-cased) from GitHub; ``user`` is what the
        database holds of them, ``held`` a copy of their list in memory. Raises
        UserNotFound, or a GitHubError when GitHub fails and nothing is cached; when
        something is, GitHub failing serves it STALE (and GitHub is left alone a while).
        ``answer_first``: a list GitHub confirmed is returned with its commit ``owed``."""
        known = await self._known(key, user, held)
        usable = self._usable(user, known)
        try:
            walked = await self._walk(key, usable, cached=user is not None and user.has_list)
        except ClientBudgetSpent:
            if user is None or not user.has_list:
                raise
            # this client may ask GitHub no more for now: the cached list answers, and no
            # back-off is recorded (GitHub did not fail; other clients may ask)
            return Refreshed(user, list(known.gists), CacheStatus.STALE)
        except GitHubNotFound:
            async with self._store.write() as db:
                await db.users.save_not_found(key, self._github.credential, self._clock())
            raise UserNotFound(key) from None
        except GitHubError as exc:
            if user is None or not user.has_list:
                raise
            return await self._backed_off(key, user, known, exc)
        if (
            user is not None
            and user.has_list
            and len(walked) == len(usable)
            and all(page.not_modified for page in walked)
        ):
            confirmed, record = self._confirmed(key, user, known, lease)
            if answer_first:
                return dataclasses.replace(confirmed, owed=record)
            await record()
            return confirmed
        pages = await self._merged(key, walked, usable, known)
        return await self._saved(key, user, pages, lease)

    async def _known(self, key: str, user: UserState | None, held: GistList | None) -> _Known:
        """What the cache holds of the list. A copy in memory read from the database
        (only those are marked with its pages) is the stored list when it was read from
        pages with the ETags the database holds now (GitHub's fingerprints of their
        contents; and refreshes of a user take turns under the lease, so none is saved
        meanwhile): then the stored gists are read only if GitHub sends a page again."""
        if user is None or not user.has_list:
            return _NOTHING_KNOWN
        marked = held.pages_fingerprint if held is not None else None
        async with self._store.read() as db:
            stored = await db.users.read_list(key, unless=marked)
        if stored.gists is None and held is not None:
            return _Known(stored.pages, held.gists, None, stored.fingerprint)
        return _Known(stored.pages, stored.listed(), stored.gists, stored.fingerprint)

    def _usable(self, user: UserState | None, known: _Known) -> list[StoredPage]:
        """The known pages whose ETags GitHub is asked with. ETags belong to the
        credential that earned them: after a token change, the walk starts over; and a
        list cached before GitHub's items were kept is asked for unconditionally, so
        that GitHub sends them."""
        if (
            user is not None
            and user.credential == self._github.credential
            and all(gist.raw is not None for gist in known.gists)
        ):
            return known.pages
        return []

    async def _walk(self, key: str, usable: list[StoredPage], *, cached: bool) -> list[ListPage]:
        """Walk the user's list on GitHub, sharing what is learnt of GitHub's rate limit
        with every server using this database: none asks while another found the limit
        spent."""
        known = [KnownPage(page.url, page.etag) for page in usable]
        async with self._github.gate.shared(self._shared_block):
            return await self._github.list_user_gists(key, known, cached=cached)

    async def _backed_off(
        self, key: str, user: UserState, known: _Known, exc: GitHubError
    ) -> Refreshed:
        """GitHub failed for a cached user: every server serves the cache for a while."""
        wait = ERROR_BACKOFF
        if isinstance(exc, GitHubRateLimited):
            # the gate keeps GitHub alone meanwhile; the user is looked at again when a
            # spent limit may have been lifted (the gate checks every PROBE_EVERY)
            wait = min(exc.retry_after, math.ceil(PROBE_EVERY))
        retry_at = self._clock() + timedelta(seconds=wait)
        async with self._store.write() as db:
            await db.users.set_retry_at(key, retry_at)
        log.warning("serving %s from the cache for %d s: GitHub failed (%s)", key, wait, exc)
        state = dataclasses.replace(user, retry_at=retry_at)
        return Refreshed(state, list(known.gists), CacheStatus.STALE)

    def _confirmed(
        self, key: str, user: UserState, known: _Known, lease: Lease[SiteSession]
    ) -> tuple[Refreshed, Callable[[], Awaitable[None]]]:
        """GitHub answered 304 for every page: the known list is current, checked now;
        and the commit that records it and hands the lease back."""
        now = self._clock()

        async def record() -> None:
            async with lease.handing_back() as db:
                await db.users.mark_checked(key, now)

        state = dataclasses.replace(user, checked_at=now, retry_at=None)
        confirmed = Refreshed(state, list(known.gists), CacheStatus.REVALIDATED, known.fingerprint)
        return confirmed, record

    async def _merged(
        self, key: str, walked: list[ListPage], usable: list[StoredPage], known: _Known
    ) -> list[PageOfGists]:
        """GitHub's pages as the list stands now: a page answered 304 holds the stored
        gists of that page. GitHub may repeat an item when the list shifts during the
        walk: the first is kept."""
        paged = known.paged
        if paged is None and any(page.not_modified for page in walked):
            async with self._store.read() as db:  # the pages GitHub did not send again
                paged = await db.users.gists(key)
        page_no_of = {page.url: page.page_no for page in usable}
        by_page: dict[int, list[Gist]] = {}
        for page_no, gist in paged or ():
            by_page.setdefault(page_no, []).append(gist)
        seen: set[str] = set()
        pages = []
        for page in walked:
            items = page.gists if page.gists is not None else by_page.get(page_no_of[page.url], [])
            unique = [gist for gist in items if gist.id not in seen]
            seen.update(gist.id for gist in unique)
            pages.append(PageOfGists(page.url, page.etag, unique))
        return pages

    async def _saved(
        self,
        key: str,
        user: UserState | None,
        pages: list[PageOfGists],
        lease: Lease[SiteSession],
    ) -> Refreshed:
        """The list GitHub sent (some or all of it again) saved, the lease handed back in
        the same commit, and labelled."""
        now = self._clock()
        credential = self._github.credential
        async with lease.handing_back() as db:
            changed = await db.users.save_list(key, credential, now, pages)
        if user is None or not user.has_list:
            status = CacheStatus.MISS
        else:
            # REVALIDATED is GitHub's 304 alone; this walk had pages sent again in full
            # (all of them after a token change, which makes it ask unconditionally)
            status = CacheStatus.UPDATED if changed else CacheStatus.REFRESHED
        gists = [gist for page in pages for gist in page.gists]
        github_id = next((gist.owner_id for gist in gists if gist.owner_id is not None), None)
        if github_id is None and user is not None:
            github_id = user.github_id
        state = UserState(key, False, credential, now, now, github_id=github_id)
        # not marked: what was saved can differ from GitHub's parse (files of one name
        # kept once, a gist listed under another owner), so the next revalidation reads
        # the stored list once and marks that
        return Refreshed(state, gists, status)
