"""Use case: bring files' contents into the cache: download (from raw URLs, which cost
no API budget), cut into line-aligned chunks, install as the file's current contents.

Each file is fetched by one flight at a time in this process, keyed on the file's
revision (site, gist, filename, the gist's ``updated_at`` and the raw URL): searches
that miss overlapping files share the overlap and fetch the rest on their own
(``SingleFlight`` says why that is worth its tasks), and ``ensure`` hands each file back
as soon as it is in, so a caller can go on with it. A fetch answers None when the file's
contents are in the cache (text, binary or too large: its stored state says which), else
the ``SkipReason`` it could not be had for. Downloaded files are installed several to a
transaction (``Installs``, whose docstring has the measurement).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gistcache.domain.chunking import BinaryContent, Chunk, ContentTooLarge, chunk_stream
from gistcache.domain.clock import Clock
from gistcache.domain.gists import Gist
from gistcache.domain.results import SkipReason
from gistcache.github.client import GitHubClient
from gistcache.github.errors import ForbiddenRawHost, GitHubError
from gistcache.github.gate import BlockExchange
from gistcache.services.retention import ContentBudget, SearchDownloads
from gistcache.services.singleflight import SingleFlight
from gistcache.services.text_batches import BatchRun, TextBatches
from gistcache.store import contents as content_store
from gistcache.store.contents import BINARY, TEXT, TOO_LARGE, FileRef
from gistcache.store.engine import Sessions
from gistcache.store.errors import FileLeftList

log = logging.getLogger(__name__)

# a file whose download failed is not asked for again before this, doubling with each
# failure in a row up to the cap; a changed file (new raw_url or updated_at) at once
DOWNLOAD_BACKOFF = timedelta(seconds=30)
DOWNLOAD_BACKOFF_MAX = timedelta(minutes=10)
MAX_FAILED_DOWNLOADS = 10_000  # files remembered at once; the oldest are forgotten first


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
        budget: ContentBudget,
        graphql_block: BlockExchange | None = None,
    ) -> None:
        self._sessions = sessions
        self._github = github
        self._clock = clock
        self._slots = asyncio.Semaphore(fetch_concurrency)
        self.budget = budget
        # a file larger than one search may download could never be fetched
        self._max_file_bytes = min(max_file_bytes, budget.search_bytes)
        self._background: set[asyncio.Task[None]] = set()
        # a download nobody waits for any more (its searches gave up) is stopped
        self._flights: SingleFlight[SkipReason | None] = SingleFlight(abandon=True)
        self._failed_downloads = FailedDownloads(clock)
        self._installs = Installs(functools.partial(_install_batch, sessions, budget))
        # files' texts in GraphQL batches (with a token), GraphQL's block shared
        self._batches = TextBatches(github.graphql, graphql_block)

    async def close(self) -> None:
        await self._flights.close()
        await self._installs.close()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.budget.close()

    async def searching(self, site: int, login: str) -> SearchDownloads:
        """A search begins to read the user's contents (see ``ContentBudget.searching``)."""
        return await self.budget.searching(site, login)

    def fetch(
        self, ref: FileRef, downloads: SearchDownloads | None = None
    ) -> Awaitable[SkipReason | None]:
        """The file's fetch: joined when one is under way in this process, else begun,
        paid for by ``downloads`` (a search's share; None: no bound). It runs on when
        the caller gives up, for the others that wait for it; when the last caller gives
        up, it stops."""
        return self._flights.run(_flight_key(ref), lambda: self._fetch_one(ref, downloads))

    def fetch_many(
        self,
        refs: Sequence[FileRef],
        gists: Sequence[Gist],
        downloads: SearchDownloads | None = None,
    ) -> list[Awaitable[SkipReason | None]]:
        """Each of ``refs``' fetch, in their order, as ``fetch`` gives it; with GitHub's
        GraphQL API (a token), the files of the ``gists`` (the list they are of) that a
        batch can give, and that no flight is fetching yet, are asked for in batches,
        several gists to a request (``services.text_batches``): each flight takes its
        text from its batch, or downloads the file from its raw URL when the batch did
        not give it whole."""
        batches = self._batches.plan(
            [ref for ref in refs if self._flights.joined(_flight_key(ref)) is None], gists
        )
        return [
            self._flights.run(
                _flight_key(ref),
                functools.partial(self._fetch_one, ref, downloads, batches.get(ref)),
            )
            for ref in refs
        ]

    async def ensure(
        self, files: Sequence[FileRef], downloads: SearchDownloads | None = None
    ) -> AsyncIterator[tuple[FileRef, SkipReason | None]]:
        """Fetch ``files`` (sharing fetches under way, paid for by ``downloads`` as in
        ``fetch``) and yield each with its outcome as soon as it is in, in the order
        they finish."""

        async def one(ref: FileRef) -> tuple[FileRef, SkipReason | None]:
            return ref, await self.fetch(ref, downloads)

        waiting = [asyncio.ensure_future(one(ref)) for ref in files]
        try:
            for done in asyncio.as_completed(waiting):
                yield await done
        finally:
            for task in waiting:  # a caller that stops early leaves others' fetches running
                task.cancel()

    async def _fetch_one(
        self, ref: FileRef, downloads: SearchDownloads | None, batch: BatchRun | None = None
    ) -> SkipReason | None:
        try:
            return await self._fetch_file(ref, downloads, batch)
        except Exception:
            # one file's failure must not sink the others; a lost database
            # shows again, as a whole, when the search reads the chunks
            log.exception("storing %s/%s failed", ref.gist_id, ref.filename)
            return SkipReason.UNAVAILABLE

    async def _fetch_file(
        self, ref: FileRef, downloads: SearchDownloads | None, batch: BatchRun | None = None
    ) -> SkipReason | None:
        """Store one file's contents; return why it could not be fetched, or None. With
        a ``batch``, its text comes from the batch when the batch gives it whole, else
        from the raw URL, as without.

        With ``downloads``, the search's share of new contents pays for it: the file's
        listed size before it starts, and whatever its chunks hold beyond that as they
        come; a file the share cannot pay for is not fetched (or not kept)."""
        generation = uuid.uuid4().hex
        if ref.size is not None and ref.size > self._max_file_bytes:
            return await self._install(ref, generation, TOO_LARGE, size=ref.size)
        if ref.raw_url is None or not self._github.raw_url_allowed(ref.raw_url):
            log.warning("refusing raw URL of %s/%s: host not allowed", ref.gist_id, ref.filename)
            return SkipReason.FORBIDDEN_HOST
        if self._failed_downloads.waiting(ref):
            log.debug("not fetching %s/%s yet: it failed lately", ref.gist_id, ref.filename)
            return SkipReason.UNAVAILABLE
        reserved = ref.size or 0
        if downloads is not None and not await downloads.reserve(reserved):
            log.debug("not fetching %s/%s: over the search's share", ref.gist_id, ref.filename)
            return SkipReason.DOWNLOAD_BUDGET
        fetch = _Fetch(ref, generation, downloads, reserved)
        try:
            text = await batch.text(ref) if batch is not None else None
            outcome = await self._download(fetch, text)
        finally:
            if fetch.wrote and not fetch.installing:
                self._discard(ref, generation)  # chunks nothing will ever install
            if downloads is not None:
                downloads.refund(fetch.reserved - fetch.kept)
        return outcome

    async def _download(self, fetch: _Fetch, text: str | None = None) -> SkipReason | None:
        async with self._slots:
            try:
                status = await self._receive(fetch, text)
            except (BinaryContent, ContentTooLarge) as exc:
                status = BINARY if isinstance(exc, BinaryContent) else TOO_LARGE
                fetch.last, fetch.chunks = None, 0
            except GitHubError as exc:
                log.warning("could not fetch %s/%s: %s", *fetch.names, exc)
                if isinstance(exc, ForbiddenRawHost):
                    return SkipReason.FORBIDDEN_HOST
                self._failed_downloads.failed(fetch.ref)
                return SkipReason.UNAVAILABLE
            except FileLeftList:
                return SkipReason.CHANGED  # the file left the list while it was downloading
            except _OverShare:
                log.debug("stopped fetching %s/%s: over the search's share", *fetch.names)
                return SkipReason.DOWNLOAD_BUDGET
        # installed outside the download slot: the next download starts meanwhile; from
        # here its chunks are the install's (it may commit even if this fetch is cancelled)
        chunk_bytes = fetch.stored if status == TEXT else 0
        fetch.installing = True
        outcome = await self._install(
            fetch.ref,
            fetch.generation,
            status,
            size=fetch.size,
            chunks=fetch.chunks,
            last=fetch.last,
            chunk_bytes=chunk_bytes,
        )
        if outcome is None:
            fetch.kept = chunk_bytes
        else:
            fetch.installing = False  # refused: the file left the list, chunks and all
        return outcome

    async def _receive(self, fetch: _Fetch, text: str | None = None) -> str:
        """Download the file in chunks (TEXT, else BinaryContent or ContentTooLarge), or
        cut its ``text`` (from a GraphQL batch) into the same chunks. Each chunk is
        written when the next one arrives, so that a small file, the common case, has
        its only chunk (``fetch.last``) installed with its state."""
        ref = fetch.ref
        assert ref.raw_url is not None  # noqa: S101 - checked by the caller; for mypy

        async def counted(url: str) -> AsyncIterator[bytes]:
            source = self._github.iter_raw(url) if text is None else _whole(text)
            async for piece in source:
                fetch.size += len(piece)
                yield piece

        stream = chunk_stream(counted(ref.raw_url), max_bytes=self._max_file_bytes)
        async with contextlib.aclosing(stream) as chunked:
            async for chunk in chunked:
                fetch.stored += len(chunk.data)
                await fetch.pay(fetch.stored)
                written = fetch.last
                if written is not None:
                    fetch.wrote = True
                    async with self._sessions() as session, session.begin():
                        await content_store.add_chunk(
                            session,
                            ref,
                            fetch.generation,
                            written.number,
                            written.first_line,
                            written.data,
                        )
                fetch.last = chunk
        fetch.chunks = fetch.last.number + 1 if fetch.last is not None else 0
        return TEXT

    def _discard(self, ref: FileRef, generation: str) -> None:
        """Delete a fetch's chunks in the background (also when the fetch was cancelled)."""

        async def discard() -> None:
            try:
                async with self._sessions() as session, session.begin():
                    await content_store.discard_fetch(session, ref, generation)
            except Exception as exc:  # left for the file's next install to delete
                log.warning("could not drop a fetch's chunks of %s/%s: %s", *_names(ref), exc)

        task = asyncio.create_task(discard())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _install(
        self,
        ref: FileRef,
        generation: str,
        status: str,
        *,
        size: int,
        chunks: int = 0,
        last: Chunk | None = None,
        chunk_bytes: int = 0,
    ) -> SkipReason | None:
        """Make this fetch the file's contents, in one transaction with its last chunk,
        shared with the other files whose installs wait meanwhile (``Installs``)."""
        try:
            return await self._installs.install(
                _Install(ref, generation, status, size, chunks, last, self._clock(), chunk_bytes)
            )
        except FileLeftList:
            return SkipReason.CHANGED  # the file left the list while it was downloading


async def _install_batch(
    sessions: Sessions, budget: ContentBudget, batch: Sequence[_Install]
) -> list[SkipReason | None]:
    """Install every file of ``batch`` in one transaction, in a few statements for them
    all (``install_files``, which locks them in key order, so that two processes
    installing overlapping batches cannot deadlock)."""
    async with sessions() as session, session.begin():
        installed = await content_store.install_files(
            session,
            [
                content_store.NewContents(
                    job.ref,
                    job.generation,
                    job.status,
                    job.size,
                    job.chunks,
                    job.now,
                    job.chunk_bytes,
                    None
                    if job.last is None
                    else (job.last.number, job.last.first_line, job.last.data),
                )
                for job in batch
            ],
        )
    # committed; a file that left the list meanwhile was not installed
    outcomes: list[SkipReason | None] = []
    for job, done in zip(batch, installed, strict=True):
        if done:
            budget.installed(job.chunk_bytes)
        outcomes.append(None if done else SkipReason.CHANGED)
    return outcomes


async def _whole(text: str) -> AsyncIterator[bytes]:
    """A text a batch gave, as the one piece of its file's bytes."""
    yield text.encode()


class _OverShare(Exception):
    """The file's chunks hold more than the search's share has left."""


@dataclass(slots=True)
class _Fetch:
    """One download under way, and what it holds of the search's share."""

    ref: FileRef
    generation: str
    downloads: SearchDownloads | None
    reserved: int  # of the search's share
    kept: int = 0  # bytes of the share its installed chunks hold
    size: int = 0  # bytes downloaded
    stored: int = 0  # bytes of its chunks
    chunks: int = 0
    last: Chunk | None = None  # its last chunk, written with its state at the install
    wrote: bool = False  # some of its chunks are in the database
    installing: bool = False  # handed to the install: its chunks are not ours to drop

    @property
    def names(self) -> tuple[str, str]:
        return _names(self.ref)

    async def pay(self, stored: int) -> None:
        """The chunks so far hold ``stored`` bytes: take what that passes the reserve."""
        if self.downloads is None or stored <= self.reserved:
            return
        if not await self.downloads.reserve(stored - self.reserved):
            raise _OverShare()
        self.reserved = stored


def _names(ref: FileRef) -> tuple[str, str]:
    return (ref.gist_id, ref.filename)


# files installed in one transaction at most; waiting installs (each holding its last
# chunk, up to a few MiB) at most, before downloads wait for room
INSTALL_BATCH = 32
INSTALLS_WAITING = 64


@dataclass(frozen=True, slots=True)
class _Install:
    ref: FileRef
    generation: str
    status: str
    size: int
    chunks: int
    last: Chunk | None
    now: datetime
    chunk_bytes: int = 0

    @property
    def order(self) -> tuple[int, str, str]:
        return (self.ref.site, self.ref.gist_id, self.ref.filename)


class Installs:
    """Group commit of downloaded files: installs that arrive while a transaction runs
    wait for it and then go together, up to INSTALL_BATCH in one transaction of four
    statements (``install_files``). One transaction per file made a cold search on
    PostgreSQL 1.5x its downloads (a commit, with its WAL flush, and five round trips
    for each 11 KB file); four statements per file in a shared transaction still kept
    the installs busy for the whole of a 900-file search (issue 23: 7.5 s of 8.3 s).

    A batch that fails is tried again file by file, so that one file's failure is its
    own. A caller that stops waiting leaves its install to finish.
    """

    def __init__(
        self, run: Callable[[Sequence[_Install]], Awaitable[list[SkipReason | None]]]
    ) -> None:
        self._run = run
        self._waiting: list[tuple[_Install, asyncio.Future[SkipReason | None]]] = []
        self._room = asyncio.Semaphore(INSTALLS_WAITING)
        self._worker: asyncio.Task[None] | None = None

    async def install(self, job: _Install) -> SkipReason | None:
        async with self._room:
            done: asyncio.Future[SkipReason | None] = asyncio.get_running_loop().create_future()
            self._waiting.append((job, done))
            if self._worker is None or self._worker.done():
                self._worker = asyncio.create_task(self._drain())
            return await asyncio.shield(done)

    async def close(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for _, done in self._waiting:
            if not done.done():
                done.cancel()
        self._waiting.clear()

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[:INSTALL_BATCH]
            del self._waiting[:INSTALL_BATCH]
            batch.sort(key=lambda entry: entry[0].order)
            try:
                outcomes = await self._run([job for job, _ in batch])
            except asyncio.CancelledError:
                for _, done in batch:
                    done.cancel()
                raise
            except Exception:
                if len(batch) == 1:
                    self._settle(batch[0][1], exception=sys.exc_info()[1])
                    continue
                await self._one_by_one(batch)
                continue
            for (_, done), outcome in zip(batch, outcomes, strict=True):
                self._settle(done, outcome)

    async def _one_by_one(
        self, batch: list[tuple[_Install, asyncio.Future[SkipReason | None]]]
    ) -> None:
        for job, done in batch:
            try:
                (outcome,) = await self._run([job])
            except asyncio.CancelledError:
                done.cancel()
                raise
            except Exception as exc:
                self._settle(done, exception=exc)
            else:
                self._settle(done, outcome)

    @staticmethod
    def _settle(
        done: asyncio.Future[SkipReason | None],
        outcome: SkipReason | None = None,
        *,
        exception: BaseException | None = None,
    ) -> None:
        if done.done():
            return
        if exception is not None:
            done.set_exception(exception)
        else:
            done.set_result(outcome)
