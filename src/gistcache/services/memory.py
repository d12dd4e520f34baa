"""Recently served gist lists, kept in this process's memory with their rendered JSON,
so that a fresh list is answered without a database round trip.

The database stays the cache of record: an entry here is used only while the list
is fresh by the same rule (``GISTCACHE_CACHE_TTL`` from ``checked_at``), and every
refresh this process makes replaces it. Memory is bounded by the rendered bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, Protocol, TypeVar


class Weighed(Protocol):
    def weight(self) -> int: ...


T = TypeVar("T", bound=Weighed)


class HotLists(Generic[T]):
    """A least-recently-used map from login to list, holding at most ``max_bytes``."""

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
