"""Installs: downloaded files installed several to a transaction (group commit), a
failing batch retried file by file."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gistcache.domain.results import SkipReason
from gistcache.services.contents import INSTALL_BATCH, Installs, _Install
from gistcache.store.contents import TEXT, FileRef

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def job(name: str) -> _Install:
    ref = FileRef(1, f"gist-{name}", f"{name}.txt", NOW, f"https://x/{name}", 10)
    return _Install(ref, f"gen-{name}", TEXT, 10, 1, None, NOW)


async def test_installs_arriving_together_share_transactions_in_key_order() -> None:
    batches: list[list[str]] = []

    async def run(batch: Sequence[_Install]) -> list[SkipReason | None]:
        batches.append([j.ref.gist_id for j in batch])
        await asyncio.sleep(0)
        return [None] * len(batch)

    installs = Installs(run)
    names = [f"{n:02d}" for n in reversed(range(INSTALL_BATCH + 8))]
    outcomes = await asyncio.gather(*(installs.install(job(n)) for n in names))
    assert outcomes == [None] * len(names)
    assert [len(b) for b in batches] == [INSTALL_BATCH, 8]  # two transactions, not 40
    for batch in batches:
        assert batch == sorted(batch)  # locked in key order: no deadlock across processes


async def test_a_failing_batch_is_retried_file_by_file() -> None:
    sizes: list[int] = []

    async def run(batch: Sequence[_Install]) -> list[SkipReason | None]:
        sizes.append(len(batch))
        if any(j.ref.gist_id == "gist-bad" for j in batch):
            raise RuntimeError("the database refused it")
        return [SkipReason.CHANGED if j.ref.gist_id == "gist-gone" else None for j in batch]

    installs = Installs(run)
    results = await asyncio.gather(
        *(installs.install(job(n)) for n in ("a", "bad", "gone", "b")), return_exceptions=True
    )
    assert results[0] is None
    assert isinstance(results[1], RuntimeError)
    assert results[2] is SkipReason.CHANGED
    assert results[3] is None
    assert sizes == [4, 1, 1, 1, 1]


async def test_close_cancels_what_waits() -> None:
    started = asyncio.Event()

    async def run(batch: Sequence[_Install]) -> list[SkipReason | None]:
        started.set()
        await asyncio.sleep(3600)
        return [None] * len(batch)

    installs = Installs(run)
    waiting = asyncio.ensure_future(installs.install(job("a")))
    await started.wait()
    await installs.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
