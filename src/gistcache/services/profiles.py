"""Use case: a GitHub user as ``GET /users/{username}`` gives them (for ``/api/v3``,
where clients such as PyGithub ask it before a user's gists), cached per site and
revalidated like a list: served from the cache for ``GISTCACHE_CACHE_TTL``, then asked
again with ``If-None-Match`` (a 304 to a token costs GitHub's budget nothing).

An unknown login is remembered as the lists remember it (one 404 answers both for
``GISTCACHE_NOT_FOUND_TTL``); GitHub failing is answered with the stored user, STALE,
and the user is left alone for a while, as a list is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from gistcache.domain.clock import Clock
from gistcache.domain.errors import UserNotFound
from gistcache.domain.results import CacheStatus
from gistcache.github.client import GitHubClient
from gistcache.github.errors import (
    ClientBudgetSpent,
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
)
from gistcache.github.gate import PROBE_EVERY
from gistcache.services.listing import ListingService
from gistcache.services.refresh import ERROR_BACKOFF
from gistcache.services.singleflight import SingleFlight
from gistcache.store.bound import SiteStore
from gistcache.store.profiles import StoredProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Profile:
    body: str  # GitHub's JSON of the user, as it sent it
    cache: CacheStatus  # how it was obtained (X-Cache)
    checked_at: datetime  # when GitHub last sent or confirmed it
    fresh_for: float  # seconds it may still be served without asking GitHub

    def age(self, now: datetime) -> float:
        return max(0.0, (now - self.checked_at).total_seconds())


class UserProfiles:
    def __init__(
        self,
        store: SiteStore,
        github: GitHubClient,
        listing: ListingService,
        *,
        cache_ttl: float,
        clock: Clock,
    ) -> None:
        self._store = store
        self._github = github
        self._listing = listing
        self._ttl = cache_ttl
        self._clock = clock
        self._flights: SingleFlight[Profile] = SingleFlight()

    async def close(self) -> None:
        await self._flights.close()

    async def get(self, login: str) -> Profile:
        """The user ``login``. Raises UserNotFound, or a GitHubError when GitHub fails and
        nothing is cached."""
        key = login.lower()
        await self._listing.last_checked(key)  # UserNotFound while GitHub's 404 is remembered
        async with self._store.read() as db:
            stored = await db.profiles.get(key)
        now = self._clock()
        if stored is not None:
            if self._fresh_for(stored, now) > 0:
                return self._profile(stored, CacheStatus.HIT, now)
            if stored.retry_at is not None and now < stored.retry_at:
                return self._profile(stored, CacheStatus.STALE, now)
        return await self._flights.run(key, lambda: self._refresh(key, stored))

    def _fresh_for(self, stored: StoredProfile, now: datetime) -> float:
        return self._ttl - (now - stored.checked_at).total_seconds()

    def _profile(self, stored: StoredProfile, cache: CacheStatus, now: datetime) -> Profile:
        fresh = 0.0 if cache is CacheStatus.STALE else max(0.0, self._fresh_for(stored, now))
        return Profile(stored.body, cache, stored.checked_at, fresh)

    async def _refresh(self, key: str, stored: StoredProfile | None) -> Profile:
        # ETags belong to the credential that earned them
        etag = (
            stored.etag
            if stored is not None and stored.credential == self._github.credential
            else None
        )
        try:
            async with self._github.gate.shared(self._listing.shared_block):
                answer = await self._github.user(key, etag, cached=stored is not None)
        except ClientBudgetSpent:
            if stored is None:
                raise
            return self._profile(stored, CacheStatus.STALE, self._clock())
        except GitHubNotFound:
            async with self._store.write() as db:
                await db.users.save_not_found(key, self._github.credential, self._clock())
                await db.profiles.delete(key)
            raise UserNotFound(key) from None
        except GitHubError as exc:
            if stored is None:
                raise
            wait = ERROR_BACKOFF
            if isinstance(exc, GitHubRateLimited):
                wait = min(exc.retry_after, int(PROBE_EVERY))
            until = self._clock() + timedelta(seconds=wait)
            async with self._store.write() as db:
                await db.profiles.set_retry_at(key, until)
            log.warning(
                "serving user %s from the cache for %d s: GitHub failed (%s)", key, wait, exc
            )
            return self._profile(stored, CacheStatus.STALE, self._clock())

        now = self._clock()
        if answer.body is None:  # 304: unchanged
            assert stored is not None  # noqa: S101 - only a stored user is asked conditionally
            async with self._store.write() as db:
                await db.profiles.mark_checked(key, answer.etag, now)
            confirmed = StoredProfile(key, stored.body, answer.etag, stored.credential, now, None)
            return self._profile(confirmed, CacheStatus.REVALIDATED, now)
        body = json.dumps(answer.body, separators=(",", ":"))
        async with self._store.write() as db:
            await db.profiles.save(key, body, answer.etag, self._github.credential, now)
        if stored is None:
            cache = CacheStatus.MISS
        else:
            cache = CacheStatus.REFRESHED if stored.body == body else CacheStatus.UPDATED
        saved = StoredProfile(key, body, answer.etag, self._github.credential, now, None)
        return self._profile(saved, cache, now)
