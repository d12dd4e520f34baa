"""Use case: one public gist with its files' contents, as ``GET /gists/{id}`` gives it.

The gist is found in its owner's cached list (brought up to date by the listing
rules; an id the cache has never listed is looked up on GitHub once, to learn whose
list to fetch; an id GitHub has no public gist by is remembered as unknown for the
unknown-user TTL). Each file's contents come from the cache when they are current for the
gist's revision, else they are fetched and cached first (``services.contents``, which
shares a download under way with searches), within the contents budget as a search's
are (``services.retention``: a download share of its own, the owner's contents kept
from eviction while they are read, the budget kept after). Like GitHub, at most ``content_limit``
bytes of each file are given, with ``truncated`` saying whether that was all of it.

A file the cache holds no text of (binary, or larger than it keeps) has its first
``content_limit`` bytes downloaded once and kept beside its state (its head, counted
in the contents' budget): a repeat costs GitHub nothing, and GitHub being unreachable
changes nothing. A binary one (a NUL byte near its start) is given as GitHub gives it,
base64 with ``"encoding": "base64"``.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

from gistcache.domain.chunking import BINARY_SNIFF_BYTES
from gistcache.domain.errors import GistNotFound, UserNotFound
from gistcache.domain.gists import GIST_ID, Gist, GistFile
from gistcache.domain.results import CacheStatus, GistList, SkipReason
from gistcache.github.client import GitHubClient
from gistcache.github.errors import GitHubNotFound, GitHubUnavailable
from gistcache.services.contents import ContentFetcher
from gistcache.services.listing import ListingService
from gistcache.services.memory import UnknownIds
from gistcache.services.retention import SearchDownloads
from gistcache.store import contents as content_store
from gistcache.store.contents import TEXT, FileState
from gistcache.store.engine import Sessions
from gistcache.store.errors import FileLeftList
from gistcache.store.sites import Site

# what GitHub's GET /gists/{id} gives of each file, at most
CONTENT_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileContent:
    content: str  # at most the limit's bytes of the file, decoded (invalid UTF-8 as U+FFFD)
    truncated: bool  # the file holds more than ``content``
    encoding: str | None = None  # "base64" for a binary file's (GitHub's "encoding")


@dataclass(frozen=True, slots=True)
class GistContents:
    """A gist whose files' contents are in the cache: ``GistReader.contents`` reads them."""

    gist: Gist  # with GitHub's item (``raw``)
    listing: GistList  # the owner's list it was found in, and how that was obtained


class GistReader:
    def __init__(
        self,
        sessions: Sessions,
        listing: ListingService,
        contents: ContentFetcher,
        github: GitHubClient,
        site: Site,
        *,
        content_limit: int = CONTENT_LIMIT,
        not_found_ttl: float = 300.0,
    ) -> None:
        self._sessions = sessions
        self._listing = listing
        self._contents = contents
        self._github = github
        self._site = site
        self._limit = content_limit
        # ids GitHub has no public gist by: asked again only after the unknown-user TTL
        self._unknown = UnknownIds(not_found_ttl)

    @contextlib.asynccontextmanager
    async def read(self, gist_id: str, *, revalidate: bool = False) -> AsyncIterator[GistContents]:
        """The public gist ``gist_id`` with its files' contents in the cache, for the
        block to read (``contents``): meanwhile its owner's contents are kept from
        eviction, as a search's are. What it downloads is paid for by a share of its own,
        as a search's (``GISTCACHE_SEARCH_DOWNLOAD_MB``; a file past it is read from
        GitHub, not cached), and the cached contents are kept within their budget after.

        Raises GistNotFound (no such gist, or a secret one), or a GitHubError when
        GitHub fails and the cache cannot answer.
        """
        found = await self._find(gist_id, revalidate)
        site = await self._site.id()
        downloads = await self._contents.searching(site, found.listing.login)
        try:
            await self._ensure(found.listing.login, found.gist, downloads)
            await self._ensure_heads(found.listing.login, found.gist, downloads)
            await downloads.finish()  # the cached contents back within their budget
            yield found
        finally:
            downloads.close()

    async def _find(self, gist_id: str, revalidate: bool) -> GistContents:
        if not GIST_ID.fullmatch(gist_id):
            raise GistNotFound(gist_id)  # never sent to GitHub
        owner = await self._listing.owner_of(gist_id)
        asked = owner is None
        if owner is None:
            owner = await self._owner_on_github(gist_id)
        listing = await self._list(gist_id, owner, revalidate)
        gist = next((g for g in listing.gists if g.id == gist_id), None)
        if gist is None and asked and listing.cache is CacheStatus.HIT:
            # GitHub has just named it, and the cached list is older: GitHub's list has it
            listing = await self._list(gist_id, owner, True)
            gist = next((g for g in listing.gists if g.id == gist_id), None)
        if gist is None:  # gone from the list, or never public
            raise GistNotFound(gist_id)
        if gist.raw is None:
            raise GitHubUnavailable("GitHub failed, and the cache holds no item of this gist")
        return GistContents(gist, listing)

    async def _list(self, gist_id: str, owner: str, revalidate: bool) -> GistList:
        try:
            return await self._listing.list_gists(owner, revalidate=revalidate, need_items=True)
        except UserNotFound:
            raise GistNotFound(gist_id) from None

    async def _owner_on_github(self, gist_id: str) -> str:
        if self._unknown.knows(gist_id, self._listing.clock()):
            raise GistNotFound(gist_id)  # even a secret one: GitHub said so a moment ago
        try:
            async with self._github.gate.shared(self._listing.shared_block):
                owner = await self._github.gist_owner(gist_id)
        except GitHubNotFound:
            owner = None
        if owner is None:  # no such gist, or a secret one (or one that names no owner)
            self._unknown.remember(gist_id, self._listing.clock())
            raise GistNotFound(gist_id)
        return owner

    async def _ensure(self, login: str, gist: Gist, downloads: SearchDownloads) -> None:
        """Bring the gist's files' contents into the cache (those not current yet, as far
        as ``downloads`` pays for them: the others are read from GitHub)."""
        async with self._listing.store.read() as db:
            missing = await db.contents.files_without_contents(login, gist_id=gist.id)
        async for ref, outcome in self._contents.ensure(missing, downloads):
            if outcome is not None and outcome is not SkipReason.DOWNLOAD_BUDGET:
                raise GitHubUnavailable(
                    f"the contents of {ref.filename!r} could not be fetched ({outcome.value})"
                )

    async def _ensure_heads(self, login: str, gist: Gist, downloads: SearchDownloads) -> None:
        """Keep the head of each of the gist's files the cache holds no text of (binary or
        too large) and no head of yet: downloaded once (raw downloads cost no API budget),
        paid for by ``downloads`` (a head past it is not kept: read from GitHub again),
        counted in the contents' budget, kept until the file changes or is evicted."""
        async with self._listing.store.read() as db:
            states = await db.contents.user_files(login, gist_id=gist.id)
        headless = [s for s in states if s.status not in (None, TEXT) and not s.chunks]
        raw_urls = {f.filename: f.raw_url for f in gist.files}
        for state in headless:
            head = await self._raw_head(raw_urls.get(state.filename))
            if not await downloads.reserve(len(head)):
                continue
            try:
                async with self._sessions() as session, session.begin():
                    stored = await content_store.install_head(session, state, head)
            except FileLeftList:
                stored = False
            if stored:
                self._contents.budget.installed(len(head))
            else:
                downloads.refund(len(head))

    async def contents(
        self, found: GistContents, *, only: str | None = None
    ) -> AsyncGenerator[tuple[GistFile, FileContent], None]:
        """Each file of the gist with its contents (at most the limit of it), in the
        gist's order, one at a time: a gist of 300 large files is never held whole.
        ``only``: the file of that name alone (none when the gist has no such file), the
        others not read. GitHubUnavailable when a file's contents changed while being read."""
        async with self._listing.store.read() as db:
            states = await db.contents.user_files(found.listing.login, gist_id=found.gist.id)
        by_name = {state.filename: state for state in states}
        for f in found.gist.files:
            if only is not None and f.filename != only:
                continue
            state = by_name.get(f.filename)
            if state is not None and state.status == TEXT:
                data = await self._cached_head(state)
            else:  # binary, or past the cache's own size limit: its head, kept by get()
                data = await self._kept_head(state, f.raw_url)
            size = max(f.size or 0, len(data))
            truncated = size > self._limit
            if b"\0" in data[:BINARY_SNIFF_BYTES]:  # binary, as the cache tells it
                encoded = base64.b64encode(data[: self._limit]).decode("ascii")
                yield f, FileContent(encoded, truncated, "base64")
            else:
                yield f, FileContent(_prefix(data, self._limit), truncated)

    async def _kept_head(self, state: FileState | None, raw_url: str | None) -> bytes:
        """A binary or too large file's head from the cache; from its raw URL only when
        none is kept (its contents changed since ``get``)."""
        if state is not None and state.chunks:
            async with self._sessions() as session:
                head = await content_store.read_head(session, state)
            if head is not None:
                return head
        return await self._raw_head(raw_url)

    async def _cached_head(self, state: FileState) -> bytes:
        """At most just past the limit of a cached text file's bytes (an empty file has
        no chunk)."""
        data = bytearray()
        async with self._sessions() as session:
            chunks = content_store.stream_text_chunks(session, [state])
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    if chunk.data is None:
                        raise GitHubUnavailable("the file's contents changed while being read")
                    data += chunk.data
                    if len(data) > self._limit:
                        break
        return bytes(data)

    async def _raw_head(self, raw_url: str | None) -> bytes:
        """At most just past the limit of a file's bytes, straight from its raw URL."""
        if raw_url is None or not self._github.raw_url_allowed(raw_url):
            raise GitHubUnavailable("the file's contents are not at an allowed place")
        data = bytearray()
        pieces = self._github.iter_raw(raw_url)
        try:
            async for piece in pieces:
                data += piece
                if len(data) > self._limit:
                    break
        finally:
            close = getattr(pieces, "aclose", None)
            if close is not None:  # the download stops here, its connection released
                await close()
        return bytes(data)


# the fake GitHub keeps its own copy of this cut (_content_prefix): it stays independent
def _prefix(data: bytes, limit: int) -> str:
    """At most ``limit`` bytes of ``data`` as text, cut (as GitHub does) before a character
    the limit would split."""
    if len(data) <= limit:
        return data.decode("utf-8", "replace")
    cut = limit
    # back up over UTF-8 continuation bytes when the next byte starts no character
    while cut > limit - 3 and 0x80 <= data[cut] < 0xC0:
        cut -= 1
    return data[:cut].decode("utf-8", "replace")
