"""The lease helper on its own, over the refresh leases' table of each database: who
holds it, renewal past its first length, and handing it back with the work's commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.services.lease import Lease
from gistcache.store import lists
from gistcache.store.engine import Sessions, create_engine, create_sessionmaker
from gistcache.store.sites import site_id
from tests.support.clock import FakeClock

LENGTH = timedelta(seconds=10)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
async def site(sessions: Sessions) -> int:
    async with sessions.transaction() as session:
        return await site_id(session, "https://api.github.com")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def lease(
    sessions: Sessions, site: int, clock: FakeClock, owner: str, renew_every: float = 60
) -> Lease[AsyncSession]:
    """A refresh lease on the user "u", held under ``owner``."""
    return Lease(
        sessions.transaction,
        claim=lambda s, now, until: lists.claim_refresh(s, site, "u", owner, now, until),
        renew=lambda s, until: lists.renew_refresh(s, site, "u", owner, until),
        release=lambda s: lists.release_refresh(s, site, "u", owner),
        length=LENGTH,
        clock=clock,
        what=f"u for {owner}",
        renew_every=renew_every,
    )


async def test_one_holder_at_a_time_until_it_hands_the_lease_back(
    sessions: Sessions, site: int, clock: FakeClock
) -> None:
    first, second = lease(sessions, site, clock, "a"), lease(sessions, site, clock, "b")
    assert await first.claim()
    async with first:
        assert not await second.claim()
        assert not second.held
    assert not first.held
    assert await second.claim()  # handed back when the block ended


async def test_an_unrenewed_lease_lapses_after_its_length(
    sessions: Sessions, site: int, clock: FakeClock
) -> None:
    first, second = lease(sessions, site, clock, "a"), lease(sessions, site, clock, "b")
    assert await first.claim()  # and its holder died: nobody renews it
    clock.advance(LENGTH.total_seconds() - 1)
    assert not await second.claim()
    clock.advance(2)
    assert await second.claim()


async def test_a_lease_renewed_while_its_work_runs_outlasts_its_first_length(
    sessions: Sessions, site: int, clock: FakeClock
) -> None:
    first = lease(sessions, site, clock, "a", renew_every=0.02)
    second = lease(sessions, site, clock, "b")
    assert await first.claim()
    async with first:
        for _ in range(3):
            clock.advance(LENGTH.total_seconds() - 1)
            await asyncio.sleep(0.2)  # renewed from the clock's new time
            assert not await second.claim()
    assert await second.claim()


async def test_renewal_ends_when_the_lease_was_lost(
    sessions: Sessions, site: int, clock: FakeClock
) -> None:
    first = lease(sessions, site, clock, "a", renew_every=0.02)
    assert await first.claim()
    clock.advance(LENGTH.total_seconds() + 1)
    assert await lease(sessions, site, clock, "b").claim()  # taken over meanwhile
    await asyncio.wait_for(first.kept(), 5)


async def test_a_lease_handed_back_with_the_work_commits_once(
    sessions: Sessions, site: int, clock: FakeClock
) -> None:
    first, second = lease(sessions, site, clock, "a"), lease(sessions, site, clock, "b")
    assert await first.claim()
    async with first:
        async with first.handing_back() as session:
            await lists.set_retry_at(session, site, "u", clock())
            assert first.held  # not before the work's commit
        assert not first.held
        assert await second.claim()
    assert second.held  # leaving the block did not end the lease it no longer held


async def test_a_hand_back_rolled_back_with_the_work_leaves_the_lease_to_the_block(
    sessions: Sessions, site: int, clock: FakeClock
) -> None:
    first, second = lease(sessions, site, clock, "a"), lease(sessions, site, clock, "b")
    assert await first.claim()

    async def work_whose_save_fails() -> None:
        async with first, first.handing_back():
            raise RuntimeError("the save failed")

    with pytest.raises(RuntimeError):
        await work_whose_save_fails()
    assert not first.held
    assert await second.claim()
