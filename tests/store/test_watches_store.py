"""The watches' store: an event is recorded once under its key (watch, gist, revision),
a due watch is claimed by one poller at a time, and a run's record is dropped when its
claim was lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gistcache.store import watches as store
from gistcache.store.bound import SiteStore
from gistcache.store.engine import create_engine, create_sessionmaker
from gistcache.store.sites import Site
from gistcache.store.watches import WatchRow
from tests.support.database import EngineFactory

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def watch(watch_id: str, owner: str = "o" * 64, **changes: object) -> WatchRow:
    values: dict[str, object] = {
        "id": watch_id,
        "owner": owner,
        "search": '{"pattern": "needle"}',
        "org": None,
        "interval": 300,
        "report_existing": False,
        "feed_token": "f" * 43,
        "webhook_url": None,
        "webhook_secret": None,
        "created_at": NOW,
        "next_run_at": NOW,
        "last_run_at": None,
        "paused_until": None,
        "last_error": None,
        "runs": 0,
        "users": ("alice", "bob"),
        **changes,
    }
    return WatchRow(**values)  # type: ignore[arg-type]


@pytest.fixture
async def site_store(database_url: str, make_engine: EngineFactory) -> SiteStore:
    engine = make_engine(database_url, create_engine)
    sessions = create_sessionmaker(engine)
    return SiteStore(sessions, Site(sessions, "https://api.github.com"))


async def test_a_watch_is_stored_with_its_users_and_only_its_owner_lists_or_deletes_it(
    site_store: SiteStore,
) -> None:
    async with site_store.write() as db:
        await db.watches.create(watch("w1"))
        await db.watches.create(watch("w2", owner="x" * 64, users=("carol",)))
    async with site_store.read() as db:
        got = await db.watches.get("w1")
        assert got is not None
        assert got.users == ("alice", "bob")
        assert [w.id for w in await db.watches.owned_by("o" * 64)] == ["w1"]
    async with site_store.write() as db:
        assert not await db.watches.delete("w1", "x" * 64)
        assert await db.watches.delete("w1", "o" * 64)
    async with site_store.read() as db:
        assert await db.watches.get("w1") is None
        assert [w.id for w in await db.watches.owned_by("x" * 64)] == ["w2"]


async def test_an_event_is_recorded_once_under_its_key(site_store: SiteStore) -> None:
    async with site_store.write() as db:
        await db.watches.create(watch("w1"))
        first = await db.watches.add_event(
            "w1", "g1", "2026-01-01T12:00:00Z", "alice", NOW, baseline=False, body="{}"
        )
        again = await db.watches.add_event(
            "w1", "g1", "2026-01-01T12:00:00Z", "alice", NOW, baseline=False, body="{}"
        )
        edited = await db.watches.add_event(
            "w1", "g1", "2026-01-01T13:00:00Z", "alice", NOW, baseline=False, body="{}"
        )
        hidden = await db.watches.add_event(
            "w1", "g2", "2026-01-01T12:00:00Z", "bob", NOW, baseline=True, body="{}"
        )
    assert first is not None
    assert again is None
    assert edited is not None
    assert edited > first
    assert hidden is not None
    async with site_store.read() as db:
        told = await db.watches.events("w1")
        assert [(e.gist_id, e.revision) for e in told] == [
            ("g1", "2026-01-01T12:00:00Z"),
            ("g1", "2026-01-01T13:00:00Z"),
        ]
        assert [e.id for e in await db.watches.events("w1", newest_first=True)] == [edited, first]
        assert [e.id for e in await db.watches.events("w1", after=first)] == [edited]


async def test_an_event_id_is_never_given_again_after_the_newest_are_pruned(
    site_store: SiteStore,
) -> None:
    """Readers drop an entry whose id they saw and a stream resumes after the last id
    sent: ids only grow, even when the events holding the highest were pruned."""
    async with site_store.write() as db:
        await db.watches.create(watch("w1"))
        baseline = await db.watches.add_event(
            "w1", "g0", "2026-01-01T11:00:00Z", "alice", NOW, baseline=True, body="{}"
        )
        sent = [
            await db.watches.add_event(
                "w1", gist, "2026-01-01T12:00:00Z", "alice", NOW, baseline=False, body="{}"
            )
            for gist in ("g1", "g2")
        ]
        assert await db.watches.prune(NOW + timedelta(days=1)) == 2
    async with site_store.write() as db:
        new = await db.watches.add_event(
            "w1", "g3", "2026-01-02T12:00:00Z", "alice", NOW, baseline=False, body="{}"
        )
    assert baseline is not None
    assert None not in sent
    assert new is not None
    assert new > max(i for i in sent if i is not None)
    async with site_store.read() as db:
        assert [e.id for e in await db.watches.events("w1")] == [new]


async def test_a_due_watch_is_claimed_once_and_a_lost_claim_records_nothing(
    site_store: SiteStore,
) -> None:
    async with site_store.write() as db:
        await db.watches.create(watch("w1", next_run_at=NOW))
        await db.watches.create(watch("w2", next_run_at=NOW + timedelta(hours=1)))
    until = NOW + timedelta(seconds=60)
    async with site_store.write() as db:
        claimed = await db.watches.claim_due(NOW, until, "t1")
    assert claimed is not None
    assert claimed.id == "w1"
    async with site_store.write() as db:
        assert await db.watches.claim_due(NOW, until, "t2") is None  # w1 is held, w2 not due
    # the first poller is presumed dead once its lease ran out: another takes the run over
    later = until + timedelta(seconds=1)
    async with site_store.write() as db:
        taken = await db.watches.claim_due(later, later + timedelta(seconds=60), "t2")
    assert taken is not None
    assert taken.id == "w1"
    async with site_store.write() as db:
        lost = await store.finish_run(
            db.session,
            "w1",
            "t1",
            now=later,
            next_run_at=later + timedelta(seconds=300),
            paused_until=None,
            last_error=None,
        )
    assert not lost
    async with site_store.write() as db:
        held = await store.finish_run(
            db.session,
            "w1",
            "t2",
            now=later,
            next_run_at=later + timedelta(seconds=300),
            paused_until=None,
            last_error=None,
        )
    assert held
    async with site_store.read() as db:
        done = await db.watches.get("w1")
    assert done is not None
    assert (done.runs, done.next_run_at) == (1, later + timedelta(seconds=300))
