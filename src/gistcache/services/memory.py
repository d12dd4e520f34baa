"""This process's memory tiers in front of the database, each bounded in bytes:
recently served gist lists with their rendered JSON (``ListMemory``, so that a fresh
list is answered without a database round trip or a rendering) and recently searched
files' contents (``ContentMemory``, so that a warm search reads no chunk from it); and
the gist ids GitHub said it has no public gist by (``UnknownIds``, bounded in entries).

The database stays the cache of record: a list here is used only while it is fresh
by the same rule (``GISTCACHE_CACHE_TTL`` from ``checked_at``), and every refresh
this process makes replaces it; contents are keyed on the stored revision the
database names as current, so a copy here is never served for another.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.domain.gists import digest, render_gists
from gistcache.domain.results import GistList
from gistcache.store import contents
from gistcache.store.contents import TEXT, FileState, StoredChunk


class Weighed(Protocol):
    def weight(self) -> int: ...


T = TypeVar("T", bound=Weighed)


class ByteLRU(Generic[T]):
    """A least-recently-used map from key to value, holding at most ``max_bytes`` by
    the values' own weight."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[T, int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        return self._bytes

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: str, value: T) -> None:
        self.discard(key)
        weight = value.weight()
        if weight > self.max_bytes:
            return  # larger than the whole budget: not worth evicting everything for
        self._entries[key] = (value, weight)
        self._bytes += weight
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= evicted

    def discard(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]


@dataclass(frozen=True, slots=True)
class RenderedList:
    """A list with its JSON, made once per version of the list: the API's array and its
    digest (the entity tag of the whole list's answer)."""

    listing: GistList
    body: bytes
    etag: str  # unquoted

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
        self._lists: ByteLRU[RenderedList] = ByteLRU(max_bytes)

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
    """One file's text chunks as the scan takes them: ``(first_line, data)``."""

    __slots__ = ("bytes", "chunks")

    def __init__(self, chunks: list[tuple[int, bytes]]) -> None:
        self.chunks = chunks
        self.bytes = FILE_OVERHEAD + sum(len(data) + CHUNK_OVERHEAD for _, data in chunks)

    def weight(self) -> int:
        return self.bytes


class ContentMemory:
    """Recently searched files' contents, in this process's memory, at most ``max_bytes``
    (least recently used first out), so that a warm search reads no chunk from the
    database.

    An entry is keyed on the file's stored revision: its site, gist id, filename and
    the fetch generation that the database names as current. A new fetch of the file
    has a new generation, so a copy here can never be served for contents it is not:
    the database stays the store of record and says, on every search, which revision
    is current. Files larger than ``max_bytes / 8`` are not kept (one huge file would
    push out everything else, and reading it whole into memory is what the chunked
    reads avoid).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.largest = max_bytes // 8
        self._files: ByteLRU[_Contents] = ByteLRU(max_bytes)

    def __len__(self) -> int:
        return len(self._files)

    @property
    def size(self) -> int:
        return self._files.size

    @staticmethod
    def _key(site: int, gist_id: str, filename: str, generation: str) -> str:
        return f"{site}\0{gist_id}\0{filename}\0{generation}"

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

    def get(
        self, site: int, gist_id: str, filename: str, generation: str
    ) -> list[tuple[int, bytes]] | None:
        found = self._files.get(self._key(site, gist_id, filename, generation))
        return None if found is None else found.chunks

    def put(
        self,
        site: int,
        gist_id: str,
        filename: str,
        generation: str,
        chunks: list[tuple[int, bytes]],
    ) -> None:
        if self.max_bytes:
            self._files.put(self._key(site, gist_id, filename, generation), _Contents(chunks))

    def forget(self, site: int, gist_id: str, filename: str, generation: str) -> None:
        """Drop a revision the database no longer holds (evicted): no search would be
        served it (none names it current any more), but it would hold memory."""
        self._files.discard(self._key(site, gist_id, filename, generation))


async def text_chunks(
    memory: ContentMemory,
    session: AsyncSession,
    files: Sequence[FileState],
    *,
    keep: bool = True,
) -> AsyncGenerator[StoredChunk, None]:
    """Every chunk of the text files among ``files``, in the order of ``files`` and each
    file's chunks in order (a search tells a gist as soon as its chunks are read): those
    whose current revision is in ``memory`` from there, the runs of others between them
    from the database (``contents.stream_text_chunks``). With ``keep``, a file read whole
    from the database, of a size ``memory`` keeps, is kept for the next search."""
    run: list[FileState] = []
    for state in files:
        if state.status != TEXT or state.generation is None or not state.chunks:
            continue
        kept = memory.get(state.site, state.gist_id, state.filename, state.generation)
        if kept is None:
            run.append(state)
            continue
        if run:
            async for chunk in _from_database(memory, session, run, keep):
                yield chunk
            run = []
        for first_line, data in kept:
            yield StoredChunk(state.gist_id, state.filename, first_line, data)
    if run:  # the last run of files, from the database (none: no chunk query at all)
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
                        assert whole.generation is not None  # noqa: S101 - TEXT has one
                        memory.put(whole.site, whole.gist_id, whole.filename, whole.generation, got)
                        del collecting[key], wanted[key]
            yield chunk
