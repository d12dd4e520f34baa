"""Use case: which of a user's gists contain a pattern.

The list is brought up to date by the listing rules; then the files with no contents
cached for their gist's current revision are brought in (``services.contents``), and
every cached chunk is scanned with RE2. The answer is a typed ``SearchResult``; how it
is shown (JSON, lines on a terminal) is the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from gistcache.domain.errors import SearchesBusy, SearchTimeout
from gistcache.domain.matching import (
    MAX_LINE_CHARS,
    MAX_LINES_PER_FILE,
    FileHits,
    compile_pattern,
    match_finder,
    scan_chunk,
)
from gistcache.domain.requests import SearchRequest
from gistcache.domain.results import (
    FileMatch,
    GistList,
    GistMatch,
    LineMatch,
    SearchResult,
    Skipped,
    SkipReason,
)
from gistcache.services.contents import ContentFetcher, Outcome
from gistcache.services.listing import GistService
from gistcache.services.memory import ContentMemory, text_chunks
from gistcache.store import contents as store
from gistcache.store.contents import BINARY, TOO_LARGE
from gistcache.store.engine import Sessions
from gistcache.store.sites import Site

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    result: SearchResult
    listing: GistList  # the list it searched, and how it was obtained (HIT, STALE ...)


class SearchService:
    def __init__(
        self,
        sessions: Sessions,
        listing: GistService,
        contents: ContentFetcher,
        site: Site,
        *,
        timeout: float = 120.0,
        max_searches: int = 8,
        content_memory: ContentMemory | None = None,
    ) -> None:
        self._sessions = sessions
        self._listing = listing
        self._contents = contents
        self._site = site
        self._timeout = timeout
        self._running = asyncio.Semaphore(max_searches)
        self._memory = content_memory if content_memory is not None else ContentMemory(0)

    async def close(self) -> None:
        """End the downloads still running (at shutdown)."""
        await self._contents.close()

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
        site = await self._site.id()

        async with self._sessions() as session:
            files = await store.user_files(session, site, login)
            missing = []
            if any(state.status is None for state in files):
                missing = await store.files_without_contents(session, site, login)
        # concurrent searches that miss the same file share its one download
        failed: dict[tuple[str, str], Outcome] = {}
        if missing and progress is not None:
            progress(0, len(missing))
        done = 0
        async for ref, outcome in self._contents.ensure(missing):
            if outcome is not None:
                failed[(ref.gist_id, ref.filename)] = outcome
            done += 1
            if progress is not None:
                progress(done, len(missing))

        find = match_finder(regexp)
        hits: dict[tuple[str, str], FileHits] = {}
        async with self._sessions() as session:
            if missing:
                files = await store.user_files(session, site, login)  # with what was fetched
            states = {state.key: state.status for state in files if state.status is not None}
            # closed before the session even when the loop stops early: its read-ahead
            # must not outlive the session
            reader = text_chunks(self._memory, session, files)  # memory first, then the db
            async with contextlib.aclosing(reader) as chunks:
                async for chunk in chunks:
                    key = (chunk.gist_id, chunk.filename)
                    if chunk.data is None:  # replaced by a newer fetch while we read
                        failed.setdefault(key, SkipReason.UNAVAILABLE)
                        continue
                    file_hits = hits.get(key)
                    if file_hits is None:
                        file_hits = hits[key] = FileHits(line_limit, line_chars)
                    scan_chunk(regexp, chunk.data, chunk.first_line, file_hits, find)

        matches: list[GistMatch] = []
        skipped: list[Skipped] = []
        for gist in listing.gists:
            if gist.truncated:
                skipped.append(Skipped(gist.id, None, SkipReason.FILE_LIST_TRUNCATED))
            matched_files = []
            for f in gist.files:
                key = (gist.id, f.filename)
                reason = failed.get(key) or _skip_reason(states.get(key))
                if reason is not None:
                    skipped.append(Skipped(gist.id, f.filename, reason))
                    continue
                file_hits = hits.get(key)
                if file_hits is not None and file_hits.match_count:
                    lines = tuple(LineMatch(**line) for line in file_hits.lines)
                    matched_files.append(FileMatch(f, file_hits.match_count, lines))
            if matched_files:
                matches.append(GistMatch(gist, tuple(matched_files)))
        start = (request.page - 1) * request.per_page
        page = tuple(matches[start : start + request.per_page])
        result = SearchResult(request, len(matches), page, tuple(skipped))
        return SearchAnswer(result, listing)


def _skip_reason(state: str | None) -> SkipReason | None:
    if state == BINARY:
        return SkipReason.BINARY
    if state == TOO_LARGE:
        return SkipReason.TOO_LARGE
    if state is None:
        return SkipReason.UNAVAILABLE
    return None
