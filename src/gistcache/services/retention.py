"""Use case: keep the cached contents within their budget.

Two bounds, from which docs/operations.md sizes the database:

- ``total_bytes`` (``GISTCACHE_CONTENT_CACHE_MB``): the text contents the database holds,
  every user's together. When a search of this process has brought new contents in and
  they are over it, the contents of the least recently searched users are evicted
  (their lists stay; a later search fetches them again), never those of a user a search
  of this process is reading meanwhile.
- ``search_bytes`` (``GISTCACHE_SEARCH_DOWNLOAD_MB``): what one search may download and
  store of new contents, and never so much that its user's contents alone would pass
  ``total_bytes``. A file past it is skipped (``download_budget``); a later search
  fetches it, as far as the user's share allows.

When a search last read a user's contents is kept on the user's row
(``users.searched_at``), written at most every ``SEARCHED_AT_STEP`` per user: a warm
search of a user searched a moment ago writes nothing. Least recently searched is
therefore known to within that step.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import Counter, OrderedDict
from datetime import datetime, timedelta

from gistcache.domain.clock import Clock
from gistcache.services.memory import ContentMemory
from gistcache.store import contents as content_store
from gistcache.store.engine import Sessions

log = logging.getLogger(__name__)

# how stale ``users.searched_at`` may be: a search writes it only when it is older
SEARCHED_AT_STEP = timedelta(minutes=5)
# how long this process trusts its own count of the cached bytes (other servers add
# contents too) before it asks the database again, when it has brought new ones in
MEASURE_EVERY = timedelta(minutes=1)
REMEMBERED_SEARCHES = 10_000  # users whose last recorded search this process remembers

UserKey = tuple[int, str]  # site, login


class ContentBudget:
    def __init__(
        self,
        sessions: Sessions,
        *,
        total_bytes: int,
        search_bytes: int,
        clock: Clock,
        memory: ContentMemory | None = None,
    ) -> None:
        self._sessions = sessions
        self.total_bytes = total_bytes
        self.search_bytes = min(search_bytes, total_bytes)
        self._clock = clock
        self._memory = memory
        self._reading: Counter[UserKey] = Counter()  # users searches of this process read
        self._recorded: OrderedDict[UserKey, datetime] = OrderedDict()
        self._recording_failed = False  # the last write of searched_at failed (logged)
        self._evicting = asyncio.Lock()
        self._measured: int | None = None  # the cached bytes when last measured, after evicting
        self._measured_at: datetime | None = None
        self._unmeasured = 0  # bytes this process installed since that measurement began
        self._background: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def searching(self, site: int, login: str) -> SearchDownloads:
        """A search begins to read the user's contents: note when (at most every
        ``SEARCHED_AT_STEP``), keep them from eviction until the search's ``close()``,
        and give the search its share of downloads."""
        self._reading[(site, login)] += 1
        try:
            await self._record(site, login)
        except BaseException:
            self._done_reading(site, login)
            raise
        return SearchDownloads(self, site, login)

    async def _record(self, site: int, login: str) -> None:
        key, now = (site, login), self._clock()
        last = self._recorded.get(key)
        if last is not None and now - last < SEARCHED_AT_STEP:
            return  # written a moment ago: the warm search writes nothing
        try:
            async with self._sessions() as session, session.begin():
                await content_store.Contents(session, site).record_search(
                    login, now, SEARCHED_AT_STEP
                )
        except Exception as exc:
            # best effort: the search reads what is cached all the same (a read-only
            # database serves warm searches); said once until a write succeeds again,
            # and tried again for this user only after the step, as a success would be
            if not self._recording_failed:
                self._recording_failed = True
                log.warning(
                    "could not record when users were last searched (eviction goes by "
                    "older times meanwhile): %s",
                    exc,
                )
        else:
            if self._recording_failed:
                self._recording_failed = False
                log.info("recording when users were last searched again")
        self._recorded[key] = now
        self._recorded.move_to_end(key)
        while len(self._recorded) > REMEMBERED_SEARCHES:
            self._recorded.popitem(last=False)

    def _done_reading(self, site: int, login: str) -> None:
        key = (site, login)
        self._reading[key] -= 1
        if self._reading[key] <= 0:
            del self._reading[key]

    def installed(self, chunk_bytes: int) -> None:
        """New contents of ``chunk_bytes`` were installed by this process."""
        self._unmeasured += chunk_bytes

    @property
    def unsettled(self) -> bool:
        """Whether contents came in since the budget was last kept."""
        return self._unmeasured > 0

    async def keep_within_budget(self) -> None:
        """Evict the least recently searched users' contents until the cached contents
        are within ``total_bytes`` (none of those a search of this process reads)."""
        async with self._evicting:
            now = self._clock()
            if (
                self._measured is not None
                and self._measured_at is not None
                and now - self._measured_at < MEASURE_EVERY
                and self._measured + self._unmeasured <= self.total_bytes
            ):
                return
            self._unmeasured = 0
            async with self._sessions() as session:
                usage = await content_store.content_usage(session)
            held = sum(user.bytes for user in usage)
            for user in usage:
                if held <= self.total_bytes:
                    break
                if (user.site, user.login) in self._reading:
                    continue
                async with self._sessions() as session, session.begin():
                    evicted = await content_store.Contents(session, user.site).evict_contents(
                        user.login
                    )
                if self._memory is not None:
                    for revision in evicted:
                        self._memory.forget(
                            revision.site, revision.gist_id, revision.filename, revision.generation
                        )
                held -= user.bytes
                log.info(
                    "evicted the cached contents of %s (%d bytes, %d files, last searched %s) "
                    "to keep the cached contents within %d bytes",
                    user.login,
                    user.bytes,
                    len(evicted),
                    "never" if user.searched_at is None else user.searched_at.isoformat(),
                    self.total_bytes,
                )
            self._measured, self._measured_at = held, now

    async def settle(self) -> None:
        """Keep the budget after new contents came in; a failure is logged, not raised
        (the search that calls this has its answer already)."""
        if not self.unsettled:
            return
        try:
            await self.keep_within_budget()
        except Exception as exc:
            log.warning("could not keep the cached contents within their budget: %s", exc)

    def settle_later(self) -> None:
        """``settle`` as a task of its own, for a search that stopped early."""
        if not self.unsettled:
            return
        task = asyncio.create_task(self.settle())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class SharedDownloads:
    """One share of new contents for several searches (a many-user search's users'
    parts): ``search_bytes`` of them in all, on top of each part's own share. Set in
    ``SHARED_DOWNLOADS`` for the parts' tasks, it is taken by every ``SearchDownloads``
    made in them."""

    def __init__(self) -> None:
        self._left: int | None = None  # sized at the first download

    def take(self, nbytes: int, size: int) -> bool:
        if self._left is None:
            self._left = size
        if nbytes > self._left:
            return False
        self._left -= nbytes
        return True

    def give_back(self, nbytes: int) -> None:
        if self._left is not None:
            self._left += nbytes


# the share the searches begun in this context draw from besides their own (None: theirs)
SHARED_DOWNLOADS: contextvars.ContextVar[SharedDownloads | None] = contextvars.ContextVar(
    "gistcache_shared_downloads", default=None
)


class SearchDownloads:
    """One search's share of new contents: at most ``search_bytes`` of them, and no more
    than its user's contents leave of ``total_bytes`` (learnt at the first download)."""

    def __init__(self, budget: ContentBudget, site: int, login: str) -> None:
        self._budget = budget
        self._site = site
        self._login = login
        self._left: int | None = None
        self._sizing = asyncio.Lock()
        self._open = True
        self._shared = SHARED_DOWNLOADS.get()

    async def reserve(self, nbytes: int) -> bool:
        """Take ``nbytes`` of the share for a download, or say there is not as much left."""
        if self._left is None:
            async with self._sizing:
                if self._left is None:
                    async with self._budget._sessions() as session:
                        held = await content_store.Contents(session, self._site).user_content_bytes(
                            self._login
                        )
                    budget = self._budget
                    self._left = max(0, min(budget.search_bytes, budget.total_bytes - held))
        if nbytes > self._left:
            return False
        if self._shared is not None and not self._shared.take(nbytes, self._budget.search_bytes):
            return False
        self._left -= nbytes
        return True

    def refund(self, nbytes: int) -> None:
        """Give back what a download reserved and did not store."""
        if self._left is not None and nbytes > 0:
            self._left += nbytes
            if self._shared is not None:
                self._shared.give_back(nbytes)

    async def finish(self) -> None:
        """The search's downloads are in: evict other users' contents if the cached
        contents are over their budget now (this user's are kept: still reading)."""
        await self._budget.settle()

    def close(self) -> None:
        """The search no longer reads its user's contents. One that stopped before
        ``finish`` has its downloads kept within the budget in the background."""
        if not self._open:
            return
        self._open = False
        self._budget._done_reading(self._site, self._login)
        self._budget.settle_later()
