"""Use case: which of a user's gists contain a pattern.

The list is brought up to date by the listing rules; then only files with no
contents cached for their gist's current ``updated_at`` are fetched (from raw URLs,
which cost no API budget), streamed into the database in line-aligned chunks, and
every cached chunk is scanned with RE2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gistcache.domain.chunking import BinaryContent, Chunk, ContentTooLarge, chunk_stream
from gistcache.domain.gists import format_timestamp
from gistcache.domain.matching import (
    MAX_LINE_CHARS,
    MAX_LINES_PER_FILE,
    FileHits,
    compile_pattern,
    match_finder,
    scan_chunk,
)
from gistcache.github.client import GitHubClient
from gistcache.github.errors import ForbiddenRawHost, GitHubError
from gistcache.services.listing import Clock, GistList, GistService
from gistcache.services.singleflight import SingleFlight
from gistcache.store import contents as store
from gistcache.store.contents import BINARY, TEXT, TOO_LARGE, FileRef
from gistcache.store.engine import Sessions
from gistcache.store.errors import FileLeftList

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# a file whose download failed is not asked for again before this, doubling with each
# failure in a row up to the cap; a changed file (new raw_url or updated_at) at once
DOWNLOAD_BACKOFF = timedelta(seconds=30)
DOWNLOAD_BACKOFF_MAX = timedelta(minutes=10)
MAX_FAILED_DOWNLOADS = 10_000  # files remembered at once; the oldest are forgotten first


@dataclass(frozen=True, slots=True)
class SearchRequest:
    username: str
    pattern: str
    ignore_case: bool = False
    page: int = 1
    per_page: int = 100

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "pattern": self.pattern,
            "ignore_case": self.ignore_case,
            "page": self.page,
            "per_page": self.per_page,
        }


class SearchTimeout(Exception):
    """A search ran past its time budget."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the search exceeded its time budget of {seconds:g} s")
        self.seconds = seconds


class SearchesBusy(Exception):
    """As many searches as allowed are running; this one was not started."""


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


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    body: dict[str, Any]  # the API's answer
    listing: GistList  # the list it searched, and how it was obtained (HIT, STALE ...)


class SearchService:
    def __init__(
        self,
        sessions: Sessions,
        github: GitHubClient,
        listing: GistService,
        *,
        fetch_concurrency: int,
        max_file_bytes: int,
        timeout: float = 120.0,
        max_searches: int = 8,
    ) -> None:
        self._sessions = sessions
        self._github = github
        self._listing = listing
        self._fetch_slots = asyncio.Semaphore(fetch_concurrency)
        self._max_file_bytes = max_file_bytes
        self._fetches: SingleFlight[dict[tuple[str, str], str]] = SingleFlight()
        self._timeout = timeout
        self._running = asyncio.Semaphore(max_searches)
        self._failed_downloads = FailedDownloads(listing.clock)

    async def close(self) -> None:
        await self._fetches.close()

    async def search(
        self,
        request: SearchRequest,
        *,
        wait: bool = True,
        progress: Progress | None = None,
        line_limit: int | None = MAX_LINES_PER_FILE,
        line_chars: int | None = MAX_LINE_CHARS,
    ) -> SearchAnswer:
        """The search's answer, within the time budget and the concurrency bound.

        Raises PatternError, UserNotFound, GitHubError, SearchTimeout, or SearchesBusy
        when ``wait`` is false and every search slot is taken. ``line_limit`` and
        ``line_chars`` cap the lines listed per file (None: all).
        """
        if not wait and self._running.locked():
            raise SearchesBusy()
        async with self._running:
            budget = asyncio.timeout(self._timeout)
            try:
                async with budget:
                    return await self._search(request, progress, line_limit, line_chars)
            except TimeoutError:
                if budget.expired():
                    raise SearchTimeout(self._timeout) from None
                raise  # a database or network timeout inside the search, not the budget

    async def _search(
        self,
        request: SearchRequest,
        progress: Progress | None,
        line_limit: int | None,
        line_chars: int | None,
    ) -> SearchAnswer:
        regexp = compile_pattern(request.pattern, ignore_case=request.ignore_case)
        listing = await self._listing.list_gists(request.username)
        login = listing.login
        site = await self._listing.site.id()

        async with self._sessions() as session:
            files = await store.user_files(session, site, login)
            missing = []
            if any(state.status is None for state in files):
                missing = await store.files_without_contents(session, site, login)
        # concurrent searches that miss the same files share one download of them
        flight = (
            login + "\0" + "\0".join(f"{f.gist_id}/{f.filename}@{f.updated_at}" for f in missing)
        )
        failed = await self._fetches.run(flight, lambda: self._fetch(missing, progress))

        find = match_finder(regexp)
        hits: dict[tuple[str, str], FileHits] = {}
        async with self._sessions() as session:
            if missing:
                files = await store.user_files(session, site, login)  # with what was fetched
            states = {state.key: state.status for state in files if state.status is not None}
            # closed before the session even when the loop stops early: its read-ahead
            # must not outlive the session
            async with contextlib.aclosing(store.stream_text_chunks(session, files)) as chunks:
                async for chunk in chunks:
                    key = (chunk.gist_id, chunk.filename)
                    if chunk.data is None:  # replaced by a newer fetch while we read
                        failed.setdefault(key, "unavailable")
                        continue
                    file_hits = hits.get(key)
                    if file_hits is None:
                        file_hits = hits[key] = FileHits(line_limit, line_chars)
                    scan_chunk(regexp, chunk.data, chunk.first_line, file_hits, find)

        matches: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        for gist in listing.gists:
            if gist.truncated:
                skipped.append({"id": gist.id, "filename": None, "reason": "file_list_truncated"})
            matched_files = []
            for f in gist.files:
                key = (gist.id, f.filename)
                reason = failed.get(key) or _skip_reason(states.get(key))
                if reason is not None:
                    skipped.append({"id": gist.id, "filename": f.filename, "reason": reason})
                    continue
                file_hits = hits.get(key)
                if file_hits is not None and file_hits.match_count:
                    matched_files.append(
                        {
                            "filename": f.filename,
                            "language": f.language,
                            "size": f.size,
                            "raw_url": f.raw_url,
                            "match_count": file_hits.match_count,
                            "lines": file_hits.lines,
                        }
                    )
            if matched_files:
                matches.append(
                    {
                        "id": gist.id,
                        "html_url": gist.html_url,
                        "description": gist.description,
                        "updated_at": format_timestamp(gist.updated_at),
                        "files": matched_files,
                    }
                )
        start = (request.page - 1) * request.per_page
        body = {
            "status": "success",
            "username": request.username,
            "pattern": request.pattern,
            "total": len(matches),
            "matches": matches[start : start + request.per_page],
            "skipped": skipped,
        }
        return SearchAnswer(body, listing)

    async def _fetch(
        self, files: list[FileRef], progress: Progress | None
    ) -> dict[tuple[str, str], str]:
        """Fetch and store ``files``; return those that could not be had, and why."""
        failed: dict[tuple[str, str], str] = {}
        done = 0

        async def one(ref: FileRef) -> None:
            nonlocal done
            try:
                reason = await self._fetch_file(ref)
            except Exception:
                # one file's failure must not sink the others; a lost database
                # shows again, as a whole, when the search reads the chunks
                log.exception("storing %s/%s failed", ref.gist_id, ref.filename)
                reason = "unavailable"
            if reason is not None:
                failed[(ref.gist_id, ref.filename)] = reason
            done += 1
            if progress is not None:
                progress(done, len(files))

        if files and progress is not None:
            progress(0, len(files))
        await asyncio.gather(*(one(ref) for ref in files))
        return failed

    async def _fetch_file(self, ref: FileRef) -> str | None:
        """Store one file's contents; return why it could not be fetched, or None."""
        generation = uuid.uuid4().hex
        if ref.size is not None and ref.size > self._max_file_bytes:
            return await self._install(ref, generation, TOO_LARGE, size=ref.size)
        if ref.raw_url is None or not self._github.raw_url_allowed(ref.raw_url):
            log.warning("refusing raw URL of %s/%s: host not allowed", ref.gist_id, ref.filename)
            return "forbidden_host"
        if self._failed_downloads.waiting(ref):
            log.debug("not fetching %s/%s yet: it failed lately", ref.gist_id, ref.filename)
            return "unavailable"
        size = 0

        async def counted(url: str) -> AsyncIterator[bytes]:
            nonlocal size
            async for piece in self._github.iter_raw(url):
                size += len(piece)
                yield piece

        async with self._fetch_slots:
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
                    return "forbidden_host"
                self._failed_downloads.failed(ref)
                return "unavailable"
            except FileLeftList:
                return "changed"  # the file left the list while it was downloading

    async def _install(
        self,
        ref: FileRef,
        generation: str,
        status: str,
        *,
        size: int,
        chunks: int = 0,
        last: Chunk | None = None,
    ) -> str | None:
        """Make this fetch the file's contents, in one transaction with its last chunk."""
        async with self._sessions() as session, session.begin():
            # concurrent installers of one file queue up here instead of deadlocking
            if not await store.lock_file(session, ref):
                return "changed"  # the file left the list meanwhile
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
                now=self._listing.clock(),
            )
        return None


def _skip_reason(state: str | None) -> str | None:
    if state == BINARY:
        return "binary"
    if state == TOO_LARGE:
        return "too_large"
    if state is None:
        return "unavailable"
    return None
