"""The in-memory list cache: least recently used first out, within its byte budget."""

from __future__ import annotations

from dataclasses import dataclass

from gistcache.services.memory import HotLists


@dataclass
class Sized:
    name: str
    size: int

    def weight(self) -> int:
        return self.size


def test_the_least_recently_used_go_first_when_the_budget_is_spent() -> None:
    hot: HotLists[Sized] = HotLists(max_bytes=100)
    for name in "abc":
        hot.put(name, Sized(name, 40))
    assert [hot.get(n) is not None for n in "abc"] == [False, True, True]
    assert hot.size == 80
    hot.get("b")  # b is now more recent than c
    hot.put("d", Sized("d", 40))
    assert [hot.get(n) is not None for n in "bcd"] == [True, False, True]
    assert (len(hot), hot.size) == (2, 80)


def test_replacing_an_entry_counts_only_the_new_one() -> None:
    hot: HotLists[Sized] = HotLists(max_bytes=100)
    hot.put("a", Sized("a1", 60))
    hot.put("a", Sized("a2", 30))
    entry = hot.get("a")
    assert entry is not None
    assert entry.name == "a2"
    assert hot.size == 30


def test_an_entry_larger_than_the_budget_is_not_kept_and_evicts_nothing() -> None:
    hot: HotLists[Sized] = HotLists(max_bytes=100)
    hot.put("small", Sized("small", 10))
    hot.put("huge", Sized("huge", 101))
    assert hot.get("huge") is None
    assert hot.get("small") is not None
    assert hot.size == 10


def test_discard_forgets_an_entry() -> None:
    hot: HotLists[Sized] = HotLists(max_bytes=100)
    hot.put("a", Sized("a", 10))
    hot.discard("a")
    hot.discard("never-there")
    assert (hot.get("a"), len(hot), hot.size) == (None, 0, 0)
