"""This process's memory tiers in front of the database, each bounded in bytes:
recently served gist lists with their rendered JSON (``ListMemory``, so that a fresh
list is answered without a database round trip or a rendering) and recently searched
files' contents (``ContentMemory``, so that a warm search reads no chunk from it); and
the gist ids GitHub said it has no public gist by (``UnknownIds``, bounded in entries).

The database stays the cache of record: a list here is used only while it is fresh
by the same rule (``GISTCACHE_CACHE_TTL`` from ``checked_at``), and every refresh
this process makes replaces it; contents are held with the revision they were fetched
for and served only for a list that names that revision (by the store's rule), so a
copy here is never served for another.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.domain.gists import Gist, digest, render_gists
from gistcache.domain.results import GistList
from gistcache.store import contents
from gistcache.store.contents import TEXT, FileState, StoredChunk


class Weighed(Protocol):
    def weight(self) -> int: ...


T = TypeVar("T", bound=Weighed)
K = TypeVar("K", bound=Hashable)
Wanted = Callable[[str], bool]  # whether a search wants a file, by its name
# files' states each with its ``(first_line, data)`` chunks, as the content memory holds them
Held = list[tuple[FileState, list[tuple[int, bytes]]]]


class ByteLRU(Generic[K, T]):
    """A least-recently-used map from key to value, holding at most ``max_bytes`` by
    the values' own weight."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[K, tuple[T, int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        return self._bytes

    def get(self, key: K) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: T) -> None:
        self.discard(key)
        weight = value.weight()
        if weight > self.max_bytes:
            return  # larger than the whole budget: not worth evicting everything for
        self._entries[key] = (value, weight)
        self._bytes += weight
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted

    def discard(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]


@dataclass(frozen=True, slots=True)
class RenderedList:
    """A list with its JSON, made once per version of the list: the API's array and its
    digest (the entity tag of the whole list's answer). ``derived`` holds what the web
    layer makes of this version once (its answer's headers, by ``X-Cache`` value), so
    that a cached list's answer builds none of them per request."""

    listing: GistList
    body: bytes
    etag: str  # unquoted
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, listing: GistList) -> RenderedList:
        body = render_gists(listing.gists)
        return cls(listing, body, digest(body))

    def weight(self) -> int:
        # the JSON, and the parsed gists: measured at about twice the JSON again; and
        # GitHub's own items, kept as they came
        raw = sum(len(gist.raw) for gist in self.listing.gists if gist.raw is not None)
        return 3 * len(self.body) + raw


class ListMemory:
    """The lists this process served lately, rendered, at most ``max_bytes`` (least
    recently used first out), by lower-cased login."""

    def __init__(self, max_bytes: int) -> None:
        self._lists: ByteLRU[str, RenderedList] = ByteLRU(max_bytes)

    def get(self, key: str) -> RenderedList | None:
        return self._lists.get(key)

    def keep(self, key: str, listing: GistList) -> RenderedList | None:
        """Hold ``listing`` in place of the copy held, unless that one is newer; the
        rendering held, or None when nothing is (no memory, or an older ``listing``)."""
        if not self._lists.max_bytes:
            return None
        held = self._lists.get(key)
        if held is not None and held.listing.checked_at > listing.checked_at:
            return None  # never an older copy
        if held is not None and held.listing.gists == listing.gists:
            # nothing changed (GitHub answered 304): the held copy's JSON serves;
            # rendering 300 gists again took longer than the round trip
            rendered = RenderedList(listing, held.body, held.etag)
        else:
            rendered = RenderedList.of(listing)
        self._lists.put(key, rendered)
        return rendered

    def discard(self, key: str) -> None:
        self._lists.discard(key)


class UnknownIds:
    """Ids GitHub said it has no public gist by (unknown, or secret), each remembered for
    ``ttl`` seconds, as the database remembers unknown users, so that asking for one again
    costs GitHub nothing meanwhile. At most ``max_entries`` are held (the oldest go
    first): a flood of made-up ids is bounded by the client's GitHub budget, not by this.
    Each server keeps its own: with N servers an id costs at most N lookups per ``ttl``."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._until: OrderedDict[str, datetime] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def remember(self, gist_id: str, now: datetime) -> None:
        if self.ttl <= 0 or self.max_entries <= 0:
            return
        self._until.pop(gist_id, None)
        self._until[gist_id] = now + timedelta(seconds=self.ttl)
        while len(self._until) > self.max_entries:
            self._until.popitem(last=False)

    def knows(self, gist_id: str, now: datetime) -> bool:
        """Whether ``gist_id`` is remembered as unknown at ``now``."""
        until = self._until.get(gist_id)
        if until is None:
            return False
        if now >= until:
            del self._until[gist_id]
            return False
        return True


# what an entry of ContentMemory costs beyond its bytes: the list, the tuples, the
# bytes objects' headers (measured: about 100 bytes a chunk), and the key
CHUNK_OVERHEAD = 100
FILE_OVERHEAD = 300


class _Contents:
    """One file's cached contents as the scan takes them, ``(first_line, data)`` chunks
    (none for a binary, too large or empty file), and the state they were read with:
    the revision they were fetched for, and their fetch's generation."""

    __slots__ = ("bytes", "chunks", "state")

    def __init__(self, state: FileState, chunks: list[tuple[int, bytes]]) -> None:
        self.state = state
        self.chunks = chunks
        self.bytes = FILE_OVERHEAD + sum(len(data) + CHUNK_OVERHEAD for _, data in chunks)

    def weight(self) -> int:
        return self.bytes


class ContentMemory:
    """Recently searched files' contents, in this process's memory, at most ``max_bytes``
    (least recently used first out), so that a warm search reads nothing from the
    database: neither a chunk nor the files' states.

    An entry is a file's (site, gist id, filename) and holds the revision its contents
    were fetched for (the gist's updated_at then, and the file's raw URL) with the
    fetch's generation. It is current for a listed file by the store's own rule: the
    gist's updated_at is the one fetched for, or the file's raw URL the one fetched
    from (the URL names the contents' revision). A search whose list (fresh, from the
    list memory) finds every file current here reads nothing from the database; one
    that reads the states from the database uses an entry only for the generation the
    database names. Binary and too large files are held too (without contents), so
    that they need no read either. Files larger than ``max_bytes / 8`` are not kept
    (one huge file would push out everything else, and reading it whole into memory
    is what the chunked reads avoid).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.largest = max_bytes // 8
        self._files: ByteLRU[tuple[int, str, str], _Contents] = ByteLRU(max_bytes)

    def __len__(self) -> int:
        return len(self._files)

    @property
    def size(self) -> int:
        return self._files.size

    def keeps(self, stored_bytes: int) -> bool:
        """Whether a file of this size would be kept."""
        return self.max_bytes > 0 and stored_bytes <= self.largest

    def holds_whole(self, stored_bytes: int, files: int) -> bool:
        """Whether ``files`` files of ``stored_bytes`` in all fit in the budget at once.

        A search reads its user's files in order; if they do not all fit, each one kept
        pushes out one read earlier in the same search, so the next search finds none
        of them (and everything else was pushed out on the way). Such a user's contents
        are read from the database and not kept."""
        return self.max_bytes > 0 and stored_bytes + files * FILE_OVERHEAD <= self.max_bytes

    def get(self, state: FileState) -> list[tuple[int, bytes]] | None:
        """The chunks of the file's fetch ``state.generation``, if held."""
        found = self._files.get((state.site, state.gist_id, state.filename))
        if found is None or found.state.generation != state.generation:
            return None
        return found.chunks

    def current(self, site: int, gists: Sequence[Gist], wanted: Wanted) -> list[FileState] | None:
        """The states of the files of ``gists`` that are ``wanted``, in list order, when
        every one is held current for its listed revision; None when one is not."""
        held = self.held(site, gists, wanted)
        return None if held is None else [state for state, _ in held]

    def held(self, site: int, gists: Sequence[Gist], wanted: Wanted) -> Held | None:
        """``current``'s states each with its chunks as held (``get``'s): a search that
        has them looks nothing up again."""
        files = self._files
        held = []
        for gist in gists:
            gist_id = gist.id
            for f in gist.files:
                if not wanted(f.filename):
                    continue
                found = files.get((site, gist_id, f.filename))
                if found is None or not found.state.current_for(gist.updated_at, f.raw_url):
                    return None
                held.append((found.state, found.chunks))
        return held

    def put(self, state: FileState, chunks: list[tuple[int, bytes]]) -> None:
        """Hold ``chunks``, all of the file's fetch ``state.generation`` (none for a file
        with no text to scan)."""
        if self.max_bytes and state.generation is not None and state.updated_at is not None:
            key = (state.site, state.gist_id, state.filename)
            self._files.put(key, _Contents(state, chunks))

    def forget(self, site: int, gist_id: str, filename: str, generation: str) -> None:
        """Drop a revision the database no longer holds (evicted): a search that reads
        the states would not use it (none names it current any more), and one that
        does not must not serve what the database has let go."""
        key = (site, gist_id, filename)
        found = self._files.get(key)
        if found is not None and found.state.generation == generation:
            self._files.discard(key)


async def text_chunks(
    memory: ContentMemory,
    sessions: Callable[[], contextlib.AbstractAsyncContextManager[AsyncSession]],
    files: Sequence[FileState],
    *,
    keep: bool = True,
) -> AsyncGenerator[StoredChunk, None]:
    """Every chunk of the text files among ``files``, in the order of ``files`` and each
    file's chunks in order (a search tells a gist as soon as its chunks are read): those
    whose current revision is in ``memory`` from there, the runs of others between them
    from the database (``contents.stream_text_chunks``, in a session of ``sessions``
    opened at the first such run: none when memory holds them all). With ``keep``, a
    file read whole from the database, of a size ``memory`` keeps, is kept for the next
    search, and so is a file with nothing to scan (binary, too large, or empty)."""
    async with contextlib.AsyncExitStack() as stack:
        session: AsyncSession | None = None
        run: list[FileState] = []
        for state in files:
            if state.status != TEXT or state.generation is None or not state.chunks:
                if keep and state.status is not None and memory.get(state) is None:
                    memory.put(state, [])
                continue
            kept = memory.get(state)
            if kept is None:
                run.append(state)
                continue
            if run:
                if session is None:
                    session = await stack.enter_async_context(sessions())
                async for chunk in _from_database(memory, session, run, keep):
                    yield chunk
                run = []
            for first_line, data in kept:
                yield StoredChunk(state.gist_id, state.filename, first_line, data)
        if run:  # the last run of files, from the database (none: no chunk query at all)
            if session is None:
                session = await stack.enter_async_context(sessions())
            async for chunk in _from_database(memory, session, run, keep):
                yield chunk


async def _from_database(
    memory: ContentMemory, session: AsyncSession, rest: Sequence[FileState], keep: bool
) -> AsyncGenerator[StoredChunk, None]:
    wanted = {state.key: state for state in rest if keep and memory.keeps(state.stored_bytes)}
    collecting: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
    async with contextlib.aclosing(contents.stream_text_chunks(session, rest)) as chunks:
        async for chunk in chunks:
            key = (chunk.gist_id, chunk.filename)
            whole = wanted.get(key)
            if whole is not None:
                if chunk.data is None:  # a newer fetch replaced it mid-read: not kept
                    del wanted[key]
                    collecting.pop(key, None)
                else:
                    got = collecting.setdefault(key, [])
                    got.append((chunk.first_line, chunk.data))
                    if len(got) == whole.chunks:
                        memory.put(whole, got)
                        del collecting[key], wanted[key]
            yield chunk
