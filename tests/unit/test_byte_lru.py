"""The in-memory list cache: least recently used first out, within its byte budget."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gistcache.domain.gists import Gist, GistFile
from gistcache.services.memory import CHUNK_OVERHEAD, FILE_OVERHEAD, ByteLRU, ContentMemory
from gistcache.store.contents import BINARY, TEXT, FileState


@dataclass
class Sized:
    name: str
    size: int

    def weight(self) -> int:
        return self.size


def test_the_least_recently_used_go_first_when_the_budget_is_spent() -> None:
    hot: ByteLRU[str, Sized] = ByteLRU(max_bytes=100)
    for name in "abc":
        hot.put(name, Sized(name, 40))
    assert [hot.get(n) is not None for n in "abc"] == [False, True, True]
    assert hot.size == 80
    hot.get("b")  # b is now more recent than c
    hot.put("d", Sized("d", 40))
    assert [hot.get(n) is not None for n in "bcd"] == [True, False, True]
    assert (len(hot), hot.size) == (2, 80)


def test_replacing_an_entry_counts_only_the_new_one() -> None:
    hot: ByteLRU[str, Sized] = ByteLRU(max_bytes=100)
    hot.put("a", Sized("a1", 60))
    hot.put("a", Sized("a2", 30))
    entry = hot.get("a")
    assert entry is not None
    assert entry.name == "a2"
    assert hot.size == 30


def test_an_entry_larger_than_the_budget_is_not_kept_and_evicts_nothing() -> None:
    hot: ByteLRU[str, Sized] = ByteLRU(max_bytes=100)
    hot.put("small", Sized("small", 10))
    hot.put("huge", Sized("huge", 101))
    assert hot.get("huge") is None
    assert hot.get("small") is not None
    assert hot.size == 10


def test_discard_forgets_an_entry() -> None:
    hot: ByteLRU[str, Sized] = ByteLRU(max_bytes=100)
    hot.put("a", Sized("a", 10))
    hot.discard("a")
    hot.discard("never-there")
    assert (hot.get("a"), len(hot), hot.size) == (None, 0, 0)


# --- ContentMemory: recently searched contents, by the bytes ------------------------


def _chunks(size: int, pieces: int = 1) -> list[tuple[int, bytes]]:
    return [(1 + n, b"x" * size) for n in range(pieces)]


T1 = datetime(2024, 1, 1, tzinfo=UTC)
T2 = datetime(2024, 2, 1, tzinfo=UTC)
RAW1 = "https://gist.githubusercontent.com/u/g/raw/rev1/a.py"
RAW2 = "https://gist.githubusercontent.com/u/g/raw/rev2/a.py"


def _state(
    gist_id: str = "g",
    filename: str = "a.py",
    generation: str = "gen1",
    *,
    site: int = 1,
    status: str = TEXT,
    updated_at: datetime = T1,
    raw_url: str | None = RAW1,
) -> FileState:
    return FileState(site, gist_id, filename, status, generation, 20, 2, updated_at, raw_url)


def _gist(gist_id: str, updated_at: datetime, *files: tuple[str, str | None]) -> Gist:
    return Gist(
        id=gist_id,
        html_url=f"https://gist.github.com/{gist_id}",
        description=None,
        public=True,
        created_at=T1,
        updated_at=updated_at,
        comments=0,
        owner="u",
        files=tuple(GistFile(name, None, "text/plain", 10, raw) for name, raw in files),
    )


def test_content_memory_keeps_a_file_by_its_fetch() -> None:

    memory = ContentMemory(1_000_000)
    memory.put(_state(), _chunks(10, 2))
    assert memory.get(_state()) == _chunks(10, 2)
    # another fetch of the file, another site, another file: not this copy
    assert memory.get(_state(generation="gen2")) is None
    assert memory.get(_state(site=2)) is None
    assert memory.get(_state(filename="b.py")) is None


def test_content_memory_is_current_for_the_revision_it_was_fetched_for() -> None:

    memory = ContentMemory(1_000_000)
    memory.put(_state(), _chunks(10))
    memory.put(_state(filename="b.bin", status=BINARY, raw_url=None), [])
    every: Callable[[str], bool] = lambda name: True  # noqa: E731
    listed = _gist("g", T1, ("a.py", RAW1), ("b.bin", None))
    assert memory.current(1, [listed], every) == [
        _state(),
        _state(filename="b.bin", status=BINARY, raw_url=None),
    ]
    # edited elsewhere in the gist, this file's URL unchanged: still current (as in the
    # store); edited in this file too: not; a file not held: none of the list is
    assert memory.current(1, [_gist("g", T2, ("a.py", RAW1))], every) == [_state()]
    assert memory.current(1, [_gist("g", T2, ("a.py", RAW2))], every) is None
    assert memory.current(1, [_gist("g", T1, ("a.py", RAW1), ("c.py", "u"))], every) is None
    assert memory.current(2, [listed], every) is None
    # a file the search does not want need not be held
    only_py: Callable[[str], bool] = lambda name: name.endswith(".py")  # noqa: E731
    assert memory.current(1, [_gist("g", T1, ("a.py", RAW1), ("c.md", "u"))], only_py) == [_state()]


def test_content_memory_forgets_an_evicted_fetch_only() -> None:

    memory = ContentMemory(1_000_000)
    memory.put(_state(generation="gen2"), _chunks(10))
    memory.forget(1, "g", "a.py", "gen1")  # an older fetch: the held one stays
    assert memory.get(_state(generation="gen2")) == _chunks(10)
    memory.forget(1, "g", "a.py", "gen2")
    assert memory.get(_state(generation="gen2")) is None
    assert memory.current(1, [_gist("g", T1, ("a.py", RAW1))], lambda name: True) is None


def test_content_memory_evicts_the_least_recently_used_by_bytes() -> None:

    entry = FILE_OVERHEAD + 10_000 + CHUNK_OVERHEAD
    memory = ContentMemory(8 * entry)  # an eighth of it is exactly one entry: kept
    for n in range(8):
        memory.put(_state(f"g{n}", "f", "gen"), _chunks(10_000))
    assert len(memory) == 8
    assert memory.size == 8 * entry
    assert memory.get(_state("g0", "f", "gen")) is not None  # g0 is now the most recent
    memory.put(_state("g8", "f", "gen"), _chunks(10_000))
    assert memory.size <= memory.max_bytes
    assert memory.get(_state("g1", "f", "gen")) is None  # the least recently used went
    assert memory.get(_state("g0", "f", "gen")) is not None
    assert memory.get(_state("g8", "f", "gen")) is not None


def test_content_memory_leaves_out_files_over_an_eighth_and_can_be_off() -> None:

    memory = ContentMemory(80_000)
    assert memory.keeps(10_000)
    assert not memory.keeps(10_001)
    off = ContentMemory(0)
    off.put(_state("g", "f", "gen"), _chunks(10))
    assert off.get(_state("g", "f", "gen")) is None
    assert not off.keeps(1)
