"""The lease helper on its own, over the refresh leases' table of each database: who
holds it, renewal past its first length, and handing it back with the work's commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from gistcache.services.lease import Lease
from gistcache.store.bound import SiteSession, SiteStore
from gistcache.store.engine import Sessions, create_engine, create_sessionmaker
from gistcache.store.sites import Site
from tests.support.clock import FakeClock

LENGTH = timedelta(seconds=10)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def store(sessions: Sessions) -> SiteStore:
    return SiteStore(sessions, Site(sessions, "https://api.github.com"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def lease(
    store: SiteStore, clock: FakeClock, owner: str, renew_every: float = 60
) -> Lease[SiteSession]:
    """A refresh lease on the user "u", held under ``owner``."""
    return Lease(
        store.write,
        claim=lambda db, now, until: db.leases.claim_refresh("u", owner, now, until),
        renew=lambda db, until: db.leases.renew_refresh("u", owner, until),
        release=lambda db: db.leases.release_refresh("u", owner),
        length=LENGTH,
        clock=clock,
        what=f"u for {owner}",
        renew_every=renew_every,
    )


async def test_one_holder_at_a_time_until_it_hands_the_lease_back(
    store: SiteStore, clock: FakeClock
) -> None:
    first, second = lease(store, clock, "a"), lease(store, clock, "b")
    assert await first.claim()
    async with first:
        assert not await second.claim()
        assert not second.held
    assert not first.held
    assert await second.claim()  # handed back when the block ended


async def test_an_unrenewed_lease_lapses_after_its_length(
    store: SiteStore, clock: FakeClock
) -> None:
    first, second = lease(store, clock, "a"), lease(store, clock, "b")
    assert await first.claim()  # and its holder died: nobody renews it
    clock.advance(LENGTH.total_seconds() - 1)
    assert not await second.claim()
    clock.advance(2)
    assert await second.claim()


async def test_a_lease_renewed_while_its_work_runs_outlasts_its_first_length(
    store: SiteStore, clock: FakeClock
) -> None:
    first = lease(store, clock, "a", renew_every=0.02)
    second = lease(store, clock, "b")
    assert await first.claim()
    async with first:
        for _ in range(3):
            clock.advance(LENGTH.total_seconds() - 1)
            await asyncio.sleep(0.2)  # renewed from the clock's new time
            assert not await second.claim()
    assert await second.claim()


async def test_renewal_ends_when_the_lease_was_lost(store: SiteStore, clock: FakeClock) -> None:
    first = lease(store, clock, "a", renew_every=0.02)
    assert await first.claim()
    clock.advance(LENGTH.total_seconds() + 1)
    assert await lease(store, clock, "b").claim()  # taken over meanwhile
    await asyncio.wait_for(first.kept(), 5)


async def test_a_lease_handed_back_with_the_work_commits_once(
    store: SiteStore, clock: FakeClock
) -> None:
    first, second = lease(store, clock, "a"), lease(store, clock, "b")
    assert await first.claim()
    async with first:
        async with first.handing_back() as db:
            await db.users.set_retry_at("u", clock())
            assert first.held  # not before the work's commit
        assert not first.held
        assert await second.claim()
    assert second.held  # leaving the block did not end the lease it no longer held


async def test_a_hand_back_rolled_back_with_the_work_leaves_the_lease_to_the_block(
    store: SiteStore, clock: FakeClock
) -> None:
    first, second = lease(store, clock, "a"), lease(store, clock, "b")
    assert await first.claim()

    async def work_whose_save_fails() -> None:
        async with first, first.handing_back():
            raise RuntimeError("the save failed")

    with pytest.raises(RuntimeError):
        await work_whose_save_fails()
    assert not first.held
    assert await second.claim()
