"""The in-memory list cache: least recently used first out, within its byte budget."""

from __future__ import annotations

from dataclasses import dataclass

from gistcache.services.memory import CHUNK_OVERHEAD, FILE_OVERHEAD, ByteLRU, ContentMemory


@dataclass
class Sized:
    name: str
    size: int

    def weight(self) -> int:
        return self.size


def test_the_least_recently_used_go_first_when_the_budget_is_spent() -> None:
    hot: ByteLRU[Sized] = ByteLRU(max_bytes=100)
    for name in "abc":
        hot.put(name, Sized(name, 40))
    assert [hot.get(n) is not None for n in "abc"] == [False, True, True]
    assert hot.size == 80
    hot.get("b")  # b is now more recent than c
    hot.put("d", Sized("d", 40))
    assert [hot.get(n) is not None for n in "bcd"] == [True, False, True]
    assert (len(hot), hot.size) == (2, 80)


def test_replacing_an_entry_counts_only_the_new_one() -> None:
    hot: ByteLRU[Sized] = ByteLRU(max_bytes=100)
    hot.put("a", Sized("a1", 60))
    hot.put("a", Sized("a2", 30))
    entry = hot.get("a")
    assert entry is not None
    assert entry.name == "a2"
    assert hot.size == 30


def test_an_entry_larger_than_the_budget_is_not_kept_and_evicts_nothing() -> None:
    hot: ByteLRU[Sized] = ByteLRU(max_bytes=100)
    hot.put("small", Sized("small", 10))
    hot.put("huge", Sized("huge", 101))
    assert hot.get("huge") is None
    assert hot.get("small") is not None
    assert hot.size == 10


def test_discard_forgets_an_entry() -> None:
    hot: ByteLRU[Sized] = ByteLRU(max_bytes=100)
    hot.put("a", Sized("a", 10))
    hot.discard("a")
    hot.discard("never-there")
    assert (hot.get("a"), len(hot), hot.size) == (None, 0, 0)


# --- ContentMemory: recently searched contents, by the bytes ------------------------


def _chunks(size: int, pieces: int = 1) -> list[tuple[int, bytes]]:
    return [(1 + n, b"x" * size) for n in range(pieces)]


def test_content_memory_keeps_a_file_by_its_revision() -> None:

    memory = ContentMemory(1_000_000)
    memory.put(1, "g", "a.py", "gen1", _chunks(10, 2))
    assert memory.get(1, "g", "a.py", "gen1") == _chunks(10, 2)
    # another fetch of the file, another site, another file: not this copy
    assert memory.get(1, "g", "a.py", "gen2") is None
    assert memory.get(2, "g", "a.py", "gen1") is None
    assert memory.get(1, "g", "b.py", "gen1") is None


def test_content_memory_evicts_the_least_recently_used_by_bytes() -> None:

    entry = FILE_OVERHEAD + 10_000 + CHUNK_OVERHEAD
    memory = ContentMemory(8 * entry)  # an eighth of it is exactly one entry: kept
    for n in range(8):
        memory.put(1, f"g{n}", "f", "gen", _chunks(10_000))
    assert len(memory) == 8
    assert memory.size == 8 * entry
    assert memory.get(1, "g0", "f", "gen") is not None  # g0 is now the most recent
    memory.put(1, "g8", "f", "gen", _chunks(10_000))
    assert memory.size <= memory.max_bytes
    assert memory.get(1, "g1", "f", "gen") is None  # the least recently used went
    assert memory.get(1, "g0", "f", "gen") is not None
    assert memory.get(1, "g8", "f", "gen") is not None


def test_content_memory_leaves_out_files_over_an_eighth_and_can_be_off() -> None:

    memory = ContentMemory(80_000)
    assert memory.keeps(10_000)
    assert not memory.keeps(10_001)
    off = ContentMemory(0)
    off.put(1, "g", "f", "gen", _chunks(10))
    assert off.get(1, "g", "f", "gen") is None
    assert not off.keeps(1)
