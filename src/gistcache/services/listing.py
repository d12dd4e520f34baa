"""Use case: list a user's gists through the cache, by the freshness policy
(``domain.freshness``): the lists this process served lately in memory, refreshes
shared within the process, and across processes under a per-user lease in the
database (``services.lease``); the refresh itself is ``services.refresh``'s."""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import datetime, timedelta
from typing import NamedTuple

from gistcache.domain.clock import Clock, utcnow
from gistcache.domain.errors import UserNotFound
from gistcache.domain.freshness import Cached, Decision, Ttls, decide, fresh_for
from gistcache.domain.gists import Gist
from gistcache.domain.results import CacheStatus, GistList, PagesFingerprint
from gistcache.github.client import GitHubClient
from gistcache.services.lease import Lease
from gistcache.services.memory import ListMemory, RenderedList
from gistcache.services.refresh import Afterwards, ListRefresher, refresh_lease
from gistcache.services.shared_block import SharedBlock
from gistcache.services.singleflight import SingleFlight
from gistcache.store.bound import SiteSession, SiteStore
from gistcache.store.users import UserState

# the longest a request waits for another process's refresh before making its own
REFRESH_WAIT = timedelta(seconds=120)
LEASE_POLL_SECONDS = 0.1


# how an answer from the cache is labelled, by the policy's decision
_SERVED_AS = {Decision.SERVE: CacheStatus.HIT, Decision.BACK_OFF: CacheStatus.STALE}


def _cached(user: UserState) -> Cached:
    return Cached(not_found=user.not_found, checked_at=user.checked_at, retry_at=user.retry_at)


def _flight(key: str, revalidate: bool) -> str:
    # a client's no-cache must reach GitHub: it never joins a refresh that may not
    return key + "\0revalidate" if revalidate else key


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    """How fresh a cached list is, without the list."""

    login: str
    checked_at: datetime  # when GitHub last sent or confirmed it
    backing_off: bool  # GitHub failed for the user lately: its list is served STALE


class ListAnswer(NamedTuple):
    """A whole list as it is answered: the version of the list with its JSON, how it was
    obtained (``X-Cache``), and the seconds it stays fresh (0 when STALE)."""

    rendered: RenderedList
    cache: CacheStatus
    fresh_for: float


class ListingService:
    def __init__(
        self,
        store: SiteStore,
        github: GitHubClient,
        *,
        cache_ttl: float,
        not_found_ttl: float,
        memory_bytes: int = 0,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self._github = github
        self._ttls = Ttls(cache=cache_ttl, not_found=not_found_ttl)
        self.clock = clock
        self._refreshes: SingleFlight[GistList] = SingleFlight()
        self._memory = ListMemory(memory_bytes)
        # GitHub's rate limit for this credential, as every server sharing the database knows it
        self.shared_block = SharedBlock(store, github.credential, clock)
        self._refresher = ListRefresher(store, github, self.shared_block, clock)
        self._afterwards = Afterwards()

    async def close(self) -> None:
        await self._refreshes.close()
        await self._afterwards.close()

    async def list_gists(
        self,
        login: str,
        *,
        revalidate: bool = False,
        need_items: bool = False,
        answer_first: bool = False,
    ) -> GistList:
        """The user's public gists, from the cache while fresh, else refreshed from GitHub.

        ``revalidate`` asks GitHub even when the cache is fresh (a client's no-cache).
        ``need_items``: the caller needs GitHub's own item of every gist (``Gist.raw``); a
        list cached before items were kept is then fetched again at once (a STALE one,
        when GitHub fails, may still lack them).
        ``answer_first``: the caller has more to do before its answer; when GitHub
        confirms a stale list, the commit that records it is made meanwhile, not before
        returning (this process waits for it before it reads the user again).
        Raises UserNotFound, or a GitHubError when GitHub fails and nothing is cached.
        """
        listing, _ = await self._listing(login, revalidate, answer_first)
        if need_items and not revalidate and any(gist.raw is None for gist in listing.gists):
            listing, _ = await self._listing(login, True)
        return listing

    async def list_rendered(self, login: str, *, revalidate: bool = False) -> ListAnswer:
        """The user's public gists as :meth:`list_gists` gives them, with their JSON:
        made once per version of the list while the memory tier holds it. A fresh list
        held there is answered as it is held, with nothing made for the request."""
        if not revalidate:
            found = self._fresh_in_memory(login.lower())
            if found is not None:
                return ListAnswer(found[0], CacheStatus.HIT, found[1])
        listing, rendered = await self._listing(login, revalidate)
        return ListAnswer(rendered or RenderedList.of(listing), listing.cache, listing.fresh_for)

    async def last_checked(self, login: str) -> Checked | None:
        """When GitHub last sent or confirmed the cached list of ``login``, from the
        database alone: GitHub is never asked, however old the list (the page asks this
        after every search). None when no list is cached; raises UserNotFound while
        GitHub's 404 for the login is remembered."""
        await self._afterwards.settled(login.lower())
        async with self.store.read() as db:
            user = await db.users.get(login.lower())
        if user is None:
            return None
        decision = self._decide(user)
        if decision is Decision.NOT_FOUND:
            raise UserNotFound(login)
        if not user.has_list:
            return None
        return Checked(user.login, user.checked_at, decision is Decision.BACK_OFF)

    async def requests_needed(self, logins: list[str]) -> int:
        """At least how many GitHub API requests listing ``logins`` would make, from the
        database alone: one for each user whose list is not cached, or is due for
        revalidation (a 304 is free with a token, but not without); none for a fresh
        list, an unknown user GitHub's 404 is remembered for, or one backed off."""
        needed = 0
        async with self.store.read() as db:
            for login in logins:
                user = await db.users.get(login.lower())
                needed += self._decide(user) is Decision.REFRESH
        return needed

    async def login_of(self, github_id: int) -> str | None:
        """The login of the user GitHub numbers ``github_id``, if the cache learnt it from
        one of their lists (GitHub's ``Link`` headers name users by id)."""
        async with self.store.read() as db:
            return await db.users.login_of(github_id)

    async def owner_of(self, gist_id: str) -> str | None:
        """Whose cached list holds the public gist ``gist_id``, if anyone's."""
        async with self.store.read() as db:
            return await db.users.owner_of(gist_id)

    async def _listing(
        self, login: str, revalidate: bool, answer_first: bool = False
    ) -> tuple[GistList, RenderedList | None]:
        """The list, and its rendering when the memory tier holds one."""
        key = login.lower()
        if not revalidate:
            found = self._fresh_in_memory(key)
            if found is not None:
                held, left = found
                hit = dataclasses.replace(held.listing, cache=CacheStatus.HIT, fresh_for=left)
                return hit, held
        # a refresh of this user under way answers for everyone, without a database read
        running = self._refreshes.joined(_flight(key, revalidate))
        try:
            listing = await (running or self._list_gists(login, key, revalidate, answer_first))
        except UserNotFound:
            self._memory.discard(key)  # the user is gone from GitHub: so is the copy here
            raise
        if listing.cache is CacheStatus.STALE:
            return listing, None
        return listing, self._memory.keep(key, listing)

    def _fresh_in_memory(self, key: str) -> tuple[RenderedList, float] | None:
        """The list held in memory while it is fresh, and the seconds it stays so. This
        is the freshness policy's SERVE (``domain.freshness.decide``) for a list GitHub
        sent, without a revalidation asked: younger than the TTL. It runs for every
        cached list, so it compares the age alone, making nothing."""
        held = self._memory.get(key)
        if held is None:
            return None
        age = (self.clock() - held.listing.checked_at).total_seconds()
        if age >= self._ttls.cache:
            return None
        return held, self._ttls.cache - max(0.0, age)

    async def _list_gists(
        self, login: str, key: str, revalidate: bool, answer_first: bool
    ) -> GistList:
        await self._afterwards.settled(key)
        async with self.store.read() as db:
            user = await db.users.get(key)
            decision = self._decide(user, revalidate=revalidate)
            if decision is Decision.NOT_FOUND:
                raise UserNotFound(login)  # even for no-cache: random names stay cheap
            if user is not None and decision is not Decision.REFRESH:
                return await self._stored(db, key, user, _SERVED_AS[decision])
        return await self._refreshes.run(
            _flight(key, revalidate), lambda: self._refresh(key, revalidate, answer_first)
        )

    async def _stored(
        self, db: SiteSession, key: str, user: UserState, cache: CacheStatus
    ) -> GistList:
        """The stored list, marked with the pages it was stored from when its gists are
        known to be those pages' (``Users.read_list``)."""
        stored = await db.users.read_list(key)
        return self._result(user, stored.listed(), cache, stored.fingerprint)

    def _decide(
        self,
        user: UserState | None,
        *,
        revalidate: bool = False,
        refreshed_since: datetime | None = None,
    ) -> Decision:
        """The freshness policy's decision for what the database holds of the user."""
        cached = None if user is None else _cached(user)
        return decide(
            cached,
            self._ttls,
            self.clock(),
            revalidate=revalidate,
            refreshed_since=refreshed_since,
        )

    def _result(
        self,
        user: UserState,
        gists: list[Gist],
        cache: CacheStatus,
        pages: PagesFingerprint | None = None,
    ) -> GistList:
        left = fresh_for(_cached(user), self._ttls, self.clock())
        remaining = 0.0 if cache is CacheStatus.STALE else max(0.0, left)
        return GistList(user.login, gists, cache, user.checked_at, remaining, user.github_id, pages)

    async def _refresh(
        self, key: str, revalidate: bool = False, answer_first: bool = False
    ) -> GistList:
        """Refresh from GitHub under the user's refresh lease, so that processes sharing
        one database run one refresh of a user at a time. No transaction or database
        connection is held while GitHub answers."""
        await self._afterwards.settled(key)
        started = self.clock()
        lease = refresh_lease(self.store, key, self.clock)
        waited = not await lease.claim()
        if waited:
            # another process is refreshing this user: serve what is cached, or wait (a
            # client's no-cache always waits, for an answer GitHub has just given)
            async with self.store.read() as db:
                user = await db.users.get(key)
                if user is not None and user.has_list and not revalidate:
                    gists = [gist for _, gist in await db.users.gists(key)]
                    return self._result(user, gists, CacheStatus.STALE)
            await lease.wait(REFRESH_WAIT.total_seconds(), LEASE_POLL_SECONDS)
        async with contextlib.AsyncExitStack() as leaving:
            await leaving.enter_async_context(lease)
            async with self.store.read() as db:
                user = await db.users.get(key)
                # a refresh that finished meanwhile (here or in another process) answers
                # for us; one that failed leaves GitHub alone for a while
                decision = self._decide(
                    user, revalidate=revalidate, refreshed_since=started if waited else None
                )
                if decision is Decision.NOT_FOUND:
                    raise UserNotFound(key)
                if user is not None and decision is not Decision.REFRESH:
                    return await self._stored(db, key, user, _SERVED_AS[decision])
            return await self._refresh_claimed(key, user, lease, leaving, answer_first)

    async def _refresh_claimed(
        self,
        key: str,
        user: UserState | None,
        lease: Lease[SiteSession],
        leaving: contextlib.AsyncExitStack,
        answer_first: bool,
    ) -> GistList:
        held = self._memory.get(key)
        refreshed = await self._refresher.refresh(
            key,
            user,
            lease,
            held.listing if held is not None else None,
            answer_first=answer_first,
        )
        if refreshed.owed is not None:
            # the lease is left once that commit is made (it hands the lease back)
            self._afterwards.start(key, refreshed.owed, leaving.pop_all())
        return self._result(refreshed.user, refreshed.gists, refreshed.cache, refreshed.fingerprint)
