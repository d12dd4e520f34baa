"""The freshness policy, as a pure function: given what the cache holds for a user,
the TTLs and the time, whether to answer from the cache, ask GitHub, say the user is
unknown, or serve the cached list while GitHub is being left alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Decision(StrEnum):
    SERVE = "serve"  # fresh: answer from the cache (HIT), GitHub not asked
    REFRESH = "refresh"  # ask GitHub (conditionally, when a list is cached)
    NOT_FOUND = "not_found"  # GitHub has no such user, and said so lately
    BACK_OFF = "back_off"  # stale, but GitHub is not to be asked now: serve the cache (STALE)


@dataclass(frozen=True, slots=True)
class Cached:
    """What the cache knows of a user."""

    not_found: bool  # GitHub answered that it has no such user
    checked_at: datetime  # when GitHub last sent or confirmed what is cached
    retry_at: datetime | None = None  # GitHub failed for the user: not to be asked before


@dataclass(frozen=True, slots=True)
class Ttls:
    cache: float  # seconds a list is fresh
    not_found: float  # seconds an unknown user is remembered as unknown


def fresh_for(cached: Cached, ttls: Ttls, now: datetime) -> float:
    """Seconds until what is cached goes stale (negative when it is)."""
    ttl = ttls.not_found if cached.not_found else ttls.cache
    return ttl - (now - cached.checked_at).total_seconds()


def decide(
    cached: Cached | None,
    ttls: Ttls,
    now: datetime,
    *,
    revalidate: bool = False,
    refreshed_since: datetime | None = None,
) -> Decision:
    """What to do for a request of this user.

    ``revalidate``: the client asked GitHub to be consulted even while fresh (it is
    not, for a user remembered as unknown: random names must stay cheap, nor while
    GitHub is being left alone). ``refreshed_since``: a refresh begun elsewhere at
    that time was waited for; what it stored answers the request, fresh or not (a list
    already past its TTL, as under a TTL of 0, is served STALE: never as fresh).
    """
    if cached is None:
        return Decision.REFRESH
    fresh = fresh_for(cached, ttls, now) > 0
    if refreshed_since is not None and cached.checked_at >= refreshed_since:
        if cached.not_found:
            return Decision.NOT_FOUND
        return Decision.SERVE if fresh else Decision.BACK_OFF
    if cached.not_found:
        return Decision.NOT_FOUND if fresh else Decision.REFRESH
    backing_off = cached.retry_at is not None and now < cached.retry_at
    if fresh and (not revalidate or backing_off):
        return Decision.SERVE
    if backing_off:
        return Decision.BACK_OFF
    return Decision.REFRESH
