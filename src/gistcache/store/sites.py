"""Which GitHub the cache's rows came from.

A site is a GitHub API, named by its normalised base URL: scheme, host, port (only when
not the scheme's default) and path, so a GitHub Enterprise at ``https://HOST/api/v3``,
the fake on ``http://127.0.0.1:9000`` and ``https://api.github.com`` are three sites.
Every row that came from GitHub carries its site's id; a server binds to its site once
and sees nothing of the others.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from gistcache.store.engine import Sessions
from gistcache.store.models import sites
from gistcache.store.sql import dialect_insert


def site_url(api_url: str) -> str:
    """The API base URL as a site's name: lower-case scheme and host, no default port,
    no trailing slash, no credentials, query or fragment."""
    url = URL(api_url)
    scheme = url.scheme.lower()
    host = (url.raw_host or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    port = (
        ""
        if url.port is None or url.port == {"http": 80, "https": 443}.get(scheme)
        else (f":{url.port}")
    )
    return f"{scheme}://{host}{port}{url.raw_path.rstrip('/')}"


async def site_id(session: AsyncSession, api_url: str) -> int:
    """The id of the site ``api_url`` names, made on first use (by any server)."""
    name = site_url(api_url)
    await session.execute(
        dialect_insert(session)(sites)
        .values(api_url=name)
        .on_conflict_do_nothing(index_elements=["api_url"])
    )
    found = (await session.execute(select(sites.c.id).where(sites.c.api_url == name))).scalar_one()
    return int(found)


class Site:
    """The site a server talks to; its id is looked up once, when first needed (so that a
    server starts while its database is away)."""

    def __init__(self, sessions: Sessions, api_url: str) -> None:
        self._sessions = sessions
        self.url = site_url(api_url)
        self._id: int | None = None
        self._lock = asyncio.Lock()

    async def id(self) -> int:
        if self._id is None:
            async with self._lock:
                if self._id is None:
                    async with self._sessions() as session, session.begin():
                        self._id = await site_id(session, self.url)
        return self._id
