"""Use case: an organisation's public members, for watches of an organisation: cached
in the database and revalidated like a gist list (served as cached for the list TTL,
then asked again page by page with each page's ETag: free while GitHub answers 304 to
a token). When GitHub fails, the members cached are served as they are."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from gistcache.domain.clock import Clock
from gistcache.github.client import GitHubClient
from gistcache.github.errors import GitHubNotFound
from gistcache.github.members import MembersPage
from gistcache.store.bound import SiteStore

log = logging.getLogger(__name__)


class OrgMembers:
    def __init__(
        self, store: SiteStore, github: GitHubClient, *, cache_ttl: float, clock: Clock
    ) -> None:
        self._store = store
        self._github = github
        self._ttl = timedelta(seconds=cache_ttl)
        self._clock = clock

    async def members(self, org: str) -> list[str]:
        """The organisation's public members (lower-cased logins) in GitHub's order.
        GitHubNotFound (a failure of kind ``user-not-found``) for no such organisation;
        GitHub's failures when nothing is cached."""
        async with self._store.read() as db:
            cached = await db.orgs.get(org)
        known: list[MembersPage] = []
        if cached is not None:
            known = [MembersPage.from_json(page) for page in json.loads(cached[0])]
            if cached[1] + self._ttl > self._clock():
                return _logins(known)
        try:
            pages = await self._github.org_public_members(org, known)
        except GitHubNotFound:
            raise
        except Exception as exc:
            if not known or getattr(exc, "kind", None) is None:
                raise
            log.warning("members of %s: GitHub failed (%s); the cached ones are used", org, exc)
            return _logins(known)
        async with self._store.write() as db:
            await db.orgs.save(org, json.dumps([p.to_json() for p in pages]), self._clock())
        return _logins(pages)


def _logins(pages: list[MembersPage]) -> list[str]:
    seen: dict[str, None] = {}
    for page in pages:
        for login in page.logins:
            seen.setdefault(login.lower())
    return list(seen)
