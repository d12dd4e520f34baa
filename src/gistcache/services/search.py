"""Use case: which of a user's gists contain a pattern.

The list is brought up to date by the listing rules; then the files with no contents
cached for their gist's current revision are brought in (``services.contents``, one
flight per file), and every cached chunk is scanned with RE2. ``stream`` tells the
search as it goes, as typed events: a gist is told as soon as all its files are in,
while the others are still downloading. ``search`` is the same search gathered into
one typed ``SearchResult``. How either is shown (JSON, NDJSON, lines on a terminal) is
the caller's.

A search runs in its reader's task, as an async generator: it goes on when its reader
asks for the next event, so a reader that does not read holds its search back. Its
scans run in a thread of their own (RE2 releases the GIL), its downloads in tasks
shared with the other searches that want the same files (``services.contents``).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import itertools
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
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
    any_match,
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
from gistcache.services.contents import ContentFetcher
from gistcache.services.listing import ListingService
from gistcache.services.memory import ContentMemory, Held, text_chunks
from gistcache.services.retention import SearchDownloads
from gistcache.store.contents import BINARY, TEXT, TOO_LARGE, FileRef, FileState
from gistcache.store.engine import Sessions
from gistcache.store.sites import Site

Progress = Callable[[int, int], None]
STREAM_PROGRESS_EVERY = 0.1  # seconds: progress events at most this often
MAX_ANSWER_BYTES = 8 * 1024 * 1024
# a search hands on what it has ready in groups of at most this many events, and lets
# the event loop's other tasks run between two: telling a batch of gists (a megabyte's,
# hundreds of them) at once would hold the loop for tens of milliseconds
EVENTS_AT_ONCE = 16
# the chunks read are handed to a scanning thread together, up to this many bytes
# (more when one chunk is larger): a thread hop per batch, not per chunk
SCAN_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How much of each matching file a search lists: its first ``line_limit`` matching
    lines (None: all), each cut to ``line_chars`` characters around its first match
    (None: whole). Every matching line is counted either way."""

    line_limit: int | None = MAX_LINES_PER_FILE
    line_chars: int | None = MAX_LINE_CHARS


EVERY_LINE = ScanOptions(line_limit=None, line_chars=None)  # as grep prints them


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    result: SearchResult
    listing: GistList  # the list it searched, and how it was obtained (HIT, STALE ...)


@dataclass(frozen=True, slots=True)
class _Sources:
    """What a search reads (the list, the stored and downloaded contents, the memory
    tier) and where it scans: handed to each search by its service."""

    sessions: Sessions
    listing: ListingService
    contents: ContentFetcher
    site: Site
    memory: ContentMemory
    scanners: ThreadPoolExecutor


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
        self._contents = contents
        self._timeout = timeout
        self._slots = _Slots(max_searches)
        self.max_answer_bytes = max_answer_bytes
        self._sources = _Sources(
            sessions,
            listing,
            contents,
            site,
            content_memory if content_memory is not None else ContentMemory(0),
            # RE2 releases the GIL: scans run here, off the event loop, one per search
            # at a time (a scan its search left behind stops at its next slice)
            ThreadPoolExecutor(max_searches, thread_name_prefix="gistcache-scan"),
        )

    async def close(self) -> None:
        """End the downloads still running (at shutdown), and the scanning threads."""
        await self._contents.close()
        self._sources.scanners.shutdown(wait=False, cancel_futures=True)

    async def search(
        self,
        request: SearchRequest,
        *,
        queue_if_busy: bool = True,
        progress: Progress | None = None,
        options: ScanOptions = ScanOptions(),
    ) -> SearchAnswer:
        """The search's answer, within the time budget and the concurrency bound.

        Raises PatternError, UserNotFound, GitHubError, SearchTimeout, or SearchesBusy
        when every search slot is taken and ``queue_if_busy`` is false. ``progress`` is
        told ``(files_done, files_total)`` as files come in.

        Only the page's matches are kept (the others are counted), and only while they
        fit in ``max_answer_bytes``: the answer says where it was cut (``cut``).
        """
        skipped: list[FileSkipped] = []
        done: SearchDone | None = None
        start = (request.page - 1) * request.per_page
        page = _Page(self.max_answer_bytes, start, start + request.per_page, keep=True)
        events = self.stream(
            request,
            queue_if_busy=queue_if_busy,
            options=options,
            progress_every=0,
            in_order=True,
            listed=(start, start + request.per_page),
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
        result = SearchResult(
            request, page.seen, tuple(page.kept), skips, page.cut(request), page.kept_weight
        )
        return SearchAnswer(result, done.listing)

    async def stream(
        self,
        request: SearchRequest,
        *,
        queue_if_busy: bool = True,
        options: ScanOptions = ScanOptions(),
        progress_every: float = STREAM_PROGRESS_EVERY,
        in_order: bool = False,
        answer_limit: int | None = None,
        listed: tuple[int, int] | None = None,
    ) -> AsyncGenerator[SearchEvent, None]:
        """The search as it goes: ``SearchStarted`` (once the list is known), then
        ``SearchProgress`` (at most every ``progress_every`` seconds), ``GistFound`` and
        ``FileSkipped`` as gists are ready, last ``SearchDone``; or the failure raised
        (``SearchesBusy`` at once when every slot is taken and not ``queue_if_busy``).

        Gists come as they are ready (cached ones first), or with ``in_order`` in the
        list's order (a gist is scanned once those before it are). With ``answer_limit``
        (bytes, as ``match_weight`` counts them) the ``GistFound`` told stop once their
        weight reaches it (a first one alone over it loses lines), and ``SearchDone``
        says so in ``cut``; the others are still counted. With ``listed`` (and
        ``in_order``), the matching gists told before the first or from the second of
        these positions (0-based, among the matching gists) are found by their first
        matching line and told with no files: their lines are never made.

        The search goes on only while its reader asks for events, and holds one of the
        ``max_searches`` slots until it ends. Its time budget runs from when it has a
        slot; every step it takes is within it (``SearchTimeout`` when it runs out),
        never the reader's own work between two events: a reader that stops reading is
        the reader's to let go. Closing the iterator early stops the search, and with it
        every download no other search waits for.
        """
        if not queue_if_busy and self._slots.full():
            raise SearchesBusy()
        search = _Search(self._sources, request, options, progress_every, in_order, listed)
        page = _Page(answer_limit, 0, None, keep=False) if answer_limit is not None else None
        await self._slots.take()
        try:
            deadline = asyncio.get_running_loop().time() + self._timeout
            async with contextlib.aclosing(search.events()) as steps:
                while (ready := await self._step(steps, deadline)) is not None:
                    for event in ready:
                        told = page.limit(event) if page is not None else event
                        if told is not None:
                            yield told
                    await asyncio.sleep(0)  # the loop's other tasks' turn
        finally:
            self._slots.give_back(search.scanning)

    async def _step(
        self, steps: AsyncIterator[list[SearchEvent]], deadline: float
    ) -> list[SearchEvent] | None:
        """The search's next events (None: it has ended), within its time budget.

        The budget is a scope around each step, not around the ``yield`` that hands the
        event on: there it would cancel whatever the reader does meanwhile (its write to
        a slow client, say) instead of the search."""
        budget = asyncio.timeout_at(deadline)
        try:
            async with budget:
                return await anext(steps, None)
        except TimeoutError:
            if budget.expired():
                raise SearchTimeout(self._timeout) from None
            raise  # a database or network timeout inside the search, not the budget


class _Slots:
    """At most ``size`` searches at a time. A search's slot is free once it has ended
    and its scanning thread too: a search out of time holds it while its thread finishes
    its slice, so that a search after it is told the server is busy (``SearchesBusy``)
    rather than queued behind it until its own time is up."""

    def __init__(self, size: int) -> None:
        self._free = asyncio.Semaphore(size)

    def full(self) -> bool:
        return self._free.locked()

    async def take(self) -> None:
        await self._free.acquire()

    def give_back(self, scanning: concurrent.futures.Future[None] | None) -> None:
        if scanning is None or scanning.done():
            self._free.release()
            return
        loop = asyncio.get_running_loop()
        scanning.add_done_callback(lambda _: loop.call_soon_threadsafe(self._free.release))


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
        self.kept_weight: int | None = 0  # match_weight's sum over ``kept`` (None: not known)

    def add(self, match: GistMatch) -> GistMatch | None:
        """Count ``match``; the match as kept (perhaps with fewer lines), or None."""
        position = self.seen
        self.seen += 1
        if position < self._start or (self._end is not None and position >= self._end):
            return None
        if self._full:
            return None
        weight: int | None = None
        if self._limit is not None:
            weight = match_weight(match)
            if self._weight + weight > self._limit:
                self._full = True
                if self.listed:
                    return None
                match = trimmed(match, self._limit)  # alone over the limit: fewer lines
                self._lines_cut = True
                self._weight += weight
                weight = match_weight(match)
            else:
                self._weight += weight
        self.listed += 1
        if self._keep:
            self.kept.append(match)
            if weight is None or self.kept_weight is None:
                self.kept_weight = None
            else:
                self.kept_weight += weight
        return match

    def limit(self, event: SearchEvent) -> SearchEvent | None:
        """A stream's ``event`` within the limit: a match as kept (None: left out), the
        end with where the answer was cut."""
        if isinstance(event, GistFound):
            match = self.add(event.match)
            return None if match is None else GistFound(event.index, match)
        if isinstance(event, SearchDone):
            return dataclasses.replace(event, cut=self.cut(None))
        return event

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


@dataclass(slots=True)
class _Plan:
    """What a search knows before it scans: the list, the states of the files it
    searches, those with no contents cached, and whether what it reads is kept."""

    listing: GistList
    downloads: SearchDownloads  # its share of new contents
    states: list[FileState]
    missing: list[FileRef]
    keep: bool  # the contents read from the database are kept in memory
    index: dict[str, int]  # each gist's place in the list
    # every file's chunks as the content memory holds them, current for the list's
    # revision (``states`` are theirs; nothing is missing): None when one is not held
    held: Held | None = None


async def _plan(sources: _Sources, username: str, wanted: Callable[[str], bool]) -> _Plan:
    """List the user's gists and read their files' states (of the files ``wanted``)."""
    listing = await sources.listing.list_gists(username, answer_first=True)
    site = await sources.site.id()
    # this search's share of new contents; the user's are not evicted from now on,
    # so none of the files read next can go before they are scanned
    downloads = await sources.contents.searching(site, listing.login)
    # every file held in memory, current for the list's revision: nothing to read
    held = sources.memory.held(site, listing.gists, wanted)
    if held is not None:
        index = {gist.id: n for n, gist in enumerate(listing.gists)}
        return _Plan(listing, downloads, [state for state, _ in held], [], True, index, held)
    try:
        async with sources.listing.store.read() as db:
            states = [s for s in await db.contents.user_files(listing.login) if wanted(s.filename)]
            missing: list[FileRef] = []
            if any(state.status is None for state in states):
                missing = [
                    ref
                    for ref in await db.contents.files_without_contents(listing.login)
                    if wanted(ref.filename)
                ]
    except BaseException:
        downloads.close()
        raise
    # a user whose contents cannot all be held is read from the database every time
    # rather than pushing everyone else (and itself) out of memory
    keep = sources.memory.holds_whole(
        sum(state.stored_bytes for state in states if state.status == TEXT)
        + sum(ref.size or 0 for ref in missing),
        len(states),
    )
    index = {gist.id: n for n, gist in enumerate(listing.gists)}
    return _Plan(listing, downloads, states, missing, keep, index)


class _Progress:
    """How far a search has come, told at most every ``every`` seconds and only when
    it says something new; the last is always told, on time."""

    def __init__(self, every: float, files_total: int, files_done: int, nbytes: int) -> None:
        self._every = every
        self._loop = asyncio.get_running_loop()
        self.files_total = files_total
        self.files_done = files_done
        self.bytes = nbytes
        self._last = -float("inf")  # when the last was told
        self._told: SearchProgress | None = None

    def now(self) -> SearchProgress:
        return SearchProgress(self.files_done, self.files_total, self.bytes)

    def wait(self) -> float | None:
        """Seconds until the progress is to be told (0: now); None: it has no news."""
        if self.now() == self._told:
            return None
        return max(0.0, self._last + self._every - self._loop.time())

    def tell(self) -> SearchProgress:
        self._last = self._loop.time()
        self._told = self.now()
        return self._told

    def due(self) -> SearchProgress | None:
        """The progress to tell now, if it is time and it has news."""
        return self.tell() if self.wait() == 0 else None


class _Waiting:
    """The gists a search waits for files of, and (in order) those it has not scanned."""

    def __init__(self, gists: Sequence[Gist], missing: Sequence[FileRef], in_order: bool):
        self._gists = gists
        self._in_order = in_order
        self._files = collections.Counter(ref.gist_id for ref in missing)
        self._unscanned = collections.deque(gists)

    def ready(self) -> list[Gist]:
        """The gists to scan before any file comes in."""
        if self._in_order:
            return self._next_in_order()
        return [gist for gist in self._gists if gist.id not in self._files]

    def arrived(self, gist_id: str) -> bool:
        """One file of ``gist_id`` is in: whether it was the last."""
        self._files[gist_id] -= 1
        return not self._files[gist_id]

    def due(self, complete: Sequence[str]) -> list[Gist]:
        """The gists to scan now: those ``complete``, or in order, the ones not scanned
        yet up to the first still waiting for a file."""
        if self._in_order:
            return self._next_in_order()
        ids = set(complete)
        return [gist for gist in self._gists if gist.id in ids]

    def _next_in_order(self) -> list[Gist]:
        ready = []
        while self._unscanned and not self._files.get(self._unscanned[0].id):
            ready.append(self._unscanned.popleft())
        return ready


class _Search:
    """One run of a search, as the events it tells (``events``)."""

    def __init__(
        self,
        sources: _Sources,
        request: SearchRequest,
        options: ScanOptions,
        progress_every: float,
        in_order: bool,
        listed: tuple[int, int] | None = None,
    ) -> None:
        self._sources = sources
        self._request = request
        self._progress_every = progress_every
        self._in_order = in_order
        listed = listed if in_order else None  # positions among gists told in list order
        self._scanner = _Scanner(sources, request, options, self._wanted, listed)

    @property
    def scanning(self) -> concurrent.futures.Future[None] | None:
        """The scanning thread's latest work (its slot is free once that is done)."""
        return self._scanner.scanning

    def _wanted(self, filename: str) -> bool:
        glob = self._request.filename
        return glob is None or glob_matches(glob, filename)

    async def events(self) -> AsyncGenerator[list[SearchEvent], None]:
        """The search's events, in steps: those ready at once (at most EVENTS_AT_ONCE)."""
        plan = await _plan(self._sources, self._request.username, self._wanted)
        try:
            gists = plan.listing.gists
            total = sum(1 for g in gists for f in g.files if self._wanted(f.filename))
            progress = _Progress(
                self._progress_every,
                total,
                max(0, total - len(plan.missing)),
                sum(state.stored_bytes for state in plan.states if state.status is not None),
            )
            yield [SearchStarted(plan.listing, total), progress.tell()]
            async with contextlib.aclosing(self._as_files_come(plan, progress)) as steps:
                async for ready in steps:
                    yield ready
            await plan.downloads.finish()  # the cached contents back within their budget
        finally:
            plan.downloads.close()
        # the last progress, on time, and told once
        wait = progress.wait()
        if wait is not None:
            await asyncio.sleep(wait)
            yield [progress.tell()]
        yield [SearchDone(self._scanner.total, plan.listing)]

    async def _as_files_come(
        self, plan: _Plan, progress: _Progress
    ) -> AsyncGenerator[list[SearchEvent], None]:
        """The downloads start at once; the gists with nothing to wait for are scanned
        meanwhile, then each other one as soon as its last file is in. The progress is
        told when it falls due (at the latest once the scan under way is over)."""
        waiting = _Waiting(plan.listing.gists, plan.missing, self._in_order)
        finished: asyncio.Queue[tuple[FileRef, SkipReason | None]] = asyncio.Queue()
        contents = self._sources.contents

        async def fetch(ref: FileRef, flight: Awaitable[SkipReason | None]) -> None:
            finished.put_nowait((ref, await flight))

        # with GraphQL, the files of many gists come in one request (services.contents)
        flights = contents.fetch_many(plan.missing, plan.listing.gists, plan.downloads)
        fetches = [
            asyncio.ensure_future(fetch(ref, flight))
            for ref, flight in zip(plan.missing, flights, strict=True)
        ]
        try:
            ready = waiting.ready()
            if plan.held is not None:  # nothing missing: every gist is ready
                first = self._scanner.scan(ready, plan.states, plan, held=plan.held)
            else:
                ids = {gist.id for gist in ready}
                states = [state for state in plan.states if state.gist_id in ids]
                first = self._scanner.scan(ready, states, plan)
            async with contextlib.aclosing(first) as steps:
                async for told in steps:
                    yield told
            left = len(plan.missing)
            while left:
                batch = await _arrived(finished, progress.wait())
                if not batch:  # none within the wait: the progress is due
                    yield [progress.tell()]
                    continue
                left -= len(batch)
                complete = self._count_in(batch, progress, waiting)
                due = progress.due()
                if due is not None:
                    yield [due]
                async with contextlib.aclosing(self._scan(plan, waiting.due(complete))) as steps:
                    async for told in steps:
                        yield told
        finally:
            for task in fetches:  # a search that stops leaves others' downloads running
                task.cancel()

    def _count_in(
        self,
        batch: list[tuple[FileRef, SkipReason | None]],
        progress: _Progress,
        waiting: _Waiting,
    ) -> list[str]:
        """Count the files of ``batch`` in (and why those that could not be had were
        not); the gists whose last file they were."""
        complete = []
        for ref, skip in batch:
            if skip is not None:
                self._scanner.failed[(ref.gist_id, ref.filename)] = skip
            progress.files_done += 1
            progress.bytes += ref.size or 0
            if waiting.arrived(ref.gist_id):
                complete.append(ref.gist_id)
        return complete

    async def _scan(
        self, plan: _Plan, gists: list[Gist]
    ) -> AsyncGenerator[list[SearchEvent], None]:
        """Scan ``gists``, whose files are all in, with their files' states read again."""
        if not gists:
            return
        async with self._sources.listing.store.read() as db:
            fresh = await db.contents.user_files(plan.listing.login, [gist.id for gist in gists])
        async with contextlib.aclosing(self._scanner.scan(gists, fresh, plan)) as steps:
            async for told in steps:
                yield told


async def _arrived(
    finished: asyncio.Queue[tuple[FileRef, SkipReason | None]], wait: float | None
) -> list[tuple[FileRef, SkipReason | None]]:
    """Every download in by now, once one is (none when ``wait`` seconds pass first)."""
    try:
        async with asyncio.timeout(wait):
            batch = [await finished.get()]
    except TimeoutError:
        return []
    while not finished.empty():
        batch.append(finished.get_nowait())
    return batch


class _Scanner:
    """Scans a search's cached chunks in a scanning thread, and tells each gist once
    its chunks are scanned."""

    def __init__(
        self,
        sources: _Sources,
        request: SearchRequest,
        options: ScanOptions,
        wanted: Callable[[str], bool],
        listed: tuple[int, int] | None = None,
    ) -> None:
        self._sources = sources
        self._listed = listed
        # what the scanning thread learnt of the gists scanned so far, in the list's order
        self._found = 0  # matching gists scanned before the one being scanned
        self._gist: str | None = None  # the gist being scanned
        self._gist_matches: list[tuple[str, str]] = []  # its files found matching
        self._unlisted: set[str] = set()  # gists scanned for their first matching line only
        self._matching: set[tuple[str, str]] = set()  # their files found matching
        self._options = options
        self._context = request.context
        self._wanted = wanted
        self._every_file = request.filename is None  # no glob: ``wanted`` wants every file
        pattern = request.matcher()
        self._regexp = pattern.regexp
        self._find: Finder = pattern.find
        self.scanning: concurrent.futures.Future[None] | None = None  # the thread's scan
        self.failed: dict[tuple[str, str], SkipReason] = {}  # files that could not be had
        self._states: dict[tuple[str, str], str | None] = {}
        self.total = 0  # matching gists told

    async def scan(
        self,
        gists: Sequence[Gist],
        states: Sequence[FileState],
        plan: _Plan,
        *,
        held: Held | None = None,
    ) -> AsyncGenerator[list[SearchEvent], None]:
        """Scan the cached chunks of ``gists`` (whose files are all in) and tell each gist
        as soon as its last chunk is scanned (in groups of EVENTS_AT_ONCE). With ``held``
        (every file of ``gists`` with its chunks, from the content memory) nothing is
        looked up or read."""
        if not gists:
            return
        hits: dict[tuple[str, str], FileHits] = {}
        batch = _Batch(gists)
        if held is not None:
            for state, chunks in held:
                key = state.key
                self._states[key] = state.status
                if chunks and state.status == TEXT:
                    batch.add_file(key, chunks, state.stored_bytes)
                    if batch.bytes >= SCAN_BATCH_BYTES:
                        async for told in self._scan_batch(batch, plan, hits):
                            yield told
            async for told in self._scan_batch(batch, plan, hits, last=True):
                yield told
            return
        for state in states:
            self._states[state.key] = state.status
        ids = {gist.id for gist in gists}
        # closed even when the loop stops early: its read-ahead must not outlive
        # its session; memory first, then the database, in the files' order
        memory, sessions = self._sources.memory, self._sources.sessions
        reader = text_chunks(memory, sessions, states, keep=plan.keep)
        async with contextlib.aclosing(reader) as reading:
            async for chunk in reading:
                if chunk.gist_id not in ids:
                    continue
                if chunk.data is None:  # replaced by a newer fetch while we read
                    batch.reach(chunk.gist_id)
                    self.failed.setdefault((chunk.gist_id, chunk.filename), SkipReason.UNAVAILABLE)
                    continue
                batch.add(chunk.gist_id, chunk.filename, chunk.first_line, chunk.data)
                if batch.bytes >= SCAN_BATCH_BYTES:
                    async for told in self._scan_batch(batch, plan, hits):
                        yield told
        async for told in self._scan_batch(batch, plan, hits, last=True):
            yield told

    async def _scan_batch(
        self,
        batch: _Batch,
        plan: _Plan,
        hits: dict[tuple[str, str], FileHits],
        *,
        last: bool = False,
    ) -> AsyncGenerator[list[SearchEvent], None]:
        """Scan what ``batch`` holds, then tell the gists it completes."""
        files, done = batch.take(last=last)
        await self._scan_in_thread(files, hits)
        for told in _groups(self._tell(done, plan.index, hits)):
            yield told

    def _hits(self) -> FileHits:
        line_limit, line_chars = self._options.line_limit, self._options.line_chars
        return FileHits(line_limit, line_chars, find=self._find, context=self._context)

    async def _scan_in_thread(
        self, files: list[_File], hits: dict[tuple[str, str], FileHits]
    ) -> None:
        """Scan ``files`` in a scanning thread. When this search stops waiting for it
        (its time is up, or it was closed), the thread stops at its next slice."""
        if not files:
            return
        stopped = threading.Event()
        try:
            self.scanning = self._sources.scanners.submit(_scan_batch, self, files, hits, stopped)
            await asyncio.wrap_future(self.scanning)
        finally:
            stopped.set()

    def scan_chunks(
        self,
        files: list[_File],
        hits: dict[tuple[str, str], FileHits],
        stopped: threading.Event,
    ) -> None:
        """The scanning thread's work (``_scan_batch``): each file's chunks into its hits
        in ``hits`` (made at its first matching line: none for a file with no match), in
        slices, until ``stopped`` is set (then ``ScanStopped`` ends it). A gist that would
        not be listed if it matched (``listed``) is scanned only until each of its files
        has shown a matching line, or has none."""
        regexp, find, stop = self._regexp, self._find, stopped.is_set
        # with context, a file's hits hold its last lines from chunk to chunk: made at once
        new_hits = self._hits
        for key, chunks in files:
            gist_id = key[0]
            if gist_id != self._gist:
                self._next_gist(gist_id)
            if gist_id not in self._unlisted:
                file_hits = hits.get(key)
                if file_hits is None and self._context:
                    file_hits = hits[key] = new_hits()
                for first_line, data in chunks:
                    file_hits = scan_chunk(
                        regexp, data, first_line, file_hits, find, stop=stop, new_hits=new_hits
                    )
                if file_hits is not None:
                    hits[key] = file_hits
                    if file_hits.match_count and key not in self._gist_matches:
                        self._gist_matches.append(key)
            elif key not in self._matching:
                for _, data in chunks:
                    if any_match(find, data, stop=stop):
                        self._matching.add(key)
                        self._gist_matches.append(key)
                        break

    def _next_gist(self, gist_id: str) -> None:
        """The scan goes on to ``gist_id`` (gists come in the list's order): count the
        one before if it matched (a file that failed meanwhile does not count, as its
        telling leaves it out), and whether this one would be listed."""
        if any(key not in self.failed for key in self._gist_matches):
            self._found += 1
        self._gist, self._gist_matches = gist_id, []
        if self._listed is not None:
            start, end = self._listed
            if not start <= self._found < end:
                self._unlisted.add(gist_id)

    def _tell(
        self, gists: list[Gist], index: dict[str, int], hits: dict[tuple[str, str], FileHits]
    ) -> Iterator[SearchEvent]:
        """Each of ``gists`` (scanned) as events, made as they are asked for."""
        wanted = None if self._every_file else self._wanted
        failed, states, unlisted_gists = self.failed, self._states, self._unlisted
        for gist in gists:
            gist_id = gist.id
            at = index[gist_id]
            if gist.truncated:
                yield FileSkipped(at, Skipped(gist_id, None, SkipReason.FILE_LIST_TRUNCATED))
            matched: list[FileMatch] = []
            unlisted = False
            unlisted_gist = gist_id in unlisted_gists
            for f in gist.files:
                filename = f.filename
                if wanted is not None and not wanted(filename):
                    continue
                key = (gist_id, filename)
                state = states.get(key)
                if state != TEXT or (failed and key in failed):
                    reason = failed.get(key) or _skip_reason(state)
                    if reason is not None:
                        yield FileSkipped(at, Skipped(gist_id, filename, reason))
                        continue
                file_hits = hits.pop(key, None)
                if unlisted_gist:
                    if key in self._matching:  # counted, never listed: no lines made
                        unlisted = True
                    continue
                if file_hits is not None and file_hits.match_count:
                    url = gist.html_url + line_anchor_prefix(filename)
                    matched.append(
                        FileMatch(f, file_hits.match_count, _lines(url, file_hits.lines))
                    )
            if matched or unlisted:
                self.total += 1
                yield GistFound(at, GistMatch(gist, tuple(matched)))
            yield GistSearched(at)


# a file's chunks to scan together, ``(first_line, data)``, by (gist id, filename)
_File = tuple[tuple[str, str], list[tuple[int, bytes]]]


class _Batch:
    """The files' chunks read for one hand-over to the scanning thread, and the gists
    whose chunks are all among them or scanned before (to be told once they are
    scanned)."""

    def __init__(self, gists: Sequence[Gist]) -> None:
        self._order = iter(gists)
        self._next: Gist | None = next(self._order, None)
        self._reached: str | None = None
        self._files: list[_File] = []
        self._key: tuple[str, str] | None = None  # the file whose chunks come now
        self._chunks: list[tuple[int, bytes]] = []
        self._read: list[Gist] = []
        self.bytes = 0

    def reach(self, gist_id: str) -> None:
        """Chunks come in list order: the gists before ``gist_id`` are read."""
        if gist_id == self._reached:
            return
        self._reached = gist_id
        while self._next is not None and self._next.id != gist_id:
            self._read.append(self._next)
            self._next = next(self._order, None)

    def add(self, gist_id: str, filename: str, first_line: int, data: bytes) -> None:
        """One chunk read, the next of its file's."""
        if gist_id != self._reached:
            self.reach(gist_id)
        key = self._key
        if key is None or key[0] != gist_id or key[1] != filename:
            key = self._key = (gist_id, filename)
            self._chunks = []
            self._files.append((key, self._chunks))
        self._chunks.append((first_line, data))
        self.bytes += len(data)

    def add_file(self, key: tuple[str, str], chunks: list[tuple[int, bytes]], size: int) -> None:
        """A whole file's chunks, of about ``size`` bytes."""
        if key[0] != self._reached:
            self.reach(key[0])
        self._files.append((key, chunks))
        self._key = None
        self.bytes += size

    def take(self, *, last: bool = False) -> tuple[list[_File], list[Gist]]:
        """The files to scan, and the gists complete once they are (``last``: all)."""
        if last:
            while self._next is not None:
                self._read.append(self._next)
                self._next = next(self._order, None)
        taken = (self._files, self._read)
        self._files, self._read, self.bytes, self._key = [], [], 0, None
        return taken


def _groups(events: Iterator[SearchEvent]) -> Iterator[list[SearchEvent]]:
    """``events`` in lists of at most EVENTS_AT_ONCE, each made when it is asked for."""
    while group := list(itertools.islice(events, EVENTS_AT_ONCE)):
        yield group


def _scan_batch(
    scanner: _Scanner,
    files: list[_File],
    hits: dict[tuple[str, str], FileHits],
    stopped: threading.Event,
) -> None:
    """What a scanning thread runs: ``scanner.scan_chunks``."""
    scanner.scan_chunks(files, hits, stopped)


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
                tuple(line["ranges"]) if "ranges" in line else (),
                f"{url}{number}",
                tuple([ContextLine(*shown) for shown in before]) if before else (),
                tuple([ContextLine(*shown) for shown in after]) if after else (),
                line.get("line_length"),
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
