"""The freshness policy under any sequence of events: requests (with and without
no-cache), time passing, GitHub answering a list, 304, 404 or failing (rate-limited or
not), refreshes in another process that a request waits for. Whatever happened, a list
is answered from the cache as fresh (HIT) only within its TTL, and GitHub is never
asked while it is being left alone for the user.

The model stores what the list refresh stores for each outcome (see
``services.refresh.ListRefresher``): a list or a 304 sets ``checked_at`` and clears
``retry_at``, a 404 remembers the user as unknown, a failure with a list cached sets
``retry_at`` (and stores nothing when no list is cached)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from gistcache.domain.freshness import Cached, Decision, Ttls, decide, fresh_for

START = datetime(2026, 1, 1, tzinfo=UTC)
ERROR_BACKOFF = 5.0  # services.refresh's wait after a failure that named none


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Answer:
    """What GitHub does when asked: ``outcome`` after ``seconds``."""

    outcome: str  # "list", "not_modified", "not_found", "failed", "rate_limited"
    seconds: float = 0.0
    retry_after: float = 60.0


@dataclass(frozen=True)
class Request:
    revalidate: bool
    answer: Answer
    # another process holds the user's refresh: it gets ``answer``; this request waits
    # ``waited`` seconds (at least as long as that refresh took) and decides again
    elsewhere: bool = False
    waited: float = 0.0


Event = Wait | Request

_SECONDS = st.floats(0, 400, allow_nan=False, allow_infinity=False)
ANSWERS = st.builds(
    Answer,
    outcome=st.sampled_from(["list", "not_modified", "not_found", "failed", "rate_limited"]),
    seconds=st.one_of(st.just(0.0), _SECONDS),
    retry_after=st.floats(1, 3600),
)
EVENTS = st.one_of(
    st.builds(Wait, _SECONDS),
    st.builds(Request, st.booleans(), ANSWERS, st.booleans(), _SECONDS),
)
TTLS = st.builds(
    Ttls,
    cache=st.one_of(st.just(0.0), st.floats(0, 300)),
    not_found=st.one_of(st.just(0.0), st.floats(0, 600)),
)


class Cache:
    """One user's row and the clock, as the service keeps them."""

    def __init__(self, ttls: Ttls) -> None:
        self.ttls = ttls
        self.now = START
        self.cached: Cached | None = None
        self.has_list = False
        self.asked_in_block = 0
        self.served_stale_as_fresh = 0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def blocked(self) -> bool:
        return (
            self.cached is not None
            and self.cached.retry_at is not None
            and self.now < self.cached.retry_at
        )

    def ask_github(self, answer: Answer) -> None:
        """A refresh: GitHub answers, the service stores what it stores."""
        if self.blocked():
            self.asked_in_block += 1
        self.advance(answer.seconds)
        outcome = answer.outcome
        if outcome == "not_modified" and not self.has_list:
            outcome = "list"  # nothing was cached to be confirmed: GitHub sends the list
        if outcome in ("list", "not_modified"):
            self.cached = Cached(not_found=False, checked_at=self.now)
            self.has_list = True
        elif outcome == "not_found":
            self.cached = Cached(not_found=True, checked_at=self.now)
            self.has_list = False
        elif self.has_list and self.cached is not None:
            wait = answer.retry_after if outcome == "rate_limited" else ERROR_BACKOFF
            self.cached = replace(self.cached, retry_at=self.now + timedelta(seconds=wait))
        # a failure with no list cached stores nothing: the client gets GitHub's error

    def answered(self, decision: Decision) -> None:
        """Check what the decision does with what is cached."""
        if decision is Decision.SERVE:  # answered from the cache as HIT
            assert self.cached is not None
            assert not self.cached.not_found
            if fresh_for(self.cached, self.ttls, self.now) <= 0:
                self.served_stale_as_fresh += 1
        elif decision is Decision.BACK_OFF:  # answered from the cache as STALE
            assert self.cached is not None
            assert self.has_list

    def request(self, event: Request) -> None:
        decision = decide(self.cached, self.ttls, self.now, revalidate=event.revalidate)
        self.answered(decision)
        if decision is not Decision.REFRESH:
            return
        if not event.elsewhere:
            self.ask_github(event.answer)
            return
        if self.has_list and not event.revalidate:
            return  # the cached list is served STALE at once, nobody waits
        started = self.now
        self.ask_github(event.answer)  # in the other process, on the same clock
        self.advance(event.waited)
        decision = decide(
            self.cached,
            self.ttls,
            self.now,
            revalidate=event.revalidate,
            refreshed_since=started,
        )
        self.answered(decision)
        if decision is Decision.REFRESH:
            self.ask_github(Answer("list"))


@given(ttls=TTLS, events=st.lists(EVENTS, max_size=25))
@example(  # a refresh waited for stored a list that was already past its TTL: was HIT
    ttls=Ttls(cache=0.0, not_found=0.0),
    events=[Request(revalidate=False, answer=Answer("list"), elsewhere=True, waited=1.0)],
)
@example(  # GitHub failed with a list cached: no request reaches it during the back-off
    ttls=Ttls(cache=10.0, not_found=10.0),
    events=[
        Request(False, Answer("list")),
        Wait(11),
        Request(False, Answer("rate_limited", retry_after=30)),
        Wait(5),
        Request(True, Answer("list")),
        Request(False, Answer("list"), elsewhere=True),
    ],
)
def test_no_events_serve_a_stale_list_as_fresh_or_ask_github_during_a_block(
    ttls: Ttls, events: list[Event]
) -> None:
    cache = Cache(ttls)
    for event in events:
        if isinstance(event, Wait):
            cache.advance(event.seconds)
        else:
            cache.request(event)
    assert cache.served_stale_as_fresh == 0
    assert cache.asked_in_block == 0
