"""The freshness policy, as a table: what the cache holds of a user -> what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gistcache.domain.freshness import Cached, Decision, Ttls, decide, fresh_for

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TTLS = Ttls(cache=60, not_found=300)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def listed(checked: float, retry_in: float | None = None) -> Cached:
    retry_at = None if retry_in is None else NOW + timedelta(seconds=retry_in)
    return Cached(not_found=False, checked_at=ago(checked), retry_at=retry_at)


def unknown(checked: float) -> Cached:
    return Cached(not_found=True, checked_at=ago(checked))


TABLE = [
    # (what is cached, the client's no-cache, a refresh waited for began ... s ago, decision)
    ("nothing cached", None, False, None, Decision.REFRESH),
    ("nothing cached, no-cache", None, True, None, Decision.REFRESH),
    ("fresh list", listed(10), False, None, Decision.SERVE),
    ("fresh list, no-cache", listed(10), True, None, Decision.REFRESH),
    ("list at the TTL", listed(60), False, None, Decision.REFRESH),
    ("stale list", listed(61), False, None, Decision.REFRESH),
    ("stale list, GitHub failed lately", listed(61, retry_in=3), False, None, Decision.BACK_OFF),
    ("stale list, back-off over", listed(61, retry_in=-1), False, None, Decision.REFRESH),
    ("stale list, back-off ends now", listed(61, retry_in=0), False, None, Decision.REFRESH),
    ("stale, backing off, no-cache", listed(61, retry_in=3), True, None, Decision.BACK_OFF),
    ("fresh, backing off, no-cache", listed(10, retry_in=3), True, None, Decision.SERVE),
    ("unknown user, remembered", unknown(100), False, None, Decision.NOT_FOUND),
    ("unknown user, remembered, no-cache", unknown(100), True, None, Decision.NOT_FOUND),
    ("unknown user, forgotten", unknown(301), False, None, Decision.REFRESH),
    ("refreshed while we waited", listed(5), True, 10, Decision.SERVE),
    # what the refresh stored answers, but past its TTL it is STALE, never a HIT
    ("refreshed while we waited, stale", listed(61), False, 62, Decision.BACK_OFF),
    ("found unknown while we waited", unknown(301), False, 302, Decision.NOT_FOUND),
    ("not refreshed while we waited", listed(61), False, 30, Decision.REFRESH),
    ("not refreshed while we waited, fresh", listed(20), True, 10, Decision.REFRESH),
]


@pytest.mark.parametrize(
    ("cached", "revalidate", "waited_since", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_the_policy_decides_from_the_cached_state(
    cached: Cached | None, revalidate: bool, waited_since: float | None, expected: Decision
) -> None:
    since = None if waited_since is None else ago(waited_since)
    assert decide(cached, TTLS, NOW, revalidate=revalidate, refreshed_since=since) is expected


def test_freshness_left_counts_down_from_the_last_check() -> None:
    assert fresh_for(listed(10), TTLS, NOW) == 50
    assert fresh_for(listed(70), TTLS, NOW) == -10
    assert fresh_for(unknown(100), TTLS, NOW) == 200
