"""Use case: bring files' contents into the cache: download (from raw URLs, which cost
no API budget), cut into line-aligned chunks, install as the file's current contents.

Each file is fetched by one flight at a time in this process, keyed on the file's
revision (site, gist, filename, the gist's ``updated_at`` and the raw URL): searches
that miss overlapping files share the overlap and fetch the rest on their own, and
``ensure`` hands each file back as soon as it is in, so a caller can go on with it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import datetime, timedelta
from typing import Any

from gistcache.domain.chunking import BinaryContent, Chunk, ContentTooLarge, chunk_stream
from gistcache.domain.results import SkipReason
from gistcache.github.client import GitHubClient
from gistcache.github.errors import ForbiddenRawHost, GitHubError
from gistcache.services.listing import Clock
from gistcache.services.singleflight import SingleFlight
from gistcache.store import contents as store
from gistcache.store.contents import BINARY, TEXT, TOO_LARGE, FileRef
from gistcache.store.engine import Sessions
from gistcache.store.errors import FileLeftList

log = logging.getLogger(__name__)

# a file whose download failed is not asked for again before this, doubling with each
# failure in a row up to the cap; a changed file (new raw_url or updated_at) at once
DOWNLOAD_BACKOFF = timedelta(seconds=30)
DOWNLOAD_BACKOFF_MAX = timedelta(minutes=10)
MAX_FAILED_DOWNLOADS = 10_000  # files remembered at once; the oldest are forgotten first

# what became of one file: None when its contents are in the cache (text, binary or too
# large: the stored state says which), else why it could not be had
Outcome = SkipReason | None


class FailedDownloads:
    """Files whose download failed lately, in this process's memory: until when each is
    left alone, and for how long the next failure leaves it. A file fetched in the end
    needs no entry removed: its contents are then cached under the same key."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._failed: OrderedDict[tuple[Any, ...], tuple[datetime, timedelta]] = OrderedDict()

    @staticmethod
    def _key(ref: FileRef) -> tuple[Any, ...]:
        return (ref.gist_id, ref.filename, ref.updated_at, ref.raw_url)

    def waiting(self, ref: FileRef) -> bool:
        """Whether the file failed a moment ago and is not to be asked for yet."""
        entry = self._failed.get(self._key(ref))
        return entry is not None and self._clock() < entry[0]

    def failed(self, ref: FileRef) -> None:
        key = self._key(ref)
        previous = self._failed.pop(key, None)
        backoff = (
            DOWNLOAD_BACKOFF if previous is None else min(DOWNLOAD_BACKOFF_MAX, previous[1] * 2)
        )
        self._failed[key] = (self._clock() + backoff, backoff)
        while len(self._failed) > MAX_FAILED_DOWNLOADS:
            self._failed.popitem(last=False)


def _flight_key(ref: FileRef) -> str:
    return "\0".join(
        (str(ref.site), ref.gist_id, ref.filename, ref.updated_at.isoformat(), ref.raw_url or "")
    )


class ContentFetcher:
    def __init__(
        self,
        sessions: Sessions,
        github: GitHubClient,
        *,
        clock: Clock,
        fetch_concurrency: int,
        max_file_bytes: int,
    ) -> None:
        self._sessions = sessions
        self._github = github
        self._clock = clock
        self._slots = asyncio.Semaphore(fetch_concurrency)
        self._max_file_bytes = max_file_bytes
        # a download nobody waits for any more (its searches gave up) is stopped
        self._flights: SingleFlight[Outcome] = SingleFlight(abandon=True)
        self._failed_downloads = FailedDownloads(clock)

    async def close(self) -> None:
        await self._flights.close()

    def fetch(self, ref: FileRef) -> Awaitable[Outcome]:
        """The file's fetch: joined when one is under way in this process, else begun.
        It runs on when the caller gives up, for the others that wait for it; when the
        last caller gives up, it stops."""
        return self._flights.run(_flight_key(ref), lambda: self._fetch_one(ref))

    async def ensure(self, files: Sequence[FileRef]) -> AsyncIterator[tuple[FileRef, Outcome]]:
        """Fetch ``files`` (sharing fetches under way) and yield each with its outcome as
        soon as it is in, in the order they finish."""

        async def one(ref: FileRef) -> tuple[FileRef, Outcome]:
            return ref, await self.fetch(ref)

        waiting = [asyncio.ensure_future(one(ref)) for ref in files]
        try:
            for done in asyncio.as_completed(waiting):
                yield await done
        finally:
            for task in waiting:  # a caller that stops early leaves others' fetches running
                task.cancel()

    async def _fetch_one(self, ref: FileRef) -> Outcome:
        try:
            return await self._fetch_file(ref)
        except Exception:
            # one file's failure must not sink the others; a lost database
            # shows again, as a whole, when the search reads the chunks
            log.exception("storing %s/%s failed", ref.gist_id, ref.filename)
            return SkipReason.UNAVAILABLE

    async def _fetch_file(self, ref: FileRef) -> Outcome:
        """Store one file's contents; return why it could not be fetched, or None."""
        generation = uuid.uuid4().hex
        if ref.size is not None and ref.size > self._max_file_bytes:
            return await self._install(ref, generation, TOO_LARGE, size=ref.size)
        if ref.raw_url is None or not self._github.raw_url_allowed(ref.raw_url):
            log.warning("refusing raw URL of %s/%s: host not allowed", ref.gist_id, ref.filename)
            return SkipReason.FORBIDDEN_HOST
        if self._failed_downloads.waiting(ref):
            log.debug("not fetching %s/%s yet: it failed lately", ref.gist_id, ref.filename)
            return SkipReason.UNAVAILABLE
        size = 0

        async def counted(url: str) -> AsyncIterator[bytes]:
            nonlocal size
            async for piece in self._github.iter_raw(url):
                size += len(piece)
                yield piece

        async with self._slots:
            try:
                # each chunk is written when the next one arrives, so that a small
                # file, the common case, takes a single transaction
                pending: Chunk | None = None
                async for chunk in chunk_stream(
                    counted(ref.raw_url), max_bytes=self._max_file_bytes
                ):
                    if pending is not None:
                        async with self._sessions() as session, session.begin():
                            await store.add_chunk(
                                session,
                                ref,
                                generation,
                                pending.number,
                                pending.first_line,
                                pending.data,
                            )
                    pending = chunk
                count = pending.number + 1 if pending is not None else 0
                return await self._install(
                    ref, generation, TEXT, size=size, chunks=count, last=pending
                )
            except BinaryContent:
                return await self._install(ref, generation, BINARY, size=size)
            except ContentTooLarge:
                return await self._install(ref, generation, TOO_LARGE, size=size)
            except GitHubError as exc:
                log.warning("could not fetch %s/%s: %s", ref.gist_id, ref.filename, exc)
                if isinstance(exc, ForbiddenRawHost):
                    return SkipReason.FORBIDDEN_HOST
                self._failed_downloads.failed(ref)
                return SkipReason.UNAVAILABLE
            except FileLeftList:
                return SkipReason.CHANGED  # the file left the list while it was downloading

    async def _install(
        self,
        ref: FileRef,
        generation: str,
        status: str,
        *,
        size: int,
        chunks: int = 0,
        last: Chunk | None = None,
    ) -> Outcome:
        """Make this fetch the file's contents, in one transaction with its last chunk."""
        async with self._sessions() as session, session.begin():
            # concurrent installers of one file queue up here instead of deadlocking
            if not await store.lock_file(session, ref):
                return SkipReason.CHANGED  # the file left the list meanwhile
            if last is not None:
                await store.add_chunk(
                    session, ref, generation, last.number, last.first_line, last.data
                )
            await store.install_contents(
                session,
                ref,
                generation,
                status=status,
                size=size,
                chunks=chunks,
                now=self._clock(),
            )
        return None
