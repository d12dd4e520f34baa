"""The store bound once to this server's GitHub site: a read or a transaction hands
its caller the site's repositories over one session, so that no caller looks the site
up or passes it to each statement. The site's id is still looked up on first use, so
that a server starts while its database is away."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.store.contents import Contents
from gistcache.store.engine import Sessions
from gistcache.store.jobs import Jobs
from gistcache.store.leases import Leases
from gistcache.store.profiles import Profiles
from gistcache.store.sites import Site
from gistcache.store.users import Users
from gistcache.store.watches import OrgMembers, Watches


class SiteSession:
    """One session on the site's rows: ``users`` (the list cache), ``leases`` (refresh
    leases, GitHub blocks), ``profiles`` (GitHub's users), ``jobs`` (the search job
    queue), ``contents`` (the users' cached contents) and ``watches`` (saved searches,
    their events and deliveries), ``orgs`` (organisations' members); ``session`` and ``site`` for
    the statements that take them."""

    __slots__ = (
        "contents",
        "jobs",
        "leases",
        "orgs",
        "profiles",
        "session",
        "site",
        "users",
        "watches",
    )

    def __init__(self, session: AsyncSession, site: int) -> None:
        self.session = session
        self.site = site
        self.users = Users(session, site)
        self.leases = Leases(session, site)
        self.profiles = Profiles(session, site)
        self.jobs = Jobs(session, site)
        self.contents = Contents(session, site)
        self.watches = Watches(session, site)
        self.orgs = OrgMembers(session, site)


class SiteStore:
    """``async with store.read() as db`` to read, ``store.write()`` for a transaction
    (committed when the block ends, rolled back when it raises)."""

    def __init__(self, sessions: Sessions, site: Site) -> None:
        self.sessions = sessions
        self.site = site

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[SiteSession]:
        site = await self.site.id()
        async with self.sessions() as session:
            yield SiteSession(session, site)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[SiteSession]:
        site = await self.site.id()
        async with self.sessions.transaction() as session:
            yield SiteSession(session, site)
