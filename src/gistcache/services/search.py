"""Use case: which of a user's gists contain a pattern.

The list is brought up to date by the listing rules; then the files with no contents
cached for their gist's current revision are brought in (``services.contents``, one
flight per file), and every cached chunk is scanned with RE2. ``stream`` tells the
search as it goes, as typed events: a gist is told as soon as all its files are in,
while the others are still downloading. ``search`` is the same search gathered into
one typed ``SearchResult``. How either is shown (JSON, NDJSON, lines on a terminal) is
the caller's.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gistcache.domain.errors import SearchesBusy, SearchTimeout
from gistcache.domain.gists import Gist
from gistcache.domain.matching import (
    MAX_LINE_CHARS,
    MAX_LINES_PER_FILE,
    FileHits,
    Finder,
    glob_matches,
    line_anchor_prefix,
    scan_chunk,
)
from gistcache.domain.requests import SearchRequest
from gistcache.domain.results import (
    AnswerCut,
    ContextLine,
    FileMatch,
    FileSkipped,
    GistFound,
    GistList,
    GistMatch,
    GistSearched,
    LineMatch,
    SearchDone,
    SearchEvent,
    SearchProgress,
    SearchResult,
    SearchStarted,
    Skipped,
    SkipReason,
    match_weight,
    trimmed,
)
from gistcache.services.contents import ContentFetcher, Outcome
from gistcache.services.listing import ListingService
from gistcache.services.memory import ContentMemory, text_chunks
from gistcache.store import contents as store
from gistcache.store.contents import BINARY, TEXT, TOO_LARGE, FileRef, FileState, StoredChunk
from gistcache.store.engine import Sessions
from gistcache.store.sites import Site

Progress = Callable[[int, int], None]
STREAM_PROGRESS_EVERY = 0.1  # seconds: progress events at most this often
# events a search may have told that its reader has not taken yet: past them the search
# waits for its reader (a client that does not read holds back its own search only)
EVENTS_WAITING = 16
MAX_ANSWER_BYTES = 8 * 1024 * 1024
# the chunks read are handed to a scanning thread together, up to this many bytes
# (more when one chunk is larger): a thread hop per batch, not per chunk
SCAN_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    result: SearchResult
    listing: GistList  # the list it searched, and how it was obtained (HIT, STALE ...)


class SearchService:
    def __init__(
        self,
        sessions: Sessions,
        listing: ListingService,
        contents: ContentFetcher,
        site: Site,
        *,
        timeout: float = 120.0,
        max_searches: int = 8,
        content_memory: ContentMemory | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._sessions = sessions
        self._listing = listing
        self._contents = contents
        self._site = site
        self._timeout = timeout
        self._running = asyncio.Semaphore(max_searches)
        self._memory = content_memory if content_memory is not None else ContentMemory(0)
        self.max_answer_bytes = max_answer_bytes
        # RE2 releases the GIL: scans run here, off the event loop, one per search at a
        # time (a scan its search left behind stops at its next slice)
        self._scanners = ThreadPoolExecutor(max_searches, thread_name_prefix="gistcache-scan")

    async def close(self) -> None:
        """End the downloads still running (at shutdown), and the scanning threads."""
        await self._contents.close()
        self._scanners.shutdown(wait=False, cancel_futures=True)

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
        ``line_chars`` cap the lines listed per file (None: all). ``progress`` is told
        ``(files_done, files_total)`` as files come in.

        Only the page's matches are kept (the others are counted), and only while they
        fit in ``max_answer_bytes``: the answer says where it was cut (``cut``).
        """
        skipped: list[FileSkipped] = []
        done: SearchDone | None = None
        start = (request.page - 1) * request.per_page
        page = _Page(self.max_answer_bytes, start, start + request.per_page, keep=True)
        events = self.stream(
            request,
            wait=wait,
            line_limit=line_limit,
            line_chars=line_chars,
            progress_every=0,
            in_order=True,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, GistFound):
                    page.add(event.match)
                elif isinstance(event, FileSkipped):
                    skipped.append(event)
                elif isinstance(event, SearchProgress) and progress is not None:
                    progress(event.files_done, event.files_total)
                elif isinstance(event, SearchDone):
                    done = event
        assert done is not None  # noqa: S101 - a stream that ends without failing ends with it
        # the sort is stable: a gist's own skips keep their order
        skips = tuple(event.skipped for event in sorted(skipped, key=lambda event: event.index))
        result = SearchResult(request, page.seen, tuple(page.kept), skips, page.cut(request))
        return SearchAnswer(result, done.listing)

    async def stream(
        self,
        request: SearchRequest,
        *,
        wait: bool = True,
        line_limit: int | None = MAX_LINES_PER_FILE,
        line_chars: int | None = MAX_LINE_CHARS,
        progress_every: float = STREAM_PROGRESS_EVERY,
        in_order: bool = False,
        answer_limit: int | None = None,
    ) -> AsyncGenerator[SearchEvent, None]:
        """The search as it goes: ``SearchStarted`` (once the list is known), then
        ``SearchProgress`` (at most every ``progress_every`` seconds), ``GistFound`` and
        ``FileSkipped`` as gists are ready, last ``SearchDone``; or the failure raised.

        Gists come as they are ready (cached ones first), or with ``in_order`` in the
        list's order (a gist is scanned once those before it are). With ``answer_limit``
        (bytes, as ``match_weight`` counts them) the ``GistFound`` told stop once their
        weight reaches it (a first one alone over it loses lines), and ``SearchDone``
        says so in ``cut``; the others are still counted.

        The search runs as a task of its own within the time budget and the
        concurrency bound, and waits while ``EVENTS_WAITING`` events wait for this
        iterator: a reader that does not read holds its search back, and its time
        budget still runs. Closing the iterator early cancels it, and with it every
        download no other search waits for.
        """
        if not wait and self._running.locked():
            raise SearchesBusy()
        queue: asyncio.Queue[SearchEvent] = asyncio.Queue(EVENTS_WAITING)
        task = asyncio.create_task(
            self._bounded(request, queue, line_limit, line_chars, progress_every, in_order)
        )
        page = _Page(answer_limit, 0, None, keep=False) if answer_limit is not None else None
        getter: asyncio.Future[SearchEvent] | None = None
        try:
            while True:
                if not queue.empty():
                    event = queue.get_nowait()
                elif task.done():
                    task.result()  # the search's failure, if it failed
                    return
                else:
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait((getter, task), return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        continue  # the task ended: what it left in the queue comes first
                    event, getter = getter.result(), None
                if page is not None:
                    if isinstance(event, GistFound):
                        match = page.add(event.match)
                        if match is None:
                            continue
                        event = GistFound(event.index, match)
                    elif isinstance(event, SearchDone):
                        event = dataclasses.replace(event, cut=page.cut(None))
                yield event
        finally:
            if getter is not None and not getter.done():
                getter.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _bounded(
        self,
        request: SearchRequest,
        events: asyncio.Queue[SearchEvent],
        line_limit: int | None,
        line_chars: int | None,
        progress_every: float,
        in_order: bool,
    ) -> None:
        await self._running.acquire()
        search: _Search | None = None
        try:
            budget = asyncio.timeout(self._timeout)
            try:
                async with budget:
                    search = _Search(
                        self, request, events, line_limit, line_chars, progress_every, in_order
                    )
                    await search.run()
            except TimeoutError:
                if budget.expired():
                    raise SearchTimeout(self._timeout) from None
                raise  # a database or network timeout inside the search, not the budget
        finally:
            scanning = search.scanning if search is not None else None
            if scanning is None or scanning.done():
                self._running.release()
            else:
                # the search stopped waiting, but its scanning thread finishes its slice
                # first: the slot is free only then, so that a search after it is told
                # the server is busy rather than queued behind it until its time is up
                loop = asyncio.get_running_loop()
                scanning.add_done_callback(
                    lambda _: loop.call_soon_threadsafe(self._running.release)
                )


class _Page:
    """The matches an answer keeps: those from ``start`` (0-based, in the order they
    come) before ``end`` (None: no end), while their weight fits in ``limit`` bytes;
    ``seen`` counts them all, ``listed`` those let through. With ``keep`` false the
    matches let through are only counted (a stream hands each on and forgets it)."""

    def __init__(self, limit: int | None, start: int, end: int | None, *, keep: bool) -> None:
        self._limit = limit
        self._start = start
        self._end = end
        self._keep = keep
        self.kept: list[GistMatch] = []
        self.listed = 0
        self.seen = 0
        self._weight = 0
        self._full = False  # the limit was reached: nothing more is kept
        self._lines_cut = False

    def add(self, match: GistMatch) -> GistMatch | None:
        """Count ``match``; the match as kept (perhaps with fewer lines), or None."""
        position = self.seen
        self.seen += 1
        if position < self._start or (self._end is not None and position >= self._end):
            return None
        if self._full:
            return None
        if self._limit is not None:
            weight = match_weight(match)
            if self._weight + weight > self._limit:
                self._full = True
                if self.listed:
                    return None
                match = trimmed(match, self._limit)  # alone over the limit: fewer lines
                self._lines_cut = True
            self._weight += weight
        self.listed += 1
        if self._keep:
            self.kept.append(match)
        return match

    def cut(self, request: SearchRequest | None) -> AnswerCut | None:
        """Where the answer stopped at the limit, if it did; with ``request`` (whose
        page this is, in the list's order) the page that starts after the last listed."""
        if not self._full or self._limit is None:
            return None
        listed = self.listed
        following = self._start + listed  # the first matching gist not listed
        if request is None or following >= self.seen:
            return AnswerCut(self._limit, listed, self._lines_cut)
        # a page that starts exactly there: per_page divides its start, and is at most
        # what was asked for
        per_page = max(n for n in range(1, request.per_page + 1) if following % n == 0)
        return AnswerCut(self._limit, listed, self._lines_cut, following // per_page + 1, per_page)


class _Search:
    """One run of a search, sending its events to ``events`` (waiting for room)."""

    def __init__(
        self,
        service: SearchService,
        request: SearchRequest,
        events: asyncio.Queue[SearchEvent],
        line_limit: int | None,
        line_chars: int | None,
        progress_every: float,
        in_order: bool,
    ) -> None:
        self._service = service
        self._request = request
        self._events = events
        self._in_order = in_order
        self._line_limit = line_limit
        self._line_chars = line_chars
        self._every = progress_every
        pattern = request.matcher()
        self._regexp = pattern.regexp
        self._find: Finder = pattern.find
        self.scanning: concurrent.futures.Future[None] | None = None  # the thread's scan
        self._failed: dict[tuple[str, str], Outcome] = {}
        self._states: dict[tuple[str, str], str | None] = {}
        self._files_done = 0
        self._files_total = 0
        self._bytes = 0
        self._total = 0
        self._keep = True
        self._loop = asyncio.get_running_loop()
        self._last_progress = -float("inf")
        self._progress_due: asyncio.TimerHandle | None = None
        self._told: SearchProgress | None = None  # the last progress put in ``events``

    def _wanted(self, filename: str) -> bool:
        glob = self._request.filename
        return glob is None or glob_matches(glob, filename)

    async def run(self) -> None:
        service = self._service
        listing = await service._listing.list_gists(self._request.username, answer_first=True)
        login = listing.login
        site = await service._site.id()
        # this search's share of new contents; the user's are not evicted from now on,
        # so none of the files read next can go before they are scanned
        downloads = await service._contents.searching(site, login)
        try:
            async with service._sessions() as session:
                states = [
                    s
                    for s in await store.user_files(session, site, login)
                    if self._wanted(s.filename)
                ]
                missing: list[FileRef] = []
                if any(state.status is None for state in states):
                    missing = [
                        ref
                        for ref in await store.files_without_contents(session, site, login)
                        if self._wanted(ref.filename)
                    ]
            gists = listing.gists
            index = {gist.id: n for n, gist in enumerate(gists)}
            self._files_total = sum(1 for g in gists for f in g.files if self._wanted(f.filename))
            waiting: dict[str, int] = {}  # files each gist still waits for
            for ref in missing:
                waiting[ref.gist_id] = waiting.get(ref.gist_id, 0) + 1
            self._files_done = max(0, self._files_total - len(missing))
            self._bytes = sum(state.stored_bytes for state in states if state.status is not None)
            # a user whose contents cannot all be held is read from the database every time
            # rather than pushing everyone else (and itself) out of memory
            self._keep = service._memory.holds_whole(
                sum(state.stored_bytes for state in states if state.status == TEXT)
                + sum(ref.size or 0 for ref in missing),
                len(states),
            )
            await self._put(SearchStarted(listing, self._files_total))
            self._progress()
        except BaseException:
            downloads.close()
            raise

        # the downloads start at once; the gists with nothing to wait for are scanned
        # meanwhile, then each other one as soon as its last file is in
        finished: asyncio.Queue[tuple[FileRef, Outcome]] = asyncio.Queue()

        async def fetch(ref: FileRef) -> None:
            finished.put_nowait((ref, await service._contents.fetch(ref, downloads)))

        fetches = [asyncio.ensure_future(fetch(ref)) for ref in missing]
        unscanned = collections.deque(gists)  # in order: the gists not scanned yet

        def due(complete: list[str]) -> list[Gist]:
            """The gists to scan now: those ``complete``, or in order, the ones not
            scanned yet up to the first still waiting for a file."""
            if not self._in_order:
                ids = set(complete)
                return [gist for gist in gists if gist.id in ids]
            ready = []
            while unscanned and not waiting.get(unscanned[0].id):
                ready.append(unscanned.popleft())
            return ready

        try:
            if self._in_order:
                ready = due([])
            else:
                ready = [gist for gist in gists if gist.id not in waiting]
            ready_ids = {gist.id for gist in ready}
            await self._scan(ready, [s for s in states if s.gist_id in ready_ids], index)
            left = len(missing)
            while left:
                # every file in by now, then the gists they completed, scanned together
                batch = [await finished.get()]
                while not finished.empty():
                    batch.append(finished.get_nowait())
                left -= len(batch)
                complete: list[str] = []
                for ref, outcome in batch:
                    if outcome is not None:
                        self._failed[(ref.gist_id, ref.filename)] = outcome
                    self._files_done += 1
                    self._bytes += ref.size or 0
                    waiting[ref.gist_id] -= 1
                    if not waiting[ref.gist_id]:
                        complete.append(ref.gist_id)
                self._progress()
                scan = due(complete)
                if scan:
                    ids = [gist.id for gist in scan]
                    async with service._sessions() as session:
                        fresh = await store.user_files(session, site, login, ids)
                    await self._scan(scan, [s for s in fresh if self._wanted(s.filename)], index)
            await downloads.finish()  # the cached contents back within their budget
        except BaseException:
            if self._progress_due is not None:
                self._progress_due.cancel()
            raise
        finally:
            for task in fetches:  # a search that stops leaves others' downloads running
                task.cancel()
            downloads.close()
        # the last progress, on time, waited for (never dropped), and told once: the
        # timer is stopped first, so that it cannot tell it too while this waits
        if self._progress_due is not None:
            self._progress_due.cancel()
            self._progress_due = None
        if self._told != self._progress_event():
            await asyncio.sleep(max(0.0, self._last_progress + self._every - self._loop.time()))
            self._told = self._progress_event()
            await self._put(self._told)
        await self._put(SearchDone(self._total, listing))

    async def _put(self, event: SearchEvent) -> None:
        await self._events.put(event)  # waits while the reader has enough to read

    def _progress(self) -> None:
        """Tell the progress now, or when ``progress_every`` since the last has passed."""
        wait = self._last_progress + self._every - self._loop.time()
        if wait <= 0:
            self._send_progress()
        elif self._progress_due is None:
            self._progress_due = self._loop.call_later(wait, self._send_progress)

    def _send_progress(self) -> None:
        if self._progress_due is not None:
            self._progress_due.cancel()
            self._progress_due = None
        self._last_progress = self._loop.time()
        event = self._progress_event()
        # dropped when the reader has enough to read (a later one, or the last, tells
        # more), and when it would tell nothing new
        if not self._events.full() and event != self._told:
            self._told = event
            self._events.put_nowait(event)

    def _progress_event(self) -> SearchProgress:
        return SearchProgress(self._files_done, self._files_total, self._bytes)

    async def _scan(
        self, gists: Sequence[Gist], states: Sequence[FileState], index: dict[str, int]
    ) -> None:
        """Scan the cached chunks of ``gists`` (whose files are all in) and tell each gist
        as soon as its last chunk is scanned."""
        if not gists:
            return
        for state in states:
            self._states[state.key] = state.status
        hits: dict[tuple[str, str], FileHits] = {}
        ids = {gist.id for gist in gists}
        order = iter(gists)
        next_gist: Gist | None = next(order, None)
        batch: list[tuple[StoredChunk, FileHits]] = []
        batch_bytes = 0
        read: list[Gist] = []  # gists whose chunks are all in the batch or scanned before
        async with self._service._sessions() as session:
            # closed before the session even when the loop stops early: its read-ahead
            # must not outlive the session
            # memory first, then the database, in the files' order
            reader = text_chunks(self._service._memory, session, states, keep=self._keep)
            async with contextlib.aclosing(reader) as chunks:
                async for chunk in chunks:
                    if chunk.gist_id not in ids:
                        continue
                    # chunks come in list order: the gists before this one are read
                    while next_gist is not None and next_gist.id != chunk.gist_id:
                        read.append(next_gist)
                        next_gist = next(order, None)
                    key = (chunk.gist_id, chunk.filename)
                    if chunk.data is None:  # replaced by a newer fetch while we read
                        self._failed.setdefault(key, SkipReason.UNAVAILABLE)
                        continue
                    file_hits = hits.get(key)
                    if file_hits is None:
                        file_hits = hits[key] = FileHits(
                            self._line_limit,
                            self._line_chars,
                            find=self._find,
                            context=self._request.context,
                        )
                    batch.append((chunk, file_hits))
                    batch_bytes += len(chunk.data)
                    if batch_bytes >= SCAN_BATCH_BYTES:
                        await self._scan_batch(batch)
                        batch, batch_bytes = [], 0
                        for gist in read:
                            await self._tell(gist, index[gist.id], hits)
                        read = []
        await self._scan_batch(batch)
        for gist in read:
            await self._tell(gist, index[gist.id], hits)
        while next_gist is not None:
            await self._tell(next_gist, index[next_gist.id], hits)
            next_gist = next(order, None)

    async def _scan_batch(self, batch: list[tuple[StoredChunk, FileHits]]) -> None:
        """Scan ``batch`` in a scanning thread; when this search stops waiting for it (its
        time is up, or it was cancelled), the thread stops at its next slice."""
        if not batch:
            return
        stopped = threading.Event()
        try:
            self.scanning = self._service._scanners.submit(
                _scan_batch, self._regexp, self._find, batch, stopped
            )
            await asyncio.wrap_future(self.scanning)
        finally:
            stopped.set()

    async def _tell(self, gist: Gist, index: int, hits: dict[tuple[str, str], FileHits]) -> None:
        if gist.truncated:
            skip = Skipped(gist.id, None, SkipReason.FILE_LIST_TRUNCATED)
            await self._put(FileSkipped(index, skip))
        matched: list[FileMatch] = []
        for f in gist.files:
            if not self._wanted(f.filename):
                continue
            key = (gist.id, f.filename)
            reason = self._failed.get(key) or _skip_reason(self._states.get(key))
            if reason is not None:
                await self._put(FileSkipped(index, Skipped(gist.id, f.filename, reason)))
                continue
            file_hits = hits.pop(key, None)
            if file_hits is not None and file_hits.match_count:
                lines = _lines(gist.html_url + line_anchor_prefix(f.filename), file_hits.lines)
                matched.append(FileMatch(f, file_hits.match_count, lines))
        if matched:
            self._total += 1
            await self._put(GistFound(index, GistMatch(gist, tuple(matched))))
        await self._put(GistSearched(index))


def _scan_batch(
    regexp: Any,
    find: Finder,
    batch: list[tuple[StoredChunk, FileHits]],
    stopped: threading.Event,
) -> None:
    """The scanning thread's work: each chunk of ``batch`` into its file's hits, in
    slices, until ``stopped`` is set (then ``ScanStopped`` ends it)."""
    for chunk, hits in batch:
        assert chunk.data is not None  # noqa: S101 - _scan leaves replaced chunks out
        scan_chunk(
            regexp,
            chunk.data,
            chunk.first_line,
            hits,
            find,
            stop=stopped.is_set,
        )


def _lines(url: str, lines: list[dict[str, Any]]) -> tuple[LineMatch, ...]:
    """The kept lines of a file as the result's, ``url`` the file's line link up to the
    line number (made once per file: with thousands of matching lines this is hot)."""
    made = []
    for line in lines:
        number = line["line_number"]
        before = line.get("before")
        after = line.get("after")
        made.append(
            LineMatch(
                number,
                line["column"],
                line["text"],
                ranges=tuple(line.get("ranges", ())),
                url=f"{url}{number}",
                before=tuple(ContextLine(*shown) for shown in before) if before else (),
                after=tuple(ContextLine(*shown) for shown in after) if after else (),
                line_length=line.get("line_length"),
            )
        )
    return tuple(made)


def _skip_reason(state: str | None) -> SkipReason | None:
    if state == BINARY:
        return SkipReason.BINARY
    if state == TOO_LARGE:
        return SkipReason.TOO_LARGE
    if state is None:
        return SkipReason.UNAVAILABLE
    return None
